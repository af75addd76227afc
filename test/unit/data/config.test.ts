import { describe, expect, it } from 'vitest';

import { DEFAULT_DATA_CONFIG, parseDataConfig } from '../../../src/data/config.js';
import { ConfigError } from '../../../src/errors.js';

describe('parseDataConfig', () => {
  it('fills defaults', () => {
    expect(parseDataConfig({})).toEqual(DEFAULT_DATA_CONFIG);
    expect(parseDataConfig(undefined).classes).toEqual(['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']);
  });

  it('accepts overrides and augment: false', () => {
    const c = parseDataConfig({
      image_size: 128,
      split: [0.8, 0.1, 0.1],
      augment: false,
      root: '/x',
      resize: 'center-crop',
      max_file_bytes: 1_000_000,
    });
    expect(c.imageSize).toBe(128);
    expect(c.maxFileBytes).toBe(1_000_000);
    expect(DEFAULT_DATA_CONFIG.maxFileBytes).toBe(64 * 1024 * 1024);
    expect(c.split).toEqual([0.8, 0.1, 0.1]);
    expect(c.augment.enabled).toBe(false);
    expect(c.root).toBe('/x');
    expect(c.resize).toBe('center-crop');
  });

  it.each([
    [{ image_size: 0 }, /`data.image_size` but received 0 of type number/],
    [{ image_size: 12.5 }, /integer/],
    [{ max_file_bytes: 0 }, /`data.max_file_bytes` but received 0/],
    [{ split: [0.5, 0.2, 0.2] }, /sum to 1/],
    [{ split: [1] }, /\[train, val, test\]/],
    [{ classes: ['a'] }, /at least two class names/],
    [{ classes: ['a', 'a'] }, /repeated/],
    [{ resize: 'crop' }, /'fill' or 'center-crop'/],
    [{ colour: 1 }, /Unknown key `data.colour`/],
    [{ imageSize: 64 }, /Unknown key `data.imageSize`; known keys: root, classes, image_size/],
    [{ augment: { flip: 1 } }, /Unknown key `data.augment.flip`/],
    [{ augment: { crop_scale: [0.9, 0.5] } }, /crop_scale\[1\]/],
    [{ sha256: 'abc' }, /64 hex digits/],
    ['yes', /Expected an object for `data`/],
  ])('rejects %j', (raw, message) => {
    expect(() => parseDataConfig(raw)).toThrow(ConfigError);
    expect(() => parseDataConfig(raw)).toThrow(message);
  });
});
