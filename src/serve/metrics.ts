import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The server's Prometheus metrics, in a registry of its own (several servers in one process never share counters).
 * Served as text by GET /metrics.
 */
export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'trt_flowers_http_requests_total',
    help: 'HTTP requests by method, route and status code ("aborted": the client left before the answer)',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'trt_flowers_http_request_duration_seconds',
    help: 'Time from the request to the end of its response, by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'trt_flowers_http_requests_in_flight',
    help: 'Requests received and not yet answered',
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'trt_flowers_inference_batch_size',
    help: 'Images per engine call (dynamic batching)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly inferenceSeconds = new Histogram({
    name: 'trt_flowers_inference_duration_seconds',
    help: 'Time of one engine call',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly queueWaitSeconds = new Histogram({
    name: 'trt_flowers_inference_queue_wait_seconds',
    help: 'Time an image waited in the batching queue before its engine call started',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly grpcRequests = new Counter({
    name: 'trt_flowers_grpc_requests_total',
    help: 'gRPC calls of the Open Inference Protocol by method and status code',
    labelNames: ['rpc', 'code'] as const,
    registers: [this.registry],
  });
  readonly grpcLatency = new Histogram({
    name: 'trt_flowers_grpc_request_duration_seconds',
    help: 'Time from a gRPC call to its answer, by method',
    labelNames: ['rpc'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly modelBatchSize = new Histogram({
    name: 'trt_flowers_model_inference_batch_size',
    help: 'Images per engine call, by model and version',
    labelNames: ['model', 'version'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [this.registry],
  });
  readonly modelInferenceSeconds = new Histogram({
    name: 'trt_flowers_model_inference_duration_seconds',
    help: 'Time of one engine call, by model and version',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly modelImages = new Counter({
    name: 'trt_flowers_model_images_total',
    help: 'Images received by model and version, by outcome: predicted, or rejected',
    labelNames: ['model', 'version', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly modelReady = new Gauge({
    name: 'trt_flowers_model_ready',
    help: '1 while a model version is loaded, warmed up and takes requests (0: loading, failed or unloading)',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  /** Queue depth of each model version being served, read at every scrape. */
  readonly modelQueues = new Map<string, { model: string; version: string; depth: () => number }>();
  readonly queueDepth: Gauge;
  readonly images = new Counter({
    name: 'trt_flowers_images_total',
    help: 'Images received, by outcome: predicted, or rejected (not decodable, too large)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: 'trt_flowers_ready',
    help: '1 when the model is loaded and warmed up and the server takes predictions',
    registers: [this.registry],
  });
  readonly model = new Gauge({
    name: 'trt_flowers_model_info',
    help: 'The model being served (value 1)',
    labelNames: ['model', 'backend', 'precision', 'device'] as const,
    registers: [this.registry],
  });

  constructor(queueDepth: () => number) {
    const queues = this.modelQueues;
    new Gauge({
      name: 'trt_flowers_model_queue_depth',
      help: 'Images waiting for an engine call, by model and version',
      labelNames: ['model', 'version'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const q of queues.values()) this.set({ model: q.model, version: q.version }, q.depth());
      },
    });
    this.queueDepth = new Gauge({
      name: 'trt_flowers_inference_queue_depth',
      help: 'Images waiting for an engine call',
      registers: [this.registry],
      collect() {
        this.set(queueDepth());
      },
    });
    // Process memory, CPU, event-loop lag and GC, under their usual names.
    collectDefaultMetrics({ register: this.registry });
  }

  /** The Prometheus text exposition and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
