import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import YAML from 'yaml';

import { packageRoot } from '../util/paths.js';
import { ConfigError } from '../errors.js';
import { checkKeyPath, type SectionSpec } from '../util/schema.js';
import { describeJson } from '../util/describe.js';

export type RawConfig = Record<string, unknown>;

/** The configs/ folder of the package (train.yaml, data.yaml, model.yaml). */
export const defaultConfigDir = join(packageRoot, 'configs');

function isObject(v: unknown): v is RawConfig {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: objects merge key by key, everything else (arrays included) is replaced. */
export function deepMerge(base: RawConfig, over: RawConfig): RawConfig {
  const out: RawConfig = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k] as RawConfig, v) : v;
  }
  return out;
}

function readYaml(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config '${path}': ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`config '${path}' is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (!isObject(doc)) throw new ConfigError(`config '${path}' must be a mapping, not ${describeJson(doc)}`);
  return doc;
}

/**
 * Loads a YAML config and composes it Hydra-style: `defaults: [data, model]` loads data.yaml and model.yaml from
 * the same folder first; the file's own keys override them. Composition is recursive and cycle-checked.
 */
export function composeConfig(path: string, seen: readonly string[] = []): RawConfig {
  const file = resolve(path);
  if (seen.includes(file)) throw new ConfigError(`config defaults form a cycle: ${[...seen, file].join(' -> ')}`);
  const doc = readYaml(file);
  const { defaults, ...own } = doc;
  let merged: RawConfig = {};
  if (defaults !== undefined) {
    if (!Array.isArray(defaults) || defaults.some((d) => typeof d !== 'string')) {
      throw new ConfigError(`\`defaults\` in '${file}' must be a list of config names, not ${describeJson(defaults)}`);
    }
    for (const name of defaults as string[]) {
      const candidate = join(dirname(file), name.endsWith('.yaml') ? name : `${name}.yaml`);
      if (!existsSync(candidate))
        throw new ConfigError(`\`defaults\` in '${file}' names '${name}', but ${candidate} does not exist`);
      merged = deepMerge(merged, composeConfig(candidate, [...seen, file]));
    }
  }
  return deepMerge(merged, own);
}

/**
 * Applies `key=value` overrides (`trainer.max_epochs=25`, `data.split=[0.8,0.1,0.1]`, `data.augment.enabled=false`,
 * `model.weights=null`). Values are parsed as YAML scalars or flow collections. The key must name a key of its
 * section's schema (`specOf`; an empty spec for a plain value such as `experiment`), nested sections included;
 * unknown keys are errors with a suggestion.
 */
export function applyOverrides(
  config: RawConfig,
  overrides: readonly string[],
  specOf: (section: string) => SectionSpec | undefined,
): RawConfig {
  let out = config;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new ConfigError(`override '${o}' must look like key=value (e.g. trainer.max_epochs=25)`);
    const path = o.slice(0, eq).trim().split('.');
    const text = o.slice(eq + 1);
    if (path.some((p) => !/^[A-Za-z_][\w-]*$/.test(p))) throw new ConfigError(`override '${o}' has an invalid key`);
    const [section, ...keys] = path as [string, ...string[]];
    const spec = specOf(section);
    if (!spec) throw new ConfigError(`override '${o}': unknown section \`${section}\``);
    checkKeyPath(section, spec, keys);
    let value: unknown;
    try {
      value = text === '' ? '' : YAML.parse(text);
    } catch (err) {
      throw new ConfigError(`override '${o}': cannot parse the value: ${(err as Error).message}`);
    }
    const patch: RawConfig = {};
    let cursor = patch;
    path.forEach((p, i) => {
      if (i === path.length - 1) cursor[p] = value;
      else cursor = cursor[p] = {} as RawConfig;
    });
    out = deepMerge(out, patch);
  }
  return out;
}
