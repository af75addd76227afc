import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it, vi } from 'vitest';

import { loadTrainConfig, parseRunConfig, withDataSection, type CamelCaseTrainConfig } from '../../src/config/index.js';
import { CAMELCASE_DATA_CODE, toDataConfig } from '../../src/data/config.js';
import { ConfigError } from '../../src/errors.js';
import { trainerOptionsOf } from '../../src/train/options.js';

describe('train config', () => {
  it('composes train.yaml with data.yaml and model.yaml', () => {
    const { config } = loadTrainConfig();
    expect(config.trainer.max_epochs).toBe(25);
    expect(config.data.batch_size).toBe(16);
    expect(config.model.learning_rate).toBe(0.001);
    expect(config.data.classes).toEqual(['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']);
  });

  it('applies key=value overrides with YAML values', () => {
    const { config } = loadTrainConfig({
      overrides: [
        'trainer.max_epochs=3',
        'data.batch_size=4',
        'model.learning_rate=0.01',
        'model.weights=null',
        'data.split=[0.8,0.1,0.1]',
      ],
    });
    expect(config.trainer.max_epochs).toBe(3);
    expect(config.data.batch_size).toBe(4);
    expect(config.model.learning_rate).toBe(0.01);
    expect(config.model.weights).toBeNull();
    expect(config.data.split).toEqual([0.8, 0.1, 0.1]);
  });

  it('overrides reach nested keys, checked at every level', () => {
    const { config } = loadTrainConfig({
      overrides: ['data.augment.enabled=false', 'data.augment.crop_scale=[0.5,0.9]'],
    });
    expect(config.data.augment).toMatchObject({ enabled: false, crop_scale: [0.5, 0.9] });
    expect(loadTrainConfig({ overrides: ['data.augment=false'] }).config.data.augment.enabled).toBe(false);
    expect(() => loadTrainConfig({ overrides: ['data.augment.flip=0'] })).toThrow(
      /Unknown key `data.augment.flip` \(did you mean `data.augment.flip_probability`\?\); known keys: enabled/,
    );
    expect(() => loadTrainConfig({ overrides: ['data.imageSize=64'] })).toThrow(
      /Unknown key `data.imageSize` \(did you mean `data.image_size`\?\)/,
    );
    expect(() => loadTrainConfig({ overrides: ['data.split.train=1'] })).toThrow(
      '`data.split` is a single value (tuple), not a section with keys',
    );
    expect(() => loadTrainConfig({ overrides: ['data.augment.crop_scale=[0.9,0.5]'] })).toThrow(
      /`data.augment.crop_scale\[1\]` but received 0.5/,
    );
    expect(() => loadTrainConfig({ overrides: ['experiment.name=x'] })).toThrow(/Unknown key `experiment.name`/);
    expect(loadTrainConfig({ overrides: ['experiment=x'] }).config.experiment).toBe('x');
  });

  it('a camelCase data section is converted, with one DeprecationWarning per process', () => {
    const { config } = loadTrainConfig({ overrides: ['data.image_size=96', 'data.batch_size=5'] });
    const camel: CamelCaseTrainConfig = { ...config, data: toDataConfig(config.data) };
    expect(camel.data).toMatchObject({ imageSize: 96, batchSize: 5 });
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      expect(withDataSection(config, 'train()')).toBe(config);
      expect(warn).not.toHaveBeenCalled();
      expect(withDataSection(camel, 'train()')).toEqual(config);
      expect(withDataSection(camel, 'train()')).toEqual(config);
      expect(warn).toHaveBeenCalledTimes(1);
      const [message, options] = warn.mock.calls[0] as [string, { type: string; code: string }];
      expect(options).toEqual({ type: 'DeprecationWarning', code: CAMELCASE_DATA_CODE });
      expect(message).toMatch(/train\(\) was given a camelCase data section .*snake_case .*image_size/);
    } finally {
      warn.mockRestore();
    }
  });

  it("reads a run's config.yaml, also one written with the camelCase data section", () => {
    const { config } = loadTrainConfig({ overrides: ['data.image_size=64', 'data.augment=false'] });
    expect(parseRunConfig(JSON.parse(JSON.stringify(config)) as Record<string, unknown>)).toEqual(config);
    const old = JSON.parse(JSON.stringify({ ...config, data: toDataConfig(config.data) })) as Record<string, unknown>;
    expect(parseRunConfig(old)).toEqual(config);
  });

  it('unknown keys and sections are errors, with a suggestion', () => {
    expect(() => loadTrainConfig({ overrides: ['trainer.max_epoch=3'] })).toThrow(
      /Unknown key `trainer.max_epoch` \(did you mean `trainer.max_epochs`\?\)/,
    );
    expect(() => loadTrainConfig({ overrides: ['optim.lr=1'] })).toThrow(/unknown section `optim`/);
    expect(() => loadTrainConfig({ overrides: ['no_equals_sign'] })).toThrow(/key=value/);
  });

  it('wrong types and ranges name the key, the expected type and what was given', () => {
    expect(() => loadTrainConfig({ overrides: ['trainer.max_epochs=abc'] })).toThrow(
      'Expected an integer between 0 and 100000 for `trainer.max_epochs` but received "abc" of type string',
    );
    expect(() => loadTrainConfig({ overrides: ['model.learning_rate=-1'] })).toThrow(
      /`model.learning_rate` but received -1/,
    );
    expect(() => loadTrainConfig({ overrides: ['model.optimizer=rmsprop'] })).toThrow(/one of adamw, adam, sgd/);
    expect(() => loadTrainConfig({ overrides: ['data.batch_size=0'] })).toThrow(/data.batch_size/);
    expect(() => loadTrainConfig({ overrides: ['trainer.amp=maybe'] })).toThrow(/boolean for `trainer.amp`/);
    expect(() => loadTrainConfig({ overrides: ['trainer.max_epochs=3'] })).not.toThrow(ConfigError);
  });

  it('model.layer_decay: in (0, 1], 1 (off) by default, passed to the trainer only below 1', () => {
    expect(loadTrainConfig().config.model.layer_decay).toBe(1);
    const { config } = loadTrainConfig({ overrides: ['model.layer_decay=0.75'] });
    expect(config.model.layer_decay).toBe(0.75);
    expect(trainerOptionsOf(config, 'cpu').layerDecay).toBe(0.75);
    expect(trainerOptionsOf(loadTrainConfig().config, 'cpu')).not.toHaveProperty('layerDecay');
    expect(() => loadTrainConfig({ overrides: ['model.layer_decay=0'] })).toThrow(
      '`model.layer_decay` must be greater than 0 (1 turns layer-wise decay off), received 0',
    );
    expect(() => loadTrainConfig({ overrides: ['model.layer_decay=2'] })).toThrow(
      'Expected a number between 0 and 1 for `model.layer_decay` but received 2',
    );
    expect(() => loadTrainConfig({ overrides: ['model.layer_decay=-0.5'] })).toThrow(/`model.layer_decay`/);
    expect(() => loadTrainConfig({ overrides: ['model.layer_decay=x'] })).toThrow(ConfigError);
  });

  it('a custom top config with defaults, cycles and missing files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trt-flowers-cfg-'));
    writeFileSync(join(dir, 'base.yaml'), 'trainer:\n  max_epochs: 7\n');
    writeFileSync(join(dir, 'top.yaml'), 'defaults: [base]\ntrainer:\n  patience: 2\n');
    const { config } = loadTrainConfig({ file: join(dir, 'top.yaml') });
    expect(config.trainer.max_epochs).toBe(7);
    expect(config.trainer.patience).toBe(2);
    writeFileSync(join(dir, 'a.yaml'), 'defaults: [b]\n');
    writeFileSync(join(dir, 'b.yaml'), 'defaults: [a]\n');
    expect(() => loadTrainConfig({ file: join(dir, 'a.yaml') })).toThrow(/cycle/);
    writeFileSync(join(dir, 'c.yaml'), 'defaults: [nope]\n');
    expect(() => loadTrainConfig({ file: join(dir, 'c.yaml') })).toThrow(/nope/);
    writeFileSync(join(dir, 'bad.yaml'), 'trainer: [1, 2\n');
    expect(() => loadTrainConfig({ file: join(dir, 'bad.yaml') })).toThrow(/not valid YAML/);
    expect(() => loadTrainConfig({ file: join(dir, 'missing.yaml') })).toThrow(/cannot read config/);
  });
});
