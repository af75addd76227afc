import sharp from 'sharp';

import { decodeResized, normalizeInto } from '../data/preprocess.js';
import { InvalidImageError } from '../errors.js';
import type { Engine, Prediction } from '../engine/Engine.js';
import { Batcher } from './Batcher.js';
import { HttpError, imageError } from './httpErrors.js';
import type { ServeMetrics } from './metrics.js';
import type { ResolvedServeOptions } from './options.js';
import type { Upload } from './uploads.js';

export interface NamedPrediction {
  name: string;
  prediction: Prediction;
}

type Settled = { ok: Uint8Array } | { error: unknown };

/** What the batcher holds per image: decoded RGB bytes (HWC) from an upload, or a client's preprocessed CHW tensor. */
type Item = Uint8Array | Float32Array;

/**
 * The server's path from uploaded bytes to predictions: images are decoded as they arrive (libjpeg-turbo or sharp,
 * on the libuv pool, a bounded number at once), then the Batcher groups the decoded images of concurrent requests
 * into engine calls (libtorch on the model's own native thread, ONNX Runtime in worker threads). Only the normalisation of the
 * batch (a table lookup per byte) runs on the event loop.
 */
export class Predictor {
  readonly engine: Engine;
  readonly #batcher: Batcher<Item, Prediction>;
  readonly #metrics: ServeMetrics;
  readonly #maxPixels: number;
  readonly #decodeLimit: number;
  #decoding = 0;
  readonly #decodeWaiters: (() => void)[] = [];
  /** Requests between their first byte and their submission to the batcher. */
  #incoming = 0;

  readonly #labels: { model: string; version: string };

  /**
   * `labels` name the model version in the per-model metrics (trt_flowers_model_*); the batcher's limits are the
   * options' (maxBatch, maxWaitMs, concurrency, maxQueue).
   */
  constructor(
    engine: Engine,
    options: ResolvedServeOptions,
    metrics: ServeMetrics,
    labels: { model: string; version: string } = { model: '', version: '' },
  ) {
    this.engine = engine;
    this.#metrics = metrics;
    this.#labels = labels;
    this.#maxPixels = options.maxPixels;
    this.#decodeLimit = options.decodeConcurrency;
    this.#batcher = new Batcher((images) => this.#infer(images), {
      maxBatch: options.maxBatch,
      maxWaitMs: options.maxWaitMs,
      concurrency: options.concurrency,
      maxQueue: options.maxQueue,
      incoming: () => this.#incoming,
      onBatch: ({ size, runMs, waitMs }) => {
        metrics.batchSize.observe(size);
        metrics.inferenceSeconds.observe(runMs / 1000);
        if (labels.model) {
          metrics.modelBatchSize.observe(labels, size);
          metrics.modelInferenceSeconds.observe(labels, runMs / 1000);
        }
        for (const w of waitMs) metrics.queueWaitSeconds.observe(w / 1000);
      },
    });
  }

  /** Images waiting for an engine call. */
  get queueDepth(): number {
    return this.#batcher.depth;
  }

  /**
   * Classifies the images that `collect` hands over (through `add`, as each one arrives) and returns their
   * predictions in order. The first unusable image fails the whole request with a 4xx HttpError naming it.
   */
  async predict(collect: (add: (upload: Upload) => void) => Promise<unknown>): Promise<NamedPrediction[]> {
    this.#incoming++;
    let counted = true;
    const leave = (poke: boolean): void => {
      if (!counted) return;
      counted = false;
      this.#incoming--;
      if (poke) this.#batcher.poke();
    };
    try {
      const uploads: Upload[] = [];
      const decoded: Promise<Settled>[] = [];
      const decode = (upload: Upload): void => {
        decoded.push(
          this.#decode(upload).then(
            (ok) => ({ ok }),
            (error: unknown) => ({ error }),
          ),
        );
      };
      // The first image of a request that finds the server idle waits undecoded: if it stays the only one, the
      // engine takes its bytes whole (decoded where the model runs: one hand-off instead of four).
      let held: Upload | undefined;
      await collect((upload) => {
        uploads.push(upload);
        if (uploads.length === 1 && upload.bytes.length > 0 && this.#idle()) {
          held = upload;
          return;
        }
        if (held) decode(held);
        held = undefined;
        decode(upload);
      });
      if (held) {
        const upload = held;
        leave(false);
        const alone = this.#batcher.runAlone(1, () => this.#inferEncoded(upload));
        if (alone) {
          const prediction = await alone;
          this.#count('predicted', 1);
          return [{ name: upload.name, prediction }];
        }
        decode(upload);
      }
      const settled = await Promise.all(decoded);
      const bad = settled.filter((s): s is { error: unknown } => 'error' in s);
      if (bad.length > 0) {
        this.#count('rejected', bad.length);
        throw bad[0]?.error;
      }
      // Leaving without a poke: the submission below decides, now that this request no longer counts as coming.
      leave(false);
      const predictions = await this.#batcher.submit(settled.map((s) => (s as { ok: Uint8Array }).ok));
      this.#count('predicted', predictions.length);
      return uploads.map((u, i) => ({ name: u.name, prediction: predictions[i] as Prediction }));
    } finally {
      leave(true);
    }
  }

  /**
   * Classifies preprocessed images (float32 CHW, normalised as the model's metadata says, each 3 x size x size),
   * batched with the uploads of other requests. The caller checks the shape and the values.
   */
  async predictTensors(images: readonly Float32Array[]): Promise<Prediction[]> {
    const predictions = await this.#batcher.submit(images);
    this.#count('predicted', predictions.length);
    return predictions;
  }

  #count(outcome: 'predicted' | 'rejected', n: number): void {
    this.#metrics.images.inc({ outcome }, n);
    if (this.#labels.model) this.#metrics.modelImages.inc({ ...this.#labels, outcome }, n);
  }

  /** One image through the whole path (decode, batcher, engine), so the first request is not the slow one. */
  async warmUp(): Promise<void> {
    const bytes = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#c04070' } })
      .jpeg()
      .toBuffer();
    await this.predict(async (add) => add({ name: 'warm-up', bytes }));
  }

  /** Refuses new work and waits for queued and running batches. */
  close(): Promise<void> {
    return this.#batcher.close();
  }

  /** Nothing queued, running, decoding or on its way but the request asking. */
  #idle(): boolean {
    return this.#incoming === 1 && this.#decoding === 0 && this.#batcher.depth === 0 && this.#batcher.running === 0;
  }

  /** One upload's bytes through the engine (its decode, its batch of one); a bad image is the request's 4xx. */
  async #inferEncoded(upload: Upload): Promise<Prediction> {
    try {
      const [prediction] = await this.engine.infer(upload.bytes, {
        logits: true,
        embeddings: true,
        maxPixels: this.#maxPixels,
      });
      return prediction as Prediction;
    } catch (err) {
      if (err instanceof InvalidImageError) {
        this.#count('rejected', 1);
        throw imageError(err, `'${upload.name}'`);
      }
      throw err;
    }
  }

  async #decode(upload: Upload): Promise<Uint8Array> {
    if (upload.bytes.length === 0) {
      throw new HttpError(400, 'ERR_INVALID_IMAGE', `'${upload.name}' is empty (0 bytes)`);
    }
    // A slot is handed from one decode to the next waiting one, first come first served.
    if (this.#decoding < this.#decodeLimit) this.#decoding++;
    else await new Promise<void>((resolve) => this.#decodeWaiters.push(resolve));
    const { size, resize, kernel } = this.engine.info.preprocessing;
    try {
      return await decodeResized(upload.bytes, { size, resize, kernel, maxPixels: this.#maxPixels });
    } catch (err) {
      throw imageError(err, `'${upload.name}'`);
    } finally {
      const next = this.#decodeWaiters.shift();
      if (next) next();
      else this.#decoding--;
    }
  }

  /**
   * One engine call over decoded images (normalised) and tensors (copied) in one NCHW batch. Logits and embeddings
   * come with every prediction (the Open Inference Protocol's outputs): one small copy per image.
   */
  async #infer(images: Item[]): Promise<Prediction[]> {
    const { size, mean, std } = this.engine.info.preprocessing;
    const per = 3 * size * size;
    const data = new Float32Array(images.length * per);
    images.forEach((item, i) => {
      if (item instanceof Float32Array) data.set(item, i * per);
      else normalizeInto(item, data, i * per, { mean, std });
    });
    return this.engine.infer({ data, shape: [images.length, 3, size, size] }, { logits: true, embeddings: true });
  }
}
