import { describe, expect, it } from 'vitest';

import {
  DEFAULT_AUGMENT,
  DEFAULT_DATA_CONFIG,
  defaultDataSection,
  isCamelCaseData,
  loadDataConfig,
  loadDataSection,
  parseDataConfig,
  parseDataSection,
  toDataConfig,
  toDataSection,
} from '../../../src/data/config.js';
import { DEFAULT_LOADER_OPTIONS, indexOptionsOf, loaderOptionsOf, splitOptionsOf } from '../../../src/data/options.js';
import { ConfigError } from '../../../src/errors.js';
import { packageRoot } from '../../../src/util/paths.js';

describe('parseDataSection', () => {
  it('fills defaults, in the YAML casing', () => {
    const d = parseDataSection({});
    expect(d).toEqual(defaultDataSection());
    expect(d.classes).toEqual(['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']);
    expect(d.image_size).toBe(224);
    expect(d.batch_size).toBe(16);
    expect(d.max_file_bytes).toBe(64 * 1024 * 1024);
    expect(d.augment).toEqual({
      enabled: true,
      crop_scale: [0.6, 1],
      crop_ratio: [3 / 4, 4 / 3],
      flip_probability: 0.5,
      brightness: 0.1,
      contrast: 0.1,
      saturation: 0.1,
      downscale_probability: 0,
      downscale: [0.25, 0.75],
      jpeg_probability: 0,
      jpeg_quality: [30, 90],
      erase_probability: 0,
      erase_scale: [0.02, 0.2],
      policy: 'none',
      policy_magnitude: 1,
    });
    expect('root' in d).toBe(false);
    expect(parseDataSection(undefined)).toEqual(d);
    // A fresh object each time: changing one does not change the defaults.
    d.classes.push('x');
    d.split[0] = 0;
    expect(defaultDataSection().classes).toHaveLength(5);
    expect(defaultDataSection().split[0]).toBe(0.7);
  });

  it('accepts overrides, augment: false, root: null and a sha256 in capitals', () => {
    const d = parseDataSection({
      image_size: 128,
      split: [0.8, 0.1, 0.1],
      augment: false,
      root: '/x',
      resize: 'center-crop',
      max_file_bytes: 1_000_000,
      batch_size: 4,
      sha256: 'AB'.repeat(32),
    });
    expect(d).toMatchObject({ image_size: 128, max_file_bytes: 1_000_000, batch_size: 4, root: '/x' });
    expect(d.split).toEqual([0.8, 0.1, 0.1]);
    expect(d.augment).toEqual({ ...defaultDataSection().augment, enabled: false });
    expect(d.resize).toBe('center-crop');
    expect(d.sha256).toBe('ab'.repeat(32));
    expect('root' in parseDataSection({ root: null })).toBe(false);
    expect(parseDataSection({ augment: { crop_scale: [0.5, 0.5] } }).augment.crop_scale).toEqual([0.5, 0.5]);
  });

  it('reads configs/data.yaml (batch_size included) into the same object as its defaults', async () => {
    const d = await loadDataSection(`${packageRoot}/configs/data.yaml`);
    expect({ ...d, augment: { ...d.augment, crop_ratio: [0.75, 4 / 3] } }).toEqual(defaultDataSection());
  });

  it.each([
    [{ image_size: 0 }, 'Expected an integer between 8 and 4096 for `data.image_size` but received 0 of type number'],
    [{ image_size: 12.5 }, /an integer between 8 and 4096 for `data.image_size` but received 12.5/],
    [{ max_file_bytes: 0 }, /`data.max_file_bytes` but received 0/],
    [{ batch_size: 0 }, 'Expected an integer between 1 and 4096 for `data.batch_size` but received 0 of type number'],
    [{ split: [0.5, 0.2, 0.2] }, '`data.split` fractions must sum to 1 but sum to 0.9'],
    [{ split: [1] }, /Expected \[train, val, test\] \(3 numbers between 0 and 1\) for `data.split` but received \[1\]/],
    [{ split: [0.5, 'a', 0.5] }, /`data.split\[1\]` but received "a" of type string/],
    [{ classes: ['a'] }, /at least 2 class names \(a list of non-empty strings\) for `data.classes`/],
    [{ classes: ['a', ''] }, /at least 2 class names/],
    [{ classes: ['a', 'b', 'a'] }, 'Expected distinct class names for `data.classes` but received "a" more than once'],
    [{ resize: 'crop' }, 'Expected one of fill, center-crop for `data.resize` but received "crop" of type string'],
    [{ colour: 1 }, /Unknown key `data.colour`; known keys: root, classes, image_size/],
    [{ imageSize: 64 }, /Unknown key `data.imageSize` \(did you mean `data.image_size`\?\); known keys: root, classes/],
    [{ cacheMiB: 64 }, /did you mean `data.cache_mib`/],
    [{ augment: { flip: 1 } }, /Unknown key `data.augment.flip` \(did you mean `data.augment.flip_probability`\?\)/],
    [{ augment: { cropScale: [0.5, 1] } }, /did you mean `data.augment.crop_scale`/],
    [{ augment: { crop_scale: [0.9, 0.5] } }, /between 0.9 and 1 for `data.augment.crop_scale\[1\]` but received 0.5/],
    [{ augment: { crop_scale: [0, 1] } }, /between 0.01 and 1 for `data.augment.crop_scale\[0\]`/],
    [
      { augment: { jpeg_quality: [90, 30] } },
      /between 90 and 100 for `data.augment.jpeg_quality\[1\]` but received 30/,
    ],
    [{ augment: { jpeg_probability: 2 } }, /between 0 and 1 for `data.augment.jpeg_probability`/],
    [{ augment: { downscale: [0, 0.5] } }, /between 0.05 and 1 for `data.augment.downscale\[0\]`/],
    [{ augment: { enabled: 'no' } }, 'Expected a boolean for `data.augment.enabled` but received "no" of type string'],
    [{ augment: 'off' }, /Expected an object or a boolean for `data.augment` but received "off"/],
    [{ sha256: 'abc' }, 'Expected 64 hex digits for `data.sha256` but received "abc" of type string'],
    [{ url: '' }, /non-empty string for `data.url`/],
    [{ balanced: 1 }, /boolean for `data.balanced`/],
    ['yes', /Expected an object for `data` but received "yes"/],
  ])('rejects %j', (raw, message) => {
    expect(() => parseDataSection(raw)).toThrow(ConfigError);
    expect(() => parseDataSection(raw)).toThrow(message);
  });
});

describe('the options each part takes of the data section', () => {
  it('maps every key once', () => {
    const d = parseDataSection({ image_size: 96, max_pixels: 1000, cache_mib: 8, batch_size: 3, seed: 5 });
    expect(indexOptionsOf(d)).toEqual({ classes: d.classes, maxPixels: 1000, maxFileBytes: d.max_file_bytes });
    expect(splitOptionsOf(d)).toEqual({ ratios: [0.7, 0.15, 0.15], seed: 5 });
    expect(loaderOptionsOf(d)).toEqual({
      batchSize: 3,
      imageSize: 96,
      evalImageSize: 96,
      resize: 'fill',
      maxPixels: 1000,
      maxFileBytes: d.max_file_bytes,
      concurrency: 4,
      prefetch: 2,
      cacheMiB: 8,
      augment: DEFAULT_AUGMENT,
      balanced: false,
      seed: 5,
    });
    expect(loaderOptionsOf(parseDataSection({ augment: false })).augment).toBe(false);
    expect(loaderOptionsOf(parseDataSection({ image_size: 160, eval_image_size: 224 }))).toMatchObject({
      imageSize: 160,
      evalImageSize: 224,
    });
    expect(DEFAULT_LOADER_OPTIONS).toMatchObject({ batchSize: 16, imageSize: 224, cacheMiB: 1024 });
  });
});

describe('the camelCase DataConfig (deprecated)', () => {
  it('parseDataConfig, DEFAULT_DATA_CONFIG and loadDataConfig still give it', async () => {
    expect(parseDataConfig({})).toEqual(DEFAULT_DATA_CONFIG);
    const c = parseDataConfig({ image_size: 128, max_file_bytes: 1_000_000, cache_mib: 2, augment: false, root: '/x' });
    expect(c).toMatchObject({ imageSize: 128, maxFileBytes: 1_000_000, cacheMiB: 2, root: '/x' });
    expect(c.augment).toEqual({ ...DEFAULT_AUGMENT, enabled: false });
    expect(DEFAULT_DATA_CONFIG.maxFileBytes).toBe(64 * 1024 * 1024);
    expect('batchSize' in c).toBe(false);
    expect(() => parseDataConfig({ imageSize: 64 })).toThrow(/did you mean `data.image_size`/);
    expect(await loadDataConfig(`${packageRoot}/configs/data.yaml`)).toMatchObject({ imageSize: 224, cacheMiB: 1024 });
  });

  it('converts both ways without loss', () => {
    const d = parseDataSection({
      root: '/data',
      image_size: 160,
      cache_mib: 0,
      batch_size: 7,
      augment: { crop_scale: [0.3, 0.9], flip_probability: 0 },
    });
    const c = toDataConfig(d);
    expect(c).toMatchObject({ root: '/data', imageSize: 160, cacheMiB: 0, batchSize: 7 });
    expect(c.augment).toMatchObject({ cropScale: [0.3, 0.9], flipProbability: 0 });
    expect(isCamelCaseData(c)).toBe(true);
    expect(isCamelCaseData(d)).toBe(false);
    expect(toDataSection(c)).toEqual(d);
    // Part of one: the rest are defaults, and values are checked like the YAML's.
    expect(toDataSection({ imageSize: 64 })).toEqual({ ...defaultDataSection(), image_size: 64 });
    expect(isCamelCaseData({ augment: { cropRatio: [1, 2] } })).toBe(true);
    expect(() => toDataSection({ imageSize: 2 })).toThrow(/`data.image_size` but received 2/);
    expect(() => toDataSection({ augment: { ...DEFAULT_AUGMENT, cropScale: [1, 0.5] } })).toThrow(
      /`data.augment.crop_scale\[1\]`/,
    );
  });
});
