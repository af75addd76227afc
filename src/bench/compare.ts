/** Comparing engines: unique labels, the baseline, ratios to it. Pure functions over report entries. */
import path from 'node:path';

import type { BenchEngine, BenchResult } from './types.js';

/** Picks the engine the ratios are relative to: `wanted` (exact label, else part of one), else libtorch fp32. */
export function pickBaseline(engines: readonly BenchEngine[], wanted?: string): BenchEngine | undefined {
  const ok = engines.filter((e) => e.status === 'ok');
  if (wanted) {
    const w = wanted.toLowerCase();
    const hit = ok.find((e) => e.label.toLowerCase() === w) ?? ok.find((e) => e.label.toLowerCase().includes(w));
    if (hit) return hit;
  }
  return (
    ok.find((e) => e.backend === 'libtorch' && e.precision === 'fp32' && e.device === 'cpu') ??
    ok.find((e) => e.backend === 'libtorch' && e.precision === 'fp32') ??
    ok[0]
  );
}

/** Makes labels unique: '<backend> <precision> <device>', plus the file name where two engines share one. */
export function assignLabels(
  engines: Pick<BenchEngine, 'label' | 'backend' | 'precision' | 'device' | 'model' | 'tta'>[],
): void {
  const base = (e: Pick<BenchEngine, 'backend' | 'precision' | 'device' | 'tta'>): string =>
    `${e.backend} ${e.precision} ${e.device}${e.tta && e.tta !== 'none' ? ` tta=${e.tta}` : ''}`;
  const counts = new Map<string, number>();
  for (const e of engines) counts.set(base(e), (counts.get(base(e)) ?? 0) + 1);
  for (const e of engines) {
    e.label = (counts.get(base(e)) ?? 0) > 1 ? `${base(e)} (${path.basename(e.model)})` : base(e);
  }
}

/** Fills each result's ratios to the baseline engine at the same batch size and mode. */
export function computeRatios(results: BenchResult[], baseline: string | null): void {
  for (const r of results) {
    if (r.status !== 'ok' || !baseline) continue;
    const base = results.find(
      (b) => b.engine === baseline && b.batch === r.batch && b.mode === r.mode && b.status === 'ok',
    );
    r.vsBaseline =
      base?.imagesPerSecond && r.imagesPerSecond && base.latencyMs && r.latencyMs
        ? {
            throughput: r.imagesPerSecond / base.imagesPerSecond,
            latencyP50: base.latencyMs.median / r.latencyMs.median,
          }
        : null;
  }
}
