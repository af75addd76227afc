/** Run tracking: the local run folder, MLflow, metrics and plots. */
export { CompositeTracker } from './CompositeTracker.js';
export {
  createTracker,
  resumeTracker,
  type CreateTrackerOptions,
  type MlflowRunRecord,
  type RunTracking,
} from './createTracker.js';
export {
  argmaxRows,
  classificationReport,
  confusionMatrix,
  type ClassificationReport,
  type ClassMetrics,
} from './metrics.js';
export { METRICS_FILE, MetricsAppender, parseMetricRows, readMetrics, type MetricRow } from './metricsLog.js';
export {
  artifactStore,
  MLFLOW_LIMITS,
  MlflowClient,
  MlflowError,
  splitLogBatch,
  toMlflowParams,
  utf8Prefix,
  type ArtifactStore,
  type LogBatch,
  type MlflowClientOptions,
  type MlflowExperiment,
  type MlflowKeyValue,
  type MlflowMetric,
  type MlflowRunInfo,
} from './mlflow.js';
export { mlflowStandardTags, MlflowTracker, type MlflowTrackerOptions } from './MlflowTracker.js';
export {
  ACCURACY_CURVES,
  accuracyChartSpec,
  curvesFromRows,
  LOSS_CURVES,
  lineChartSpec,
  renderAccuracyCurves,
  renderConfusionMatrix,
  renderLineChart,
  renderLossCurves,
  scoreDomain,
  type ConfusionMatrixOptions,
  type CurveChartOptions,
  type CurveSelector,
  type LineChartOptions,
  type LinePoint,
  type PlotFiles,
  type RenderOptions,
} from './plots.js';
export { confusionMatrixSpec } from './confusionPlot.js';
export { newRunId, RunDir, type LegacyRun, type RunDirOptions, type RunSummary } from './RunDir.js';
export { RUN_STATUSES, type MetricContext, type Params, type RunStatus, type Tracker } from './Tracker.js';
export { renderVegaLite, vegaLiteToSvg } from './vegaRender.js';
