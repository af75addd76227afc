import { CompositeTracker } from './CompositeTracker.js';
import type { MlflowRunInfo } from './mlflowBatch.js';
import { MlflowTracker, type MlflowTrackerOptions } from './MlflowTracker.js';
import { type LegacyRun, RunDir, type RunDirOptions } from './RunDir.js';

export interface CreateTrackerOptions extends RunDirOptions {
  /**
   * MLflow options; MLflow is on when MLFLOW_TRACKING_URI (or `mlflow.trackingUri`) is an http(s) URL, and `false`
   * turns it off. The run name defaults to the run folder's id. Defaults to `{}` (environment only).
   */
  mlflow?: MlflowTrackerOptions | false;
}

export interface RunTracking {
  /** Fans out to the run folder and, when enabled, MLflow. Training code logs through this. */
  tracker: CompositeTracker;
  runDir: RunDir;
  mlflow: MlflowTracker | undefined;
}

/** summary.json's `mlflow` field: the MLflow run this run folder logs to, so a resumed run continues it. */
export interface MlflowRunRecord {
  tracking_uri: string;
  experiment_id: string;
  run_id: string;
  artifact_uri?: string;
}

/** Creates the run folder and, when configured, the MLflow run (in the background), behind one tracker. */
export async function createTracker(options: CreateTrackerOptions = {}): Promise<RunTracking> {
  const { mlflow: mlflowOptions = {}, ...runOptions } = options;
  const runDir = await RunDir.create(runOptions);
  return track(runDir, mlflowOptions, undefined);
}

/**
 * Reopens a run folder to continue it (see `RunDir.open`) and, when MLflow is configured, continues the MLflow run
 * recorded in its summary.json (the same server only); a new MLflow run when there is none.
 */
export async function resumeTracker(
  dir: string,
  options: {
    keepUpToStep?: number;
    /** See `RunDir.open`. */
    upgrade?: (legacy: LegacyRun) => void;
    mlflow?: MlflowTrackerOptions | false;
  } = {},
): Promise<RunTracking> {
  const { mlflow: _mlflow, ...openOptions } = options;
  const runDir = await RunDir.open(dir, openOptions);
  const mlflowOptions = options.mlflow ?? {};
  const recorded = mlflowRecord(runDir.summary.mlflow);
  const uri = mlflowOptions === false ? undefined : (mlflowOptions.trackingUri ?? process.env.MLFLOW_TRACKING_URI);
  const sameServer = recorded !== undefined && uri !== undefined && sameUri(recorded.tracking_uri, uri);
  return track(runDir, mlflowOptions, sameServer ? recorded.run_id : undefined);
}

function track(runDir: RunDir, mlflowOptions: MlflowTrackerOptions | false, runId: string | undefined): RunTracking {
  const mlflow =
    mlflowOptions === false
      ? undefined
      : MlflowTracker.fromEnv({
          ...mlflowOptions,
          runName: mlflowOptions.runName ?? runDir.name,
          ...(runId ? { runId } : {}),
          tags: { 'trt_flowers.run_dir': runDir.dir, ...mlflowOptions.tags },
          // Recorded before anything is sent, so the summary.json stored with the run names it too.
          onRun: async (run) => {
            await mlflowOptions.onRun?.(run);
            await runDir.setSummary({ mlflow: record(mlflow?.trackingUri ?? '', run) }).catch(() => undefined);
          },
        });
  return { tracker: new CompositeTracker([runDir, mlflow]), runDir, mlflow };
}

function record(trackingUri: string, run: MlflowRunInfo): MlflowRunRecord {
  const r: MlflowRunRecord = { tracking_uri: trackingUri, experiment_id: run.experiment_id, run_id: run.run_id };
  if (run.artifact_uri) r.artifact_uri = run.artifact_uri;
  return r;
}

function mlflowRecord(value: unknown): MlflowRunRecord | undefined {
  const v = value as Partial<MlflowRunRecord> | undefined;
  return typeof v?.run_id === 'string' && typeof v.tracking_uri === 'string' ? (v as MlflowRunRecord) : undefined;
}

const sameUri = (a: string, b: string): boolean => a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
