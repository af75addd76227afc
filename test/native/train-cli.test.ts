import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { CLASSES, hasFlowers, repoRoot, tinyModelPath, photoFolder } from '../helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'trt-flowers-train-cli-'));
const dataDir = join(tmp, 'flowers');
const bin = join(repoRoot, 'bin', 'trt-flowers.js');

beforeAll(() => {
  if (!hasFlowers) return;
  photoFolder(dataDir, 10);
});

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `onLine` sees each stderr line and may return true to send `signal` (default SIGINT). */
function run(args: string[], onLine?: (line: string) => boolean, signal: NodeJS.Signals = 'SIGINT'): Promise<Finished> {
  return spawnAndSignal([bin, ...args], onLine, signal);
}

/** Spawns node with `argv`; the first time `onLine` returns true for a stderr line, sends `signal`. */
function spawnAndSignal(
  argv: string[],
  onLine: ((line: string) => boolean) | undefined,
  signal: NodeJS.Signals,
): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { cwd: tmp });
    let stdout = '';
    let stderr = '';
    let pending = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (!sent && onLine?.(line)) {
          sent = true;
          child.kill(signal);
        }
      }
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const common = [
  'train',
  `model.checkpoint=${tinyModelPath}`,
  'model.arch=tiny',
  'data.image_size=32',
  'data.batch_size=8',
  'trainer.max_epochs=2',
  'trainer.threads=1',
  `trainer.runs_dir=${join(tmp, 'runs')}`,
  '--data-dir',
  dataDir,
];

describe.skipIf(!hasFlowers)('trt-flowers train (CLI)', () => {
  it('Ctrl-C writes a resumable checkpoint and exits 130; --resume finishes the run', async () => {
    const first = await run([...common, 'trainer.max_epochs=2', '--progress', 'json'], (line) => {
      if (!line.startsWith('{')) return false;
      const e = JSON.parse(line) as { type: string; epoch: number; step: number };
      return e.type === 'step' && e.epoch === 2 && e.step === 1; // epochs count from 1
    });
    expect(first.stderr).toContain('stopping after the current step');
    expect(first.code).toBe(130);
    const summary = JSON.parse(first.stdout) as { run_dir: string; status: string };
    expect(summary.status).toBe('interrupted');
    const state = JSON.parse(readFileSync(join(summary.run_dir, 'checkpoints', 'last', 'state.json'), 'utf8')) as {
      epoch: number;
      batch: number;
    };
    expect(state.epoch).toBe(1);
    expect(state.batch).toBeGreaterThan(0);
    const second = await run(['train', '--resume', summary.run_dir, '--progress', 'plain']);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain('resuming');
    const done = JSON.parse(second.stdout) as {
      status: string;
      epochs: number;
      best_epoch: number;
      test_accuracy: number;
    };
    expect(done.status).toBe('completed');
    expect(done.epochs).toBe(2);
    // The best epoch reads the same in the CLI's JSON and in summary.json.
    const saved = JSON.parse(readFileSync(join(summary.run_dir, 'summary.json'), 'utf8')) as { best_epoch: number };
    expect([1, 2]).toContain(done.best_epoch);
    expect(saved.best_epoch).toBe(done.best_epoch);
    expect(existsSync(join(summary.run_dir, 'plots', 'confusion_test.png'))).toBe(true);
  });

  it('SIGTERM stops like Ctrl-C but exits 143 (128 + SIGTERM)', async () => {
    const first = await run([...common, '--progress', 'json'], (line) => line.startsWith('{"type":"step"'), 'SIGTERM');
    expect(first.stderr).toContain('SIGTERM: stopping after the current step');
    expect(JSON.parse(first.stdout)).toMatchObject({ status: 'interrupted' });
    expect(first.code).toBe(143);
  });

  it('a second signal exits at once, with the code of that signal', async () => {
    // A job that never finishes on its own: only the forced exit ends it.
    const script = [
      `const { withInterrupt } = await import(${JSON.stringify(join(repoRoot, 'dist', 'cli', 'interrupt.js'))});`,
      `await withInterrupt(async (signal) => {`,
      `  process.stderr.write('ready\\n');`,
      `  signal.addEventListener('abort', () => process.kill(process.pid, process.argv[1]));`,
      `  await new Promise((resolve) => setTimeout(resolve, 60000));`,
      `});`,
    ].join('\n');
    for (const [sig, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      const done = await spawnAndSignal(['--input-type=module', '-e', script, sig], (line) => line === 'ready', sig);
      expect(done.stderr).toContain(`${sig} again: exiting now`);
      expect(done.code).toBe(code);
    }
  });

  it('bad overrides and a missing data folder fail with one clear message', async () => {
    const bad = await run([...common, 'trainer.max_epoch=3']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: Unknown key `trainer.max_epoch` \(did you mean `trainer.max_epochs`\?\)/);
    const missing = await run([...common.slice(0, -2), '--data-dir', join(tmp, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/data folder '.*nope' \(from --data-dir\) does not exist/);
    expect(missing.stderr).toContain('TRT_FLOWERS_DATA');
  });

  it('evaluate works alone on a trained model, on the photos the run was trained from', async () => {
    const trained = await run([...common, 'trainer.max_epochs=1', '--progress', 'none']);
    expect(trained.code).toBe(0);
    const { run_dir } = JSON.parse(trained.stdout) as { run_dir: string };
    const ev = await run([
      'evaluate',
      '--model',
      join(run_dir, 'checkpoints', 'best', 'model.pt'),
      '--run',
      run_dir,
      '--split',
      'test',
      // No --data-dir: the run's own photos (its params.json).
      '--json',
    ]);
    expect(ev.code).toBe(0);
    const out = JSON.parse(ev.stdout) as { images: number; accuracy: number; per_class: Record<string, unknown> };
    expect(out.images).toBeGreaterThan(0);
    expect(Object.keys(out.per_class)).toEqual([...CLASSES]);
  });
});
