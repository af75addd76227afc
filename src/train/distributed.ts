/**
 * What a training run does differently on one rank of a data-parallel job: the group, the shards, the metrics every
 * rank must agree on, and the start-up check that the ranks train the same thing. train.ts asks it; with one
 * process none of it is used.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import type { TrainConfig } from '../config/index.js';
import type { DataLoader, Shard } from '../data/loader.js';
import type { SplitName } from '../data/split.js';
import { ProcessGroup, type AttachOptions, type ProcessGroupOptions } from '../dist/ProcessGroup.js';
import { distributedEnv } from '../dist/env.js';
import { DistributedError } from '../errors.js';
import type { NativeStepResult } from '../binding/types.js';
import type { TorchModel } from '../torch/TorchModel.js';
import type { Trainer, TripletBatch } from '../torch/Trainer.js';
import { splitEvaluation, type SplitEvalOptions, type SplitEvaluation } from './evaluate.js';

/** Data-parallel options of train(). Unset fields come from the launcher's environment (torchrun's variables). */
export interface DistributedOptions extends ProcessGroupOptions, AttachOptions {}

/** Longest message a rank can send in the start-up check. */
const MESSAGE_BYTES = 512;

export class DistributedRun {
  readonly group: ProcessGroup;
  /** The gradient buckets' sizes (part of what the ranks must agree on). */
  readonly buckets: AttachOptions;
  #stepSeconds = 0;

  private constructor(group: ProcessGroup, buckets: AttachOptions) {
    this.group = group;
    this.buckets = buckets;
  }

  /** True when this process is one rank of several (WORLD_SIZE set, or options.worldSize > 1): what join() joins. */
  static wanted(options: DistributedOptions | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
    return distributedEnv(env) !== null || (options?.worldSize ?? 1) > 1;
  }

  /**
   * Joins the group when this process is one rank of several (WORLD_SIZE set, or options.worldSize > 1); null for
   * a process on its own. Rejects with DistributedError when the group cannot be formed within the timeout.
   */
  static async join(
    options: DistributedOptions | undefined,
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<DistributedRun | null> {
    if (!DistributedRun.wanted(options, env)) return null;
    const buckets: AttachOptions = {};
    if (options?.bucketBytes !== undefined) buckets.bucketBytes = options.bucketBytes;
    if (options?.firstBucketBytes !== undefined) buckets.firstBucketBytes = options.firstBucketBytes;
    return new DistributedRun(await ProcessGroup.init(options ?? {}, env), buckets);
  }

  get rank(): number {
    return this.group.rank;
  }

  get worldSize(): number {
    return this.group.worldSize;
  }

  /** Rank 0 alone writes the run folder, checkpoints, plots and MLflow. */
  get isRoot(): boolean {
    return this.group.rank === 0;
  }

  get shard(): Shard {
    return { rank: this.group.rank, count: this.group.worldSize };
  }

  /**
   * Refuses to start when the ranks would train different things: every rank compares its `facts` (config, data,
   * model) with rank 0's, and all of them fail together with a DistributedError that names the differences.
   */
  async checkAgreement(facts: Record<string, unknown>): Promise<void> {
    const mine = JSON.stringify(facts);
    const encoded = new TextEncoder().encode(mine);
    const length = await this.group.broadcast(new Float32Array([encoded.length]), 0);
    const theirs = await this.group.broadcast(
      this.isRoot ? Float32Array.from(encoded) : new Float32Array(length[0] ?? 0),
      0,
    );
    const rootFacts = JSON.parse(new TextDecoder().decode(Uint8Array.from(theirs))) as Record<string, unknown>;
    const differences = Object.keys({ ...rootFacts, ...facts })
      .filter((k) => JSON.stringify(rootFacts[k]) !== JSON.stringify(facts[k]))
      .map((k) => `${k} is ${JSON.stringify(facts[k])} here but ${JSON.stringify(rootFacts[k])} on rank 0`);
    // Every rank's message in its own slot: after the sum each rank knows all of them.
    const slots = new Float32Array(this.worldSize * MESSAGE_BYTES);
    const message = new TextEncoder().encode(differences.join('; ')).subarray(0, MESSAGE_BYTES);
    slots.set(message, this.rank * MESSAGE_BYTES);
    const all = await this.group.allReduce(slots, 'sum');
    const problems: string[] = [];
    for (let r = 0; r < this.worldSize; r++) {
      const bytes = Uint8Array.from(all.subarray(r * MESSAGE_BYTES, (r + 1) * MESSAGE_BYTES)).filter((b) => b !== 0);
      if (bytes.length) problems.push(`rank ${r}: ${new TextDecoder().decode(bytes)}`);
    }
    if (problems.length) {
      throw new DistributedError(`the ranks do not train the same thing, refusing to start: ${problems.join(' | ')}`);
    }
  }

  /** Makes the trainer data-parallel (rank 0's weights to every rank, gradients averaged each step). */
  async attach(trainer: Trainer): Promise<number[]> {
    return this.group.attach(trainer, this.buckets);
  }

  /** One step in the group's order of collectives (the step averages gradients). */
  step(trainer: Trainer, batch: TripletBatch): Promise<NativeStepResult> {
    return this.group.exclusive(async () => {
      const started = performance.now();
      try {
        return await trainer.step(batch);
      } finally {
        this.#stepSeconds += (performance.now() - started) / 1000;
      }
    });
  }

  /**
   * This rank's training steps so far: their time, the part of it spent averaging gradients (packing and starting
   * the all-reduces during backward, then waiting for what is still travelling, the slowest rank included), the
   * bytes it sent per step, and how many buckets started during backward (overlapping it) or were already done
   * when it returned.
   */
  communication(): {
    steps: number;
    stepSeconds: number;
    syncSeconds: number;
    syncInBackwardSeconds: number;
    share: number;
    bytesPerStep: number;
    buckets: number;
    bucketsPerStep: number;
    bucketsInBackward: number;
    bucketsDoneInBackward: number;
  } {
    const s = this.group.syncStats();
    const perStep = (n: number) => (s.steps > 0 ? n / s.steps : 0);
    return {
      steps: s.steps,
      stepSeconds: this.#stepSeconds,
      syncSeconds: s.seconds,
      syncInBackwardSeconds: s.inBackwardSeconds,
      share: this.#stepSeconds > 0 ? s.seconds / this.#stepSeconds : 0,
      bytesPerStep: perStep(s.bytes),
      buckets: s.buckets,
      bucketsPerStep: perStep(s.buckets),
      bucketsInBackward: s.bucketsInBackward,
      bucketsDoneInBackward: s.bucketsDoneInBackward,
    };
  }

  /** Element-wise sums over the ranks (train metrics, images seen). */
  async sum(values: number[]): Promise<number[]> {
    return [...(await this.group.allReduce(Float32Array.from(values), 'sum'))];
  }

  /** True on every rank when any rank wants to stop (Ctrl-C reaches ranks at different steps). */
  async anyStop(local: boolean): Promise<boolean> {
    const [flag] = await this.group.allReduce(new Float32Array([local ? 1 : 0]), 'max');
    return (flag ?? 0) > 0;
  }

  /**
   * Evaluates a split with each rank forwarding its share of the batches; the logits and embeddings are summed into
   * the whole split's (each rank fills its own rows), so every rank computes exactly the single-process metrics.
   */
  async evaluate(
    model: TorchModel,
    loader: DataLoader,
    split: SplitName,
    options: Omit<SplitEvalOptions, 'batchSize'>,
  ): Promise<SplitEvaluation> {
    await model.setTraining(false);
    const items = loader.split[split];
    const n = items.length;
    const c = options.numClasses;
    const rows: { offset: number; logits: Float32Array; embedding: Float32Array }[] = [];
    let dim = 0;
    const started = performance.now();
    for await (const batch of loader.evaluate(split, {
      shard: this.shard,
      ...(options.signal ? { signal: options.signal } : {}),
    })) {
      const out = await model.forward(batch.images, batch.shape);
      if (out.numClasses !== c) {
        throw new RangeError(`the model has ${out.numClasses} classes but the data has ${c}`);
      }
      dim = out.embeddingSize;
      rows.push({ offset: batch.index * loader.batchSize, logits: out.logits, embedding: out.embedding });
    }
    const seconds = (performance.now() - started) / 1000;
    // A rank without a batch (fewer batches than ranks) learns the embedding size from the others.
    dim = (await this.group.allReduce(new Float32Array([dim]), 'max'))[0] ?? 0;
    const packed = new Float32Array(n * (c + dim));
    for (const r of rows) {
      packed.set(r.logits, r.offset * c);
      packed.set(r.embedding, n * c + r.offset * dim);
    }
    const all = await this.group.allReduce(packed, 'sum');
    const logits = all.subarray(0, n * c);
    const embedding = all.subarray(n * c);
    const labels = Int32Array.from(items, (it) => it.label);
    const imagesPerSecond =
      seconds > 0 ? (rows.reduce((k, r) => k + r.logits.length / c, 0) * this.worldSize) / seconds : 0;
    return splitEvaluation(
      logits,
      embedding,
      labels,
      items.map((it) => it.path),
      options,
      imagesPerSecond,
    );
  }

  async destroy(): Promise<void> {
    await this.group.destroy();
  }
}

/** A short sha256 of bytes, for the start-up check. */
function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/**
 * What every rank must share to train one model: the configuration (but for what may differ per machine: progress
 * output, threads, the runs folder), the split, the model's size, the model file given in the config, and where a
 * resumed run goes on.
 */
export async function agreementFacts(
  config: TrainConfig,
  loader: DataLoader,
  model: TorchModel,
  resumed: { epoch: number; batch: number; globalStep: number } | undefined,
  modelFile: string | undefined,
): Promise<Record<string, unknown>> {
  const { progress: _p, threads: _t, runs_dir: _r, ...trainer } = config.trainer;
  const facts: Record<string, unknown> = {};
  for (const [section, value] of Object.entries({ ...config, trainer })) {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [key, v] of Object.entries(value as Record<string, unknown>)) facts[`${section}.${key}`] = v;
    } else {
      facts[section] = value;
    }
  }
  const split = loader.split;
  const items = (name: SplitName) => split[name].map((it) => `${it.path}:${it.label}`).join('\n');
  facts.split = digest(new TextEncoder().encode(['train', 'val', 'test'].map((n) => items(n as SplitName)).join('|')));
  facts['split.images'] = [split.train.length, split.val.length, split.test.length];
  facts['model.parameters'] = model.info.parameterCount;
  if (modelFile) facts['model.file'] = digest(await readFile(modelFile));
  if (resumed) facts.resume = { epoch: resumed.epoch, batch: resumed.batch, globalStep: resumed.globalStep };
  return facts;
}
