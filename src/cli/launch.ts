/**
 * `trt-flowers train --nproc N`: starts N ranks of the same command on this machine with the environment torchrun
 * gives its workers (MASTER_ADDR=127.0.0.1, a free MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE) and
 * libtorch threads sized so that the ranks' sum fits the cores. Ctrl-C / SIGTERM reach every rank once (the ranks
 * agree to stop after the same step and rank 0 writes a resumable checkpoint); when a rank fails, the others are
 * given `graceMs` to end on their own, then killed. Resolves with the exit status: 0, or the first failure's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

import { signalExitCode } from './interrupt.js';

export interface LaunchOptions {
  nproc: number;
  /** The command line after the program, without --nproc. */
  args: string[];
  /** libtorch threads per rank. Defaults to max(1, floor(cores / nproc)). */
  threads?: number;
  /** After the first failure, how long the other ranks have to end. Defaults to 10000. */
  graceMs?: number;
}

/** A TCP port free right now on 127.0.0.1 (the store binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Every line of `stream` with `prefix` in front, to stderr. */
function prefixLines(stream: NodeJS.ReadableStream, prefix: string): void {
  let pending = '';
  stream.on('data', (d: Buffer) => {
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) process.stderr.write(`${prefix}${line}\n`);
  });
  stream.on('end', () => {
    if (pending) process.stderr.write(`${prefix}${pending}\n`);
  });
}

export async function launchLocal(options: LaunchOptions): Promise<number> {
  const { nproc } = options;
  const threads = options.threads ?? Math.max(1, Math.floor(availableParallelism() / nproc));
  const graceMs = options.graceMs ?? 10_000;
  const port = await freePort();
  process.stderr.write(`launching ${nproc} ranks on 127.0.0.1:${port}, ${threads} libtorch thread(s) each\n`);
  const children: ChildProcess[] = [];
  const exits: Promise<number>[] = [];
  let firstFailure: number | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const killAll = (sig: NodeJS.Signals): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(sig);
  };
  for (let rank = 0; rank < nproc; rank++) {
    const child = spawn(process.execPath, [process.argv[1] ?? '', ...options.args, '--threads', String(threads)], {
      env: {
        ...process.env,
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        RANK: String(rank),
        WORLD_SIZE: String(nproc),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(nproc),
        GLOO_SOCKET_IFNAME: process.env.GLOO_SOCKET_IFNAME ?? 'lo',
        OMP_NUM_THREADS: String(threads),
      },
      // Its own process group: a terminal's Ctrl-C reaches the launcher alone, which passes it on once.
      detached: true,
      stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', rank === 0 ? 'inherit' : 'pipe'],
    });
    if (rank > 0 && child.stderr) prefixLines(child.stderr, `[rank ${rank}] `);
    children.push(child);
    exits.push(
      new Promise((resolve) => {
        child.on('error', (err) => {
          process.stderr.write(`[rank ${rank}] cannot start: ${err.message}\n`);
          resolve(1);
        });
        child.on('exit', (code, signal) => {
          const status = code ?? (signal ? signalExitCode(signal) : 1);
          if (status !== 0 && firstFailure === undefined) {
            firstFailure = status;
            process.stderr.write(`rank ${rank} exited with status ${status}: stopping the others\n`);
            killTimer = setTimeout(() => killAll('SIGKILL'), graceMs);
          }
          resolve(status);
        });
      }),
    );
  }
  const forward = (sig: NodeJS.Signals): void => killAll(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const cleanup = (): void => killAll('SIGKILL');
  process.on('exit', cleanup);
  try {
    const statuses = await Promise.all(exits);
    return firstFailure ?? statuses.find((s) => s !== 0) ?? 0;
  } finally {
    if (killTimer) clearTimeout(killTimer);
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    process.off('exit', cleanup);
  }
}

/** argv without `--nproc N` / `--nproc=N`. */
export function withoutNproc(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--nproc') {
      i++;
      continue;
    }
    if (a.startsWith('--nproc=')) continue;
    out.push(a);
  }
  return out;
}
