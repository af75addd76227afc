// Data-parallel training end to end, through the CLI as users run it: `--nproc 2`, torchrun, a rank killed
// mid-epoch (the other ends with the error, the last checkpoint resumes with another world size), and ranks whose
// configs differ (refused at start, the difference named). Real photos, the tiny fixture, bounded timeouts.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { DataLoader, distributedAvailable, indexDataset, createSplit } from '../../../src/index.js';
import { CLASSES, hasFlowers, repoRoot, tinyModelPath, photoFolder } from '../../helpers.js';
import { freePort, python, rankEnv, runProcess, type Finished } from './spawn.js';

const available = distributedAvailable().available && hasFlowers;
const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-train-dist-'));
const dataDir = join(tmp, 'flowers');
const bin = join(repoRoot, 'bin', 'trt-flowers.js');

beforeAll(() => {
  if (!hasFlowers) return;
  photoFolder(dataDir, 10);
});

const common = (runs: string) => [
  'train',
  `model.checkpoint=${tinyModelPath}`,
  'model.arch=tiny',
  'data.image_size=32',
  'data.batch_size=4',
  'trainer.max_epochs=2',
  `trainer.runs_dir=${runs}`,
  '--data-dir',
  dataDir,
];

function summaryOf(run: Finished): { run_dir: string; status: string; epochs: number; test_accuracy?: number } {
  return JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as {
    run_dir: string;
    status: string;
    epochs: number;
  };
}

describe.runIf(available)('data-parallel training (CLI)', () => {
  it('shares every epoch out over the ranks: the union of the shards is the epoch', async () => {
    const index = await indexDataset(dataDir, { classes: [...CLASSES] });
    const split = createSplit(index, { ratios: [0.8, 0.1, 0.1], seed: 1 });
    const loader = new DataLoader({ root: dataDir, split, batchSize: 3, imageSize: 16, augment: false });
    const whole: string[][] = [];
    for await (const b of loader.epoch(0)) whole.push(b.paths);
    const shards: string[][][] = [[], [], []];
    for (const rank of [0, 1, 2]) {
      for await (const b of loader.epoch(0, { shard: { rank, count: 3 } })) shards[rank]!.push(b.paths);
    }
    // Every rank takes the same number of steps; step j of rank r is the epoch's batch 3j + r, wrapping past the end.
    const steps = Math.ceil(whole.length / 3);
    for (const s of shards) expect(s).toHaveLength(steps);
    for (let j = 0; j < steps; j++) {
      for (const rank of [0, 1, 2]) expect(shards[rank]![j]).toEqual(whole[(3 * j + rank) % whole.length]);
    }
    // Validation: each rank a disjoint part, together all of it.
    const val: string[] = [];
    for (const rank of [0, 1, 2]) {
      for await (const b of loader.evaluate('val', { shard: { rank, count: 3 }, batchSize: 1 })) val.push(...b.paths);
    }
    expect(val.sort()).toEqual(split.val.map((it) => it.path).sort());
  });

  it('trains with --nproc 2: one run folder, written by rank 0', async () => {
    const runs = join(tmp, 'runs-nproc');
    const run = await runProcess(process.execPath, [bin, ...common(runs), '--nproc', '2', '--progress', 'plain'], {
      ...process.env,
      TRT_FLOWERS_DIST_TIMEOUT_MS: '60000',
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/launching 2 ranks on 127\.0\.0\.1:\d+, 1 libtorch thread\(s\) each/);
    expect(run.stderr).toMatch(/batch 4 triplets per rank x 2 ranks/);
    const summary = summaryOf(run);
    expect(summary).toMatchObject({ status: 'completed', epochs: 2 });
    expect(summary.test_accuracy).toBeGreaterThanOrEqual(0);
    expect(readdirSync(runs)).toHaveLength(1);
    expect(existsSync(join(summary.run_dir, 'checkpoints', 'best', 'model.pt'))).toBe(true);
    expect(run.stderr).toMatch(/data-parallel, 2 ranks: gradient averaging took [\d.]+% of rank 0's step time/);
    const written = JSON.parse(readFileSync(join(summary.run_dir, 'summary.json'), 'utf8')) as {
      distributed: { world_size: number; steps: number; sync_seconds: number; step_seconds: number };
    };
    expect(written.distributed).toMatchObject({ world_size: 2, steps: 10 });
    expect(written.distributed.sync_seconds).toBeLessThan(written.distributed.step_seconds);
    // Two epochs of validation rows in the run's metrics, logged once (rank 0).
    const rows = readFileSync(join(summary.run_dir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(rows.filter((r) => r.includes('"split":"val","name":"loss"'))).toHaveLength(2);
  });

  it("runs the head phase on every rank, then fine-tunes data-parallel from rank 0's weights", async () => {
    const runs = join(tmp, 'runs-head');
    const args = [...common(runs), 'model.head_epochs=2', 'model.head_learning_rate=0.01', 'trainer.max_epochs=1'];
    const run = await runProcess(process.execPath, [bin, ...args, '--nproc', '2', '--progress', 'plain'], {
      ...process.env,
      TRT_FLOWERS_DIST_TIMEOUT_MS: '60000',
    });
    expect(run.code, run.stderr).toBe(0);
    // Rank 0 alone prints and logs: each head epoch once, over the whole train split (35 photos).
    expect(run.stderr.match(/^head epoch \d\/2: loss/gm)).toHaveLength(2);
    expect(run.stderr).toMatch(/head phase: pooled features of 35 train images/);
    const summary = summaryOf(run);
    expect(summary).toMatchObject({ status: 'completed', epochs: 1 });
    const rows = readFileSync(join(summary.run_dir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(rows.filter((r) => r.includes('"split":"head","name":"loss"'))).toHaveLength(2);
  });

  it('takes the bucket size from --bucket-mb and starts every bucket during backward', async () => {
    const runs = join(tmp, 'runs-buckets');
    const args = [...common(runs), 'trainer.max_epochs=1', 'trainer.evaluate_test=false', '--progress', 'plain'];
    const run = await runProcess(process.execPath, [bin, ...args, '--nproc', '2', '--bucket-mb', '0.01'], {
      ...process.env,
      TRT_FLOWERS_DIST_TIMEOUT_MS: '60000',
    });
    expect(run.code, run.stderr).toBe(0);
    const written = JSON.parse(readFileSync(join(summaryOf(run).run_dir, 'summary.json'), 'utf8')) as {
      distributed: { steps: number; buckets: number; buckets_in_backward: number };
    };
    // The tiny model's 96 KB of gradients (the largest tensor 72 KB, a bucket of its own) in buckets of about
    // 10 KiB, the first too: 3 per step (1 with the default sizes).
    const { steps, buckets, buckets_in_backward } = written.distributed;
    expect(steps).toBe(5);
    expect(buckets).toBe(3 * steps);
    expect(buckets_in_backward).toBe(buckets);
    expect(run.stderr).toMatch(new RegExp(`${buckets} of ${buckets} started during backward`));

    const bad = await runProcess(process.execPath, [bin, ...args, '--bucket-mb', '0'], process.env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--bucket-mb but received '0'/);
  });

  it('stops every rank on Ctrl-C to the launcher, with a resumable checkpoint', async () => {
    const runs = join(tmp, 'runs-sigint');
    const started = Date.now();
    const run = await new Promise<Finished>((resolve) => {
      const child = spawn(process.execPath, [bin, ...common(runs), 'trainer.max_epochs=3', '--nproc', '2'], {
        env: { ...process.env, TRT_FLOWERS_DIST_TIMEOUT_MS: '20000' },
      });
      let stdout = '';
      let stderr = '';
      let sent = false;
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (!sent && /epoch 1\/3 done/.test(stderr)) {
          sent = true;
          child.kill('SIGINT');
        }
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
      });
    });
    expect(run.code, run.stderr).toBe(130);
    expect(run.stderr).toMatch(/interrupted: checkpoint written; continue with --resume/);
    expect(summaryOf(run).status).toBe('interrupted');
    const resumed = await runProcess(
      process.execPath,
      [bin, 'train', '--resume', summaryOf(run).run_dir, '--nproc', '2', '--progress', 'none'],
      { ...process.env, TRT_FLOWERS_DIST_TIMEOUT_MS: '20000' },
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(summaryOf(resumed)).toMatchObject({ status: 'completed', epochs: 3 });
  });

  it('trains under torchrun (python3 -m torch.distributed.run --no_python)', async () => {
    const runs = join(tmp, 'runs-torchrun');
    const port = await freePort();
    // Debian's torch 1.13 under Python 3.11 needs --redirects/--tee set (its default "0" does not parse there).
    const run = await runProcess(
      python,
      [
        ...['-m', 'torch.distributed.run', '--nproc_per_node=2', `--master_port=${port}`],
        ...['--redirects', '2', '--tee', '2', '--log_dir', join(tmp, 'torchrun-logs'), '--no_python'],
        join(repoRoot, 'bin', 'trt-flowers'),
        ...common(runs),
        'trainer.max_epochs=1',
        'trainer.threads=1',
        '--progress',
        'none',
      ],
      { ...process.env, GLOO_SOCKET_IFNAME: 'lo', TRT_FLOWERS_DIST_TIMEOUT_MS: '60000' },
      120_000,
    );
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ status: 'completed', epochs: 1 });
    expect(readdirSync(runs)).toHaveLength(1);
  });

  it('ends the other rank with a clear error when a rank is killed mid-epoch; the run resumes alone', async () => {
    const runs = join(tmp, 'runs-fault');
    const port = await freePort();
    const args = [bin, ...common(runs), 'trainer.max_epochs=3', 'trainer.threads=1'];
    const env = (rank: number) => rankEnv(port, rank, 2, { TRT_FLOWERS_DIST_TIMEOUT_MS: '20000' });
    const victim = spawn(process.execPath, [...args, '--progress', 'none'], { env: env(1) });
    let killedAt = 0;
    const survivor = await new Promise<Finished>((resolve) => {
      const child = spawn(process.execPath, [...args, '--progress', 'json'], { env: env(0) });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // The first step of epoch 2: epoch 1's checkpoint is on disk.
        if (!killedAt && /"type":"step","epoch":2/.test(stderr)) {
          killedAt = Date.now();
          victim.kill('SIGKILL');
        }
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, ms: Date.now() - killedAt });
      });
    });
    expect(killedAt).toBeGreaterThan(0);
    expect(survivor.code, survivor.stderr).not.toBe(0);
    expect(survivor.signal).toBeNull();
    expect(survivor.stderr).toMatch(/all-reduce failed \(rank 0\/2, 127\.0\.0\.1:\d+\)/);
    expect(survivor.ms).toBeLessThan(20_000);
    const [runDir] = readdirSync(runs);
    const state = JSON.parse(readFileSync(join(runs, runDir!, 'checkpoints', 'last', 'state.json'), 'utf8')) as {
      epoch: number;
    };
    expect(state.epoch).toBe(1);
    // Resume with one process (another world size): epochs 2 and 3.
    const resumed = await runProcess(process.execPath, [bin, 'train', '--resume', join(runs, runDir!)], {
      ...process.env,
    });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(summaryOf(resumed)).toMatchObject({ status: 'completed', epochs: 3 });
  });

  it('refuses ranks whose configs differ, naming the difference', async () => {
    const runs = join(tmp, 'runs-mismatch');
    const port = await freePort();
    const env = (rank: number) => rankEnv(port, rank, 2, { TRT_FLOWERS_DIST_TIMEOUT_MS: '20000' });
    const [r0, r1] = await Promise.all([
      runProcess(process.execPath, [bin, ...common(runs), '--progress', 'none'], env(0)),
      runProcess(process.execPath, [bin, ...common(runs), 'model.learning_rate=0.5', '--progress', 'none'], env(1)),
    ]);
    for (const r of [r0, r1]) {
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(
        /the ranks do not train the same thing, refusing to start: rank 1: model\.learning_rate is 0\.5 here but 0\.001 on rank 0/,
      );
    }
  });
});
