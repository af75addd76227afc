import os from 'node:os';
import path from 'node:path';

import { describe } from '../util/describe.js';

/** Limits and tuning of the HTTP inference server. Every field is optional. */
export interface ServeOptions {
  /** Interface to listen on. Defaults to '127.0.0.1'. */
  host?: string;
  /** TCP port; 0 picks a free one. Defaults to 8000. */
  port?: number;
  /** Most images in one engine call (dynamic batching). Defaults to 16. */
  maxBatch?: number;
  /**
   * Longest time the first image of a batch waits for others before the batch runs. The batch runs sooner when it is
   * full or when no other request is on its way. Defaults to 5.
   */
  maxWaitMs?: number;
  /** Engine calls in flight at once (ONNX Runtime: one per worker thread). Defaults to 1. */
  concurrency?: number;
  /** Images waiting for the engine before new requests get 503. Defaults to 1024. */
  maxQueue?: number;
  /** Images decoded at once (decoding runs on the libuv pool). Defaults to half the cores, at least 2. */
  decodeConcurrency?: number;
  /** Largest request body (a whole multipart upload, or a JSON body of /invocations). Defaults to 32 MiB. */
  maxBodyBytes?: number;
  /** Largest uploaded image file. Defaults to 10 MiB. */
  maxFileBytes?: number;
  /** Images per request on /predict/batch and /invocations. Defaults to 10. */
  maxImagesPerRequest?: number;
  /** Largest image in pixels (width × height) before decoding: the decompression-bomb guard. Defaults to 40 MP. */
  maxPixels?: number;
  /** Time to receive a whole request (headers and body) before it gets 408. Defaults to 30000. */
  requestTimeoutMs?: number;
  /** Time to receive the request headers. Defaults to 10000 (at most requestTimeoutMs). */
  headersTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this. Defaults to 5000. */
  keepAliveTimeoutMs?: number;
  /** A socket with no activity at all is destroyed after this (0: never). Defaults to 60000. */
  connectionTimeoutMs?: number;
  /** Log every request (pino JSON lines on stdout). Defaults to false. */
  logRequests?: boolean;
  /**
   * The model's name in the Open Inference Protocol (/v2/models/{name}, gRPC). Defaults to '' : the model file's
   * name without its extension, once loaded.
   */
  modelName?: string;
  /**
   * TCP port of the Open Inference Protocol's gRPC service (GRPCInferenceService), on `host`; 0 picks a free one,
   * -1 serves no gRPC. Defaults to -1.
   */
  grpcPort?: number;
  /**
   * How often a model repository (InferenceServer.loadRepository) is read again for added, changed and removed
   * models, in ms; 0 reads it once. Defaults to 5000.
   */
  repositoryPollMs?: number;
}

export type ResolvedServeOptions = Required<ServeOptions>;

export const SERVE_DEFAULTS: ResolvedServeOptions = {
  host: '127.0.0.1',
  port: 8000,
  maxBatch: 16,
  maxWaitMs: 5,
  concurrency: 1,
  maxQueue: 1024,
  decodeConcurrency: Math.max(2, Math.floor(os.availableParallelism() / 2)),
  maxBodyBytes: 32 * 1024 * 1024,
  maxFileBytes: 10 * 1024 * 1024,
  maxImagesPerRequest: 10,
  maxPixels: 40_000_000,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  connectionTimeoutMs: 60_000,
  logRequests: false,
  modelName: '',
  grpcPort: -1,
  repositoryPollMs: 5000,
};

function int(options: ServeOptions, name: keyof ServeOptions, min: number, max: number): number {
  const value = options[name] ?? SERVE_DEFAULTS[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Expected integer between ${min} and ${max} for \`${name}\` but received ${describe(value)}`);
  }
  return value;
}

/** Model names as Triton and KServe take them: letters, digits, `_`, `-` and `.` (not only dots). */
export const MODEL_NAME = /^(?!\.+$)[A-Za-z0-9_.-]{1,128}$/;

/** A model name from a model file's name: its base name without extension, other characters replaced by `_`. */
export function modelNameFromPath(file: string): string {
  const base = path
    .parse(file)
    .name.replace(/[^A-Za-z0-9_.-]/g, '_')
    .slice(0, 128);
  return /^\.*$/.test(base) ? 'model' : base;
}

function modelNameOf(name: unknown): string {
  if (name === '') return name;
  if (typeof name !== 'string' || !MODEL_NAME.test(name)) {
    throw new TypeError(
      `Expected a model name of 1 to 128 letters, digits, '_', '-' or '.' for \`modelName\` but received ${describe(name)}`,
    );
  }
  return name;
}

/** Fills in defaults and checks every option; throws TypeError / RangeError naming the option. */
export function resolveServeOptions(options: ServeOptions = {}): ResolvedServeOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected an object for \`options\` but received ${describe(options)}`);
  }
  const host = options.host ?? SERVE_DEFAULTS.host;
  if (typeof host !== 'string' || host.length === 0) {
    throw new TypeError(`Expected a non-empty string for \`host\` but received ${describe(host)}`);
  }
  const requestTimeoutMs = int(options, 'requestTimeoutMs', 1, 3_600_000);
  const headersTimeoutMs = Math.min(int(options, 'headersTimeoutMs', 1, 3_600_000), requestTimeoutMs);
  return {
    host,
    port: int(options, 'port', 0, 65535),
    grpcPort: int(options, 'grpcPort', -1, 65535),
    repositoryPollMs: int(options, 'repositoryPollMs', 0, 86_400_000),
    maxBatch: int(options, 'maxBatch', 1, 1024),
    maxWaitMs: int(options, 'maxWaitMs', 0, 10_000),
    concurrency: int(options, 'concurrency', 1, 64),
    maxQueue: int(options, 'maxQueue', 1, 1_000_000),
    decodeConcurrency: int(options, 'decodeConcurrency', 1, 256),
    maxBodyBytes: int(options, 'maxBodyBytes', 1024, 2 ** 31),
    maxFileBytes: int(options, 'maxFileBytes', 1, 2 ** 31),
    maxImagesPerRequest: int(options, 'maxImagesPerRequest', 1, 1024),
    maxPixels: int(options, 'maxPixels', 1, 2 ** 40),
    requestTimeoutMs,
    headersTimeoutMs,
    keepAliveTimeoutMs: int(options, 'keepAliveTimeoutMs', 1, 3_600_000),
    connectionTimeoutMs: int(options, 'connectionTimeoutMs', 0, 3_600_000),
    logRequests: options.logRequests ?? SERVE_DEFAULTS.logRequests,
    modelName: modelNameOf(options.modelName ?? SERVE_DEFAULTS.modelName),
  };
}
