import { CompositeTracker } from './CompositeTracker.js';
import { MlflowTracker, type MlflowTrackerOptions } from './MlflowTracker.js';
import { RunDir, type RunDirOptions } from './RunDir.js';

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

/** Creates the run folder and, when configured, the MLflow run (in the background), behind one tracker. */
export async function createTracker(options: CreateTrackerOptions = {}): Promise<RunTracking> {
  const { mlflow: mlflowOptions = {}, ...runOptions } = options;
  const runDir = await RunDir.create(runOptions);
  const mlflow =
    mlflowOptions === false
      ? undefined
      : MlflowTracker.fromEnv({
          ...mlflowOptions,
          runName: mlflowOptions.runName ?? runOptions.name ?? runDir.id,
          tags: { 'trt_flowers.run_dir': runDir.dir, ...mlflowOptions.tags },
        });
  return { tracker: new CompositeTracker([runDir, mlflow]), runDir, mlflow };
}
