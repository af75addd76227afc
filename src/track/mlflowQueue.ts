/**
 * What MlflowTracker has not sent yet. Metrics are bounded (the oldest are dropped and counted); a batch that
 * failed on the way goes back to the front, so order is kept and nothing is lost but what the bound drops.
 */
import { MLFLOW_LIMITS, type MlflowKeyValue, type MlflowMetric } from './mlflowBatch.js';

export interface QueuedArtifact {
  localPath: string;
  artifactPath: string;
}

export interface QueueCounts {
  metrics: number;
  params: number;
  tags: number;
  artifacts: number;
}

export class MlflowQueue {
  readonly maxMetrics: number;
  /** Metric values dropped by the bound so far. */
  dropped = 0;
  #metrics: MlflowMetric[] = [];
  #params: MlflowKeyValue[] = [];
  #tags: MlflowKeyValue[] = [];
  #artifacts: QueuedArtifact[] = [];
  readonly #onFirstDrop: () => void;

  /** `onFirstDrop` runs once, when the bound first drops metrics. */
  constructor(maxMetrics: number, onFirstDrop: () => void) {
    this.maxMetrics = Math.max(1, maxMetrics);
    this.#onFirstDrop = onFirstDrop;
  }

  get counts(): QueueCounts {
    return {
      metrics: this.#metrics.length,
      params: this.#params.length,
      tags: this.#tags.length,
      artifacts: this.#artifacts.length,
    };
  }
  get size(): number {
    return this.#metrics.length + this.#params.length + this.#tags.length + this.#artifacts.length;
  }

  pushMetrics(metrics: readonly MlflowMetric[]): void {
    this.#metrics.push(...metrics);
    this.#bound();
  }
  pushParams(params: readonly MlflowKeyValue[]): void {
    this.#params.push(...params);
  }
  pushTag(tag: MlflowKeyValue): void {
    this.#tags.push(tag);
  }
  /** Queues an upload; one still waiting for the same artifact path is replaced (plots are re-logged each epoch). */
  pushArtifact(artifact: QueuedArtifact): void {
    this.#artifacts = this.#artifacts.filter((a) => a.artifactPath !== artifact.artifactPath);
    this.#artifacts.push(artifact);
  }

  /** Up to one request's worth of params. */
  takeParams(): MlflowKeyValue[] {
    return this.#params.splice(0, MLFLOW_LIMITS.paramsPerBatch);
  }
  /** Up to one request's worth of tags and metrics (within the 1000-entity limit). */
  takeMetricsAndTags(): { metrics: MlflowMetric[]; tags: MlflowKeyValue[] } {
    const tags = this.#tags.splice(0, MLFLOW_LIMITS.tagsPerBatch);
    const metrics = this.#metrics.splice(
      0,
      Math.min(MLFLOW_LIMITS.metricsPerBatch, MLFLOW_LIMITS.entitiesPerBatch - tags.length),
    );
    return { metrics, tags };
  }
  /** The next artifact, left in the queue until `dropArtifact(it)`. */
  peekArtifact(): QueuedArtifact | undefined {
    return this.#artifacts[0];
  }
  /** Removes this entry (sent or given up); a no-op when a newer one for its path replaced it meanwhile. */
  dropArtifact(artifact: QueuedArtifact): void {
    const i = this.#artifacts.indexOf(artifact);
    if (i >= 0) this.#artifacts.splice(i, 1);
  }
  /** Drops every queued upload; returns how many there were. */
  clearArtifacts(): number {
    const n = this.#artifacts.length;
    this.#artifacts = [];
    return n;
  }

  /** Puts taken items back at the front (a send failed and will be retried). */
  putBack(taken: { metrics?: MlflowMetric[]; params?: MlflowKeyValue[]; tags?: MlflowKeyValue[] }): void {
    if (taken.params?.length) this.#params = taken.params.concat(this.#params);
    if (taken.tags?.length) this.#tags = taken.tags.concat(this.#tags);
    if (taken.metrics?.length) {
      this.#metrics = taken.metrics.concat(this.#metrics);
      this.#bound();
    }
  }

  clear(): void {
    this.#metrics = [];
    this.#params = [];
    this.#tags = [];
    this.#artifacts = [];
  }

  /** Drops the oldest metrics beyond the bound. */
  #bound(): void {
    const over = this.#metrics.length - this.maxMetrics;
    if (over <= 0) return;
    this.#metrics.splice(0, over);
    if (this.dropped === 0) this.#onFirstDrop();
    this.dropped += over;
  }
}
