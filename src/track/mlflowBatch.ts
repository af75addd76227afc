/** MLflow's REST payload types, LogBatch limits and the helpers that keep requests within them. */
import type { RunStatus } from './Tracker.js';

/** MLflow's LogBatch limits, and the value lengths its stores accept. */
export const MLFLOW_LIMITS = {
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  entitiesPerBatch: 1000,
  paramValueLength: 6000,
  tagValueLength: 5000,
  keyLength: 250,
} as const;

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

/** Splits a batch into requests within MLflow's limits (metrics, params and tags each keep their order). */
export function splitLogBatch(batch: LogBatch): LogBatch[] {
  const L = MLFLOW_LIMITS;
  const params = [...(batch.params ?? [])];
  const tags = [...(batch.tags ?? [])];
  const metrics = [...(batch.metrics ?? [])];
  const out: LogBatch[] = [];
  while (params.length || tags.length || metrics.length) {
    const p = params.splice(0, L.paramsPerBatch);
    const t = tags.splice(0, L.tagsPerBatch);
    const m = metrics.splice(0, Math.min(L.metricsPerBatch, L.entitiesPerBatch - p.length - t.length));
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
      out.push({ key: key.slice(0, MLFLOW_LIMITS.keyLength), value: value.slice(0, MLFLOW_LIMITS.paramValueLength) });
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
