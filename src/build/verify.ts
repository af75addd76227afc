/** Comparisons of a built engine with its FP32 model: top-1 agreement and logit cosine, accuracy on a labelled split. */

import { argmax, runPaired } from '../engine/compare.js';
import { Engine } from '../engine/Engine.js';
import type { BuildEngineOptions, EngineSidecar } from './options.js';

/** Accuracy of a reference and a built engine on labelled photos (unreadable photos skipped and counted). */
export async function splitAccuracy(
  reference: Engine,
  built: Engine,
  split: NonNullable<BuildEngineOptions['evaluate']>,
): Promise<NonNullable<EngineSidecar['evaluation']>> {
  let images = 0;
  let refCorrect = 0;
  let builtCorrect = 0;
  let agree = 0;
  const k = reference.info.classes.length;
  const { skipped } = await runPaired(
    reference,
    built,
    split.images,
    { batchSize: 32, skipUnreadable: true },
    ({ indices, a: ra, b: rb }) => {
      for (const [j, i] of indices.entries()) {
        const pa = argmax(ra.logits.subarray(j * k, (j + 1) * k));
        const pb = argmax(rb.logits.subarray(j * k, (j + 1) * k));
        images++;
        if (pa === split.labels[i]) refCorrect++;
        if (pb === split.labels[i]) builtCorrect++;
        if (pa === pb) agree++;
      }
    },
  );
  return {
    split: split.name,
    images,
    skipped,
    fp32_accuracy: images ? refCorrect / images : 0,
    engine_accuracy: images ? builtCorrect / images : 0,
    top1_agreement: images ? agree / images : 0,
  };
}

/** Top-1 agreement and logit cosine similarity of two engines on the same photos. */
export async function agreement(
  a: Engine,
  b: Engine,
  images: readonly string[],
): Promise<NonNullable<EngineSidecar['verification']>> {
  const k = a.info.classes.length;
  let agree = 0;
  let minCos = 1;
  let sumCos = 0;
  // One batch: the engines split it by their own batch size.
  await runPaired(a, b, images, { batchSize: images.length }, ({ a: ra, b: rb }) => {
    for (let n = 0; n < images.length; n++) {
      const x = ra.logits.subarray(n * k, (n + 1) * k);
      const y = rb.logits.subarray(n * k, (n + 1) * k);
      let dot = 0;
      let nx = 0;
      let ny = 0;
      for (let i = 0; i < k; i++) {
        dot += x[i]! * y[i]!;
        nx += x[i]! * x[i]!;
        ny += y[i]! * y[i]!;
      }
      const cos = dot / Math.sqrt(nx * ny || 1);
      minCos = Math.min(minCos, cos);
      sumCos += cos;
      if (argmax(x) === argmax(y)) agree++;
    }
  });
  return {
    images: images.length,
    top1_agreement: agree / images.length,
    min_logit_cosine: minCos,
    mean_logit_cosine: sumCos / images.length,
  };
}
