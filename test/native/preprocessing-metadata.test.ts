import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { decodeResized, normalizeInto } from '../../src/data/preprocess.js';
import { Engine } from '../../src/engine/Engine.js';
import { TorchModel } from '../../src/torch/TorchModel.js';
import { hasFlowers, photos, tinyModelPath } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-prep-'));

describe.skipIf(!hasFlowers)('the preprocessing a model records is the one its Engine applies', () => {
  it('a checkpoint recording a kernel is preprocessed with that kernel', async () => {
    const [photo] = photos('tulips', 1);
    const model = await TorchModel.load(tinyModelPath);
    const file = join(dir, 'lanczos.pt');
    const classes = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'];
    model.native.setMetadata(JSON.stringify({ classes, preprocessing: { size: 64, kernel: 'lanczos3' } }));
    await model.save(file);
    await model.dispose();
    await using engine = await Engine.load(file);
    expect(engine.info.preprocessing.kernel).toBe('lanczos3');
    const { data } = await engine.preprocess([photo!]);
    const decoded = async (kernel: 'lanczos3' | 'linear'): Promise<Float32Array> => {
      const out = new Float32Array(3 * 64 * 64);
      normalizeInto(await decodeResized(photo!, { size: 64, kernel }), out, 0);
      return out;
    };
    const lanczos = await decoded('lanczos3');
    const linear = await decoded('linear');
    expect(Array.from(data)).toEqual(Array.from(lanczos));
    expect(Array.from(data)).not.toEqual(Array.from(linear));
  });
});
