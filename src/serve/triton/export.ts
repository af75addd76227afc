import fs from 'node:fs/promises';
import path from 'node:path';

import { Engine, type EngineInfo } from '../../engine/Engine.js';
import { decodeModel, graphOf } from '../../onnx/model.js';
import { writeFileAtomic } from '../../util/fs.js';
import { packageRoot } from '../../util/paths.js';
import { MODEL_NAME, modelNameFromPath } from '../options.js';
import { writeModelConfig, type ModelConfig } from './config.js';
import { TRITON_PLATFORMS } from './platforms.js';

/** Options of exportTritonRepository. */
export interface ExportTritonOptions {
  /** The model: an ONNX file, a TensorRT plan or a TorchScript checkpoint (with its metadata). */
  modelPath: string;
  /** The repository folder; created when missing, other models and versions in it are kept. */
  out: string;
  /** The model's name in the repository. Defaults to the model file's name. */
  name?: string;
  /** The version folder to write (a positive integer). Defaults to 1. */
  version?: number;
  /** max_batch_size. Defaults to the engine's largest batch (its sidecar), else 16. */
  maxBatch?: number;
  /** dynamic_batching.max_queue_delay_microseconds. Defaults to 5000 (the server's 5 ms). */
  maxQueueDelayUs?: number;
  /** instance_group count. Defaults to 1. */
  instances?: number;
}

/** What exportTritonRepository wrote. */
export interface ExportTritonReport {
  repository: string;
  /** The classifier (FP32 input), its preprocessing model (Python backend) and the ensemble of the two (BYTES input). */
  models: { classifier: string; preprocess: string; ensemble: string };
  version: number;
  files: string[];
}

interface Layout {
  platform: string;
  file: string;
  input: string;
  logits: string;
  embedding: string;
}

/** Triton's platform, file name and tensor names for a model file. */
function layoutOf(modelPath: string, bytes: Uint8Array, info: EngineInfo): Layout {
  if (info.backend === 'onnxruntime') {
    const graph = graphOf(decodeModel(bytes, `'${modelPath}'`));
    const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
    const inputs = (graph.input ?? []).map((i) => i.name ?? '').filter((n) => !initializers.has(n));
    const outputs = (graph.output ?? []).map((o) => o.name ?? '');
    if (inputs.length !== 1 || outputs.length < 1) {
      throw new RangeError(
        `'${modelPath}' must have one input and logits (and embedding) outputs; it has ` +
          `inputs [${inputs.join(', ')}] and outputs [${outputs.join(', ')}]`,
      );
    }
    return {
      ...TRITON_PLATFORMS.onnxruntime,
      input: inputs[0] as string,
      logits: outputs[0] as string,
      embedding: outputs[1] ?? '',
    };
  }
  if (info.backend === 'tensorrt') {
    return { ...TRITON_PLATFORMS.tensorrt, input: 'input', logits: 'logits', embedding: 'embedding' };
  }
  // Triton's PyTorch backend names TorchScript tensors by position.
  return {
    ...TRITON_PLATFORMS.libtorch,
    input: 'INPUT__0',
    logits: 'OUTPUT__0',
    embedding: 'OUTPUT__1',
  };
}

function positiveInt(value: unknown, name: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`Expected an integer from 1 to ${max} for \`${name}\` but received ${String(value)}`);
  }
  return value;
}

/** The largest batch a dynamic-batch engine takes: the TensorRT profile's maximum, or undefined (any). */
function engineMaxBatch(info: EngineInfo): number | undefined {
  const sidecar = info.metadata as { input?: { maxBatch?: unknown } };
  const max = sidecar.input?.maxBatch;
  return typeof max === 'number' && max > 0 ? max : undefined;
}

/**
 * Writes a Triton / KServe model repository for a model: `<out>/<name>/config.pbtxt`, `<out>/<name>/<version>/model.*`
 * and `labels.txt`; the preprocessing as a Python-backend model `<name>_preprocess` and the ensemble
 * `<name>_ensemble` that takes encoded images. Every config is written through the protobuf text format of
 * Triton's ModelConfig; every file atomically.
 */
export async function exportTritonRepository(options: ExportTritonOptions): Promise<ExportTritonReport> {
  const name = options.name ?? modelNameFromPath(options.modelPath);
  if (!MODEL_NAME.test(name))
    throw new RangeError(`'${name}' is not a model name Triton takes (letters, digits, _ - .)`);
  const version = positiveInt(options.version ?? 1, 'version', 2 ** 31 - 1);
  const instances = positiveInt(options.instances ?? 1, 'instances', 1024);
  const delay = options.maxQueueDelayUs ?? 5000;
  if (!Number.isInteger(delay) || delay < 0) {
    throw new RangeError(`Expected a non-negative integer for \`maxQueueDelayUs\` but received ${String(delay)}`);
  }
  const engine = await Engine.load(options.modelPath, { warmup: false });
  let info: EngineInfo;
  try {
    info = engine.info;
  } finally {
    await engine.dispose();
  }
  // Read once: its graph names the tensors, and its bytes are the repository's model file.
  const modelBytes = await fs.readFile(options.modelPath);
  const layout = layoutOf(options.modelPath, modelBytes, info);
  const staticBatch = info.inputShape[0] > 0 ? info.inputShape[0] : undefined;
  const maxBatch = staticBatch ? 0 : positiveInt(options.maxBatch ?? engineMaxBatch(info) ?? 16, 'maxBatch', 1 << 20);
  const size = info.preprocessing.size;
  const classes = info.classes.length;
  const batchDims = (dims: number[]): number[] => (staticBatch ? [staticBatch, ...dims] : dims);
  const kind = info.backend === 'tensorrt' ? 'KIND_GPU' : 'KIND_CPU';
  const parameters = {
    classes: { string_value: info.classes.join(',') },
    preprocessing: { string_value: JSON.stringify(info.preprocessing) },
  };
  const outputs = (labels: boolean) => [
    {
      name: 'logits',
      data_type: 'TYPE_FP32' as const,
      dims: batchDims([classes]),
      ...(labels ? { label_filename: 'labels.txt' } : {}),
    },
    ...(layout.embedding && info.embeddingSize > 0
      ? [{ name: 'embedding', data_type: 'TYPE_FP32' as const, dims: batchDims([info.embeddingSize]) }]
      : []),
  ];
  const classifier: ModelConfig = {
    name,
    platform: layout.platform,
    max_batch_size: maxBatch,
    version_policy: { all: {} },
    input: [{ name: layout.input, data_type: 'TYPE_FP32', format: 'FORMAT_NCHW', dims: batchDims([3, size, size]) }],
    output: outputs(true).map((o) => ({ ...o, name: o.name === 'logits' ? layout.logits : layout.embedding })),
    ...(maxBatch > 0
      ? { dynamic_batching: { preferred_batch_size: [maxBatch], max_queue_delay_microseconds: delay } }
      : {}),
    instance_group: [{ count: instances, kind }],
    parameters,
  };
  const preprocessName = `${name}_preprocess`;
  const ensembleName = `${name}_ensemble`;
  const imageDims = batchDims([1]);
  const preprocess: ModelConfig = {
    name: preprocessName,
    backend: 'python',
    max_batch_size: maxBatch,
    input: [{ name: 'image', data_type: 'TYPE_STRING', dims: imageDims }],
    output: [{ name: 'input', data_type: 'TYPE_FP32', dims: batchDims([3, size, size]) }],
    instance_group: [{ count: instances, kind: 'KIND_CPU' }],
    parameters,
  };
  const ensemble: ModelConfig = {
    name: ensembleName,
    platform: 'ensemble',
    max_batch_size: maxBatch,
    input: [{ name: 'image', data_type: 'TYPE_STRING', dims: imageDims }],
    output: outputs(true),
    ensemble_scheduling: {
      step: [
        {
          model_name: preprocessName,
          model_version: -1,
          input_map: { image: 'image' },
          output_map: { input: 'preprocessed' },
        },
        {
          model_name: name,
          model_version: -1,
          input_map: { [layout.input]: 'preprocessed' },
          output_map: {
            [layout.logits]: 'logits',
            ...(outputs(false).length > 1 ? { [layout.embedding]: 'embedding' } : {}),
          },
        },
      ],
    },
    parameters,
  };

  const repo = path.resolve(options.out);
  const labels = `${info.classes.join('\n')}\n`;
  const files: [string, string | Uint8Array][] = [
    [path.join(repo, name, String(version), layout.file), modelBytes],
    [path.join(repo, name, 'config.pbtxt'), await writeModelConfig(classifier)],
    [path.join(repo, name, 'labels.txt'), labels],
    [
      path.join(repo, preprocessName, '1', 'model.py'),
      await fs.readFile(path.join(packageRoot, 'scripts', 'triton_preprocess.py')),
    ],
    [path.join(repo, preprocessName, 'config.pbtxt'), await writeModelConfig(preprocess)],
    [path.join(repo, ensembleName, 'config.pbtxt'), await writeModelConfig(ensemble)],
    [path.join(repo, ensembleName, 'labels.txt'), labels],
  ];
  // The engine's sidecar (TensorRT plans need it to load here; Triton ignores it).
  const sidecar = await fs.readFile(`${options.modelPath}.json`).catch(() => undefined);
  if (sidecar) files.splice(1, 0, [path.join(repo, name, String(version), `${layout.file}.json`), sidecar]);
  for (const [file, data] of files) await writeFileAtomic(file, data);
  // Triton wants a version folder for the ensemble too, even an empty one.
  await fs.mkdir(path.join(repo, ensembleName, '1'), { recursive: true });
  return {
    repository: repo,
    models: { classifier: name, preprocess: preprocessName, ensemble: ensembleName },
    version,
    files: files.map(([file]) => path.relative(repo, file)),
  };
}
