/** The shapes of a benchmark run and of its JSON report. */
import type { BackendName, Precision } from '../engine/backend.js';
import type { DecodePlace, TtaMode } from '../engine/Engine.js';
import type { Preprocessing } from '../data/metadata.js';
import type { BuildSummary } from './inputs.js';
import type { MachineInfo } from './machine.js';
import type { LatencyStats, PercentileMethod } from './stats.js';

/** 'model': a preprocessed batch in, raw outputs back. 'e2e': image files in, probabilities back. */
export type BenchMode = 'model' | 'e2e';

export const BENCH_MODES: readonly BenchMode[] = ['model', 'e2e'];

/** What runs a model: one of the Engine backends, or PyTorch eager in a Python process (--python). */
export type BenchBackend = BackendName | 'python-eager';

/** Options of runBench. */
export interface BenchOptions {
  /** Model files: TorchScript .pt, .onnx, TensorRT .engine/.plan. */
  models?: readonly string[];
  /** A folder whose model files (.pt, .pth, .torchscript, .onnx, .engine, .plan; searched recursively) all run. */
  modelsDir?: string;
  /** Fewest timed iterations per configuration. Defaults to 100. */
  iterations?: number;
  /** Warm-up time per configuration, ms. Defaults to 200. */
  warmupMs?: number;
  /** Shortest timed wall clock per configuration, s. Defaults to 3. */
  durationS?: number;
  /** Batch sizes. Defaults to [1]. */
  batches?: readonly number[];
  /** What to time. Defaults to both: ['model', 'e2e']. */
  modes?: readonly BenchMode[];
  /** Intra-op threads of every backend (libtorch, ONNX Runtime, PyTorch). Defaults to the logical CPU count. */
  threads?: number;
  /**
   * Test-time augmentation modes: each engine runs once per mode ('flip' doubles the model's work of an end-to-end
   * call and of the accuracy pass, 'crops' makes it six times; model-only timings are never augmented). Defaults to
   * ['none'].
   */
  tta?: readonly TtaMode[];
  /**
   * Where the end-to-end calls decode (Engine.load's `decode`): 'auto', 'pool' (the libuv pool, the next batch's
   * decode overlapping the current run) or 'worker' (ONNX Runtime's session thread, right before each run).
   * Defaults to 'auto'.
   */
  decode?: DecodePlace;
  /**
   * 'auto' (CPU, plus CUDA for libtorch when it sees a GPU; TensorRT always on CUDA), 'cpu' or 'cuda'. Defaults to
   * 'auto'.
   */
  device?: 'auto' | 'cpu' | 'cuda';
  /**
   * Photos for the end-to-end runs and the model-only input: a folder (searched recursively, `imageCount` taken
   * evenly from its sorted listing) or a list of files. Defaults to TRT_FLOWERS_DATA, else ../shared/data/flower_photos
   * beside the package when it exists; with none, model-only runs use a fixed synthetic input and e2e is skipped.
   */
  images?: string | readonly string[];
  /** Photos taken from an `images` folder. Defaults to 100. */
  imageCount?: number;
  /**
   * Accuracy on a labelled split: 'train' | 'val' | 'test' from a training run's split.json (photos under `images`
   * or the run's data folder), or 'all' for every photo in the class sub-folders of `images`. Defaults to none.
   */
  evalSplit?: 'train' | 'val' | 'test' | 'all';
  /** The run folder whose split.json `evalSplit` uses. Defaults to the run a model file lives in (runs/<id>/...). */
  run?: string;
  /** At most this many labelled photos (evenly spread). Defaults to 0: all. */
  evalLimit?: number;
  /** Also time the first TorchScript model in Python PyTorch eager with PIL preprocessing. Defaults to false. */
  python?: boolean;
  /** Python interpreter for `python`. Defaults to TRT_FLOWERS_PYTHON, else /usr/bin/python3. */
  pythonPath?: string;
  /** Label (or part of it) of the engine the ratios are relative to. Defaults to the first libtorch fp32 engine. */
  baseline?: string;
  /** Percentile method. Defaults to 'linear'. */
  percentileMethod?: PercentileMethod;
  /** Keep every latency in the report. Defaults to true. */
  keepLatencies?: boolean;
  /** The command line, for the report. Defaults to none. */
  command?: string;
  signal?: AbortSignal;
  /** Progress lines. Defaults to none. */
  onLog?: (line: string) => void;
}

/** Accuracy of one engine on a labelled split. */
export interface EngineAccuracy {
  split: string;
  /** Where the labels came from: a split.json or class folders. */
  source: string;
  images: number;
  correct: number;
  accuracy: number;
  /** Share of images where this engine's top-1 equals the baseline's. */
  agreementWithBaseline: number | null;
  /** Predicted class per image, in the eval order (for agreement). */
  predictions?: string[];
}

export interface BenchEngine {
  /** Unique label, e.g. 'onnxruntime int8 cpu'. */
  label: string;
  backend: BenchBackend;
  precision: Precision | 'unknown';
  device: string;
  model: string;
  /**
   * infer()'s test-time augmentation ('flip': each image and its mirror, twice the model's work; 'crops': the image
   * and five zoomed crops, six times). Absent: none.
   */
  tta?: TtaMode;
  status: 'ok' | 'unavailable' | 'failed';
  /** Why it is unavailable or failed. */
  reason?: string;
  loadMs?: number;
  inputShape?: number[];
  preprocessing?: Preprocessing;
  /** The model's class names, in its output order. */
  classes?: string[];
  arch?: string;
  versions?: Record<string, string>;
  /** The engine builder's record (calibration, its own check against FP32), when the file has a sidecar. */
  build?: BuildSummary;
  accuracy?: EngineAccuracy;
}

/** Host-device copy and compute split, for backends that can tell (none on CPU). */
export interface PhaseTimes {
  hostToDeviceMs: LatencyStats;
  computeMs: LatencyStats;
  deviceToHostMs: LatencyStats;
}

export interface BenchResult {
  engine: string;
  batch: number;
  mode: BenchMode;
  status: 'ok' | 'failed';
  reason?: string;
  iterations: number;
  warmupIterations: number;
  warmupMs: number;
  wallMs: number;
  latencyMs?: LatencyStats;
  imagesPerSecond?: number;
  batchesPerSecond?: number;
  /** null: the backend does not report them (CPU backends have no copies). */
  phases: PhaseTimes | null;
  /**
   * Share of the machine's CPU time that other processes used during the timed phase, percent (Linux only). More
   * than a few percent means the figures are skewed: on 2 cores, competing threads slow libtorch 50-100x.
   */
  otherCpuPercent?: number;
  /** Relative to the baseline engine at the same batch and mode: throughput ratio and p50-latency ratio (>1 faster). */
  vsBaseline?: { throughput: number; latencyP50: number } | null;
  latenciesMs?: number[];
}

export interface BenchReport {
  format: 'trt-flowers-bench/1';
  startedAt: string;
  wallSeconds: number;
  command: string | null;
  settings: {
    iterations: number;
    warmupMs: number;
    durationS: number;
    batches: number[];
    modes: BenchMode[];
    threads: number;
    percentileMethod: PercentileMethod;
    images: number;
    imagesFrom: string | null;
    /** JPEG decoding in the e2e runs: the native libjpeg-turbo path or sharp (TRT_FLOWERS_JPEG). */
    jpegDecoder: string;
    /** Where the e2e runs decode (Engine.load's `decode`). */
    decode: DecodePlace;
    evalSplit: string | null;
  };
  machine: MachineInfo;
  /** 1, 5 and 15 minute load averages when the benchmark ended (machine.loadAverage: when it started). */
  loadAverageAtEnd: [number, number, number];
  baseline: string | null;
  engines: BenchEngine[];
  results: BenchResult[];
  notes: string[];
}
