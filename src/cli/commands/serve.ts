import os from 'node:os';

import type { Command } from 'commander';

import type { EngineLoadOptions } from '../../engine/Engine.js';
import { modelNameFromPath, SERVE_DEFAULTS } from '../../serve/options.js';
import { parseInteger } from '../parse.js';

interface ServeFlags {
  modelPath?: string;
  modelRepository?: string;
  repositoryPollMs: number;
  host: string;
  port: number;
  device: string;
  backend: string;
  threads?: number;
  workers?: number;
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
  decodeConcurrency: number;
  maxBodyBytes: number;
  maxFileBytes: number;
  maxImages: number;
  maxPixels: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  shutdownTimeoutMs: number;
  logRequests?: boolean;
  modelName?: string;
  grpcPort: number;
}

const d = SERVE_DEFAULTS;

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'HTTP inference server: /predict, /predict/batch, /invocations, the Open Inference Protocol (/v2), /health, /metrics, /docs',
    )
    .option('--model-path <file>', 'TorchScript .pt, .onnx or TensorRT .engine (else --model-repository)')
    .option(
      '--model-repository <dir>',
      'serve every model and version of a Triton / KServe model repository (else --model-path)',
    )
    .option(
      '--repository-poll-ms <n>',
      'read the model repository again this often to load and unload models (0: once)',
      parseInteger('--repository-poll-ms', 0, 86_400_000),
      d.repositoryPollMs,
    )
    .option('--host <host>', 'interface to listen on', d.host)
    .option('--port <n>', 'TCP port (0: any free port)', parseInteger('--port', 0, 65535), d.port)
    .option('--device <device>', 'auto | cpu | cuda | cuda:N', 'auto')
    .option('--backend <name>', 'auto | libtorch | onnxruntime | tensorrt', 'auto')
    .option(
      '--threads <n>',
      'intra-op threads per worker (default: half the cores shared by the workers, at least 1)',
      parseInteger('--threads', 1, 256),
    )
    .option(
      '--workers <n>',
      'engine calls in flight at once; ONNX Runtime: sessions in worker threads (default: the cores, at most 4)',
      parseInteger('--workers', 1, 64),
    )
    .option('--max-batch <n>', 'most images in one engine call', parseInteger('--max-batch', 1, 1024), d.maxBatch)
    .option(
      '--max-wait-ms <n>',
      'longest wait for a batch to fill',
      parseInteger('--max-wait-ms', 0, 10_000),
      d.maxWaitMs,
    )
    .option('--max-queue <n>', 'images queued before 503', parseInteger('--max-queue', 1, 1_000_000), d.maxQueue)
    .option(
      '--decode-concurrency <n>',
      'images decoded at once',
      parseInteger('--decode-concurrency', 1, 256),
      d.decodeConcurrency,
    )
    .option(
      '--max-body-bytes <n>',
      'largest request body',
      parseInteger('--max-body-bytes', 1024, 2 ** 31),
      d.maxBodyBytes,
    )
    .option('--max-file-bytes <n>', 'largest image file', parseInteger('--max-file-bytes', 1, 2 ** 31), d.maxFileBytes)
    .option(
      '--max-images <n>',
      'images per request on /predict/batch and /invocations',
      parseInteger('--max-images', 1, 1024),
      d.maxImagesPerRequest,
    )
    .option('--max-pixels <n>', 'largest image in pixels', parseInteger('--max-pixels', 1, 2 ** 40), d.maxPixels)
    .option(
      '--request-timeout-ms <n>',
      'time to receive a whole request',
      parseInteger('--request-timeout-ms', 1, 3_600_000),
      d.requestTimeoutMs,
    )
    .option(
      '--headers-timeout-ms <n>',
      'time to receive the request headers',
      parseInteger('--headers-timeout-ms', 1, 3_600_000),
      d.headersTimeoutMs,
    )
    .option(
      '--keep-alive-timeout-ms <n>',
      'idle keep-alive connections are closed after this',
      parseInteger('--keep-alive-timeout-ms', 1, 3_600_000),
      d.keepAliveTimeoutMs,
    )
    .option(
      '--shutdown-timeout-ms <n>',
      'on SIGTERM, longest wait for requests in flight',
      parseInteger('--shutdown-timeout-ms', 0, 3_600_000),
      30_000,
    )
    .option(
      '--model-name <name>',
      "the model's name in the Open Inference Protocol (/v2/models/{name}) (default: the model file's name)",
    )
    .option(
      '--grpc-port <n>',
      'port of the Open Inference Protocol over gRPC (GRPCInferenceService); -1: off, 0: any free port',
      parseInteger('--grpc-port', -1, 65535),
      d.grpcPort,
    )
    .option('--log-requests', 'log every request (JSON lines on stdout)')
    .action(async (flags: ServeFlags) => {
      if ((flags.modelPath === undefined) === (flags.modelRepository === undefined)) {
        throw new RangeError('give one of --model-path <file> or --model-repository <dir>');
      }
      // Small single-threaded engine calls side by side use the cores better than one call with many threads, which
      // spins against the decoders: with 2 cores, 2 workers of 1 thread serve about 1.6x the requests of 1 worker.
      const [{ Engine }, { InferenceServer }] = await Promise.all([
        import('../../engine/Engine.js'),
        import('../../serve/InferenceServer.js'),
      ]);
      const cores = os.availableParallelism();
      const workers = flags.workers ?? Math.min(4, cores);
      const threads = flags.threads ?? Math.max(1, Math.floor(cores / 2 / workers));
      const server = new InferenceServer({
        host: flags.host,
        port: flags.port,
        maxBatch: flags.maxBatch,
        maxWaitMs: flags.maxWaitMs,
        concurrency: workers,
        maxQueue: flags.maxQueue,
        decodeConcurrency: flags.decodeConcurrency,
        maxBodyBytes: flags.maxBodyBytes,
        maxFileBytes: flags.maxFileBytes,
        maxImagesPerRequest: flags.maxImages,
        maxPixels: flags.maxPixels,
        requestTimeoutMs: flags.requestTimeoutMs,
        headersTimeoutMs: flags.headersTimeoutMs,
        keepAliveTimeoutMs: flags.keepAliveTimeoutMs,
        logRequests: flags.logRequests === true,
        modelName: flags.modelName ?? (flags.modelPath ? modelNameFromPath(flags.modelPath) : ''),
        repositoryPollMs: flags.repositoryPollMs,
        grpcPort: flags.grpcPort,
      });
      const log = (line: string): boolean => process.stderr.write(`[serve] ${line}\n`);

      let signals = 0;
      const stopped = new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals): void => {
          if (++signals > 1) {
            log(`${signal} again: exiting now`);
            process.exit(130);
          }
          log(`${signal}: no longer accepting connections; finishing requests in flight`);
          void server.close(flags.shutdownTimeoutMs).finally(resolve);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });

      let url: string;
      try {
        url = await server.listen();
      } catch (err) {
        await server.close();
        const e = err as NodeJS.ErrnoException;
        throw new RangeError(
          e.code === 'EADDRINUSE'
            ? `cannot listen on ${flags.host}:${flags.port}: the port is in use (choose another with --port)`
            : `cannot listen on ${flags.host}:${flags.port}: ${e.message}`,
        );
      }
      const grpc = server.grpcAddress ? `, gRPC on ${server.grpcAddress}` : '';
      log(`listening on ${url} (docs: ${url}/docs${grpc}); loading ${flags.modelPath ?? flags.modelRepository}`);
      const engineOptions: EngineLoadOptions = {
        backend: flags.backend as EngineLoadOptions['backend'],
        device: flags.device,
        batchSize: flags.maxBatch,
        workers,
        threads,
      };
      try {
        if (flags.modelRepository) {
          const { batchSize: _batch, workers: _workers, ...common } = engineOptions;
          await server.loadRepository(flags.modelRepository, common);
        } else {
          await server.load(() => Engine.load(flags.modelPath as string, engineOptions));
        }
      } catch (err) {
        await server.close();
        if (signals > 0) {
          log('stopped while loading the model');
          return;
        }
        throw err;
      }
      if (server.state === 'ready' && flags.modelRepository) {
        log(`ready: serving the model repository ${flags.modelRepository}`);
      } else if (server.state === 'ready') {
        const info = server.engine!.info;
        log(
          `ready: ${info.backend} ${info.precision} on ${info.device}, ${info.classes.length} classes, ` +
            `${info.preprocessing.size}px; ${workers} worker(s) x ${threads} thread(s), max batch ${flags.maxBatch}, ` +
            `max wait ${flags.maxWaitMs} ms${nodeFlags()}`,
        );
      }
      await stopped;
      log('stopped');
    });
}

/** The node/V8 flags this process runs with (bin/trt-flowers sets the heap growth for serve), for the ready line. */
function nodeFlags(): string {
  return process.execArgv.length > 0 ? `; node ${process.execArgv.join(' ')}` : '';
}
