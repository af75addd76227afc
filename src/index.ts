export * from './errors.js';
export { loadAddon } from './binding/loader.js';
export { manualSeed, runtimeInfo, setJitOptimize, setThreads } from './binding/runtime.js';
export type * from './binding/types.js';
export { TorchModel, type TorchModelLoadOptions } from './torch/TorchModel.js';
export { Trainer, type TrainerOptions, type TripletBatch } from './torch/Trainer.js';
export { ProcessGroup, distributedAvailable, type DistBackend, type ProcessGroupOptions } from './dist/ProcessGroup.js';
export { distributedEnv, type DistributedEnv } from './dist/env.js';
export { exportBackbone, BACKBONE_ARCHS, type BackboneArch, type ExportBackboneOptions } from './torch/backbone.js';
export { doctor, formatDoctor, type DoctorReport } from './doctor.js';
export {
  preprocessBatch,
  preprocessInto,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type PreprocessOptions,
} from './data/preprocess.js';
export {
  loadTrainConfig,
  parseTrainConfig,
  type TrainConfig,
  type CamelCaseTrainConfig,
  type ModelConfig,
  type TrainerConfig,
} from './config/index.js';
export { train, type TrainOptions, type TrainResult } from './train/train.js';
export { evaluateSplit, type SplitEvaluation } from './train/evaluate.js';
export { createProgress, type ProgressMode, type ProgressReporter } from './train/progress.js';
export { learningRateAt, type ScheduleOptions } from './train/schedule.js';
export { EarlyStopping } from './train/EarlyStopping.js';
export * from './data/index.js';
export * from './track/index.js';
export {
  Engine,
  detectBackend,
  softmax,
  type DecodePlace,
  type EngineInfo,
  type EngineLoadOptions,
  type ImageInput,
  type InferOptions,
  type Prediction,
  type TensorInput,
} from './engine/Engine.js';
export type { Backend, BackendName, BackendOutput, Precision } from './engine/backend.js';
export { parseMetadata, type MetadataSource, type ModelMetadata, type Preprocessing } from './data/metadata.js';
export { readOnnxInfo, operatorSummary, type OnnxFileInfo, type OperatorSummary } from './onnx/model.js';
export { listImages } from './data/files.js';
export {
  compareEngines,
  exportOnnx,
  exportReportPath,
  type ExportOnnxOptions,
  type ExportOnnxReport,
  type OnnxVerification,
} from './export/onnx.js';
export {
  batchPredict,
  collectInputs,
  readFileList,
  toRecord,
  type BatchPredictOptions,
  type BatchPredictSummary,
  type PredictionRecord,
} from './predict/predict.js';
export { pyJson } from './predict/pyjson.js';
export {
  runBench,
  percentile,
  summarize,
  formatTable as formatBenchTable,
  toMarkdown as benchMarkdown,
  writeReports as writeBenchReports,
  machineInfo,
  type BenchOptions,
  type BenchReport,
  type BenchResult,
  type BenchEngine,
  type LatencyStats,
  type MachineInfo,
  runRobustness,
  makeVariants,
  ROBUSTNESS_VARIANTS,
  VARIANT_DESCRIPTIONS,
  formatRobustnessTable,
  robustnessMarkdown,
  writeRobustnessReports,
  type RobustnessOptions,
  type RobustnessReport,
  type RobustnessResult,
  type RobustnessDiff,
  type RobustnessVariant,
} from './bench/index.js';
export {
  InferenceServer,
  serve,
  Batcher,
  HttpError,
  resolveServeOptions,
  SERVE_DEFAULTS,
  type ServeOptions,
  type ResolvedServeOptions,
  type ServerState,
  exportTritonRepository,
  parseModelConfig,
  writeModelConfig,
  ModelConfigError,
  type ExportTritonOptions,
  type ExportTritonReport,
  type ModelConfig as TritonModelConfig,
} from './serve/index.js';
export {
  TensorRTBackend,
  tensorrtStatus,
  readPlanSidecar,
  buildTensorRTPlan,
  type TensorRTStatus,
  type TensorRTSidecar,
  type TensorRTBackendOptions,
} from './engine/tensorrt.js';
export {
  chooseBatchProfile,
  choosePrecisionPlan,
  checkPlanCompatibility,
  parseTensorRTVersion,
  type BatchProfile,
  type Int8Mode,
  type PlanStamp,
  type PrecisionPlan,
} from './engine/tensorrt-plan.js';
export { convertToFloat16, type Fp16Report } from './build/fp16.js';
export { quantizeForTensorRT } from './build/quantize-tensorrt.js';
export { buildEngine, chooseBackend } from './build/build.js';
export {
  sidecarPath,
  type BuildBackend,
  type BuildEngineOptions,
  type BuildEngineResult,
  type EngineSidecar,
  type GraphOptimization,
} from './build/options.js';
export { tensorRtCache } from './build/calibrate.js';
export {
  entropyThreshold,
  percentileThreshold,
  tensorRange,
  uint8Params,
  type CalibrationMethod,
  type Range,
  type TensorStats,
} from './build/calibration.js';
