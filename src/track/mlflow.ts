/**
 * A thin typed client over MLflow's REST API 2.0 (no maintained npm client exists). Requests retry with
 * exponential backoff on network errors, 5xx and 429; every request has its own timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { writeFileAtomic } from '../util/fs.js';
import { SaveError, TrtFlowersError } from '../errors.js';
import { artifactStore, localArtifactFile } from './mlflowArtifacts.js';
import {
  type LogBatch,
  metricJson,
  mlflowAuthHeaders,
  type MlflowExperiment,
  type MlflowKeyValue,
  type MlflowRunInfo,
  mlflowTag,
  splitLogBatch,
} from './mlflowBatch.js';
import type { RunStatus } from './Tracker.js';

export * from './mlflowArtifacts.js';
export * from './mlflowBatch.js';

/**
 * A request MLflow answered with an error (or that never got an answer). The run data it carried was not recorded.
 * Uses the ERR_SAVE code: every call but a look-up writes to the tracking server.
 */
export class MlflowError extends TrtFlowersError {
  /** HTTP status; 0 when no response came (network error, timeout). */
  readonly status: number;
  /** MLflow's `error_code`, e.g. RESOURCE_DOES_NOT_EXIST. */
  readonly mlflowCode: string | undefined;
  constructor(message: string, status: number, mlflowCode?: string, options?: { cause?: unknown }) {
    super('ERR_SAVE', message, options);
    this.status = status;
    this.mlflowCode = mlflowCode;
  }
  /** Worth retrying: no response, 429 or 5xx. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export interface MlflowClientOptions {
  /** Server URL, http or https. */
  trackingUri: string;
  /** Per-request timeout (JSON calls). Defaults to 10000 ms. */
  requestTimeoutMs?: number;
  /** Per-request timeout of artifact uploads. Defaults to 300000 ms. */
  uploadTimeoutMs?: number;
  /** Attempts per request (1 = no retry). Defaults to 4. */
  attempts?: number;
  /** First retry delay; doubles each retry, with jitter. Defaults to 250 ms. */
  backoffMs?: number;
  /** Longest retry delay (also caps a server's Retry-After). Defaults to 5000 ms. */
  maxBackoffMs?: number;
  /** Extra headers. Defaults to auth from MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD. */
  headers?: Record<string, string>;
  /** Aborts every request in flight and every retry wait. Defaults to none. */
  signal?: AbortSignal;
}

export class MlflowClient {
  readonly baseUrl: string;
  readonly #o: Required<Omit<MlflowClientOptions, 'signal' | 'trackingUri'>> & { signal?: AbortSignal };

  constructor(options: MlflowClientOptions) {
    let url: URL;
    try {
      url = new URL(options.trackingUri);
    } catch {
      throw new RangeError(
        `Expected an http(s) URL for \`trackingUri\` but received ${JSON.stringify(options.trackingUri)}`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RangeError(
        `Expected an http(s) URL for \`trackingUri\` but received ${JSON.stringify(options.trackingUri)}`,
      );
    }
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.#o = {
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      uploadTimeoutMs: options.uploadTimeoutMs ?? 300_000,
      attempts: Math.max(1, options.attempts ?? 4),
      backoffMs: options.backoffMs ?? 250,
      maxBackoffMs: options.maxBackoffMs ?? 5000,
      headers: options.headers ?? mlflowAuthHeaders(),
      signal: options.signal,
    };
  }

  /** The experiment with this name, or undefined when there is none. */
  async getExperimentByName(name: string): Promise<MlflowExperiment | undefined> {
    try {
      const res = await this.#json<{ experiment: MlflowExperiment }>(
        'GET',
        `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(name)}`,
      );
      return res.experiment;
    } catch (err) {
      if (err instanceof MlflowError && (err.status === 404 || err.mlflowCode === 'RESOURCE_DOES_NOT_EXIST')) {
        return undefined;
      }
      throw err;
    }
  }

  /** Creates an experiment and returns its id. */
  async createExperiment(name: string, tags: MlflowKeyValue[] = []): Promise<string> {
    const res = await this.#json<{ experiment_id: string }>('POST', '/api/2.0/mlflow/experiments/create', {
      name,
      tags,
    });
    return res.experiment_id;
  }

  /** The id of the experiment with this name, created when missing (a concurrent creator is tolerated). */
  async getOrCreateExperiment(name: string): Promise<string> {
    const found = await this.getExperimentByName(name);
    if (found) return found.experiment_id;
    try {
      return await this.createExperiment(name);
    } catch (err) {
      if (!(err instanceof MlflowError) || err.mlflowCode !== 'RESOURCE_ALREADY_EXISTS') throw err;
      const again = await this.getExperimentByName(name);
      if (!again) throw err;
      return again.experiment_id;
    }
  }

  async createRun(
    experimentId: string,
    options: { runName?: string; startTime?: number; tags?: MlflowKeyValue[] } = {},
  ): Promise<MlflowRunInfo> {
    const res = await this.#json<{ run: { info: MlflowRunInfo & { run_uuid?: string } } }>(
      'POST',
      '/api/2.0/mlflow/runs/create',
      {
        experiment_id: experimentId,
        run_name: options.runName,
        start_time: options.startTime ?? Date.now(),
        tags: options.tags ?? [],
      },
    );
    const info = res.run.info;
    return { ...info, run_id: info.run_id ?? info.run_uuid };
  }

  /** A run's info (e.g. to continue it). Throws MlflowError, status 404 / RESOURCE_DOES_NOT_EXIST when unknown. */
  async getRun(runId: string): Promise<MlflowRunInfo> {
    const res = await this.#json<{ run: { info: MlflowRunInfo & { run_uuid?: string } } }>(
      'GET',
      `/api/2.0/mlflow/runs/get?run_id=${encodeURIComponent(runId)}`,
    );
    const info = res.run.info;
    return { ...info, run_id: info.run_id ?? info.run_uuid };
  }

  /** Logs a batch, split into as many requests as MLflow's limits need (sent one after the other). */
  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    for (const part of splitLogBatch(batch)) {
      await this.#json('POST', '/api/2.0/mlflow/runs/log-batch', {
        run_id: runId,
        metrics: (part.metrics ?? []).map(metricJson),
        params: part.params ?? [],
        tags: part.tags ?? [],
      });
    }
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.#json('POST', '/api/2.0/mlflow/runs/set-tag', { run_id: runId, ...mlflowTag(key, value) });
  }

  async updateRun(runId: string, update: { status: RunStatus; endTime?: number; runName?: string }): Promise<void> {
    await this.#json('POST', '/api/2.0/mlflow/runs/update', {
      run_id: runId,
      status: update.status,
      end_time: update.endTime ?? (update.status === 'RUNNING' ? undefined : Date.now()),
      run_name: update.runName,
    });
  }

  /**
   * Stores bytes as a run artifact where the run's `artifact_uri` points (see `artifactStore`): through the
   * server's artifacts proxy (PUT /api/2.0/mlflow-artifacts/artifacts/<root>/<artifactPath>), or straight into a
   * local artifact folder (atomic write; SaveError on failure). Throws RangeError for a store it cannot write.
   */
  async uploadArtifact(run: MlflowRunInfo, artifactPath: string, data: Uint8Array): Promise<void> {
    const store = artifactStore(run);
    if (store.kind === 'unsupported') throw new RangeError(`MLflow: ${store.reason}`);
    if (store.kind === 'local') {
      const file = localArtifactFile(store.dir, artifactPath);
      try {
        await writeFileAtomic(file, data);
      } catch (err) {
        throw new SaveError(`cannot write MLflow artifact ${file}: ${(err as Error).message}`, { cause: err });
      }
      return;
    }
    const rel = artifactPath.split('/').map(encodeURIComponent).join('/');
    const root = store.root.split('/').map(encodeURIComponent).join('/');
    await this.#request('PUT', `/api/2.0/mlflow-artifacts/artifacts/${root}/${rel}`, data, this.#o.uploadTimeoutMs);
  }

  async #json<T>(method: string, route: string, body?: unknown): Promise<T> {
    const text = await this.#request(method, route, body === undefined ? undefined : JSON.stringify(body));
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** One request with retries; resolves to the response text of a 2xx, else throws MlflowError. */
  async #request(method: string, route: string, body?: string | Uint8Array, timeoutMs = this.#o.requestTimeoutMs) {
    const url = `${this.baseUrl}${route}`;
    const headers: Record<string, string> = { ...this.#o.headers };
    if (typeof body === 'string') headers['content-type'] = 'application/json';
    else if (body) headers['content-type'] = 'application/octet-stream';
    for (let attempt = 1; ; attempt++) {
      let error: MlflowError;
      let retryAfterMs: number | undefined;
      try {
        const timeout = AbortSignal.timeout(timeoutMs);
        const signal = this.#o.signal ? AbortSignal.any([timeout, this.#o.signal]) : timeout;
        const res = await fetch(url, { method, headers, body, signal });
        const text = await res.text();
        if (res.ok) return text;
        let code: string | undefined;
        let message = text.slice(0, 500);
        try {
          const parsed = JSON.parse(text) as { error_code?: string; message?: string };
          code = parsed.error_code;
          message = parsed.message ?? message;
        } catch {
          // not JSON: keep the text
        }
        error = new MlflowError(`MLflow ${method} ${route} → ${res.status}: ${message}`, res.status, code);
        const ra = Number(res.headers.get('retry-after'));
        if (res.status === 429 && Number.isFinite(ra) && ra > 0) retryAfterMs = ra * 1000;
      } catch (err) {
        const why = (err as Error).name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : networkReason(err);
        error = new MlflowError(`MLflow ${method} ${route} failed: ${why}`, 0, undefined, { cause: err });
      }
      if (!error.retryable || attempt >= this.#o.attempts || this.#o.signal?.aborted) throw error;
      const backoff = this.#o.backoffMs * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5);
      try {
        await sleep(Math.min(this.#o.maxBackoffMs, retryAfterMs ?? backoff), undefined, { signal: this.#o.signal });
      } catch {
        throw error;
      }
    }
  }
}

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
