/**
 * The measurement loop, as trtexec does it: warm-up by time, then at least `iterations` timed calls and at least
 * `durationMs` of timed wall clock, one call in flight at a time. Each call is timed from the moment it is started
 * to the moment its promise settles (what a caller awaiting it sees, queueing and thread hand-offs included).
 */
import { CancelledError } from '../errors.js';

export interface TimingOptions {
  /** Warm-up time in ms: calls run (untimed) until it has passed; at least one call runs. */
  warmupMs: number;
  /** Fewest timed calls. */
  iterations: number;
  /** Shortest timed wall clock in ms. */
  durationMs: number;
  signal?: AbortSignal;
  /** Called about every `progressEveryMs` during the timed phase with the calls done and the ms elapsed. */
  onProgress?: (done: number, elapsedMs: number) => void;
  /** Defaults to 10000. */
  progressEveryMs?: number;
  /** Called right before the first timed call and right after the last (e.g. to sample CPU counters). */
  onTimedStart?: () => void;
  onTimedEnd?: () => void;
}

export interface TimingResult {
  /** Latency of each timed call, ms, in order. */
  latenciesMs: number[];
  /** Wall clock of the timed phase, ms (first start to last end). */
  wallMs: number;
  warmupIterations: number;
  warmupMs: number;
}

function check(value: number, name: string, min: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new RangeError(`Expected a number of at least ${min} for \`${name}\` but received ${String(value)}`);
  }
}

/** Times `call` (given the 0-based call number, warm-up calls included). Rejects with the call's error. */
export async function timeCalls(call: (i: number) => Promise<unknown>, options: TimingOptions): Promise<TimingResult> {
  check(options.warmupMs, 'warmupMs', 0);
  check(options.iterations, 'iterations', 1);
  check(options.durationMs, 'durationMs', 0);
  const every = options.progressEveryMs ?? 10_000;
  const aborted = (): void => {
    if (options.signal?.aborted) throw new CancelledError('the benchmark was cancelled');
  };
  let i = 0;
  const warmStart = performance.now();
  do {
    aborted();
    await call(i++);
  } while (performance.now() - warmStart < options.warmupMs);
  const warmupIterations = i;
  const warmupMs = performance.now() - warmStart;

  const latenciesMs: number[] = [];
  options.onTimedStart?.();
  const start = performance.now();
  let nextReport = start + every;
  let now = start;
  while (latenciesMs.length < options.iterations || now - start < options.durationMs) {
    aborted();
    const t = performance.now();
    await call(i++);
    now = performance.now();
    latenciesMs.push(now - t);
    if (options.onProgress && now >= nextReport) {
      nextReport = now + every;
      options.onProgress(latenciesMs.length, now - start);
    }
  }
  options.onTimedEnd?.();
  return { latenciesMs, wallMs: now - start, warmupIterations, warmupMs };
}
