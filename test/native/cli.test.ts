import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers.js';

// Runs the built CLI (dist/) as a user would.
describe('trt-flowers binary', () => {
  const bin = join(repoRoot, 'bin', 'trt-flowers.js');
  const run = (args: string[]) => promisify(execFile)(process.execPath, [bin, ...args], { cwd: repoRoot });

  it('doctor --json reports libtorch and its version', async () => {
    const { stdout } = await run(['doctor', '--json']);
    const report = JSON.parse(stdout) as { addon: { loaded: boolean }; libtorch: { version: string } };
    expect(report.addon.loaded).toBe(true);
    expect(report.libtorch.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('doctor says whether data-parallel training is built in, and why not', async () => {
    const { stdout } = await run(['doctor', '--json']);
    const { distributed } = JSON.parse(stdout) as {
      distributed: { compiled: boolean; backends: string[]; note: string };
    };
    // Built here with libgloo-dev (npm run setup installs it) against Debian's CPU libtorch: Gloo, and the note says
    // why not NCCL; elsewhere the note must say what is missing.
    if (existsSync('/usr/include/gloo/config.h')) {
      expect(distributed).toMatchObject({ compiled: true, backends: ['gloo'] });
      expect(distributed.note).toMatch(/nccl: libtorch has no CUDA/);
    } else expect(distributed.note).toMatch(/gloo|c10d/);
    const { stdout: text } = await run(['doctor']);
    expect(text).toMatch(
      distributed.compiled ? /data-parallel\s+c10d \(TCPStore, Gloo\)/ : /data-parallel\s+not available: /,
    );
  });

  it('the installed command (bin/trt-flowers) preloads jemalloc where it is installed; TRT_FLOWERS_MALLOC=system opts out', async () => {
    const sh = join(repoRoot, 'bin', 'trt-flowers');
    const doctor = async (env: NodeJS.ProcessEnv): Promise<string> => {
      const { stdout } = await promisify(execFile)(sh, ['doctor', '--json'], { cwd: repoRoot, env });
      return (JSON.parse(stdout) as { allocator: string }).allocator;
    };
    const jemalloc = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'].some((d) =>
      existsSync(join(d, 'libjemalloc.so.2')),
    );
    const env: NodeJS.ProcessEnv = { ...process.env, LD_PRELOAD: '', MALLOC_CONF: '' };
    delete env.TRT_FLOWERS_MALLOC;
    expect(await doctor(env)).toMatch(jemalloc ? /^jemalloc \(.*dirty_decay_ms:-1/ : /^system malloc/);
    expect(await doctor({ ...env, TRT_FLOWERS_MALLOC: 'system' })).toMatch(/^system malloc/);
  });

  it('a bad option exits non-zero with a message naming it', async () => {
    const err = (await run(['export-backbone', '--arch', 'tiny', '--out', '/tmp/x.pt', '--num-classes', '1']).catch(
      (e: unknown) => e,
    )) as { code: number; stderr: string };
    expect(err.code).not.toBe(0);
    expect(err.stderr).toContain('--num-classes expects an integer between 2 and 100000');
  });

  it('export-backbone writes a model and a bad arch is a clear error', async () => {
    const err = (await run(['export-backbone', '--arch', 'resnet', '--out', '/tmp/x.pt']).catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/^error: Expected one of tiny, mobilenet_v2, rexnet_150 for `arch`/);
  });
});
