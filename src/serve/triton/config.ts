import { join } from 'node:path';

import protobuf from 'protobufjs';
import textformat from 'protobufjs/ext/textformat.js';

import { packageRoot } from '../../util/paths.js';

/** Triton's model configuration messages that the project writes and reads (proto/model_config.proto). */
export const MODEL_CONFIG_PROTO = join(packageRoot, 'proto', 'model_config.proto');

export type DataTypeName = 'TYPE_FP32' | 'TYPE_STRING' | 'TYPE_INT64' | 'TYPE_UINT8' | 'TYPE_FP16' | 'TYPE_INT32';

export interface ModelTensor {
  name: string;
  data_type: DataTypeName;
  dims: number[];
  format?: 'FORMAT_NONE' | 'FORMAT_NHWC' | 'FORMAT_NCHW';
  label_filename?: string;
}

export interface EnsembleStep {
  model_name: string;
  model_version: number;
  input_map: Record<string, string>;
  output_map: Record<string, string>;
}

/** A ModelConfig as a plain object, with proto field names (the text format's names). */
export interface ModelConfig {
  name: string;
  platform?: string;
  backend?: string;
  version_policy?: {
    latest?: { num_versions: number };
    all?: Record<string, never>;
    specific?: { versions: number[] };
  };
  max_batch_size?: number;
  input?: ModelTensor[];
  output?: ModelTensor[];
  dynamic_batching?: {
    preferred_batch_size?: number[];
    max_queue_delay_microseconds?: number;
    preserve_ordering?: boolean;
  };
  ensemble_scheduling?: { step: EnsembleStep[] };
  instance_group?: {
    name?: string;
    kind?: 'KIND_AUTO' | 'KIND_GPU' | 'KIND_CPU' | 'KIND_MODEL';
    count?: number;
    gpus?: number[];
  }[];
  default_model_filename?: string;
  parameters?: Record<string, { string_value: string }>;
}

/** A config.pbtxt that does not parse or does not make sense; the message names the field. */
export class ModelConfigError extends Error {
  readonly code = 'ERR_MODEL_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ModelConfigError';
  }
}

let configType: Promise<protobuf.Type> | undefined;

/** The ModelConfig message type, loaded once (asynchronously) from the project's .proto. */
export function modelConfigType(): Promise<protobuf.Type> {
  configType ??= new protobuf.Root()
    .load(MODEL_CONFIG_PROTO, { keepCase: true })
    .then((root) => root.lookupType('inference.ModelConfig'));
  return configType;
}

/** The protobuf text format of a config (what config.pbtxt holds), after checking it. */
export async function writeModelConfig(config: ModelConfig): Promise<string> {
  checkModelConfig(config, `the config of '${config.name}'`);
  const type = await modelConfigType();
  const message = type.fromObject(config);
  const problem = type.verify(message);
  if (problem) throw new ModelConfigError(`the config of '${config.name}': ${problem}`);
  const text = textformat.toText(type, message);
  // What is written must read back as the same config (an enum name fromObject did not know would be lost).
  const back = type.toObject(textformat.fromText(type, text), { enums: String, longs: Number, defaults: false });
  if (JSON.stringify(sortKeys(back)) !== JSON.stringify(sortKeys(config))) {
    throw new ModelConfigError(
      `the config of '${config.name}' does not survive the text format: ${JSON.stringify(config)}`,
    );
  }
  return text;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, sortKeys(v)]),
  );
}

/**
 * Parses config.pbtxt (protobuf text format, Triton's ModelConfig) and checks it. Throws ModelConfigError naming the
 * file and the field: unknown fields, values of the wrong type, and settings that cannot work.
 */
export async function parseModelConfig(text: string, where: string): Promise<ModelConfig> {
  const type = await modelConfigType();
  let message: protobuf.Message;
  try {
    message = textformat.fromText(type, text);
  } catch (err) {
    const reason = (err as Error).message.replace(/^\.inference\./, '');
    throw new ModelConfigError(`${where}: ${locate(type, text) ?? reason}`);
  }
  const config = type.toObject(message, { enums: String, longs: Number, defaults: false }) as ModelConfig;
  checkModelConfig(config, where);
  return config;
}

const SCALAR_KIND: Record<string, 'int' | 'float' | 'bool' | 'string'> = {
  int32: 'int',
  int64: 'int',
  uint32: 'int',
  uint64: 'int',
  sint32: 'int',
  sint64: 'int',
  fixed32: 'int',
  fixed64: 'int',
  float: 'float',
  double: 'float',
  bool: 'bool',
  string: 'string',
  bytes: 'string',
};

/**
 * The first `field: value` whose value does not fit its field's type, as "field `x` (line n): ..." — the text format
 * parser's own message does not always say which field it was reading.
 */
function locate(root: protobuf.Type, text: string): string | undefined {
  const stack: (protobuf.Type | undefined)[] = [root];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/#.*$/, '');
    for (const m of line.matchAll(/([A-Za-z_]\w*)\s*(:?)\s*(\{|"(?:[^"\\]|\\.)*"|'[^']*'|[^\s{}]+)?|(\})/g)) {
      if (m[4]) {
        stack.pop();
        continue;
      }
      const scope = stack[stack.length - 1];
      const name = m[1] as string;
      const value = m[3];
      const field = scope?.fields[name];
      const where = `field \`${name}\` (line ${i + 1})`;
      if (scope && !field && !['key', 'value'].includes(name)) {
        return `${where}: no such field in ${scope.name}`;
      }
      if (value === '{') {
        field?.resolve();
        const resolved = field?.resolvedType;
        const map = field instanceof protobuf.MapField ? field : undefined;
        stack.push(map ? undefined : resolved instanceof protobuf.Type ? resolved : undefined);
        continue;
      }
      if (!field || value === undefined) continue;
      const kind = SCALAR_KIND[field.type];
      const quoted = /^["']/.test(value);
      const bad =
        (kind === 'int' && !/^-?(0x[0-9a-f]+|\d+)$/i.test(value)) ||
        (kind === 'float' && (quoted || Number.isNaN(Number(value.replace(/f$/i, ''))))) ||
        (kind === 'bool' && !/^(true|false|t|f|0|1)$/i.test(value)) ||
        (kind === 'string' && !quoted);
      if (bad) return `${where}: expected ${kind === 'int' ? 'an integer' : `a ${kind}`} value, received ${value}`;
      field.resolve();
      if (field.resolvedType instanceof protobuf.Enum && !(value in field.resolvedType.values)) {
        const known = Object.keys(field.resolvedType.values).join(', ');
        return `${where}: '${value}' is not one of ${known}`;
      }
    }
  }
  return undefined;
}

/** Checks what protobuf's types do not: settings that Triton (and this server) would refuse. */
export function checkModelConfig(config: ModelConfig, where: string): void {
  const fail = (field: string, problem: string): never => {
    throw new ModelConfigError(`${where}: field \`${field}\` ${problem}`);
  };
  if (!config.name) fail('name', 'is missing');
  const ensemble = config.platform === 'ensemble';
  if (!config.platform && !config.backend) fail('platform', 'or `backend` must be set');
  const maxBatch = config.max_batch_size ?? 0;
  if (maxBatch < 0) fail('max_batch_size', `must be 0 or more; received ${maxBatch}`);
  for (const [field, tensors] of [
    ['input', config.input],
    ['output', config.output],
  ] as const) {
    if (!tensors || tensors.length === 0) fail(field, 'must list at least one tensor');
    const seen = new Set<string>();
    tensors!.forEach((t, i) => {
      if (!t.name) fail(`${field}[${i}].name`, 'is missing');
      if (seen.has(t.name)) fail(`${field}[${i}].name`, `'${t.name}' appears twice`);
      seen.add(t.name);
      if (!t.data_type || (t.data_type as string) === 'TYPE_INVALID') fail(`${field}[${i}].data_type`, 'is missing');
      if (!t.dims || t.dims.length === 0) fail(`${field}[${i}].dims`, 'must list at least one dimension');
      t.dims.forEach((d, k) => {
        if (d !== -1 && d < 1) fail(`${field}[${i}].dims[${k}]`, `must be -1 or positive; received ${d}`);
      });
    });
  }
  const batching = config.dynamic_batching;
  if (batching) {
    if (maxBatch === 0) fail('dynamic_batching', 'needs max_batch_size > 0');
    for (const size of batching.preferred_batch_size ?? []) {
      if (size < 1 || size > maxBatch) {
        fail('dynamic_batching.preferred_batch_size', `${size} must be between 1 and max_batch_size ${maxBatch}`);
      }
    }
  }
  (config.instance_group ?? []).forEach((g, i) => {
    if (g.count !== undefined && g.count < 1)
      fail(`instance_group[${i}].count`, `must be 1 or more; received ${g.count}`);
  });
  if (ensemble) {
    const steps = config.ensemble_scheduling?.step ?? [];
    if (steps.length === 0) fail('ensemble_scheduling.step', 'must list the models of the ensemble');
    steps.forEach((s, i) => {
      if (!s.model_name) fail(`ensemble_scheduling.step[${i}].model_name`, 'is missing');
    });
  } else if (config.ensemble_scheduling) {
    fail('ensemble_scheduling', "is only for platform 'ensemble'");
  }
}
