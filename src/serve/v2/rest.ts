import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { HttpError, toHttpError } from '../httpErrors.js';
import type { ResolvedServeOptions } from '../options.js';
import { fromBase64 } from '../uploads.js';
import {
  elementCount,
  fromRaw,
  infer,
  toRaw,
  unsupportedType,
  type InferInput,
  type InferRequest,
  type InferResult,
  type RequestedOutput,
} from './infer.js';
import { findModel, loadedInfo, modelConfig, modelMetadata, type ModelLookup } from './model.js';
import { v2Schemas } from './schemas.js';

/** What the V2 routes need from the server. */
export interface V2Context {
  readonly options: ResolvedServeOptions;
  readonly version: string;
  /** The server is ready: every model it serves is loaded and warmed up. */
  serverReady(): boolean;
  serverLive(): boolean;
  readonly models: ModelLookup;
}

/** The protocol's extensions this server implements. */
export const V2_EXTENSIONS = ['binary_tensor_data', 'classification', 'model_configuration'];

const HEADER_LENGTH = 'inference-header-content-length';

const bad = (message: string): HttpError => new HttpError(400, 'ERR_BAD_REQUEST', message);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Flattens JSON tensor data (flat or nested lists, row-major) into `out`. */
function flattenNumbers(data: unknown, where: string): Float32Array {
  if (!Array.isArray(data)) throw bad(`${where}: \`data\` must be a list of numbers`);
  const flat = data.flat(8) as unknown[];
  const out = new Float32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number') {
      throw bad(`${where}: element ${i} of \`data\` is ${JSON.stringify(v) ?? String(v)}; FP32 data must be numbers`);
    }
    out[i] = v;
  }
  return out;
}

/**
 * Decodes a V2 inference request: the JSON header and, with the binary-data extension, the binary tensors that
 * follow it (in input order, each `parameters.binary_data_size` bytes).
 */
export function decodeRestRequest(header: unknown, binary: Buffer): InferRequest {
  if (!isObject(header)) throw bad('the inference request must be a JSON object with `inputs`');
  const { id, inputs, outputs, parameters } = header;
  if (id !== undefined && typeof id !== 'string') throw bad(`\`id\` must be a string; received ${JSON.stringify(id)}`);
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad('`inputs` must be a non-empty list of tensors');
  if (parameters !== undefined && !isObject(parameters)) throw bad('`parameters` must be an object');
  const binaryOutput = parameters?.binary_data_output === true;
  let at = 0;
  const decoded: InferInput[] = inputs.map((input: unknown, i): InferInput => {
    if (!isObject(input) || typeof input.name !== 'string') throw bad(`inputs[${i}] must be an object with a \`name\``);
    const where = `input '${input.name}'`;
    const count = elementCount(input.shape, where);
    const datatype = input.datatype;
    if (typeof datatype !== 'string') throw bad(`${where}: \`datatype\` must be a string (FP32, BYTES, ...)`);
    if (input.parameters !== undefined && !isObject(input.parameters))
      throw bad(`${where}: \`parameters\` must be an object`);
    const size = input.parameters?.binary_data_size;
    let data: Float32Array | Buffer[];
    if (size !== undefined) {
      if (!Number.isSafeInteger(size) || (size as number) < 0) {
        throw bad(`${where}: \`binary_data_size\` must be a non-negative integer; received ${JSON.stringify(size)}`);
      }
      if (at + (size as number) > binary.length) {
        throw bad(
          `${where}: \`binary_data_size\` ${String(size)} runs past the end of the body (${binary.length - at} bytes left)`,
        );
      }
      data = fromRaw(datatype, binary.subarray(at, at + (size as number)), count, where);
      at += size as number;
    } else if (input.data === undefined) {
      throw bad(`${where} has neither \`data\` nor \`parameters.binary_data_size\``);
    } else if (datatype === 'FP32') {
      data = flattenNumbers(input.data, where);
      if (data.length !== count) {
        throw bad(
          `${where}: shape [${(input.shape as number[]).join(', ')}] holds ${count} values; \`data\` holds ${data.length}`,
        );
      }
    } else if (datatype === 'BYTES') {
      const items = Array.isArray(input.data) ? (input.data.flat(8) as unknown[]) : [input.data];
      if (items.length !== count) {
        throw bad(
          `${where}: shape [${(input.shape as number[]).join(', ')}] holds ${count} elements; \`data\` holds ${items.length}`,
        );
      }
      data = items.map((item, k) => fromBase64(item, `${where}[${k}]`));
    } else {
      throw unsupportedType(datatype, where);
    }
    return { name: input.name, datatype, shape: input.shape as number[], data };
  });
  if (at !== binary.length) {
    throw bad(`the body holds ${binary.length - at} bytes of binary data that no input's \`binary_data_size\` claims`);
  }
  let requested: RequestedOutput[] | undefined;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw bad('`outputs` must be a list of {"name": ...}');
    requested = outputs.map((o: unknown, i) => {
      if (!isObject(o) || typeof o.name !== 'string') throw bad(`outputs[${i}] must be an object with a \`name\``);
      const p = o.parameters;
      if (p !== undefined && !isObject(p)) throw bad(`output '${o.name}': \`parameters\` must be an object`);
      const classification = p?.classification;
      if (classification !== undefined && typeof classification !== 'number') {
        throw bad(`output '${o.name}': \`classification\` must be an integer`);
      }
      return {
        name: o.name,
        binary: p?.binary_data === undefined ? binaryOutput : p.binary_data === true,
        ...(classification !== undefined ? { classification } : {}),
      };
    });
  }
  return {
    ...(id !== undefined ? { id } : {}),
    inputs: decoded,
    ...(requested ? { outputs: requested } : {}),
    binaryOutputs: binaryOutput,
  };
}

/** Encodes a V2 inference response: JSON, or a JSON header followed by the binary outputs. */
export function encodeRestResponse(result: InferResult): { body: Buffer | string; headerLength?: number } {
  const binaries: Buffer[] = [];
  const outputs = result.outputs.map((o) => {
    const base = { name: o.name, datatype: o.datatype, shape: o.shape };
    if (o.binary) {
      const raw = toRaw(o);
      binaries.push(raw);
      return { ...base, parameters: { binary_data_size: raw.length } };
    }
    const data = o.data instanceof Float32Array ? Array.from(o.data) : o.data.map((b) => b.toString('utf8'));
    return { ...base, data };
  });
  const header = JSON.stringify({
    model_name: result.modelName,
    model_version: result.modelVersion,
    ...(result.id !== undefined ? { id: result.id } : {}),
    outputs,
  });
  if (binaries.length === 0) return { body: header };
  const json = Buffer.from(header);
  return { body: Buffer.concat([json, ...binaries]), headerLength: json.length };
}

/** Splits a request body into its JSON header and the binary data after it. */
function splitBody(request: FastifyRequest): { header: unknown; binary: Buffer } {
  const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
  const declared = request.headers[HEADER_LENGTH];
  let length = body.length;
  if (declared !== undefined) {
    const n = Number(declared);
    if (!Number.isSafeInteger(n) || n < 0 || n > body.length) {
      throw bad(
        `Inference-Header-Content-Length ${JSON.stringify(declared)} must be an integer from 0 to the body's ${body.length} bytes`,
      );
    }
    length = n;
  }
  if (length === 0) throw new HttpError(400, 'ERR_EMPTY_REQUEST', 'the inference request is empty');
  let header: unknown;
  try {
    header = JSON.parse(body.subarray(0, length).toString('utf8'));
  } catch (err) {
    throw new HttpError(
      400,
      'ERR_BAD_JSON',
      `the inference request header is not valid JSON: ${(err as Error).message}`,
    );
  }
  return { header, binary: body.subarray(length) };
}

interface ModelParams {
  name: string;
  version?: string;
}

/**
 * Registers the Open Inference Protocol's REST endpoints under /v2 (call inside `app.register(..., { prefix: '/v2' })`).
 * Errors are answered as the protocol says: `{"error": "<message>"}`, with the status of the same error on the
 * server's other routes (400 bad input, 404 unknown model, 413 too large, 503 not ready or overloaded).
 */
export function registerV2Routes(app: FastifyInstance, ctx: V2Context, exampleImage: string): void {
  const o = ctx.options;
  const schemas = v2Schemas(o.maxImagesPerRequest, exampleImage);
  // Every body is read as bytes within the server's body limit: JSON, or JSON followed by binary tensors.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: o.maxBodyBytes }, (_request, body, done) =>
    done(null, body),
  );
  app.setErrorHandler((err, request, reply) => {
    const http = toHttpError(err);
    if (http.statusCode >= 500 && http.statusCode !== 503) {
      process.stderr.write(`[serve] ${request.method} ${request.url}: ${(err as Error).stack ?? String(err)}\n`);
    }
    void reply
      .code(http.statusCode)
      .headers(http.headers)
      .type('application/json; charset=utf-8')
      .send(
        JSON.stringify({
          error:
            (err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE'
              ? `the request body is larger than the limit of ${o.maxBodyBytes} bytes`
              : http.message,
        }),
      );
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .type('application/json; charset=utf-8')
      .send(JSON.stringify({ error: `no route ${request.method} ${request.url.split('?')[0]}` }));
  });

  app.get('', { schema: schemas.server }, async () => ({
    name: 'trt-flowers',
    version: ctx.version,
    extensions: V2_EXTENSIONS,
  }));
  app.get('/health/live', { schema: schemas.health('live', 'the server answers') }, async (_request, reply) => {
    const live = ctx.serverLive();
    reply.code(live ? 200 : 400);
    return { live };
  });
  app.get(
    '/health/ready',
    { schema: schemas.health('ready', 'every model is loaded and warmed up') },
    async (_request, reply) => {
      const ready = ctx.serverReady();
      reply.code(ready ? 200 : 400);
      return { ready };
    },
  );

  const both = (suffix: string): string[] => [`/models/:name${suffix}`, `/models/:name/versions/:version${suffix}`];
  const model = (request: FastifyRequest) => {
    const { name, version } = request.params as ModelParams;
    return findModel(ctx.models, name, version);
  };
  for (const url of both('')) {
    app.get(url, { schema: schemas.metadata(url.includes(':version')) }, async (request) => {
      const m = model(request);
      return modelMetadata(m, ctx.models.versions(m.name), loadedInfo(m));
    });
  }
  for (const url of both('/ready')) {
    app.get(url, { schema: schemas.modelReady(url.includes(':version')) }, async (request, reply) => {
      const m = model(request);
      const ready = m.predictor() !== undefined;
      reply.code(ready ? 200 : 400);
      return { name: m.name, ready };
    });
  }
  for (const url of both('/config')) {
    app.get(url, { schema: schemas.config(url.includes(':version')) }, async (request) => {
      const m = model(request);
      const own = m.config?.();
      if (own) return { config: own };
      return {
        config: modelConfig(m.name, loadedInfo(m), {
          maxBatch: o.maxBatch,
          maxWaitMs: o.maxWaitMs,
          concurrency: o.concurrency,
        }),
      };
    });
  }
  for (const url of both('/infer')) {
    app.post(
      url,
      { schema: schemas.infer(url.includes(':version')), validatorCompiler: () => () => true },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const m = model(request);
        const { header, binary } = splitBody(request);
        const result = await infer(m, decodeRestRequest(header, binary), o);
        const { body, headerLength } = encodeRestResponse(result);
        if (headerLength === undefined) {
          reply.type('application/json; charset=utf-8');
        } else {
          reply.type('application/octet-stream').header(HEADER_LENGTH, String(headerLength));
        }
        return body;
      },
    );
  }
}
