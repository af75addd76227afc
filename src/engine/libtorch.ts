import { runtimeInfo, setThreads } from '../binding/runtime.js';
import { TorchModel } from '../torch/TorchModel.js';
import type { Backend, BackendOutput } from './backend.js';

/**
 * A TorchScript model run by libtorch in the native addon, on the model's own native thread. It is loaded for
 * inference: frozen and optimised by TorchScript's inference passes (see TorchModel.load's `inference`).
 */
export class LibtorchBackend implements Backend {
  readonly name = 'libtorch' as const;
  readonly precision = 'fp32' as const;
  readonly maxBatchSize = undefined;
  readonly versions: Record<string, string>;

  private constructor(
    readonly model: TorchModel,
    readonly device: string,
  ) {
    this.versions = { libtorch: runtimeInfo().torchVersion };
  }

  static async load(path: string, options: { device: string; threads?: number }): Promise<LibtorchBackend> {
    if (options.threads !== undefined) setThreads(options.threads);
    const model = await TorchModel.load(path, { device: options.device, inference: true });
    return new LibtorchBackend(model, options.device);
  }

  /** The metadata JSON embedded in the TorchScript archive, or null. */
  get embeddedMetadata(): string | null {
    return this.model.info.metadata ?? null;
  }

  run(data: Float32Array, shape: readonly [number, number, number, number]): Promise<BackendOutput> {
    return this.model.forward(data, shape);
  }

  dispose(): Promise<void> {
    return this.model.dispose();
  }
}
