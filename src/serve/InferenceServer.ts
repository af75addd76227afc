import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import fastifyMultipart from '@fastify/multipart';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance } from 'fastify';

import type { Engine } from '../engine/Engine.js';
import { toHttpError } from './httpErrors.js';
import { ServeMetrics } from './metrics.js';
import { modelNameFromPath, resolveServeOptions, type ResolvedServeOptions, type ServeOptions } from './options.js';
import { Predictor } from './Predictor.js';
import { registerRoutes, type RouteContext, type ServerState } from './routes.js';
import { exampleImageBase64 } from './schemas.js';
import { RepositoryModels } from './RepositoryModels.js';
import type { EngineLoadOptions } from '../engine/Engine.js';
import type { GrpcInferenceServer } from './v2/grpc.js';
import type { ModelLookup, ServedModel } from './v2/model.js';

const require = createRequire(import.meta.url);
const { version } = require('../../package.json') as { version: string };

/** Raw HTTP answers for errors found before a request reaches fastify (timeouts, malformed requests). */
function rawError(status: number, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  const reason = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }[status];
  return (
    `HTTP/1.1 ${status} ${reason ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/**
 * The HTTP inference server (fastify): POST /predict, /predict/batch and /invocations over one Engine with dynamic
 * batching, GET /, /health, /metrics, /docs and /openapi.json. Bad input always gets a 4xx JSON error
 * `{ "error": { "code", "message" } }`.
 *
 *   const server = new InferenceServer({ port: 8000 });
 *   await server.listen();                 // /health answers 503 until the model is ready
 *   await server.load(() => Engine.load('models/flower_classifier.onnx'));
 *   ...
 *   await server.close();                  // stop accepting, finish requests in flight, free the engine
 */
export class InferenceServer implements AsyncDisposable {
  readonly options: ResolvedServeOptions;
  readonly metrics: ServeMetrics;
  readonly app: FastifyInstance;
  #state: ServerState = 'loading';
  #predictor: Predictor | undefined;
  #engine: Engine | undefined;
  #ownsEngine = false;
  #loadError: string | undefined;
  #closing: Promise<void> | undefined;
  #grpc: GrpcInferenceServer | undefined;
  #repository: RepositoryModels | undefined;
  /** Open connections, and the request each one is answering (none: idle, or still sending its headers). */
  readonly #sockets = new Set<Socket>();
  readonly #requests = new WeakMap<Socket, IncomingMessage>();
  readonly #started = performance.now();

  constructor(options: ServeOptions = {}) {
    this.options = resolveServeOptions(options);
    const o = this.options;
    this.metrics = new ServeMetrics(() =>
      this.#predictor
        ? this.#predictor.queueDepth
        : [...this.metrics.modelQueues.values()].reduce((a, q) => a + q.depth(), 0),
    );
    this.metrics.ready.set(0);
    this.app = Fastify({
      logger: o.logRequests ? { level: 'info' } : false,
      bodyLimit: o.maxBodyBytes,
      requestTimeout: o.requestTimeoutMs,
      connectionTimeout: o.connectionTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      // Node checks request and header timeouts every connectionsCheckingInterval (30 s by default).
      http: {
        headersTimeout: o.headersTimeoutMs,
        connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(o.headersTimeoutMs / 4))),
      },
      forceCloseConnections: 'idle',
      return503OnClosing: false,
      clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => this.#clientError(err, socket),
    });
    // A client may half-close its socket (SHUT_WR) right after sending the request, and HTTP lets it. Node's HTTP
    // server then aborts the request and ends the socket unless httpAllowHalfOpen is set (undocumented, but what
    // Node's own tests use): with it, the answer is written and the socket ends after it.
    (this.app.server as typeof this.app.server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.#trackConnections();
    this.#configure();
  }

  /** loading → warming_up → ready → stopping → stopped (or failed when the model cannot load). */
  get state(): ServerState {
    return this.#state;
  }

  /** The engine being served, once loaded. */
  get engine(): Engine | undefined {
    return this.#engine;
  }

  /** The address after listen(): http://host:port. */
  get url(): string {
    const address = this.app.server.address() as AddressInfo | null;
    if (!address) throw new Error('the server is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  /** The gRPC service's address (host:port) once listening, when `grpcPort` is not -1. */
  get grpcAddress(): string | undefined {
    if (!this.#grpc) return undefined;
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `${host}:${this.#grpc.port}`;
  }

  /**
   * Starts accepting connections (GET /health answers 503 until load() is done), and the gRPC service when
   * `grpcPort` is set. Resolves with the HTTP URL.
   */
  async listen(): Promise<string> {
    await this.app.listen({ host: this.options.host, port: this.options.port });
    if (this.options.grpcPort >= 0) {
      const { GrpcInferenceServer } = await import('./v2/grpc.js');
      const grpc = await GrpcInferenceServer.create({
        options: this.options,
        version,
        metrics: this.metrics,
        serverLive: () => this.#state !== 'stopped',
        serverReady: () => this.#state === 'ready',
        models: this.#models,
      });
      this.#grpc = grpc;
      await grpc.listen(this.options.host, this.options.grpcPort);
    }
    return this.url;
  }

  /**
   * Serves an engine: a loaded Engine (left to the caller to dispose) or a function that loads one (disposed by
   * close()). Runs one warm-up image through the whole path, then reports ready. Rejects when loading fails, the
   * server then answering 503 with the reason.
   */
  async load(engine: Engine | (() => Promise<Engine>)): Promise<void> {
    if (this.#engine || this.#repository) throw new Error('the server already serves a model');
    this.#state = 'loading';
    try {
      const owned = typeof engine === 'function';
      const loaded = owned ? await engine() : engine;
      if (this.#closing) {
        if (owned) await loaded.dispose();
        throw new Error('the server was closed while the model was loading');
      }
      this.#engine = loaded;
      this.#ownsEngine = owned;
      const info = loaded.info;
      this.metrics.model.set(
        { model: info.path, backend: info.backend, precision: info.precision, device: info.device },
        1,
      );
      const labels = { model: this.options.modelName || modelNameFromPath(info.path), version: '1' };
      const predictor = new Predictor(loaded, this.options, this.metrics, labels);
      this.#predictor = predictor;
      this.metrics.modelQueues.set(`${labels.model}/1`, { ...labels, depth: () => predictor.queueDepth });
      this.#state = 'warming_up';
      await this.#predictor.warmUp();
      if (this.#closing) return;
      this.#state = 'ready';
      this.metrics.ready.set(1);
      this.metrics.modelReady.set(labels, 1);
    } catch (err) {
      if (!this.#closing) this.#state = 'failed';
      this.#loadError = (err as Error).message;
      throw err;
    }
  }

  /**
   * Serves every model and version of a Triton / KServe model repository (`<repo>/<model>/config.pbtxt`,
   * `<repo>/<model>/<version>/model.onnx|model.plan|model.pt`), each with its own batcher from its config, and reads
   * the repository again every `repositoryPollMs` to load added or changed versions and unload removed ones without
   * a restart. Resolves once the first reading is loaded; the server is ready then. /predict and /invocations use
   * the first model by name (its newest version).
   */
  async loadRepository(repository: string, engineOptions: EngineLoadOptions = {}): Promise<void> {
    if (this.#engine || this.#repository) throw new Error('the server already serves a model');
    const log = (line: string): boolean => process.stderr.write(`[serve] ${line}\n`);
    this.#state = 'loading';
    const models = new RepositoryModels({
      repository,
      serve: this.options,
      metrics: this.metrics,
      engine: engineOptions,
      onLog: log,
    });
    this.#repository = models;
    try {
      await models.start(this.options.repositoryPollMs);
      if (this.#closing) return;
      if (models.names.length === 0) log(`model repository '${repository}' holds no model this server runs (yet)`);
      this.#state = 'ready';
      this.metrics.ready.set(1);
    } catch (err) {
      if (!this.#closing) this.#state = 'failed';
      this.#loadError = (err as Error).message;
      throw err;
    }
  }

  /**
   * Graceful stop: refuses new connections, answers requests already received (new requests on open connections
   * get 503 and `Connection: close`), then frees the engine if the server loaded it. After `timeoutMs` the remaining
   * connections are cut. Idempotent.
   */
  close(timeoutMs = 30_000): Promise<void> {
    this.#closing ??= this.#close(timeoutMs);
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(timeoutMs: number): Promise<void> {
    this.#state = 'stopping';
    this.metrics.ready.set(0);
    const deadline = setTimeout(() => this.app.server.closeAllConnections(), timeoutMs);
    deadline.unref();
    try {
      const closed = this.app.close();
      this.#dropIncomplete();
      await Promise.all([closed, this.#grpc?.close(timeoutMs)]);
      await this.#predictor?.close();
      await this.#repository?.close();
    } finally {
      clearTimeout(deadline);
      this.#state = 'stopped';
      if (this.#ownsEngine) await this.#engine?.dispose();
    }
  }

  #trackConnections(): void {
    const server = this.app.server;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      const socket = request.socket;
      this.#requests.set(socket, request);
      // Until its answer is sent (the request itself emits 'close' as soon as its body is read).
      response.once('close', () => {
        if (this.#requests.get(socket) === request) this.#requests.delete(socket);
      });
    });
  }

  /**
   * On shutdown, connections that have not sent a whole request (a bare connect, partial headers, a partial body) are
   * closed at once rather than waited for: the time they would take is the client's, up to the shutdown timeout.
   * Requests received whole are still answered.
   */
  #dropIncomplete(): void {
    for (const socket of this.#sockets) {
      const request = this.#requests.get(socket);
      if (!request?.complete) socket.destroy();
    }
  }

  #configure(): void {
    const app = this.app;
    const o = this.options;
    void app.register(fastifyMultipart, { limits: { fileSize: o.maxFileBytes, files: o.maxImagesPerRequest } });
    void app.register(fastifySwagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'trt-flowers inference server',
          description:
            'Flower classification (daisy, dandelion, roses, sunflowers, tulips) over TorchScript, ONNX or ' +
            'TensorRT engines, with dynamic batching. Errors are `{"error": {"code", "message"}}`.',
          version,
        },
        tags: [
          { name: 'predict', description: 'Image classification' },
          { name: 'mlflow', description: "MLflow's scoring protocol" },
          { name: 'info', description: 'Model, health and metrics' },
        ],
      },
      refResolver: {
        buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
      },
    });
    void app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });

    const metrics = this.metrics;
    app.addHook('onRequest', async (request, reply) => {
      const started = performance.now();
      metrics.inFlight.inc();
      reply.raw.once('close', () => {
        metrics.inFlight.dec();
        const route = request.routeOptions.url ?? 'unmatched';
        const status = reply.raw.writableFinished ? String(reply.raw.statusCode) : 'aborted';
        metrics.requests.inc({ method: request.method, route, status });
        metrics.latency.observe({ method: request.method, route }, (performance.now() - started) / 1000);
      });
    });
    // While stopping, every answer closes its connection so that close() is not held by keep-alive.
    app.addHook('onSend', async (_request, reply) => {
      if (this.#state === 'stopping' || this.#state === 'stopped') reply.header('connection', 'close');
    });
    app.setErrorHandler((err, request, reply) => {
      const http = toHttpError(err);
      if (http.statusCode >= 500 && http.code !== 'ERR_NOT_READY' && http.statusCode !== 503) {
        process.stderr.write(`[serve] ${request.method} ${request.url}: ${(err as Error).stack ?? String(err)}\n`);
      }
      void reply
        .code(http.statusCode)
        .headers(http.headers)
        .type('application/json; charset=utf-8')
        .send(JSON.stringify(http.body));
    });
    app.setNotFoundHandler((request, reply) => {
      void reply
        .code(404)
        .type('application/json; charset=utf-8')
        .send(
          JSON.stringify({
            error: { code: 'ERR_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` },
          }),
        );
    });

    const ctx: RouteContext = {
      options: o,
      version,
      state: () => this.#state,
      uptimeSeconds: () => (performance.now() - this.#started) / 1000,
      loadError: () => this.#loadError,
      predictor: () => (this.#repository ? this.#repository.defaultModel()?.predictor() : this.#predictor),
      renderMetrics: () => metrics.render(),
      models: this.#models,
    };
    // The example image of the document is made once, as the routes are registered (before listen() resolves).
    void app.register(async (scope) => registerRoutes(scope, ctx, await exampleImageBase64()));
  }

  /** The one model of this server once its name is known (its closures read the server's state as it is then). */
  #single: readonly ServedModel[] | undefined;

  /** The one model of this server, for the Open Inference Protocol: named by `modelName` or its file, version 1. */
  readonly #models: ModelLookup = {
    versions: (name: string): readonly ServedModel[] => {
      if (this.#repository) return this.#repository.versions(name);
      const served = this.options.modelName || (this.#engine ? modelNameFromPath(this.#engine.info.path) : '');
      if (served === '' || name !== served) return [];
      this.#single ??= [
        {
          name: served,
          version: '1',
          predictor: () => (this.#state === 'ready' ? this.#predictor : undefined),
          info: () => this.#engine?.info,
          notReadyReason: () =>
            this.#state === 'failed'
              ? `it failed to load: ${this.#loadError ?? 'unknown error'}`
              : this.#state.replace('_', ' '),
        },
      ];
      return this.#single;
    },
  };

  /** Timeouts and malformed requests found by Node's HTTP parser, answered in this server's error shape. */
  #clientError(err: Error & { code?: string }, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const o = this.options;
      const response =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? rawError(
              408,
              'ERR_REQUEST_TIMEOUT',
              `the request was not received in time (limits: headers ${o.headersTimeoutMs} ms, whole request ` +
                `${o.requestTimeoutMs} ms)`,
            )
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? rawError(431, 'ERR_HEADERS_TOO_LARGE', 'the request headers are too large')
            : rawError(400, 'ERR_BAD_REQUEST', `malformed HTTP request (${err.code ?? err.message})`);
      socket.end(response);
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
    }
  }
}

/**
 * Starts a server over an engine (or a function that loads one) and resolves once it is listening and ready.
 * close() stops it; it disposes the engine only when it loaded it.
 */
export async function serve(
  engine: Engine | (() => Promise<Engine>),
  options: ServeOptions = {},
): Promise<InferenceServer> {
  const server = new InferenceServer(options);
  await server.listen();
  try {
    await server.load(engine);
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}
