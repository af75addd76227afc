import type { BackendName } from '../../engine/backend.js';

/** Triton's platform name and the model file it looks for in a version folder, for each backend. */
export const TRITON_PLATFORMS: Readonly<Record<BackendName, { platform: string; file: string }>> = {
  onnxruntime: { platform: 'onnxruntime_onnx', file: 'model.onnx' },
  tensorrt: { platform: 'tensorrt_plan', file: 'model.plan' },
  libtorch: { platform: 'pytorch_libtorch', file: 'model.pt' },
};
