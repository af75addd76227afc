/**
 * MlflowStandIn: a STAND-IN for an MLflow tracking server, not MLflow (which cannot be installed here). A small
 * node:http server on 127.0.0.1 that answers the documented REST API 2.0 endpoints our client uses (experiments,
 * runs create/get/update/log-batch/set-tag, the artifacts proxy's PUT), keeps what it receives in memory, enforces
 * LogBatch's limits like MLflow does (1 MB request, 1000 metrics / 100 params / 100 tags; value lengths counted in
 * UTF-8 bytes, the strictest reading, and well-formed Unicode only), and can be told to be slow or to fail.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StandInRun {
  info: {
    run_id: string;
    experiment_id: string;
    run_name: string;
    status: string;
    start_time: number;
    end_time?: number;
    artifact_uri: string;
  };
  metrics: { key: string; value: number | string; timestamp: number; step: number }[];
  params: Map<string, string>;
  tags: Map<string, string>;
}

export interface BatchSize {
  metrics: number;
  params: number;
  tags: number;
}

export class MlflowStandIn {
  readonly experiments = new Map<string, string>();
  readonly runs = new Map<string, StandInRun>();
  readonly artifacts = new Map<string, Buffer>();
  /** Every request, in arrival order: "METHOD /path". */
  readonly calls: string[] = [];
  readonly batchSizes: BatchSize[] = [];
  /** Body size in bytes of every log-batch request. */
  readonly batchBytes: number[] = [];
  /** The artifact_uri of new runs. Defaults to the artifacts proxy's `mlflow-artifacts:/<exp>/<run>/artifacts`. */
  artifactUri: (experimentId: string, runId: string) => string = (exp, id) =>
    `mlflow-artifacts:/${exp}/${id}/artifacts`;
  experimentCreates = 0;
  /** Delay before every answer. */
  delayMs = 0;
  /** Answer the next N requests to a path (without query) with this status. */
  readonly failNext = new Map<string, { status: number; count: number }>();
  #server: Server;
  #nextId = 1;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<MlflowStandIn> {
    const server = createServer();
    const standIn = new MlflowStandIn(server);
    server.on('request', (req, res) => void standIn.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return standIn;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Calls to one path (without query). */
  count(path: string): number {
    return this.calls.filter((c) => c.split(' ')[1]?.split('?')[0] === path).length;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://x');
    this.calls.push(`${req.method} ${url.pathname}`);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (res.destroyed) return;
    const fail = this.failNext.get(url.pathname);
    if (fail && fail.count > 0) {
      fail.count--;
      return send(res, fail.status, { error_code: 'INTERNAL_ERROR', message: 'injected failure' });
    }
    try {
      const body = req.method === 'PUT' || raw.length === 0 ? {} : (JSON.parse(raw.toString('utf8')) as Body);
      this.#route(req.method ?? 'GET', url, body, raw, res);
    } catch (err) {
      send(res, 400, { error_code: 'MALFORMED_REQUEST', message: (err as Error).message });
    }
  }

  #route(method: string, url: URL, body: Body, raw: Buffer, res: ServerResponse): void {
    const p = url.pathname;
    const artifactPrefix = '/api/2.0/mlflow-artifacts/artifacts/';
    if (method === 'PUT' && p.startsWith(artifactPrefix)) {
      this.artifacts.set(decodeURIComponent(p.slice(artifactPrefix.length)), raw);
      return send(res, 200, {});
    }
    if (method === 'GET' && p === '/api/2.0/mlflow/runs/get') {
      const run = this.#run({ run_id: url.searchParams.get('run_id') }, res);
      if (!run) return;
      const data = {
        params: [...run.params].map(([key, value]) => ({ key, value })),
        tags: [...run.tags].map(([key, value]) => ({ key, value })),
      };
      return send(res, 200, { run: { info: { ...run.info, run_uuid: run.info.run_id }, data } });
    }
    if (method === 'GET' && p === '/api/2.0/mlflow/experiments/get-by-name') {
      const name = url.searchParams.get('experiment_name') ?? '';
      const id = this.experiments.get(name);
      if (!id) return send(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `No experiment '${name}'` });
      return send(res, 200, { experiment: { experiment_id: id, name, lifecycle_stage: 'active' } });
    }
    if (method !== 'POST') return send(res, 404, { error_code: 'ENDPOINT_NOT_FOUND', message: p });
    switch (p) {
      case '/api/2.0/mlflow/experiments/create': {
        const name = String(body.name);
        if (this.experiments.has(name)) {
          return send(res, 400, { error_code: 'RESOURCE_ALREADY_EXISTS', message: `'${name}' exists` });
        }
        const id = String(this.#nextId++);
        this.experiments.set(name, id);
        this.experimentCreates++;
        return send(res, 200, { experiment_id: id });
      }
      case '/api/2.0/mlflow/runs/create': {
        const id = `run${this.#nextId++}`;
        const exp = String(body.experiment_id);
        const run: StandInRun = {
          info: {
            run_id: id,
            experiment_id: exp,
            run_name: String(body.run_name ?? id),
            status: 'RUNNING',
            start_time: Number(body.start_time),
            artifact_uri: this.artifactUri(exp, id),
          },
          metrics: [],
          params: new Map(),
          tags: new Map((body.tags ?? []).map((t) => [t.key, t.value])),
        };
        this.runs.set(id, run);
        return send(res, 200, { run: { info: { ...run.info, run_uuid: id }, data: {} } });
      }
      case '/api/2.0/mlflow/runs/log-batch': {
        const run = this.#run(body, res);
        if (!run) return;
        const metrics = body.metrics ?? [];
        const params = body.params ?? [];
        const tags = body.tags ?? [];
        this.batchSizes.push({ metrics: metrics.length, params: params.length, tags: tags.length });
        this.batchBytes.push(raw.length);
        // MLflow's own LogBatch validation.
        if (raw.length > 1_000_000) {
          return send(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: 'request over 1000000 bytes' });
        }
        if (metrics.length > 1000 || params.length > 100 || tags.length > 100) {
          return send(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: 'batch over the limits' });
        }
        if (metrics.length + params.length + tags.length > 1000) {
          return send(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: 'more than 1000 items' });
        }
        for (const prm of params) {
          const old = run.params.get(prm.key);
          if (old !== undefined && old !== prm.value) {
            return send(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: `param ${prm.key} changed` });
          }
          const bad = badValue(prm, 6000);
          if (bad) return send(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: `param ${bad}` });
        }
        for (const t of tags) {
          const bad = badValue(t, 5000);
          if (bad) return send(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: `tag ${bad}` });
        }
        for (const prm of params) run.params.set(prm.key, prm.value);
        for (const t of tags) run.tags.set(t.key, t.value);
        run.metrics.push(...metrics);
        return send(res, 200, {});
      }
      case '/api/2.0/mlflow/runs/set-tag': {
        const run = this.#run(body, res);
        if (!run) return;
        const tag = { key: String(body.key), value: String(body.value) };
        const bad = badValue(tag, 5000);
        if (bad) return send(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: `tag ${bad}` });
        run.tags.set(tag.key, tag.value);
        return send(res, 200, {});
      }
      case '/api/2.0/mlflow/runs/update': {
        const run = this.#run(body, res);
        if (!run) return;
        run.info.status = String(body.status);
        if (body.end_time !== undefined) run.info.end_time = Number(body.end_time);
        return send(res, 200, { run_info: run.info });
      }
      default:
        return send(res, 404, { error_code: 'ENDPOINT_NOT_FOUND', message: p });
    }
  }

  #run(body: Body, res: ServerResponse): StandInRun | undefined {
    const run = this.runs.get(String(body.run_id));
    if (!run) send(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `run ${String(body.run_id)}` });
    return run;
  }
}

interface Body {
  [key: string]: unknown;
  tags?: { key: string; value: string }[];
  params?: { key: string; value: string }[];
  metrics?: { key: string; value: number | string; timestamp: number; step: number }[];
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why MLflow (or its database) would refuse a key/value pair, or undefined. */
function badValue(kv: { key: string; value: string }, maxValueBytes: number): string | undefined {
  if (LONE_SURROGATE.test(kv.key) || LONE_SURROGATE.test(kv.value)) return `${kv.key}: not well-formed Unicode`;
  if (Buffer.byteLength(kv.key) > 250) return `key ${kv.key.slice(0, 20)}... longer than 250 bytes`;
  if (Buffer.byteLength(kv.value) > maxValueBytes) return `${kv.key}: value longer than ${maxValueBytes} bytes`;
  return undefined;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
