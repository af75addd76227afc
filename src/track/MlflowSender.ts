/**
 * MlflowTracker's background loop: creates the run, then sends the queue in batches on a timer. Retries live in the
 * client (per request); between failed rounds the loop backs off (up to 30 s). One warning per outage.
 */
import fs from 'node:fs/promises';

import { artifactStore, MlflowClient, MlflowError, type MlflowRunInfo, mlflowTag } from './mlflow.js';
import { MlflowQueue } from './mlflowQueue.js';
import type { RunStatus } from './Tracker.js';

const MAX_ROUND_BACKOFF_MS = 30_000;

export interface MlflowSenderOptions {
  client: MlflowClient;
  queue: MlflowQueue;
  trackingUri: string;
  experimentName: string;
  runName: string | undefined;
  /** Continue this run instead of creating one (a new run is created when the server does not know it). */
  runId: string | undefined;
  tags: Readonly<Record<string, string>>;
  /** Called once the run is created or found; awaited before anything is sent to the run. */
  onRun: ((run: MlflowRunInfo) => void | Promise<void>) | undefined;
  flushIntervalMs: number;
  backoffMs: number;
  /** Aborted by close: stops requests and warnings. */
  signal: AbortSignal;
  warn: (message: string) => void;
  warnOnce: (key: string, message: string) => void;
}

export class MlflowSender {
  run: MlflowRunInfo | undefined;
  /** The server refused to create the run: nothing more is sent. */
  disabled = false;
  /** The run's artifact store cannot be written from here: artifacts are dropped. */
  artifactsOff = false;
  readonly #o: MlflowSenderOptions;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<boolean> | undefined;
  #failures = 0;
  #down = false;
  #stopped = false;

  constructor(options: MlflowSenderOptions) {
    this.#o = options;
  }

  /** Run creation pending or items queued. */
  get hasWork(): boolean {
    return !this.disabled && (this.#o.queue.size > 0 || !this.run);
  }

  /** Flushes after `delayMs` (0: as soon as possible), or later while backing off after failures. */
  schedule(delayMs = this.#o.flushIntervalMs): void {
    if (this.#stopped || this.disabled) return;
    if (this.#timer) {
      if (delayMs > 0) return;
      clearTimeout(this.#timer);
    }
    const backoff = this.#failures ? Math.min(MAX_ROUND_BACKOFF_MS, this.#o.backoffMs * 2 ** this.#failures) : 0;
    // unref: a pending flush never keeps the process alive (close() is what waits).
    this.#timer = setTimeout(() => void this.#tick(), Math.max(delayMs, backoff)).unref();
  }

  /** Stops the timer; later `schedule` calls do nothing. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Sends everything queued, then ends the run. True when all of it arrived. Throws on the first failed round. */
  async drain(status: RunStatus): Promise<boolean> {
    if (this.#flushing) await this.#flushing;
    while (this.hasWork) {
      if (!(await this.flush())) return false;
    }
    if (!this.run) return this.disabled;
    try {
      await this.#o.client.updateRun(this.run.run_id, { status, endTime: Date.now() });
      return true;
    } catch (err) {
      this.#o.warnOnce('update', `MLflow: could not end the run: ${(err as Error).message}`);
      return false;
    }
  }

  async #tick(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopped || this.disabled) return;
    if (this.#flushing) {
      void this.#flushing.then(() => this.schedule(0));
      return;
    }
    const ok = await this.flush();
    if (this.hasWork) this.schedule(ok ? this.#o.flushIntervalMs : 0);
  }

  /** One round: run creation, then params, tags + metrics, artifacts. False when the server failed. */
  flush(): Promise<boolean> {
    const round = this.#round().then(
      () => {
        if (this.#down) this.#o.warn(`MLflow: server ${this.#o.trackingUri} reachable again; sending the queued data`);
        this.#down = false;
        this.#failures = 0;
        return true;
      },
      (err: unknown) => {
        if (this.disabled) return false;
        if (err instanceof MlflowError && !err.retryable) {
          // The server answered and refused this data (bad value, param rewrite ...): it was dropped, go on.
          this.#o.warnOnce(`refused:${err.status}:${err.mlflowCode}`, `MLflow refused data (dropped): ${err.message}`);
          return true;
        }
        this.#failures++;
        if (!this.#down && !this.#o.signal.aborted) {
          this.#o.warn(
            `MLflow: server ${this.#o.trackingUri} unreachable (${(err as Error).message}); training goes on, data is queued (at most ${this.#o.queue.maxMetrics} metric values) and retried`,
          );
        }
        this.#down = true;
        return false;
      },
    );
    this.#flushing = round.finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #round(): Promise<void> {
    const o = this.#o;
    const run = this.run ?? (await this.#startRun());
    const q = o.queue;
    // Params go alone: a refused param (MLflow never rewrites one) then does not take metrics down with it.
    while (q.counts.params) {
      const params = q.takeParams();
      await this.#send({ params }, () => o.client.logBatch(run.run_id, { params }));
    }
    while (q.counts.metrics || q.counts.tags) {
      const batch = q.takeMetricsAndTags();
      await this.#send(batch, () => o.client.logBatch(run.run_id, batch));
    }
    for (let a = q.peekArtifact(); a; a = q.peekArtifact()) {
      try {
        await o.client.uploadArtifact(run, a.artifactPath, await fs.readFile(a.localPath));
      } catch (err) {
        if (err instanceof MlflowError && err.retryable) throw err;
        o.warnOnce(
          `artifact:${a.localPath}`,
          `MLflow: artifact ${a.localPath} not uploaded: ${(err as Error).message}`,
        );
      }
      q.dropArtifact(a);
    }
  }

  /** Finds the run to continue, or creates one; then checks once where its artifacts can go. */
  async #startRun(): Promise<MlflowRunInfo> {
    const o = this.#o;
    let run: MlflowRunInfo;
    try {
      run = (o.runId ? await this.#continueRun(o.runId) : undefined) ?? (await this.#createRun());
    } catch (err) {
      if (err instanceof MlflowError && !err.retryable) {
        // Auth, bad experiment name ...: it will not get better; stop for good and drop what is queued.
        this.disabled = true;
        this.stop();
        o.queue.clear();
        o.warn(`MLflow: cannot start a run on ${o.trackingUri} (${err.message}); MLflow disabled for this run`);
      }
      throw err;
    }
    this.run = run;
    const store = artifactStore(run);
    if (store.kind === 'unsupported') {
      this.artifactsOff = true;
      const n = o.queue.clearArtifacts();
      o.warn(`MLflow: artifacts are not uploaded (${n} so far): ${store.reason}; they stay in the local run folder`);
    }
    try {
      await o.onRun?.(run);
    } catch {
      // a failing observer must not stop the logging
    }
    return run;
  }

  /** The run `runId` marked RUNNING again, or undefined (with a warning) when the server has no such live run. */
  async #continueRun(runId: string): Promise<MlflowRunInfo | undefined> {
    const o = this.#o;
    let run: MlflowRunInfo;
    try {
      run = await o.client.getRun(runId);
    } catch (err) {
      if (
        !(err instanceof MlflowError) ||
        err.retryable ||
        (err.status !== 404 && err.mlflowCode !== 'RESOURCE_DOES_NOT_EXIST')
      )
        throw err;
      o.warn(`MLflow: run ${runId} is not on ${o.trackingUri} (${err.message}); logging to a new run`);
      return undefined;
    }
    if (run.lifecycle_stage === 'deleted') {
      o.warn(`MLflow: run ${runId} was deleted on ${o.trackingUri}; logging to a new run`);
      return undefined;
    }
    await o.client.updateRun(runId, { status: 'RUNNING' });
    return { ...run, status: 'RUNNING' };
  }

  async #createRun(): Promise<MlflowRunInfo> {
    const o = this.#o;
    const experimentId = await o.client.getOrCreateExperiment(o.experimentName);
    const tags = Object.entries(o.tags).map(([key, value]) => mlflowTag(key, value));
    return o.client.createRun(experimentId, { runName: o.runName, tags });
  }

  /** Sends taken items; on a failure worth retrying puts them back at the front of the queue. */
  async #send(taken: Parameters<MlflowQueue['putBack']>[0], send: () => Promise<void>): Promise<void> {
    try {
      await send();
    } catch (err) {
      if (!(err instanceof MlflowError) || err.retryable) this.#o.queue.putBack(taken);
      throw err;
    }
  }
}
