/** The inference benchmark (`trt-flowers bench`): runner, statistics, reports. */
export { runBench } from './run.js';
export { assignLabels, computeRatios, pickBaseline } from './compare.js';
export { percentile, summarize, throughput, type LatencyStats, type PercentileMethod } from './stats.js';
export { timeCalls, type TimingOptions, type TimingResult } from './timing.js';
export { machineInfo, describeMachine, type MachineInfo, type GpuInfo } from './machine.js';
export { formatTable, toMarkdown, toJson, writeReports, type ReportFiles } from './report.js';
export { benchChartSpec, renderBenchChart } from './chart.js';
export { collectModels, collectPhotos, loadEvalSet, type EvalSet, type LabelledImage } from './inputs.js';
export { runRobustness, type RobustnessOptions } from './robustness.js';
export { makeVariants, largestUprightRect, centerCropBox } from './variants.js';
export { parseVariants, ROBUSTNESS_VARIANTS, VARIANT_DESCRIPTIONS, type RobustnessVariant } from './variant-names.js';
export {
  computeDiffs,
  formatRobustnessTable,
  robustnessMarkdown,
  robustnessJson,
  writeRobustnessReports,
  type RobustnessClass,
  type RobustnessDiff,
  type RobustnessModel,
  type RobustnessReport,
  type RobustnessResult,
} from './robustness-report.js';
export type {
  BenchBackend,
  BenchEngine,
  BenchMode,
  BenchOptions,
  BenchReport,
  BenchResult,
  EngineAccuracy,
  PhaseTimes,
} from './types.js';
