import { describe, expect, it } from 'vitest';

import { DECODER_CONVENTIONS, defaultPreprocessing, parseMetadata } from '../../../src/data/metadata.js';
import { ModelLoadError } from '../../../src/errors.js';

describe('model metadata: preprocessing', () => {
  it('records the resize kernel and the decoder conventions', () => {
    expect(defaultPreprocessing(160)).toMatchObject({ size: 160, kernel: 'linear', decoder: DECODER_CONVENTIONS });
    expect(DECODER_CONVENTIONS).toMatchObject({ orientation: 'exif', color: 'srgb-8bit', layout: 'NCHW-RGB' });
  });

  it("reads files written before the kernel was recorded as 'linear' (how they were preprocessed)", () => {
    const m = parseMetadata({ classes: ['a', 'b'], preprocessing: { size: 96, resize: 'fill' } }, 'old.pt');
    expect(m.preprocessing).toMatchObject({ size: 96, kernel: 'linear', decoder: DECODER_CONVENTIONS });
  });

  it('keeps a recorded kernel and refuses an unknown one, naming the key', () => {
    const m = parseMetadata({ classes: ['a'], preprocessing: { kernel: 'lanczos3' } }, 'x.onnx');
    expect(m.preprocessing.kernel).toBe('lanczos3');
    expect(() => parseMetadata({ classes: ['a'], preprocessing: { kernel: 'bicubic' } }, 'x.onnx')).toThrow(
      ModelLoadError,
    );
    expect(() => parseMetadata({ classes: ['a'], preprocessing: { kernel: 'bicubic' } }, 'x.onnx')).toThrow(
      /x\.onnx: .*`preprocessing\.kernel` must be one of nearest, linear, .*got "bicubic"/,
    );
  });
});
