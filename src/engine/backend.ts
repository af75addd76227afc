/** What every inference backend gives the Engine. */

export type BackendName = 'libtorch' | 'onnxruntime' | 'tensorrt';
export type Precision = 'fp32' | 'fp16' | 'int8';

/** One batch's raw outputs, row-major. */
export interface BackendOutput {
  logits: Float32Array;
  embedding: Float32Array;
  batchSize: number;
  numClasses: number;
  embeddingSize: number;
}

/** How a backend that decodes on its own thread preprocesses images: the model's metadata and the limits. */
export interface WorkerDecode {
  size: number;
  mode: 'fill' | 'center-crop';
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  maxPixels: number;
  maxFileBytes: number;
}

export interface Backend {
  readonly name: BackendName;
  readonly device: string;
  readonly precision: Precision;
  /** Largest batch the artifact accepts (static engines), or undefined when any batch size runs. */
  readonly maxBatchSize: number | undefined;
  /** Runtime versions worth reporting (e.g. { libtorch: '2.1.0' }). */
  readonly versions: Record<string, string>;
  /** Runs a float32 NCHW batch off the event loop. */
  run(data: Float32Array, shape: readonly [number, number, number, number]): Promise<BackendOutput>;
  /** True when runImages() decodes on the backend's own thread. */
  readonly decodesImages?: boolean;
  /**
   * Optional: decodes a batch of JPEGs (paths or encoded bytes) where the model runs and runs it; null when an image
   * is not for that decoder (nothing was run; the caller preprocesses the batch itself).
   */
  runImages?(images: readonly (string | Uint8Array)[], decode: WorkerDecode): Promise<BackendOutput | null>;
  dispose(): Promise<void>;
}
