import { loadAddon } from '../binding/loader.js';
import type { NativeForwardResult, NativeModel, NativeModelInfo, NativePooledFeatures } from '../binding/types.js';
import { callNative, DisposedError } from '../errors.js';
import { describe } from '../util/describe.js';

/** Options of TorchModel.load. */
export interface TorchModelLoadOptions {
  /** 'cpu', 'cuda' or 'cuda:N'. Defaults to 'cpu'. */
  device?: string;
  /**
   * Load for inference only: the module is frozen and optimised (torch.jit.optimize_for_inference: BatchNorm and
   * constants folded into the convolutions, MKLDNN on the CPU), several times faster on the CPU. Training,
   * setTraining(true) and save() are then refused. Defaults to false.
   */
  inference?: boolean;
}

/**
 * A TorchScript classifier held by the native addon (libtorch). Every method that does real work runs off the
 * event loop and returns a Promise. Outputs are (logits, embedding).
 */
export class TorchModel implements AsyncDisposable {
  #native: NativeModel | undefined;

  private constructor(native: NativeModel) {
    this.#native = native;
  }

  /** Loads a TorchScript file. Rejects with ModelLoadError, BackendUnavailableError, TypeError or RangeError. */
  static async load(path: string, options: TorchModelLoadOptions = {}): Promise<TorchModel> {
    if (typeof path !== 'string' || path.length === 0) {
      throw new TypeError(`Expected a non-empty string for \`path\` but received ${describe(path)}`);
    }
    const device = options.device ?? 'cpu';
    if (typeof device !== 'string') {
      throw new TypeError(`Expected a string for \`device\` but received ${describe(device)}`);
    }
    const inference = options.inference ?? false;
    if (typeof inference !== 'boolean') {
      throw new TypeError(`Expected a boolean for \`inference\` but received ${describe(inference)}`);
    }
    const addon = loadAddon();
    return new TorchModel(await callNative(() => addon.loadModel(path, device, inference)));
  }

  /** Runs a float32 NCHW batch; returns logits [N, C] and embeddings [N, D], row-major. */
  async forward(input: Float32Array, shape: readonly [number, number, number, number]): Promise<NativeForwardResult> {
    return this.#run((m) => m.forward(input, shape));
  }

  /**
   * The backbone's globally pooled features [N, D] of a float32 NCHW batch (what the head takes), in eval mode and
   * without gradients. Rejects with a RangeError when the module has no pooled()/head() methods (see `hasHead`).
   */
  async pooledFeatures(
    input: Float32Array,
    shape: readonly [number, number, number, number],
  ): Promise<NativePooledFeatures> {
    return this.#run((m) => m.pooledFeatures(input, shape));
  }

  /** Whether the head can be trained alone on cached features (the module has pooled() and head()). */
  get hasHead(): boolean {
    return this.info.hasHead;
  }

  /** Switches between train mode (BatchNorm batch statistics, dropout) and eval mode. */
  async setTraining(training: boolean): Promise<void> {
    return this.#run((m) => m.setTraining(training));
  }

  /** Writes the module with its current weights as TorchScript, atomically. Rejects with SaveError. */
  async save(path: string): Promise<void> {
    return this.#run((m) => m.save(path));
  }

  get info(): NativeModelInfo {
    return this.native.info;
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  /** The raw native model (for the trainer); throws DisposedError after dispose(). */
  get native(): NativeModel {
    if (!this.#native) throw new DisposedError('this TorchModel');
    return this.#native;
  }

  /**
   * Waits for calls in flight (a Trainer's on this model too), then frees the native model. Calls made after
   * dispose() started throw DisposedError. Idempotent.
   */
  async dispose(): Promise<void> {
    const native = this.#native;
    if (!native) return;
    this.#native = undefined;
    await callNative(() => native.dispose());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  async #run<T>(fn: (m: NativeModel) => Promise<T>): Promise<T> {
    const native = this.native;
    return callNative(() => fn(native));
  }
}
