import { describe } from '../util/describe.js';
/**
 * The one interface training code logs through. Implemented by the local run folder (RunDir), by MLflow
 * (MlflowTracker) and by CompositeTracker, which fans out to several.
 */

/** How a run ended. The names are MLflow's RunStatus values. */
export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

export const RUN_STATUSES: readonly RunStatus[] = ['RUNNING', 'FINISHED', 'FAILED', 'KILLED'];

/** Where a group of metric values belongs. */
export interface MetricContext {
  /** Epoch the values belong to (may be fractional for per-step values). Defaults to none. */
  epoch?: number;
  /**
   * Data split, e.g. 'train' or 'val'. MLflow gets the key `<split>/<name>`; the run folder keeps the split in its
   * own field. Defaults to none.
   */
  split?: string;
  /** Wall-clock time of the values, ms since the Unix epoch. Defaults to `Date.now()`. */
  time?: number;
}

/** Params: any JSON-serializable values; nested objects are flattened to dotted keys where the backend needs it. */
export type Params = Readonly<Record<string, unknown>>;

export interface Tracker {
  /** Records run parameters (hyper-parameters, resolved config). Later calls add keys. */
  logParams(params: Params): Promise<void>;
  /** Records metric values at a global step (a non-negative integer). */
  logMetrics(metrics: Readonly<Record<string, number>>, step: number, context?: MetricContext): Promise<void>;
  /** Sets a run tag (last value wins). */
  setTag(key: string, value: string): Promise<void>;
  /** Stores a file with the run, under `artifactPath` (a relative POSIX path). Defaults to the file's name. */
  logArtifact(localPath: string, artifactPath?: string): Promise<void>;
  /** Ends the run with a status, flushes and releases everything. Later calls are no-ops. */
  finish(status?: RunStatus): Promise<void>;
}

/** Checks that a metric step is a non-negative safe integer. */
export function checkStep(step: unknown): asserts step is number {
  if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) {
    throw new RangeError(`Expected a non-negative integer for \`step\` but received ${describe(step)}`);
  }
}

/** Checks a relative artifact path: POSIX separators, no absolute path, no `..` segment. */
export function checkArtifactPath(artifactPath: string): string {
  const parts = artifactPath.split('/');
  if (
    !artifactPath ||
    artifactPath.startsWith('/') ||
    parts.some((p) => p === '..' || p === '') ||
    /\\/.test(artifactPath)
  ) {
    throw new RangeError(
      `Expected a relative POSIX path without '..' for \`artifactPath\` but received ${describe(artifactPath)}`,
    );
  }
  return artifactPath;
}
