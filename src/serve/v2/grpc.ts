import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import { packageRoot } from '../../util/paths.js';
import { HttpError, toHttpError } from '../httpErrors.js';
import type { ServeMetrics } from '../metrics.js';
import type { ResolvedServeOptions } from '../options.js';
import {
  elementCount,
  fromRaw,
  infer,
  toRaw,
  unsupportedType,
  type InferInput,
  type RequestedOutput,
} from './infer.js';
import { findModel, loadedInfo, modelMetadata, type ModelLookup } from './model.js';
import { V2_EXTENSIONS } from './rest.js';

/** The service definition the project writes from the published protocol. */
export const GRPC_PROTO = join(packageRoot, 'proto', 'grpc_service.proto');

/** What the gRPC service needs from the server (the same as the REST routes). */
export interface GrpcContext {
  readonly options: ResolvedServeOptions;
  readonly version: string;
  readonly metrics: ServeMetrics;
  serverReady(): boolean;
  serverLive(): boolean;
  readonly models: ModelLookup;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- messages as @grpc/proto-loader decodes them */
type Message = any;

/** An HTTP-style error as the gRPC status the protocol gives it. */
export function grpcStatusOf(err: unknown): { code: grpc.status; details: string } {
  const http = toHttpError(err);
  const s = grpc.status;
  const code =
    http.statusCode === 404
      ? s.NOT_FOUND
      : http.statusCode === 413 || http.code === 'ERR_OVERLOADED'
        ? s.RESOURCE_EXHAUSTED
        : http.statusCode === 408
          ? s.DEADLINE_EXCEEDED
          : http.statusCode === 503
            ? s.UNAVAILABLE
            : http.statusCode >= 400 && http.statusCode < 500
              ? s.INVALID_ARGUMENT
              : s.INTERNAL;
  return { code, details: http.message };
}

const bad = (message: string): HttpError => new HttpError(400, 'ERR_BAD_REQUEST', message);

/** A parameter's value (InferParameter's oneof). */
function parameter(p: Message): boolean | number | string | undefined {
  if (!p?.parameter_choice) return undefined;
  return p[p.parameter_choice];
}

/** The inputs of a ModelInferRequest: from `raw_input_contents` (one per input, in order) or each `contents`. */
function decodeInputs(request: Message): InferInput[] {
  const inputs: Message[] = request.inputs ?? [];
  const raw: Buffer[] = request.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== inputs.length) {
    throw bad(`raw_input_contents holds ${raw.length} entries for ${inputs.length} inputs; give one per input`);
  }
  return inputs.map((input, i): InferInput => {
    const name = String(input.name ?? '');
    const where = `input '${name}'`;
    const shape = (input.shape ?? []).map(Number);
    const count = elementCount(shape, where);
    const datatype = String(input.datatype ?? '');
    let data: Float32Array | Buffer[];
    if (raw.length > 0) {
      if (input.contents) throw bad(`${where} has \`contents\` beside raw_input_contents; use one of them`);
      data = fromRaw(datatype, raw[i] as Buffer, count, where);
    } else if (datatype === 'FP32') {
      const values: number[] = input.contents?.fp32_contents ?? [];
      data = Float32Array.from(values);
    } else if (datatype === 'BYTES') {
      data = (input.contents?.bytes_contents ?? []) as Buffer[];
    } else {
      throw unsupportedType(datatype, where);
    }
    if (data.length !== count) {
      throw bad(`${where}: shape [${shape.join(', ')}] holds ${count} elements; the contents hold ${data.length}`);
    }
    return { name, datatype, shape, data };
  });
}

function decodeOutputs(request: Message): RequestedOutput[] {
  return (request.outputs ?? []).map((o: Message): RequestedOutput => {
    const classification = parameter(o.parameters?.classification);
    if (classification !== undefined && typeof classification !== 'number') {
      throw bad(`output '${o.name}': \`classification\` must be an int64 parameter`);
    }
    return { name: String(o.name ?? ''), ...(classification !== undefined ? { classification } : {}) };
  });
}

/**
 * The GRPCInferenceService over @grpc/grpc-js: the same models, checks, limits and outputs as the REST routes (the
 * request size limit is the server's body limit). Outputs are sent in raw_output_contents, as Triton does.
 */
export class GrpcInferenceServer {
  readonly #server: grpc.Server;
  readonly #ctx: GrpcContext;
  #port = -1;

  private constructor(ctx: GrpcContext, definition: protoLoader.PackageDefinition) {
    this.#ctx = ctx;
    this.#server = new grpc.Server({
      'grpc.max_receive_message_length': ctx.options.maxBodyBytes,
      'grpc.max_send_message_length': -1,
    });
    const proto = grpc.loadPackageDefinition(definition) as Message;
    const service = proto.inference.GRPCInferenceService.service as grpc.ServiceDefinition;
    this.#server.addService(service, {
      ServerLive: this.#unary('ServerLive', async () => ({ live: ctx.serverLive() })),
      ServerReady: this.#unary('ServerReady', async () => ({ ready: ctx.serverReady() })),
      ModelReady: this.#unary('ModelReady', async (r) => ({
        ready: findModel(ctx.models, r.name, r.version).predictor() !== undefined,
      })),
      ServerMetadata: this.#unary('ServerMetadata', async () => ({
        name: 'trt-flowers',
        version: ctx.version,
        extensions: V2_EXTENSIONS,
      })),
      ModelMetadata: this.#unary('ModelMetadata', async (r) => {
        const m = findModel(ctx.models, r.name, r.version);
        return modelMetadata(m, ctx.models.versions(m.name), loadedInfo(m));
      }),
      ModelInfer: this.#unary('ModelInfer', async (r) => {
        const m = findModel(ctx.models, r.model_name, r.model_version);
        const result = await infer(
          m,
          { ...(r.id ? { id: r.id } : {}), inputs: decodeInputs(r), outputs: decodeOutputs(r) },
          ctx.options,
        );
        return {
          model_name: result.modelName,
          model_version: result.modelVersion,
          id: result.id ?? '',
          outputs: result.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape })),
          raw_output_contents: result.outputs.map((o) => toRaw(o)),
        };
      }),
    });
  }

  /** Loads the service definition (asynchronously) and makes the server; listen() binds it. */
  static async create(ctx: GrpcContext): Promise<GrpcInferenceServer> {
    const definition = await protoLoader.load(GRPC_PROTO, {
      keepCase: true,
      longs: Number,
      defaults: false,
      oneofs: true,
    });
    return new GrpcInferenceServer(ctx, definition);
  }

  /** The bound port, once listening. */
  get port(): number {
    return this.#port;
  }

  /** Binds host:port (0: a free port); resolves with the port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      this.#server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) return reject(err);
        this.#port = bound;
        resolve(bound);
      });
    });
  }

  /** Stops taking calls, lets the calls in flight finish, and cuts them after `timeoutMs`. */
  close(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const deadline = setTimeout(() => this.#server.forceShutdown(), timeoutMs);
      deadline.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(deadline);
        resolve();
      });
    });
  }

  #unary(rpc: string, handle: (request: Message) => Promise<unknown>): grpc.handleUnaryCall<Message, unknown> {
    const metrics = this.#ctx.metrics;
    return (call, callback) => {
      const started = performance.now();
      const done = (code: grpc.status): void => {
        metrics.grpcRequests.inc({ rpc, code: grpc.status[code] ?? String(code) });
        metrics.grpcLatency.observe({ rpc }, (performance.now() - started) / 1000);
      };
      handle(call.request).then(
        (response) => {
          done(grpc.status.OK);
          callback(null, response);
        },
        (err: unknown) => {
          const status = grpcStatusOf(err);
          if (status.code === grpc.status.INTERNAL) {
            process.stderr.write(`[serve] gRPC ${rpc}: ${(err as Error).stack ?? String(err)}\n`);
          }
          done(status.code);
          callback({ code: status.code, details: status.details });
        },
      );
    };
  }
}
