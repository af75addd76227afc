import { DisposedError } from '../errors.js';

/** Options of a Batcher. */
export interface BatcherOptions {
  /** Most items in one call of `run`. */
  maxBatch: number;
  /** Longest time the oldest queued item waits for others while a run slot is free. */
  maxWaitMs: number;
  /** Calls of `run` in flight at once. */
  concurrency: number;
  /** Items queued (not yet running) before `submit` refuses more with QueueFullError. */
  maxQueue: number;
  /**
   * How many submissions are on their way (requests still being received or decoded). While it is 0 nothing is
   * gained by waiting, so a free slot runs what is queued at once. Defaults to "unknown": always wait.
   */
  incoming?: () => number;
  /** Called after every run with its size and timings (for metrics). */
  onBatch?: (info: { size: number; runMs: number; waitMs: number[] }) => void;
}

/** `submit` was refused: the queue is full. */
export class QueueFullError extends Error {
  readonly code = 'ERR_OVERLOADED';
  constructor(queued: number) {
    super(`the server is overloaded (${queued} images waiting for the model); retry later`);
    this.name = 'QueueFullError';
  }
}

interface Item<T, R> {
  value: T;
  enqueued: number;
  resolve: (result: R) => void;
  reject: (err: Error) => void;
}

/**
 * Dynamic batching: items submitted by concurrent callers are grouped into one call of `run`, up to `maxBatch`
 * items, waiting at most `maxWaitMs` for the batch to fill. At most `concurrency` runs are in flight; what arrives
 * meanwhile is queued and taken, up to `maxBatch` at a time, as soon as a run finishes.
 */
export class Batcher<T, R> {
  readonly #run: (values: T[]) => Promise<R[]>;
  readonly #options: BatcherOptions;
  readonly #queue: Item<T, R>[] = [];
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #idleWaiters: (() => void)[] = [];

  constructor(run: (values: T[]) => Promise<R[]>, options: BatcherOptions) {
    this.#run = run;
    this.#options = options;
  }

  /** Items waiting for a run. */
  get depth(): number {
    return this.#queue.length;
  }

  /** Runs in flight. */
  get running(): number {
    return this.#inFlight;
  }

  /**
   * Queues items and resolves with their results in order, once every one of them has run. Rejects with the run's
   * error, QueueFullError when the queue is full, DisposedError after close().
   */
  submit(values: readonly T[]): Promise<R[]> {
    if (this.#closed) return Promise.reject(new DisposedError('this batcher'));
    if (values.length === 0) return Promise.resolve([]);
    if (this.#queue.length + values.length > this.#options.maxQueue) {
      return Promise.reject(new QueueFullError(this.#queue.length));
    }
    const now = performance.now();
    const promises = values.map(
      (value) =>
        new Promise<R>((resolve, reject) => {
          this.#queue.push({ value, enqueued: now, resolve, reject });
        }),
    );
    this.poke();
    return Promise.all(promises);
  }

  /**
   * Runs `call` for `size` items as a run of its own when nothing is queued and a run slot is free (it counts
   * against `concurrency`, close() waits for it, onBatch sees it); undefined, having run nothing, otherwise. For a
   * caller that would submit into an idle batcher and can do the whole work itself in fewer steps.
   */
  runAlone<U>(size: number, call: () => Promise<U>): Promise<U> | undefined {
    if (this.#closed) return Promise.reject(new DisposedError('this batcher'));
    if (this.#queue.length > 0 || this.#inFlight >= this.#options.concurrency) return undefined;
    this.#inFlight++;
    const started = performance.now();
    return call().finally(() => {
      this.#inFlight--;
      this.#options.onBatch?.({
        size,
        runMs: performance.now() - started,
        waitMs: Array.from({ length: size }, () => 0),
      });
      this.#settled();
    });
  }

  /** Re-checks whether the queue should run now (call when `incoming` drops). */
  poke(): void {
    if (this.#queue.length === 0 || this.#inFlight >= this.#options.concurrency) return;
    const waited = performance.now() - (this.#queue[0] as Item<T, R>).enqueued;
    const nobodyComing = this.#options.incoming !== undefined && this.#options.incoming() === 0;
    if (this.#queue.length >= this.#options.maxBatch || waited >= this.#options.maxWaitMs || nobodyComing) {
      this.#dispatch();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.poke();
      }, this.#options.maxWaitMs - waited);
    }
  }

  /** Refuses new items; resolves once every queued and running item has finished. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #dispatch(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    while (this.#queue.length > 0 && this.#inFlight < this.#options.concurrency) {
      const batch = this.#queue.splice(0, this.#options.maxBatch);
      this.#inFlight++;
      void this.#execute(batch);
    }
  }

  async #execute(batch: Item<T, R>[]): Promise<void> {
    const started = performance.now();
    try {
      const results = await this.#run(batch.map((item) => item.value));
      if (results.length !== batch.length) {
        throw new Error(`a batch of ${batch.length} items gave ${results.length} results`);
      }
      batch.forEach((item, i) => item.resolve(results[i] as R));
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      for (const item of batch) item.reject(error);
    } finally {
      this.#inFlight--;
      this.#options.onBatch?.({
        size: batch.length,
        runMs: performance.now() - started,
        waitMs: batch.map((item) => started - item.enqueued),
      });
      this.#settled();
    }
  }

  /** After a run: the queue goes on, or whoever waits for idle hears of it. */
  #settled(): void {
    if (this.#queue.length > 0) this.poke();
    else if (this.#inFlight === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
