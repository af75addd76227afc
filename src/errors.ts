/**
 * Typed errors. Every error the library throws on purpose is a TrtFlowersError with a stable `code`; errors from
 * the native addon are mapped here by their code, keeping the JS stack of the call that started the native job.
 */

export type ErrorCode =
  | 'ERR_ADDON_LOAD'
  | 'ERR_MODEL_LOAD'
  | 'ERR_SAVE'
  | 'ERR_BACKEND_UNAVAILABLE'
  | 'ERR_INFERENCE'
  | 'ERR_DISPOSED'
  | 'ERR_INVALID_IMAGE'
  | 'ERR_CONFIG'
  | 'ERR_DATA'
  | 'ERR_ENGINE_BUILD'
  | 'ERR_EXPORT'
  | 'ERR_CANCELLED'
  | 'ERR_NATIVE'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_DISTRIBUTED';

export class TrtFlowersError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The native addon could not be loaded (missing build, missing shared library, ABI mismatch). */
export class AddonLoadError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ADDON_LOAD', message, options);
  }
}
/** A model file is missing, corrupt or not a model this backend can run. */
export class ModelLoadError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MODEL_LOAD', message, options);
  }
}
/** A checkpoint, engine or report could not be written. The previous file, if any, is untouched. */
export class SaveError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SAVE', message, options);
  }
}
/** A backend or device was asked for that this build or machine does not have. */
export class BackendUnavailableError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_BACKEND_UNAVAILABLE', message, options);
  }
}
/** The model ran and failed (wrong input shape for the network, non-finite loss, ...). */
export class InferenceError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INFERENCE', message, options);
  }
}
/** A method was called on a disposed object. */
export class DisposedError extends TrtFlowersError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('ERR_DISPOSED', `${what} has been disposed`, options);
  }
}
/** An image could not be decoded or is unusable (corrupt, truncated, too many pixels, unsupported format). */
export class InvalidImageError extends TrtFlowersError {
  readonly path: string | undefined;
  constructor(message: string, options?: { cause?: unknown; path?: string }) {
    super('ERR_INVALID_IMAGE', message, options);
    this.path = options?.path;
  }
}
/** A configuration key is unknown or has a value of the wrong type or range. */
export class ConfigError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', message, options);
  }
}
/** A data set folder or manifest is missing or inconsistent. */
export class DataError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DATA', message, options);
  }
}
/** An external step (Python export, engine build) failed. */
export class ExportError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_EXPORT', message, options);
  }
}
/** A long job was cancelled through its AbortSignal. */
export class CancelledError extends TrtFlowersError {
  constructor(message = 'the operation was cancelled') {
    super('ERR_CANCELLED', message);
  }
}
/** A native failure with no more specific class. */
/** Data-parallel training failed: a rank died, hung past the timeout or never joined, or the ranks disagree. */
export class DistributedError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DISTRIBUTED', message, options);
  }
}

export class NativeError extends TrtFlowersError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NATIVE', message, options);
  }
}

/**
 * Maps an error thrown by the native addon to its typed class. TypeError and RangeError (invalid arguments) are
 * kept as they are, with their `code`. `stack` is the JS stack captured before the native call started.
 */
export function fromNativeError(err: unknown, stack?: string): Error {
  if (!(err instanceof Error)) return new NativeError(String(err));
  const code = (err as { code?: string }).code;
  let mapped: Error;
  switch (code) {
    case 'ERR_MODEL_LOAD':
      mapped = new ModelLoadError(err.message, { cause: err });
      break;
    case 'ERR_SAVE':
      mapped = new SaveError(err.message, { cause: err });
      break;
    case 'ERR_BACKEND_UNAVAILABLE':
      mapped = new BackendUnavailableError(err.message, { cause: err });
      break;
    case 'ERR_INFERENCE':
      mapped = new InferenceError(err.message, { cause: err });
      break;
    case 'ERR_DISPOSED':
      mapped = new DisposedError(err.message.replace(/ has been disposed$/, ''), { cause: err });
      break;
    case 'ERR_INVALID_IMAGE':
      mapped = new InvalidImageError(err.message, { cause: err });
      break;
    case 'ERR_DISTRIBUTED':
      mapped = new DistributedError(err.message, { cause: err });
      break;
    case 'ERR_NATIVE':
    case 'ERR_OUT_OF_MEMORY':
      mapped = new TrtFlowersError(code, err.message, { cause: err });
      break;
    default:
      // TypeError / RangeError with code ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE, and ERR_UNSUPPORTED_JPEG: not a
      // failure but the JPEG fast path's "decode this one with sharp", which the data layer acts on by its code.
      return err;
  }
  if (stack) mapped.stack = `${mapped.name}: ${mapped.message}\n${stack.split('\n').slice(1).join('\n')}`;
  return mapped;
}

/** Runs a native promise-returning call and maps its rejection (and synchronous throw) to typed errors. */
export async function callNative<T>(fn: () => Promise<T>): Promise<T> {
  const stack = new Error().stack;
  try {
    return await fn();
  } catch (err) {
    throw fromNativeError(err, stack);
  }
}
