import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { repoRoot } from '../../helpers.js';

export const rankScript = join(repoRoot, 'test', 'native', 'dist', 'rank.mjs');
export const pythonRankScript = join(repoRoot, 'test', 'native', 'dist', 'rank.py');
export const python = process.env.TRT_FLOWERS_PYTHON ?? '/usr/bin/python3';

export { freePort } from '../../../src/cli/launch.js';

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** The last stdout line as JSON, when it is. */
  result?: Record<string, unknown>;
}

/** torchrun's variables for one rank on loopback (GLOO_SOCKET_IFNAME=lo). */
export function rankEnv(port: number, rank: number, worldSize: number, extra: Record<string, string> = {}) {
  return {
    ...process.env,
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
    RANK: String(rank),
    WORLD_SIZE: String(worldSize),
    LOCAL_RANK: String(rank),
    LOCAL_WORLD_SIZE: String(worldSize),
    GLOO_SOCKET_IFNAME: 'lo',
    OMP_NUM_THREADS: '1',
    ...extra,
  };
}

/** Runs a program to its end, killed after killAfterMs (a bounded test never waits forever). */
export function runProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  killAfterMs = 60_000,
  cwd = repoRoot,
): Promise<Finished> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').pop() ?? '';
      let result: Record<string, unknown> | undefined;
      try {
        result = JSON.parse(last) as Record<string, unknown>;
      } catch {
        result = undefined;
      }
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, result });
    });
  });
}
