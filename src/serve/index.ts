export { InferenceServer, serve } from './InferenceServer.js';
export { Batcher, QueueFullError, type BatcherOptions } from './Batcher.js';
export { HttpError, toHttpError, type ErrorBody } from './httpErrors.js';
export { ServeMetrics } from './metrics.js';
export { resolveServeOptions, SERVE_DEFAULTS, type ResolvedServeOptions, type ServeOptions } from './options.js';
export { Predictor, type NamedPrediction } from './Predictor.js';
export type { ServerState } from './routes.js';
export { invocationImages, type Upload } from './uploads.js';
export { RepositoryModels, type RepositoryModelsOptions } from './RepositoryModels.js';
export {
  ModelConfigError,
  parseModelConfig,
  writeModelConfig,
  type ModelConfig,
  type ModelTensor,
} from './triton/config.js';
export { exportTritonRepository, type ExportTritonOptions, type ExportTritonReport } from './triton/export.js';
export { scanRepository, type RepositoryModel, type RepositoryScan } from './triton/repository.js';
