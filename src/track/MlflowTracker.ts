/**
 * Logs a run to an MLflow tracking server without ever stopping or slowing training: every call only queues
 * (bounded, in memory); a background loop (MlflowSender) creates the run and sends batches, retrying with backoff.
 * A server that is down costs one warning, not an exception, and `close()` gives up at its deadline.
 */
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  MLFLOW_LIMITS,
  MlflowClient,
  mlflowKey,
  type MlflowMetric,
  type MlflowRunInfo,
  mlflowTag,
  toMlflowParams,
} from './mlflow.js';
import { MlflowQueue, type QueueCounts } from './mlflowQueue.js';
import { MlflowSender } from './MlflowSender.js';
import {
  checkArtifactPath,
  type MetricContext,
  type Params,
  RUN_STATUSES,
  type RunStatus,
  type Tracker,
} from './Tracker.js';

export interface MlflowTrackerOptions {
  /** Server URL (http or https). Defaults to the MLFLOW_TRACKING_URI environment variable. */
  trackingUri?: string;
  /** Experiment name (created when missing). Defaults to MLFLOW_EXPERIMENT_NAME, else 'trt-flowers'. */
  experimentName?: string;
  /** Run name. Defaults to the server's choice. */
  runName?: string;
  /**
   * Continue this existing run (a resumed training run): it is marked RUNNING again and gets the new data. When the
   * server does not know it, a new run is created, with a warning. Defaults to a new run.
   */
  runId?: string;
  /**
   * Tags set when the run is created, over the standard ones MLflow's UI reads (`mlflow.user`,
   * `mlflow.source.name`, `mlflow.source.type` = LOCAL, `mlflow.runName`). Defaults to none.
   */
  tags?: Readonly<Record<string, string>>;
  /**
   * Called once the run is created or found (e.g. to record its id); a promise it returns is awaited before
   * anything is sent to the run. Defaults to none.
   */
  onRun?: (run: MlflowRunInfo) => void | Promise<void>;
  /** Most metric values kept while the server is slow or down; beyond it the oldest are dropped. Defaults to 50000. */
  maxQueuedMetrics?: number;
  /** Time between background flushes. Defaults to 2000 ms. */
  flushIntervalMs?: number;
  /** Per-request timeout. Defaults to 10000 ms. */
  requestTimeoutMs?: number;
  /** Attempts per request. Defaults to 3. */
  attempts?: number;
  /** First retry delay (doubles per retry, and per failed flush round up to 30 s). Defaults to 250 ms. */
  backoffMs?: number;
  /** How long `close()` / `finish()` may take before dropping what is left. Defaults to 15000 ms. */
  closeTimeoutMs?: number;
  /** Where warnings go. Defaults to `process.emitWarning(message, 'MlflowWarning')`. */
  warn?: (message: string) => void;
}

const defaultWarn = (message: string): void => process.emitWarning(message, 'MlflowWarning');

/** The tags MLflow's own clients set on a new run, which its UI shows (user, source, run name). */
export function mlflowStandardTags(runName?: string): Record<string, string> {
  let user: string;
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (some containers): the environment, like Python's getpass
    user = process.env.LOGNAME ?? process.env.USER ?? process.env.USERNAME ?? 'unknown';
  }
  const tags: Record<string, string> = {
    'mlflow.user': user,
    'mlflow.source.name': process.argv[1] ?? process.argv0,
    'mlflow.source.type': 'LOCAL',
  };
  if (runName) tags['mlflow.runName'] = runName;
  return tags;
}

export class MlflowTracker implements Tracker {
  readonly trackingUri: string;
  readonly experimentName: string;
  readonly #closeTimeoutMs: number;
  readonly #warn: (message: string) => void;
  readonly #warned = new Set<string>();
  readonly #queue: MlflowQueue;
  readonly #sender: MlflowSender;
  readonly #abort = new AbortController();
  #closing: Promise<void> | undefined;
  #endStatus: RunStatus = 'FINISHED';

  /** Throws RangeError for a URI that is not http(s); `fromEnv` is the forgiving factory. */
  constructor(options: MlflowTrackerOptions = {}) {
    this.trackingUri = options.trackingUri ?? process.env.MLFLOW_TRACKING_URI ?? '';
    this.experimentName = options.experimentName ?? process.env.MLFLOW_EXPERIMENT_NAME ?? 'trt-flowers';
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 15_000;
    this.#warn = options.warn ?? defaultWarn;
    const backoffMs = options.backoffMs ?? 250;
    const client = new MlflowClient({
      trackingUri: this.trackingUri,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      attempts: options.attempts ?? 3,
      backoffMs,
      signal: this.#abort.signal,
    });
    const max = options.maxQueuedMetrics ?? 50_000;
    this.#queue = new MlflowQueue(max, () =>
      this.#warn(`MLflow: queue full (${max} metric values): dropping the oldest; the total is reported at close`),
    );
    this.#sender = new MlflowSender({
      client,
      queue: this.#queue,
      trackingUri: this.trackingUri,
      experimentName: this.experimentName,
      runName: options.runName,
      runId: options.runId,
      tags: { ...mlflowStandardTags(options.runName), ...options.tags },
      onRun: options.onRun,
      flushIntervalMs: options.flushIntervalMs ?? 2000,
      backoffMs,
      signal: this.#abort.signal,
      warn: this.#warn,
      warnOnce: (key, message) => this.#warnOnce(key, message),
    });
    this.#sender.schedule(0); // create the run now, in the background
  }

  /**
   * A tracker when MLFLOW_TRACKING_URI (or `options.trackingUri`) is set to an http(s) URL; undefined when it is
   * unset, and undefined with a warning when it is another scheme (`file:` stores are not supported).
   */
  static fromEnv(options: MlflowTrackerOptions = {}): MlflowTracker | undefined {
    const uri = options.trackingUri ?? process.env.MLFLOW_TRACKING_URI;
    if (!uri) return undefined;
    if (!/^https?:\/\//i.test(uri)) {
      (options.warn ?? defaultWarn)(
        `MLFLOW_TRACKING_URI=${uri} is not an http(s) server (only the REST API is supported): MLflow disabled`,
      );
      return undefined;
    }
    return new MlflowTracker({ ...options, trackingUri: uri });
  }

  /** The run once the server created it. */
  get run(): MlflowRunInfo | undefined {
    return this.#sender.run;
  }
  /** Metric values dropped because the queue was full. */
  get droppedMetrics(): number {
    return this.#queue.dropped;
  }
  /** Items waiting to be sent. */
  get pending(): QueueCounts {
    return this.#queue.counts;
  }

  async logParams(params: Params): Promise<void> {
    if (this.#refuse('logParams') || typeof params !== 'object' || params === null) return;
    this.#queue.pushParams(toMlflowParams(params));
    this.#sender.schedule(this.#queue.counts.params >= MLFLOW_LIMITS.paramsPerBatch ? 0 : undefined);
  }

  /** Keys are `<split>/<name>` when a split is given. Non-integer steps are skipped with one warning. */
  async logMetrics(
    metrics: Readonly<Record<string, number>>,
    step: number,
    context: MetricContext = {},
  ): Promise<void> {
    if (this.#refuse('logMetrics')) return;
    if (!Number.isSafeInteger(step) || step < 0) {
      this.#warnOnce('step', `MLflow: metrics with step ${String(step)} skipped (expected a non-negative integer)`);
      return;
    }
    const timestamp = context.time ?? Date.now();
    const items: MlflowMetric[] = [];
    for (const [name, value] of Object.entries(metrics)) {
      if (typeof value !== 'number') continue;
      const key = mlflowKey(context.split ? `${context.split}/${name}` : name);
      items.push({ key, value, timestamp, step });
    }
    this.#queue.pushMetrics(items);
    this.#sender.schedule(this.#queue.counts.metrics >= MLFLOW_LIMITS.metricsPerBatch ? 0 : undefined);
  }

  async setTag(key: string, value: string): Promise<void> {
    if (this.#refuse('setTag')) return;
    this.#queue.pushTag(mlflowTag(key, value));
    this.#sender.schedule();
  }

  /**
   * Queues an upload to where the run's artifact_uri points (the server's artifacts proxy, or a local folder); the
   * file is read when it is sent, so keep it until `finish()`. A file logged again under the same path before it
   * was sent is sent once. Artifact stores this client cannot write (s3:, gs: ...) are reported once and skipped.
   */
  async logArtifact(localPath: string, artifactPath: string = path.basename(localPath)): Promise<void> {
    if (this.#refuse('logArtifact') || this.#sender.artifactsOff) return;
    try {
      this.#queue.pushArtifact({ localPath, artifactPath: checkArtifactPath(artifactPath) });
    } catch (err) {
      this.#warnOnce(`artifact:${artifactPath}`, `MLflow: artifact skipped: ${(err as Error).message}`);
      return;
    }
    this.#sender.schedule(0);
  }

  /** Sends what is queued, marks the run ended with `status` and stops; never throws. */
  finish(status: RunStatus = 'FINISHED'): Promise<void> {
    if (!this.#closing && RUN_STATUSES.includes(status)) this.#endStatus = status;
    return this.close();
  }

  /**
   * Flushes within `timeoutMs`, ends the run (FINISHED unless `finish` said otherwise) and stops the background
   * loop. Never throws; what could not be sent by the deadline is dropped with one warning.
   */
  close(timeoutMs = this.#closeTimeoutMs): Promise<void> {
    this.#closing ??= this.#close(timeoutMs);
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(timeoutMs: number): Promise<void> {
    this.#sender.stop();
    let deadline: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      deadline = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const drained = this.#sender.drain(this.#endStatus).catch(() => false);
    const result = await Promise.race([drained, timedOut]);
    clearTimeout(deadline);
    this.#abort.abort();
    // Aborted requests put their items back at once: count them in the warning.
    if (result === 'timeout') await Promise.race([drained, sleep(50)]);
    const p = this.pending;
    if (result !== true && this.#queue.size > 0) {
      const why = result === 'timeout' ? `within ${timeoutMs} ms` : `(server ${this.trackingUri} unreachable)`;
      this.#warn(
        `MLflow: could not send ${p.metrics} metrics, ${p.params} params, ${p.tags} tags and ${p.artifacts} artifacts ${why}; they are only in the local run folder`,
      );
    }
    const dropped = this.#queue.dropped;
    if (dropped > 0) this.#warn(`MLflow: ${dropped} metric values were dropped in total (queue full)`);
  }

  #refuse(method: string): boolean {
    if (this.#sender.disabled) return true;
    if (!this.#closing) return false;
    this.#warnOnce('closed', `MLflow: ${method} after finish()/close() ignored`);
    return true;
  }

  #warnOnce(key: string, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#warn(message);
  }
}
