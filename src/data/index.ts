/** The data pipeline: photos on disk to normalised Float32Array batches. */
export { decodeBmp, isBmp, readBmpHeader, type RawImage } from './bmp.js';
export { DecodedCache, type DecodedCacheOptions } from './cache.js';
export { augmentInto, drawAugmentParams, type AugmentParams } from './augment.js';
export {
  AUGMENT_SPEC,
  DATA_SPEC,
  DEFAULT_CLASSES,
  defaultDataSection,
  loadDataSection,
  parseDataSection,
  SUPPORTED_EXTENSIONS,
  TF_FLOWERS_SHA256,
  TF_FLOWERS_URL,
  type AugmentSection,
  type DataSection,
  type ResizeMode,
} from './section.js';
export {
  augmentOptionsOf,
  DEFAULT_AUGMENT,
  indexOptionsOf,
  loaderOptionsOf,
  splitOptionsOf,
  DEFAULT_LOADER_OPTIONS,
  type AugmentOptions,
  type LoaderSettings,
} from './options.js';
export {
  CAMELCASE_DATA_CODE,
  DEFAULT_DATA_CONFIG,
  isCamelCaseData,
  loadDataConfig,
  parseDataConfig,
  toDataConfig,
  toDataSection,
  type AugmentConfig,
  type DataConfig,
} from './config.js';
export { fetchDataset, resolveDataDir, type DataDirSources, type FetchOptions, type FetchResult } from './fetch.js';
export { directoryChecksum, writeFileAtomic } from '../util/fs.js';
export {
  findDuplicates,
  indexDataset,
  type DatasetIndex,
  type DuplicateGroup,
  type ExcludedFile,
  type IndexedImage,
  type IndexOptions,
} from './indexer.js';
export {
  DataLoader,
  type BatchShape,
  type DataLoaderOptions,
  type EvalBatch,
  type IterateOptions,
  type TripletBatch,
} from './loader.js';
export {
  createManifest,
  formatVerify,
  hashTree,
  readManifest,
  sidecarPath,
  verifyDataDir,
  writeManifest,
  type DataManifest,
  type ManifestFile,
  type VerifyResult,
} from './manifest.js';
export {
  decodeResized,
  IMAGENET_MEAN,
  IMAGENET_STD,
  normalizationTables,
  normalizeInto,
  preprocessBatch,
  preprocessInto,
  setDecodeThreads,
  type PreprocessOptions,
} from './preprocess.js';
export { ACCEPTED_FORMATS, probeImage, type ImageInfo, type ProbeOptions, type ProbeResult } from './probe.js';
export { Rng } from './rng.js';
export {
  createSplit,
  loadOrCreateSplit,
  readSplitManifest,
  SPLIT_NAMES,
  writeSplitManifest,
  type SplitItem,
  type SplitManifest,
  type SplitName,
  type SplitOptions,
} from './split.js';
export { computeStats, formatStats, type DataStats, type Spread } from './stats.js';
export { sampleTriplets, type Triplet, type TripletOptions } from './triplets.js';
