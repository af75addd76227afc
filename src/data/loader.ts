import path from 'node:path';

import { CancelledError } from '../errors.js';
import { augmentAsync, drawAugmentParams } from './augment.js';
import { DecodedCache } from './cache.js';
import { dataSectionOf, type DataConfig } from './config.js';
import {
  DEFAULT_AUGMENT,
  DEFAULT_LOADER_OPTIONS,
  indexOptionsOf,
  loaderOptionsOf,
  splitOptionsOf,
  type AugmentOptions,
  type DataLoaderOptions,
} from './options.js';
import type { DataSection } from './section.js';
import { Semaphore } from '../util/fs.js';
import { indexDataset } from './indexer.js';
import { decodeResized, IMAGENET_MEAN, IMAGENET_STD, normalizeInto } from './preprocess.js';
import { Rng } from './rng.js';
import { loadOrCreateSplit, type SplitItem, type SplitManifest, type SplitName } from './split.js';
import { sampleTriplets, type Triplet } from './triplets.js';

/** [batch, channels, height, width]. */
export type BatchShape = [number, number, number, number];

/** What the native `trainer.step(query, positive, negative, shape, labels)` consumes. */
export interface TripletBatch {
  query: Float32Array;
  positive: Float32Array;
  negative: Float32Array;
  shape: BatchShape;
  /** Class of each query (positives share it). */
  labels: Int32Array;
  /** Query paths, relative to the data root. */
  paths: string[];
  /** Batch number within the epoch. */
  index: number;
}

/** An evaluation batch over one split, never augmented. */
export interface EvalBatch {
  images: Float32Array;
  shape: BatchShape;
  labels: Int32Array;
  paths: string[];
  index: number;
}

export type { DataLoaderOptions };

/** Options of one iteration. */
export interface IterateOptions {
  /** Stops the iteration: the pending `next()` rejects with CancelledError. Defaults to none. */
  signal?: AbortSignal;
  /**
   * First batch to yield (resume mid-epoch): earlier batches are skipped without decoding, and the rest are the
   * same batches, augmentation included, as in an uninterrupted epoch. Defaults to 0.
   */
  startBatch?: number;
  /**
   * Data-parallel: this rank's share of the batches. Training: the rank's j-th batch is the epoch's batch
   * j * count + rank (batches of batchSize triplets; past the end it wraps to the epoch's start, as PyTorch's
   * DistributedSampler pads, so every rank takes the same number of steps and the union is the whole epoch);
   * `startBatch` and the yielded `index` count the rank's own batches. Evaluation: batches rank, rank + count, ...
   * (`index` stays the split's batch number). Defaults to the whole epoch.
   */
  shard?: Shard;
}

/** One rank of `count` (data-parallel training). */
export interface Shard {
  rank: number;
  count: number;
  /** Training: the epoch's first `batches` batches are shared out (limit_train_batches). Defaults to all. */
  batches?: number;
}

function checkShard(shard: Shard | undefined): Shard {
  if (!shard) return { rank: 0, count: 1 };
  if (!Number.isInteger(shard.count) || shard.count < 1 || !Number.isInteger(shard.rank) || shard.rank < 0) {
    throw new RangeError(
      `Expected integers count >= 1 and rank >= 0 for \`shard\` but received ${JSON.stringify(shard)}`,
    );
  }
  if (shard.rank >= shard.count) {
    throw new RangeError(`Expected shard.rank below shard.count (${shard.count}) but received ${shard.rank}`);
  }
  return shard;
}

/**
 * Turns a split into batches: triplets for training (seeded per epoch, augmented), plain batches for evaluation.
 * Decoded images are cached (bounded), several images are decoded at once, and `prefetch` batches are prepared while
 * the consumer works on the current one (e.g. while the native training step runs on its worker thread).
 */
export class DataLoader {
  readonly root: string;
  readonly split: SplitManifest;
  readonly batchSize: number;
  readonly imageSize: number;
  /** Size of evaluation batches (evaluate()). */
  readonly evalImageSize: number;
  readonly prefetch: number;
  readonly cache: DecodedCache;
  readonly #opts: Required<Omit<DataLoaderOptions, 'root' | 'split' | 'augment'>> & { augment: AugmentOptions | false };
  readonly #decodes: Semaphore;
  #decodeCount = 0;

  constructor(options: DataLoaderOptions) {
    const int = (name: string, v: number, min: number): number => {
      if (!Number.isInteger(v) || v < min) {
        throw new RangeError(
          `Expected integer >= ${min} for \`${name}\` but received ${String(v)} of type ${typeof v}`,
        );
      }
      return v;
    };
    this.root = options.root;
    this.split = options.split;
    const d = DEFAULT_LOADER_OPTIONS;
    this.batchSize = int('batchSize', options.batchSize ?? d.batchSize, 1);
    this.imageSize = int('imageSize', options.imageSize ?? d.imageSize, 8);
    this.evalImageSize = int('evalImageSize', options.evalImageSize ?? this.imageSize, 8);
    this.prefetch = int('prefetch', options.prefetch ?? d.prefetch, 0);
    this.#opts = {
      batchSize: this.batchSize,
      imageSize: this.imageSize,
      evalImageSize: this.evalImageSize,
      prefetch: this.prefetch,
      resize: options.resize ?? d.resize,
      maxPixels: options.maxPixels ?? d.maxPixels,
      maxFileBytes: int('maxFileBytes', options.maxFileBytes ?? d.maxFileBytes, 1),
      concurrency: int('concurrency', options.concurrency ?? d.concurrency, 1),
      cacheMiB: options.cacheMiB ?? d.cacheMiB,
      augment: options.augment === false ? false : { ...DEFAULT_AUGMENT, ...options.augment },
      balanced: options.balanced ?? d.balanced,
      seed: options.seed ?? options.split.seed,
      dropLast: options.dropLast ?? false,
      mean: options.mean ?? IMAGENET_MEAN,
      std: options.std ?? IMAGENET_STD,
    };
    this.cache = new DecodedCache({ maxBytes: this.#opts.cacheMiB * 1024 * 1024 });
    this.#decodes = new Semaphore(this.#opts.concurrency);
  }

  /**
   * Indexes `root`, loads (or creates and writes) the split in `splitFile`, and returns a loader over it, configured
   * by the `data` section (snake_case, as parseDataSection gives it; a camelCase DataConfig is converted, with a
   * DeprecationWarning). `options.batchSize` overrides `data.batch_size`.
   */
  static async fromConfig(
    root: string,
    config: DataSection | DataConfig,
    options: { splitFile: string; batchSize?: number; signal?: AbortSignal; dropConflicts?: boolean },
  ): Promise<DataLoader> {
    const data = dataSectionOf(config, 'DataLoader.fromConfig');
    const index = await indexDataset(root, {
      ...indexOptionsOf(data),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const split = await loadOrCreateSplit(options.splitFile, index, {
      ...splitOptionsOf(data),
      dropConflicts: options.dropConflicts ?? false,
    });
    return new DataLoader({
      root,
      split,
      ...loaderOptionsOf(data),
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    });
  }

  /** Photos decoded so far (cache misses that reached sharp). */
  get decodeCount(): number {
    return this.#decodeCount;
  }

  /** Training batches per epoch. */
  get batchesPerEpoch(): number {
    const n = this.split.train.length;
    return this.#opts.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Training batches per epoch of one of `ranks` data-parallel ranks (the same for every rank). */
  batchesPerRank(ranks: number, batches = this.batchesPerEpoch): number {
    return Math.ceil(batches / ranks);
  }

  /**
   * The triplets of one epoch (indices into split.train), as `epoch(n)` will use them; another `stream` name gives
   * another seeded set (the head phase draws from 'head').
   */
  triplets(epoch: number, stream = 'triplets'): Triplet[] {
    return sampleTriplets(this.split.train, { seed: this.#opts.seed, epoch, balanced: this.#opts.balanced, stream });
  }

  /** One training epoch of triplet batches, seeded by (seed, epoch): the same epoch number gives the same batches. */
  epoch(epoch: number, options: IterateOptions = {}): AsyncGenerator<TripletBatch> {
    const triplets = this.triplets(epoch);
    const shard = checkShard(options.shard);
    const total = Math.min(shard.batches ?? Infinity, this.batchesPerEpoch);
    const count = shard.count === 1 ? this.batchesPerEpoch : this.batchesPerRank(shard.count, total);
    const train = this.split.train;
    return this.#pipeline(count, options, async (local, signal) => {
      const b = shard.count === 1 ? local : (local * shard.count + shard.rank) % total;
      const chunk = triplets.slice(b * this.batchSize, (b + 1) * this.batchSize);
      const per = 3 * this.imageSize * this.imageSize;
      const tensors = [0, 1, 2].map(() => new Float32Array(chunk.length * per));
      const roles = ['query', 'positive', 'negative'] as const;
      await Promise.all(
        chunk.flatMap((t, i) =>
          roles.map((role, r) =>
            this.#load(train[t[role]] as SplitItem, this.imageSize, tensors[r] as Float32Array, i * per, signal, [
              epoch,
              b,
              i,
              r,
            ]),
          ),
        ),
      );
      return {
        query: tensors[0] as Float32Array,
        positive: tensors[1] as Float32Array,
        negative: tensors[2] as Float32Array,
        shape: [chunk.length, 3, this.imageSize, this.imageSize],
        labels: Int32Array.from(chunk, (t) => (train[t.query] as SplitItem).label),
        paths: chunk.map((t) => (train[t.query] as SplitItem).path),
        index: local,
      };
    });
  }

  /**
   * Evaluation batches over a split, in manifest order, without augmentation, at `evalImageSize` (or
   * `options.imageSize`: the head phase takes the training size).
   */
  evaluate(
    name: SplitName,
    options: IterateOptions & { batchSize?: number; imageSize?: number } = {},
  ): AsyncGenerator<EvalBatch> {
    const items = this.split[name];
    const size = options.batchSize ?? this.batchSize;
    const side = options.imageSize ?? this.evalImageSize;
    const shard = checkShard(options.shard);
    const count = Math.ceil((Math.ceil(items.length / size) - shard.rank) / shard.count);
    return this.#pipeline(Math.max(0, count), options, async (local, signal) => {
      const b = local * shard.count + shard.rank;
      const chunk = items.slice(b * size, (b + 1) * size);
      const per = 3 * side * side;
      const images = new Float32Array(chunk.length * per);
      await Promise.all(chunk.map((item, i) => this.#load(item, side, images, i * per, signal, null)));
      return {
        images,
        shape: [chunk.length, 3, side, side],
        labels: Int32Array.from(chunk, (item) => item.label),
        paths: chunk.map((item) => item.path),
        index: b,
      };
    });
  }

  /** Decodes (or takes from the cache) one image and writes it, augmented when `augmentKey` is set, into `out`. */
  async #load(
    item: SplitItem,
    size: number,
    out: Float32Array,
    offset: number,
    signal: AbortSignal,
    augmentKey: number[] | null,
  ) {
    const o = this.#opts;
    const key = `${item.md5}:${size}:${o.resize}`;
    const decode = (): Promise<Uint8Array> =>
      this.#decodes.run(async () => {
        if (signal.aborted) throw new CancelledError();
        this.#decodeCount++;
        return decodeResized(path.join(this.root, item.path), {
          size,
          resize: o.resize,
          maxPixels: o.maxPixels,
          maxFileBytes: o.maxFileBytes,
        });
      });
    const hwc = o.cacheMiB > 0 ? await this.cache.get(key, decode) : await decode();
    if (augmentKey && o.augment && o.augment.enabled) {
      const params = drawAugmentParams(size, new Rng(o.seed, 'augment', ...augmentKey), o.augment);
      await augmentAsync(hwc, size, params, out, offset, o.mean, o.std);
    } else {
      normalizeInto(hwc, out, offset, { mean: o.mean, std: o.std });
    }
  }

  /** Runs `make(b)` for b in [start, count) with up to `prefetch` batches prepared ahead of the one consumed. */
  async *#pipeline<T>(
    count: number,
    options: IterateOptions,
    make: (b: number, signal: AbortSignal) => Promise<T>,
  ): AsyncGenerator<T> {
    const start = options.startBatch ?? 0;
    if (!Number.isInteger(start) || start < 0) {
      throw new RangeError(`Expected integer >= 0 for \`startBatch\` but received ${String(start)}`);
    }
    const outer = options.signal;
    const inner = new AbortController();
    const onAbort = (): void => inner.abort();
    outer?.addEventListener('abort', onAbort, { once: true });
    const stop = aborted(inner.signal);
    stop.catch(() => undefined);
    const queue: Promise<T>[] = [];
    let next = start;
    try {
      for (let b = start; b < count; b++) {
        while (next < count && queue.length < this.prefetch + 1) {
          const job = make(next++, inner.signal);
          job.catch(() => undefined); // awaited below; avoid an unhandled rejection if the consumer stops early
          queue.push(job);
        }
        if (inner.signal.aborted) throw new CancelledError();
        const batch = await Promise.race([queue.shift() as Promise<T>, stop]);
        if (inner.signal.aborted) throw new CancelledError();
        yield batch;
      }
    } finally {
      outer?.removeEventListener('abort', onAbort);
      inner.abort(); // stop batches still in preparation when the consumer breaks early
    }
  }
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(new CancelledError());
    else signal.addEventListener('abort', () => reject(new CancelledError()), { once: true });
  });
}
