import { describe, expect, it } from 'vitest';

import { ModelLoadError } from '../../src/errors.js';
import { parsePlanSidecar } from '../../src/engine/tensorrt.js';
import {
  checkPlanCompatibility,
  chooseBatchProfile,
  choosePrecisionPlan,
  parseTensorRTVersion,
  type LoadTarget,
  type PlanStamp,
} from '../../src/engine/tensorrt-plan.js';

describe('TensorRT batch profile', () => {
  it('defaults to 1..32 tuned for 8, and follows --batch / --max-batch', () => {
    expect(chooseBatchProfile({})).toEqual({ min: 1, opt: 8, max: 32 });
    expect(chooseBatchProfile({ batch: 16 })).toEqual({ min: 1, opt: 16, max: 32 });
    expect(chooseBatchProfile({ batch: 64 })).toEqual({ min: 1, opt: 64, max: 64 });
    expect(chooseBatchProfile({ maxBatch: 4 })).toEqual({ min: 1, opt: 4, max: 4 });
    expect(chooseBatchProfile({ batch: 1, maxBatch: 1 })).toEqual({ min: 1, opt: 1, max: 1 });
    expect(chooseBatchProfile({ batch: 8, maxBatch: 128, minBatch: 2 })).toEqual({ min: 2, opt: 8, max: 128 });
  });

  it('a static-batch model pins the profile, and conflicting flags say why', () => {
    expect(chooseBatchProfile({ staticBatch: 4 })).toEqual({ min: 4, opt: 4, max: 4 });
    expect(chooseBatchProfile({ staticBatch: 4, batch: 4, maxBatch: 4 })).toEqual({ min: 4, opt: 4, max: 4 });
    expect(() => chooseBatchProfile({ staticBatch: 4, maxBatch: 32 })).toThrow(
      /static batch of 4, so --max-batch must be 4 \(received 32\)/,
    );
  });

  it('refuses impossible ranges naming the flag', () => {
    expect(() => chooseBatchProfile({ batch: 64, maxBatch: 32 })).toThrow(
      /--batch \(64\) must not be larger than --max-batch \(32\)/,
    );
    expect(() => chooseBatchProfile({ batch: 0 })).toThrow(RangeError);
    expect(() => chooseBatchProfile({ maxBatch: 5000 })).toThrow(
      /between 1 and 4096 for --max-batch but received 5000/,
    );
    expect(() => chooseBatchProfile({ batch: 1.5 })).toThrow(/--batch/);
    expect(() => chooseBatchProfile({ batch: 2, minBatch: 4 })).toThrow(/minimum batch \(4\)/);
  });
});

describe('TensorRT precision per major version', () => {
  it('TensorRT 10: FP16 by builder flag, INT8 from the Q/DQ model in a strongly typed network', () => {
    expect(choosePrecisionPlan('fp32', 10)).toMatchObject({
      onnx: 'fp32',
      fp16: false,
      int8: false,
      stronglyTyped: false,
    });
    expect(choosePrecisionPlan('fp16', 10)).toMatchObject({
      onnx: 'fp32',
      fp16: true,
      int8: false,
      stronglyTyped: false,
    });
    expect(choosePrecisionPlan('int8', 10)).toMatchObject({
      onnx: 'qdq',
      fp16: false,
      int8: false,
      stronglyTyped: true,
      legacyCalibrator: false,
    });
  });

  it("TensorRT 10's legacy calibrator: FP32 model, kINT8 and IInt8EntropyCalibrator2", () => {
    expect(choosePrecisionPlan('int8', 10, 'calibrator')).toMatchObject({
      onnx: 'fp32',
      int8: true,
      legacyCalibrator: true,
      stronglyTyped: false,
    });
    // The mode only concerns int8.
    expect(choosePrecisionPlan('fp16', 10, 'calibrator')).toMatchObject({ fp16: true, legacyCalibrator: false });
  });

  it('TensorRT 11: no precision flags; FP16 from an FP16 ONNX model, INT8 only from Q/DQ', () => {
    for (const major of [11, 12]) {
      for (const p of ['fp32', 'fp16', 'int8'] as const) {
        const plan = choosePrecisionPlan(p, major);
        expect(plan.fp16).toBe(false);
        expect(plan.int8).toBe(false);
        expect(plan.legacyCalibrator).toBe(false);
        expect(plan.stronglyTyped).toBe(true);
      }
    }
    expect(choosePrecisionPlan('fp16', 11).onnx).toBe('fp16');
    expect(choosePrecisionPlan('int8', 11).onnx).toBe('qdq');
    expect(() => choosePrecisionPlan('int8', 11, 'calibrator')).toThrow(
      /TensorRT 11 removed implicit INT8 calibration/,
    );
  });

  it('refuses TensorRT before 10 and unknown values', () => {
    expect(() => choosePrecisionPlan('fp16', 8)).toThrow(/TensorRT 10 or 11/);
    expect(() => choosePrecisionPlan('bf16' as never, 10)).toThrow(/fp32, fp16 or int8/);
    expect(() => choosePrecisionPlan('int8', 10, 'minmax' as never)).toThrow(/qdq or calibrator/);
  });
});

describe('TensorRT plan compatibility', () => {
  const built: PlanStamp = { tensorrtVersion: '10.16.0', gpuName: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0' };
  const here: LoadTarget = {
    tensorrtVersion: '10.16.0',
    device: 'cuda:0',
    gpuName: 'NVIDIA H100 80GB HBM3',
    computeCapability: '9.0',
  };

  it('accepts a plan built by this TensorRT on this GPU model', () => {
    expect(() => checkPlanCompatibility('m.engine', built, here)).not.toThrow();
  });

  it('a plan from another TensorRT version is a ModelLoadError naming both versions and the rebuild command', () => {
    const other = { ...here, tensorrtVersion: '11.1.0' };
    expect(() => checkPlanCompatibility('m.engine', built, other, 'models/m.onnx')).toThrow(ModelLoadError);
    expect(() => checkPlanCompatibility('m.engine', built, other, 'models/m.onnx')).toThrow(
      "'m.engine' is a TensorRT 10.16.0 plan but this machine runs TensorRT 11.1.0: a TensorRT plan loads only with " +
        'the TensorRT version that built it; rebuild it on this machine: trt-flowers build-engine --backend tensorrt ' +
        '--model-path models/m.onnx --output-path m.engine',
    );
    // A patch release is another version too.
    expect(() => checkPlanCompatibility('m.engine', built, { ...here, tensorrtVersion: '10.16.1' })).toThrow(
      /TensorRT 10.16.0 plan but this machine runs TensorRT 10.16.1/,
    );
  });

  it('a plan for another GPU is refused naming both GPUs', () => {
    const a100 = { ...here, gpuName: 'NVIDIA A100-SXM4-80GB', computeCapability: '8.0' };
    expect(() => checkPlanCompatibility('m.engine', built, a100)).toThrow(
      /built for NVIDIA H100 80GB HBM3 \(compute capability 9.0\) but cuda:0 is NVIDIA A100-SXM4-80GB \(compute capability 8.0\)/,
    );
    expect(() => checkPlanCompatibility('m.engine', built, { ...here, gpuName: 'NVIDIA H100 PCIe' })).toThrow(
      ModelLoadError,
    );
  });

  it('parses TensorRT versions', () => {
    expect(parseTensorRTVersion('10.16.0')).toEqual([10, 16, 0]);
    expect(parseTensorRTVersion('11.1')).toEqual([11, 1, 0]);
    expect(parseTensorRTVersion('10.16.0.106')).toEqual([10, 16, 0]);
    expect(() => parseTensorRTVersion('ten')).toThrow(RangeError);
  });
});

describe('TensorRT plan sidecar', () => {
  const sidecar = {
    format: 'trt-flowers-engine/1',
    backend: 'tensorrt',
    precision: 'fp16',
    classes: ['daisy', 'rose'],
    preprocessing: { size: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 'fill' },
    source_model: '/models/m.onnx',
    tensorrt: {
      version: '10.16.0',
      gpu: 'NVIDIA L4',
      compute_capability: '8.9',
      profile: { min: 1, opt: 8, max: 32 },
    },
  };

  it('gives the classes, preprocessing, precision and build stamp', () => {
    const info = parsePlanSidecar(JSON.stringify(sidecar), 'm.engine.json');
    expect(info.metadata.classes).toEqual(['daisy', 'rose']);
    expect(info.metadata.preprocessing.size).toBe(224);
    expect(info.precision).toBe('fp16');
    expect(info.stamp).toEqual({ tensorrtVersion: '10.16.0', gpuName: 'NVIDIA L4', computeCapability: '8.9' });
    expect(info.sourceModel).toBe('/models/m.onnx');
    expect(info.metadata.static_batch).toBeUndefined();
  });

  it('a static profile becomes the static batch the Engine pads to', () => {
    const fixed = { ...sidecar, tensorrt: { ...sidecar.tensorrt, profile: { min: 4, opt: 4, max: 4 } } };
    expect(parsePlanSidecar(JSON.stringify(fixed), 'f.json').metadata.static_batch).toBe(4);
  });

  it('refuses sidecars that are not a TensorRT plan description', () => {
    expect(() => parsePlanSidecar('{', 'x.json')).toThrow(/not valid JSON/);
    expect(() => parsePlanSidecar(JSON.stringify({ ...sidecar, backend: 'onnxruntime' }), 'x.json')).toThrow(
      /describes a onnxruntime engine/,
    );
    const { tensorrt: _t, ...noStamp } = sidecar;
    expect(() => parsePlanSidecar(JSON.stringify(noStamp), 'x.json')).toThrow(/TensorRT version and GPU/);
    expect(() => parsePlanSidecar(JSON.stringify({ ...sidecar, classes: [] }), 'x.json')).toThrow(ModelLoadError);
  });
});
