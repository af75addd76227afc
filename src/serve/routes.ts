import path from 'node:path';

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { toRecord } from '../predict/predict.js';
import { pyJson } from '../predict/pyjson.js';
import { HttpError } from './httpErrors.js';
import type { ResolvedServeOptions } from './options.js';
import type { Predictor } from './Predictor.js';
import {
  batchSchema,
  errorResponses,
  healthSchema,
  infoSchema,
  invocationsBody,
  invocationsResponse,
  uploadBody,
  errorSchema,
  predictionSchema,
} from './schemas.js';
import { csvImages } from './csv.js';
import { invocationImages, readMultipartImages } from './uploads.js';
import type { ModelLookup } from './v2/model.js';
import { registerV2Routes } from './v2/rest.js';

export type ServerState = 'loading' | 'warming_up' | 'ready' | 'stopping' | 'stopped' | 'failed';

/** What the routes need from the server that owns them. */
export interface RouteContext {
  readonly options: ResolvedServeOptions;
  readonly version: string;
  state(): ServerState;
  uptimeSeconds(): number;
  loadError(): string | undefined;
  /** The predictor once the model is loaded, else undefined. */
  predictor(): Predictor | undefined;
  renderMetrics(): Promise<{ contentType: string; text: string }>;
  /** The models of the Open Inference Protocol (/v2/models/...). */
  readonly models: ModelLookup;
}

/** Body schemas on upload routes document the request; the parser and the handler enforce it. */
const documentOnly = (): (() => boolean) => () => true;

function requireMultipart(request: FastifyRequest, route: string, field: string): void {
  if (request.isMultipart()) return;
  const type = request.headers['content-type'];
  const length = Number(request.headers['content-length'] ?? 0);
  const hint = `send multipart/form-data with the image file in field \`${field}\``;
  if (!type && !(length > 0) && request.headers['transfer-encoding'] === undefined) {
    throw new HttpError(400, 'ERR_EMPTY_REQUEST', `empty request: ${route} needs an image; ${hint}`);
  }
  throw new HttpError(415, 'ERR_UNSUPPORTED_MEDIA_TYPE', `${route} does not take '${type ?? 'no type'}': ${hint}`);
}

/** Registers every endpoint. */
export function registerRoutes(app: FastifyInstance, ctx: RouteContext, exampleImage: string): void {
  for (const schema of [errorSchema, predictionSchema, batchSchema, infoSchema, healthSchema]) app.addSchema(schema);
  const o = ctx.options;
  // MLflow's CSV scoring input, kept as text for csvImages (within the same body limit as JSON).
  app.addContentTypeParser('text/csv', { parseAs: 'string', bodyLimit: o.maxBodyBytes }, (_request, body, done) =>
    done(null, body),
  );

  // GET / lists what is registered, so that the list cannot drift from the routes (HEAD comes with every GET).
  const endpoints: string[] = [];
  app.addHook('onRoute', (route) => {
    if ((route.schema as { hide?: boolean } | undefined)?.hide) return;
    // Path parameters as OpenAPI writes them: /v2/models/{name}.
    const url = route.url.replace(/:(\w+)/g, '{$1}');
    for (const method of [route.method].flat()) if (method !== 'HEAD') endpoints.push(`${method} ${url}`);
  });

  const predictor = (): Predictor => {
    const p = ctx.predictor();
    if (ctx.state() === 'stopping' || ctx.state() === 'stopped') {
      throw new HttpError(503, 'ERR_SHUTTING_DOWN', 'the server is shutting down', { connection: 'close' });
    }
    if (!p || ctx.state() !== 'ready') {
      throw new HttpError(
        503,
        'ERR_NOT_READY',
        ctx.state() === 'failed'
          ? `the model failed to load: ${ctx.loadError() ?? 'unknown error'}`
          : `the model is not ready yet (${ctx.state().replace('_', ' ')}); retry shortly`,
        { 'retry-after': '1' },
      );
    }
    return p;
  };
  const requireReady = async (): Promise<void> => {
    predictor();
  };
  const limits = {
    maxFileBytes: o.maxFileBytes,
    maxBodyBytes: o.maxBodyBytes,
  };
  const json = (reply: FastifyReply, text: string): string => {
    reply.type('application/json; charset=utf-8');
    return text;
  };

  app.get(
    '/',
    {
      schema: {
        summary: 'API information: model, backend, precision, classes, version, limits',
        tags: ['info'],
        response: { 200: { $ref: 'Info#' } },
      },
    },
    async () => {
      const info = ctx.predictor()?.engine.info;
      return {
        name: 'trt-flowers',
        version: ctx.version,
        ...(info
          ? {
              model: path.basename(info.path),
              model_path: info.path,
              backend: info.backend,
              precision: info.precision,
              device: info.device,
              classes: info.classes,
              input_shape: info.inputShape,
              preprocessing: info.preprocessing,
              metadata_source: info.metadataSource,
              versions: info.versions,
            }
          : {}),
        ready: ctx.state() === 'ready',
        limits: {
          max_body_bytes: o.maxBodyBytes,
          max_file_bytes: o.maxFileBytes,
          max_images_per_request: o.maxImagesPerRequest,
          max_pixels: o.maxPixels,
          max_batch: o.maxBatch,
          max_wait_ms: o.maxWaitMs,
        },
        docs: '/docs',
        endpoints: [...endpoints, 'GET /docs', 'GET /openapi.json'],
      };
    },
  );

  const health = (request: FastifyRequest, reply: FastifyReply, live: boolean) => {
    const ready = ctx.state() === 'ready';
    const status = ready ? 'ok' : ctx.state();
    reply.code(live || ready ? 200 : 503);
    if (!ready && !live) reply.header('retry-after', '1');
    return {
      status,
      live: ctx.state() !== 'stopped',
      ready,
      model_loaded: ctx.predictor() !== undefined,
      warmed_up: ready || ctx.state() === 'stopping',
      uptime_s: Math.round(ctx.uptimeSeconds() * 10) / 10,
      queue_depth: ctx.predictor()?.queueDepth ?? 0,
      ...(ctx.loadError() ? { error: ctx.loadError() } : {}),
    };
  };
  const healthSchemaFor = (summary: string, code: 200 | 503) => ({
    summary,
    tags: ['info'],
    response: { 200: { $ref: 'Health#' }, ...(code === 503 ? { 503: { $ref: 'Health#' } } : {}) },
  });
  app.get(
    '/health',
    {
      schema: healthSchemaFor(
        'Readiness: 200 once the model is loaded and one warm-up inference is done, 503 before and while stopping',
        503,
      ),
    },
    async (request, reply) => health(request, reply, false),
  );
  app.get('/health/ready', { schema: healthSchemaFor('Readiness (same as /health)', 503) }, async (request, reply) =>
    health(request, reply, false),
  );
  app.get(
    '/health/live',
    { schema: healthSchemaFor('Liveness: 200 while the process answers', 200) },
    async (request, reply) => health(request, reply, true),
  );

  app.post(
    '/predict',
    {
      schema: {
        summary: 'Classify one image',
        description:
          'multipart/form-data with the image in field `file` (JPEG, PNG, WebP, TIFF or BMP, any size up to the ' +
          'limits). Answers the JSON of `trt-flowers predict`, `image_path` being the uploaded file name.',
        tags: ['predict'],
        consumes: ['multipart/form-data'],
        body: uploadBody('file', false, 1),
        response: { 200: { $ref: 'Prediction#' }, ...errorResponses(400, 408, 413, 415, 500, 503) },
      },
      validatorCompiler: documentOnly,
      onRequest: requireReady,
    },
    async (request, reply) => {
      requireMultipart(request, 'POST /predict', 'file');
      const [result] = await predictor().predict((add) =>
        readMultipartImages(request, { ...limits, fields: ['file'], maxFiles: 1, route: 'POST /predict' }, add),
      );
      return json(reply, pyJson(toRecord(result!.name, result!.prediction)));
    },
  );

  app.post(
    '/predict/batch',
    {
      schema: {
        summary: `Classify up to ${o.maxImagesPerRequest} images`,
        description:
          `multipart/form-data with 1 to ${o.maxImagesPerRequest} image files in field \`files\` (or repeated ` +
          '`file` fields). Answers {"predictions": [...]} in upload order, each as `trt-flowers predict` prints it. ' +
          'One unusable image fails the request with a 4xx naming it.',
        tags: ['predict'],
        consumes: ['multipart/form-data'],
        body: uploadBody('files', true, o.maxImagesPerRequest),
        response: { 200: { $ref: 'BatchPrediction#' }, ...errorResponses(400, 408, 413, 415, 500, 503) },
      },
      validatorCompiler: documentOnly,
      onRequest: requireReady,
    },
    async (request, reply) => {
      requireMultipart(request, 'POST /predict/batch', 'files');
      const results = await predictor().predict((add) =>
        readMultipartImages(
          request,
          { ...limits, fields: ['files', 'file'], maxFiles: o.maxImagesPerRequest, route: 'POST /predict/batch' },
          add,
        ),
      );
      return json(reply, pyJson({ predictions: results.map((r) => toRecord(r.name, r.prediction)) }));
    },
  );

  app.post(
    '/invocations',
    {
      schema: {
        summary: "MLflow's scoring protocol, for images",
        description:
          'For MLflow-style clients: a JSON body with base64-encoded images. Answers {"predictions": [...]}, one ' +
          'record per image in order.',
        tags: ['mlflow'],
        body: invocationsBody(o.maxImagesPerRequest, exampleImage),
        response: { 200: invocationsResponse, ...errorResponses(400, 413, 415, 500, 503) },
      },
      validatorCompiler: documentOnly,
      onRequest: requireReady,
    },
    async (request, reply) => {
      const type = request.headers['content-type'] ?? '';
      const csv = /^text\/csv\b/i.test(type);
      if (!csv && !/^application\/json\b/i.test(type)) {
        throw new HttpError(
          415,
          'ERR_UNSUPPORTED_MEDIA_TYPE',
          `POST /invocations takes application/json (base64 images in \`instances\`, \`inputs\` or a dataframe) ` +
            `or text/csv (one base64 image per row); received '${type || 'no type'}'`,
        );
      }
      const uploads = csv
        ? csvImages(request.body as string, o.maxImagesPerRequest)
        : invocationImages(request.body, o.maxImagesPerRequest);
      const results = await predictor().predict(async (add) => uploads.forEach(add));
      const predictions = results.map((r) => {
        const { predicted_class, confidence, all_probabilities } = toRecord(r.name, r.prediction);
        return { predicted_class, confidence, all_probabilities };
      });
      return json(reply, pyJson({ predictions }));
    },
  );

  app.get(
    '/ping',
    {
      schema: {
        summary: "MLflow's readiness probe: 200 once the model is ready",
        tags: ['mlflow'],
        response: {
          200: { description: 'Ready', content: { 'text/plain': { schema: { type: 'string' } } } },
          ...errorResponses(503),
        },
      },
      onRequest: requireReady,
    },
    async (request, reply) => {
      reply.type('text/plain');
      return '\n';
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics: requests by route and status, latency, batch sizes, queue depth, process',
        tags: ['info'],
        produces: ['text/plain'],
        response: { 200: { type: 'string' } },
      },
    },
    async (request, reply) => {
      const { contentType, text } = await ctx.renderMetrics();
      reply.type(contentType);
      return text;
    },
  );

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  void app.register(
    async (scope) =>
      registerV2Routes(
        scope,
        {
          options: o,
          version: ctx.version,
          serverLive: () => ctx.state() !== 'stopped',
          serverReady: () => ctx.state() === 'ready',
          models: ctx.models,
        },
        exampleImage,
      ),
    { prefix: '/v2' },
  );
}
