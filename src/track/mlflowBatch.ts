/** MLflow's REST payload types, LogBatch limits and the helpers that keep requests within them. */
import type { RunStatus } from './Tracker.js';

/**
 * MLflow's LogBatch limits, and the value lengths its stores accept. Lengths are UTF-8 bytes: MLflow counts
 * characters, a database column may count bytes, and bytes are never fewer. Tag values stay at 5000 (MLflow 1.x;
 * 2.x takes 8000).
 */
export const MLFLOW_LIMITS = {
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  entitiesPerBatch: 1000,
  /** A log-batch request body, in bytes. */
  requestBytes: 1_000_000,
  paramValueLength: 6000,
  tagValueLength: 5000,
  keyLength: 250,
} as const;

/**
 * The longest prefix of `text` that is at most `maxBytes` in UTF-8, cut on a character boundary (never inside a
 * surrogate pair, which would leave unencodable text).
 */
export function utf8Prefix(text: string, maxBytes: number): string {
  // Fast path: every UTF-16 unit is at most 3 bytes.
  if (text.length * 3 <= maxBytes) return text;
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.codePointAt(i) as number;
    const size = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (bytes + size > maxBytes) break;
    bytes += size;
    i += c >= 0x10000 ? 2 : 1;
  }
  return text.slice(0, i);
}

/** A key cut to MLflow's key length. */
export const mlflowKey = (key: string): string => utf8Prefix(key, MLFLOW_LIMITS.keyLength);
/** A tag, key and value cut to MLflow's lengths. */
export const mlflowTag = (key: string, value: string): MlflowKeyValue => ({
  key: mlflowKey(String(key)),
  value: utf8Prefix(String(value), MLFLOW_LIMITS.tagValueLength),
});

export interface MlflowMetric {
  key: string;
  value: number;
  /** ms since the Unix epoch. */
  timestamp: number;
  step: number;
}
export interface MlflowKeyValue {
  key: string;
  value: string;
}
export interface LogBatch {
  metrics?: MlflowMetric[];
  params?: MlflowKeyValue[];
  tags?: MlflowKeyValue[];
}
export interface MlflowExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
}
export interface MlflowRunInfo {
  run_id: string;
  experiment_id: string;
  run_name?: string;
  status?: RunStatus;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  /** 'active' or 'deleted'. */
  lifecycle_stage?: string;
}

/** Auth headers from the standard MLflow environment variables. */
export function mlflowAuthHeaders(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (env.MLFLOW_TRACKING_TOKEN) return { authorization: `Bearer ${env.MLFLOW_TRACKING_TOKEN}` };
  if (env.MLFLOW_TRACKING_USERNAME) {
    const basic = Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD ?? ''}`);
    return { authorization: `Basic ${basic.toString('base64')}` };
  }
  return {};
}

/** Room left in a request for entities: the body minus the envelope (run id, field names, brackets). */
const ENTITY_BYTES = MLFLOW_LIMITS.requestBytes - 1024;

/**
 * Splits a batch into requests within MLflow's limits: counts per kind and in all, and the request's size in bytes
 * as JSON (escaping can double a value). Metrics, params and tags each keep their order.
 */
export function splitLogBatch(batch: LogBatch): LogBatch[] {
  const L = MLFLOW_LIMITS;
  const params = batch.params ?? [];
  const tags = batch.tags ?? [];
  const metrics = batch.metrics ?? [];
  const size = (entity: unknown): number => Buffer.byteLength(JSON.stringify(entity)) + 1; // + the comma
  const out: LogBatch[] = [];
  let [ip, it, im] = [0, 0, 0];
  while (ip < params.length || it < tags.length || im < metrics.length) {
    let bytes = 0;
    let count = 0;
    // Takes items from `from` while the kind's cap, the entity cap and the byte budget allow (always one).
    const take = <T>(from: readonly T[], start: number, cap: number, json: (x: T) => unknown): T[] => {
      const taken: T[] = [];
      for (let i = start; i < from.length && taken.length < cap && count < L.entitiesPerBatch; i++) {
        const n = size(json(from[i] as T));
        if (bytes + n > ENTITY_BYTES && count > 0) break;
        bytes += n;
        count++;
        taken.push(from[i] as T);
      }
      return taken;
    };
    const p = take(params, ip, L.paramsPerBatch, (x) => x);
    const t = take(tags, it, L.tagsPerBatch, (x) => x);
    const m = take(metrics, im, L.metricsPerBatch, metricJson);
    ip += p.length;
    it += t.length;
    im += m.length;
    const b: LogBatch = {};
    if (m.length) b.metrics = m;
    if (p.length) b.params = p;
    if (t.length) b.tags = t;
    out.push(b);
  }
  return out;
}

/** Flattens nested params to dotted keys with string values, cut to MLflow's lengths. */
export function toMlflowParams(params: Readonly<Record<string, unknown>>, prefix = ''): MlflowKeyValue[] {
  const out: MlflowKeyValue[] = [];
  for (const [k, v] of Object.entries(params)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out.push(...toMlflowParams(v as Record<string, unknown>, key));
    } else if (v !== undefined) {
      const value = typeof v === 'string' ? v : JSON.stringify(v);
      out.push({ key: mlflowKey(key), value: utf8Prefix(value, MLFLOW_LIMITS.paramValueLength) });
    }
  }
  return out;
}

/** JSON has no NaN / Infinity; MLflow's protobuf JSON parser takes them as strings. */
export function metricJson(m: MlflowMetric): Record<string, unknown> {
  const value = Number.isFinite(m.value)
    ? m.value
    : Number.isNaN(m.value)
      ? 'NaN'
      : m.value > 0
        ? 'Infinity'
        : '-Infinity';
  return { key: m.key, value, timestamp: Math.round(m.timestamp), step: m.step };
}
