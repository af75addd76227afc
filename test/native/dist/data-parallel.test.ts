// Two ranks with half the batch each must end where one process with the whole batch ends. That equality holds
// for a model whose forward treats samples independently: the 'tiny' network exported with --freeze-bn (BatchNorm
// normalises with its running statistics, as in eval) and --dropout 0. Tolerance 1e-5 (float32 sums in another order;
// AdamW divides by sqrt(v), which magnifies them, so it runs at a 1e-3 learning rate).
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import type { NativeSyncStats } from '../../../src/binding/types.js';
import { distributedAvailable } from '../../../src/index.js';
import { repoRoot } from '../../helpers.js';
import { freePort, python, rankEnv, runProcess } from './spawn.js';

const available = distributedAvailable().available;
const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-ddp-'));
const script = join(repoRoot, 'test', 'native', 'dist', 'train-rank.mjs');
const compare = join(repoRoot, 'test', 'native', 'dist', 'compare.py');
const addUnused = join(repoRoot, 'test', 'native', 'dist', 'unused_param.py');
const modelA = join(tmp, 'a.pt');
const modelB = join(tmp, 'b.pt');

function exportTiny(out: string, seed: number): number {
  const report = execFileSync(python, [
    join(repoRoot, 'scripts', 'export_backbone.py'),
    ...['--arch', 'tiny', '--num-classes', '5', '--freeze-bn', '--dropout', '0', '--seed', String(seed)],
    ...['--out', out],
  ]);
  return (JSON.parse(report.toString().trim().split('\n').pop()!) as { parameters: number }).parameters;
}

function maxAbsDiff(a: string, b: string): number {
  return (JSON.parse(execFileSync(python, [compare, a, b]).toString()) as { maxAbsDiff: number }).maxAbsDiff;
}

async function trainAlone(out: string, extra: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, DIST_TEST_MODEL: modelA, DIST_TEST_OUT: out, OMP_NUM_THREADS: '1' };
  Object.assign(env, extra);
  delete env.WORLD_SIZE;
  const run = await runProcess(process.execPath, [script], env);
  expect(run.code, run.stdout + run.stderr).toBe(0);
  return run.result as { skipped: boolean[] };
}

async function trainTwoRanks(outs: [string, string], extra: Record<string, string> = {}) {
  const port = await freePort();
  const runs = await Promise.all(
    [0, 1].map((r) =>
      runProcess(
        process.execPath,
        [script],
        rankEnv(port, r, 2, {
          TRT_FLOWERS_DIST_TIMEOUT_MS: '30000',
          // Rank 1 starts from other weights: attaching must give it rank 0's.
          DIST_TEST_MODEL: r === 0 ? modelA : modelB,
          DIST_TEST_OUT: outs[r]!,
          ...extra,
        }),
      ),
    ),
  );
  for (const run of runs) expect(run.code, run.stdout + run.stderr).toBe(0);
  return runs.map((r) => r.result as { skipped: boolean[]; buckets: number[]; stats: NativeSyncStats });
}

describe.runIf(available)('data-parallel training (2 ranks x B/2 = 1 rank x B)', () => {
  let parameters = 0;
  beforeAll(() => {
    parameters = exportTiny(modelA, 1);
    exportTiny(modelB, 2);
  }, 120_000);

  it.each(['adamw', 'sgd'])('ends with the same parameters after 4 steps (%s)', async (optimizer) => {
    const alone = join(tmp, `alone-${optimizer}.pt`);
    const ranks: [string, string] = [join(tmp, `r0-${optimizer}.pt`), join(tmp, `r1-${optimizer}.pt`)];
    const options = { DIST_TEST_OPTIMIZER: optimizer, DIST_TEST_LR: optimizer === 'sgd' ? '0.01' : '0.001' };
    await trainAlone(alone, options);
    const [r0] = await trainTwoRanks(ranks, options);
    expect(maxAbsDiff(ranks[0], ranks[1])).toBe(0);
    expect(maxAbsDiff(alone, ranks[0])).toBeLessThan(1e-5);
    // The weights did move (a test that could not fail otherwise), and rank 1's start was overwritten.
    expect(maxAbsDiff(modelA, ranks[0])).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(modelA, modelB)).toBeGreaterThan(1e-2);
    // Buckets hold every gradient once; each but the last is closed when it reaches its cap (the first's is 4 KiB,
    // the others' 16 KiB here), and all of them travel every step.
    const buckets = r0!.buckets;
    expect(buckets.reduce((a, b) => a + b, 0)).toBe(4 * parameters);
    expect(buckets.length).toBeGreaterThan(2);
    expect(buckets[0]).toBeGreaterThanOrEqual(4 << 10);
    for (const b of buckets.slice(1, -1)) expect(b).toBeGreaterThanOrEqual(16 << 10);
    expect(r0!.stats.steps).toBe(4);
    expect(r0!.stats.bytes).toBe(4 * 4 * parameters);
  });

  it('skips a step on every rank when one rank has non-finite gradients (loss scaler)', async () => {
    const ranks: [string, string] = [join(tmp, 'p0.pt'), join(tmp, 'p1.pt')];
    const [r0, r1] = await trainTwoRanks(ranks, { DIST_TEST_POISON_STEP: '1' });
    expect(r0!.skipped).toEqual([false, true, false, false]);
    expect(r1!.skipped).toEqual([false, true, false, false]);
    expect(maxAbsDiff(ranks[0], ranks[1])).toBe(0);
    // The verdict travels with the gradients (a rank's inf or NaN is in every rank's averaged sum): no collective
    // beyond the gradient buckets, and still every rank skips.
    expect(r0!.stats.collectives).toBe(r0!.stats.buckets);
    expect(r0!.stats.buckets).toBe(4 * r0!.buckets.length);
  });

  // Overlap: a bucket's all-reduce starts from the hook on its last gradient's accumulator, while backward goes on.
  // A parameter the loss never reaches (in the last bucket here) counts as zeros from the start of backward, so its
  // bucket does not wait for the end; with it, 2 ranks still agree exactly and end where one process ends.
  it('starts every bucket during backward, also with a parameter the loss does not reach', async () => {
    const withUnused = join(tmp, 'unused.pt');
    const added = JSON.parse(execFileSync(python, [addUnused, modelA, withUnused]).toString()) as { first: string };
    expect(added.first).toBe('unused');
    const ranks: [string, string] = [join(tmp, 'u0.pt'), join(tmp, 'u1.pt')];
    const [r0, r1] = await trainTwoRanks(ranks, { DIST_TEST_MODEL: withUnused });
    for (const r of [r0!, r1!]) {
      expect(r.buckets.length).toBeGreaterThan(2);
      expect(r.stats.steps).toBe(4);
      expect(r.stats.buckets).toBe(4 * r.buckets.length);
      expect(r.stats.bucketsInBackward).toBe(r.stats.buckets);
      expect(r.stats.bucketsDoneInBackward).toBeLessThanOrEqual(r.stats.bucketsInBackward);
      expect(r.stats.inBackwardSeconds).toBeGreaterThan(0);
      expect(r.stats.inBackwardSeconds).toBeLessThanOrEqual(r.stats.seconds);
    }
    expect(maxAbsDiff(ranks[0], ranks[1])).toBe(0);
    expect(maxAbsDiff(withUnused, ranks[0])).toBeGreaterThan(1e-3);
  });
});
