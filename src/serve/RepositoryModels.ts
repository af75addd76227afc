import { Engine, type EngineInfo, type EngineLoadOptions } from '../engine/Engine.js';
import type { ServeMetrics } from './metrics.js';
import type { ResolvedServeOptions } from './options.js';
import { Predictor } from './Predictor.js';
import type { ModelConfig } from './triton/config.js';
import { scanRepository, type RepositoryModel, type RepositoryVersion } from './triton/repository.js';
import type { ModelLookup, ServedModel } from './v2/model.js';

type EntryState = 'loading' | 'ready' | 'failed' | 'unloading';

interface Entry {
  name: string;
  version: string;
  fingerprint: string;
  config: ModelConfig;
  state: EntryState;
  error?: string;
  engine?: Engine;
  predictor?: Predictor;
}

/** Options of RepositoryModels. */
export interface RepositoryModelsOptions {
  /** The repository folder. */
  repository: string;
  /** The server's limits; each model's batching comes from its config.pbtxt. */
  serve: ResolvedServeOptions;
  metrics: ServeMetrics;
  /** Engine options every model starts from (backend, device, threads). Defaults to {}. */
  engine?: EngineLoadOptions;
  /** Lines for the log. Defaults to none. */
  onLog?: (line: string) => void;
}

const byVersionDesc = (a: { version: string }, b: { version: string }): number => Number(b.version) - Number(a.version);

/**
 * The models and versions of a Triton / KServe model repository, each with its own engine and batcher (max_batch_size,
 * dynamic_batching's delay and instance_group's count from its config.pbtxt). poll() reads the repository again and
 * loads what was added or changed (the new one takes requests once warmed up, then the old one is unloaded) and
 * unloads what was removed, after its queued requests are answered. Models that stay are never interrupted.
 */
export class RepositoryModels implements ModelLookup {
  readonly #options: RepositoryModelsOptions;
  /** name -> version -> entry: what lookups see (loading, ready or failed). */
  readonly #entries = new Map<string, Map<string, Entry>>();
  /** What versions() and names answer, rebuilt only when #entries changes (requests read them on every call). */
  readonly #lookup = new Map<string, readonly ServedModel[]>();
  #sortedNames: readonly string[] | undefined;
  #polling: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Ensemble name -> the served model that answers it. */
  #aliases = new Map<string, string>();
  /** Skipped entries already logged (each is logged once, until it changes). */
  #skipped = new Set<string>();

  constructor(options: RepositoryModelsOptions) {
    this.#options = options;
  }

  /**
   * Every version of a model that is loading, ready or failed, newest first. An ensemble of preprocessing and a
   * served model answers as that model's newest version, under the ensemble's name, version 1.
   */
  versions(name: string): readonly ServedModel[] {
    const target = this.#aliases.get(name);
    if (target !== undefined) {
      const newest = this.versions(target)[0];
      return newest ? [{ ...newest, name, version: '1' }] : [];
    }
    let served = this.#lookup.get(name);
    if (served === undefined) {
      const versions = this.#entries.get(name);
      if (!versions) return [];
      served = [...versions.values()].sort(byVersionDesc).map((e) => this.#served(e));
      this.#lookup.set(name, served);
    }
    return served;
  }

  /** Model names, sorted. */
  get names(): readonly string[] {
    this.#sortedNames ??= [...this.#entries.keys()].sort();
    return this.#sortedNames;
  }

  /** Forgets the lookups built from #entries; called on every change to it. */
  #changed(): void {
    this.#lookup.clear();
    this.#sortedNames = undefined;
  }

  /** The model the server's own routes (/predict, /invocations) use: the first name, its newest ready version. */
  defaultModel(): ServedModel | undefined {
    for (const name of this.names) {
      const ready = this.versions(name).find((m) => m.predictor() !== undefined);
      if (ready) return ready;
    }
    return undefined;
  }

  /** Reads the repository and loads it; then polls it every `pollMs` (0: never). */
  async start(pollMs: number): Promise<void> {
    await this.poll();
    if (pollMs > 0 && !this.#closed) {
      this.#timer = setInterval(() => void this.poll(), pollMs);
      this.#timer.unref();
    }
  }

  /** One pass over the repository (a pass already running is waited for instead). */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  /** Stops polling and unloads every model once its requests are answered. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#polling;
    const all = [...this.#entries.values()].flatMap((v) => [...v.values()]);
    this.#entries.clear();
    this.#changed();
    await Promise.all(all.map((e) => this.#unload(e)));
  }

  async #poll(): Promise<void> {
    if (this.#closed) return;
    const log = this.#options.onLog ?? (() => undefined);
    let scan;
    try {
      scan = await scanRepository(this.#options.repository);
    } catch (err) {
      log(`model repository: ${(err as Error).message}`);
      return;
    }
    const skipped = new Set(scan.skipped.map((s) => `${s.name}: ${s.reason}`));
    for (const line of skipped) if (!this.#skipped.has(line)) log(`model repository: skipping ${line}`);
    this.#skipped = skipped;
    for (const a of scan.aliases) {
      if (this.#aliases.get(a.name) !== a.target)
        log(`model repository: ${a.name} answers as ${a.target} (encoded images in)`);
    }
    this.#aliases = new Map(scan.aliases.map((a) => [a.name, a.target]));
    const wanted = new Map(scan.models.map((m) => [m.name, m]));
    // Removed models and versions: out of the lookups at once, unloaded once their queues are empty.
    for (const [name, versions] of this.#entries) {
      for (const [version, entry] of versions) {
        if (!wanted.get(name)?.versions.some((v) => v.version === version)) {
          versions.delete(version);
          this.#changed();
          log(`model repository: unloading ${name} version ${version}`);
          void this.#unload(entry);
        }
      }
      if (versions.size === 0) {
        this.#entries.delete(name);
        this.#changed();
      }
    }
    // New and changed versions, one at a time (each load takes the cores while it warms up).
    for (const model of scan.models) {
      for (const v of model.versions) {
        if (this.#closed) return;
        const current = this.#entries.get(model.name)?.get(v.version);
        if (current?.fingerprint === v.fingerprint) continue;
        await this.#load(model, v, current);
      }
    }
  }

  async #load(model: RepositoryModel, v: RepositoryVersion, replaces: Entry | undefined): Promise<void> {
    const log = this.#options.onLog ?? (() => undefined);
    const entry: Entry = {
      name: model.name,
      version: v.version,
      fingerprint: v.fingerprint,
      config: model.config,
      state: 'loading',
    };
    // A first load is visible (not ready) at once; a reload stays hidden until it can take the old one's place.
    if (!replaces || replaces.state === 'failed') this.#place(entry);
    const labels = { model: model.name, version: v.version };
    const metrics = this.#options.metrics;
    metrics.modelReady.set(labels, 0);
    try {
      const batching = batchingOf(model.config, this.#options.serve);
      const device = kindOf(model.config);
      const engine = await Engine.load(v.file, {
        ...this.#options.engine,
        batchSize: batching.maxBatch,
        workers: batching.concurrency,
        ...(device ? { device } : {}),
      });
      entry.engine = engine;
      if (this.#closed) throw new Error('the server is closing');
      const predictor = new Predictor(engine, { ...this.#options.serve, ...batching }, metrics, labels);
      entry.predictor = predictor;
      await predictor.warmUp();
      if (this.#closed) throw new Error('the server is closing');
      entry.state = 'ready';
      this.#place(entry);
      metrics.modelQueues.set(`${model.name}/${v.version}`, { ...labels, depth: () => predictor.queueDepth });
      metrics.modelReady.set(labels, 1);
      log(
        `model repository: ${model.name} version ${v.version} ready (${engine.info.backend}, max batch ` +
          `${batching.maxBatch}, max wait ${batching.maxWaitMs} ms, ${batching.concurrency} instance(s))`,
      );
      if (replaces) void this.#unload(replaces);
    } catch (err) {
      entry.state = 'failed';
      entry.error = (err as Error).message;
      log(`model repository: ${model.name} version ${v.version} failed to load: ${entry.error}`);
      if (!replaces || replaces.state === 'failed') this.#place(entry);
      await entry.predictor?.close();
      await entry.engine?.dispose();
      entry.engine = undefined;
      entry.predictor = undefined;
    }
  }

  #place(entry: Entry): void {
    if (this.#closed) return;
    let versions = this.#entries.get(entry.name);
    if (!versions) this.#entries.set(entry.name, (versions = new Map()));
    versions.set(entry.version, entry);
    this.#changed();
  }

  async #unload(entry: Entry): Promise<void> {
    const labels = { model: entry.name, version: entry.version };
    const metrics = this.#options.metrics;
    if (this.#entries.get(entry.name)?.get(entry.version) === undefined) {
      metrics.modelReady.remove(labels);
      metrics.modelQueues.delete(`${entry.name}/${entry.version}`);
    }
    entry.state = 'unloading';
    await entry.predictor?.close();
    await entry.engine?.dispose();
  }

  #served(entry: Entry): ServedModel {
    return {
      name: entry.name,
      version: entry.version,
      predictor: () => (entry.state === 'ready' ? entry.predictor : undefined),
      info: (): EngineInfo | undefined => entry.engine?.info,
      config: () => entry.config as unknown as Record<string, unknown>,
      notReadyReason: () =>
        entry.state === 'failed' ? `it failed to load: ${entry.error ?? 'unknown error'}` : entry.state,
    };
  }
}

/** A model's batcher settings from its config: max_batch_size, the queue delay and the instance count. */
function batchingOf(
  config: ModelConfig,
  serve: ResolvedServeOptions,
): { maxBatch: number; maxWaitMs: number; concurrency: number } {
  const maxBatch = Math.min(1024, Math.max(1, config.max_batch_size ?? 0));
  const delayUs = config.dynamic_batching?.max_queue_delay_microseconds;
  const count = (config.instance_group ?? []).reduce((a, g) => a + (g.count ?? 1), 0);
  return {
    maxBatch,
    // Without dynamic_batching, Triton runs each request as it comes: no wait.
    maxWaitMs: config.dynamic_batching ? Math.min(10_000, Math.round((delayUs ?? 0) / 1000)) : 0,
    concurrency: Math.min(64, count > 0 ? count : serve.concurrency),
  };
}

function kindOf(config: ModelConfig): string | undefined {
  const kinds = new Set((config.instance_group ?? []).map((g) => g.kind ?? 'KIND_AUTO'));
  if (kinds.size !== 1) return undefined;
  return kinds.has('KIND_CPU') ? 'cpu' : kinds.has('KIND_GPU') ? 'cuda' : undefined;
}
