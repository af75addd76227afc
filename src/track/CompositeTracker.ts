import type { MetricContext, Params, RunStatus, Tracker } from './Tracker.js';

/**
 * Fans every call out to several trackers (the local run folder plus MLflow, typically). Every tracker gets every
 * call even when another one fails; the first failure is then re-thrown, so a local disk error still surfaces.
 */
export class CompositeTracker implements Tracker {
  readonly trackers: readonly Tracker[];

  constructor(trackers: readonly (Tracker | undefined)[]) {
    this.trackers = trackers.filter((t): t is Tracker => t !== undefined);
  }

  logParams(params: Params): Promise<void> {
    return this.#all((t) => t.logParams(params));
  }

  logMetrics(metrics: Readonly<Record<string, number>>, step: number, context?: MetricContext): Promise<void> {
    return this.#all((t) => t.logMetrics(metrics, step, context));
  }

  setTag(key: string, value: string): Promise<void> {
    return this.#all((t) => t.setTag(key, value));
  }

  logArtifact(localPath: string, artifactPath?: string): Promise<void> {
    return this.#all((t) => t.logArtifact(localPath, artifactPath));
  }

  finish(status?: RunStatus): Promise<void> {
    return this.#all((t) => t.finish(status));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.finish();
  }

  async #all(call: (t: Tracker) => Promise<void>): Promise<void> {
    const results = await Promise.allSettled(
      this.trackers.map(async (t) => {
        await call(t);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
