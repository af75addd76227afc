import fs from 'node:fs/promises';
import path from 'node:path';

import { md5 } from '../../util/fs.js';
import { MODEL_NAME } from '../options.js';
import { ModelConfigError, parseModelConfig, type ModelConfig } from './config.js';
import { TRITON_PLATFORMS } from './platforms.js';

/** The platforms this server runs, and the model file Triton looks for in a version folder. */
export const SERVABLE_PLATFORMS: Record<string, string> = Object.fromEntries(
  Object.values(TRITON_PLATFORMS).map((p) => [p.platform, p.file]),
);

/** One version of a model found in a repository. */
export interface RepositoryVersion {
  version: string;
  file: string;
  /** Changes when the model file or the config changes: a new one is loaded in its place. */
  fingerprint: string;
}

/** One model found in a repository. */
export interface RepositoryModel {
  name: string;
  config: ModelConfig;
  /** The versions the version policy serves, newest first. */
  versions: RepositoryVersion[];
}

/**
 * An ensemble that is a preprocessing step (Python backend) before a model this server serves: this server takes
 * the ensemble's encoded images itself, so the ensemble's name answers as that model.
 */
export interface RepositoryAlias {
  name: string;
  target: string;
}

/** What a scan found: the models to serve, ensembles answered by them, and what it passed over (with why). */
export interface RepositoryScan {
  models: RepositoryModel[];
  aliases: RepositoryAlias[];
  skipped: { name: string; reason: string }[];
}

/** The versions the config's version_policy serves (Triton's default: the newest one). */
function servedVersions(config: ModelConfig, found: number[]): number[] {
  const newestFirst = [...found].sort((a, b) => b - a);
  const policy = config.version_policy;
  if (policy?.all) return newestFirst;
  if (policy?.specific) return newestFirst.filter((v) => policy.specific!.versions.includes(v));
  return newestFirst.slice(0, Math.max(1, policy?.latest?.num_versions ?? 1));
}

/**
 * Reads a Triton / KServe model repository: `<repo>/<model>/config.pbtxt` and `<repo>/<model>/<version>/model.*`.
 * Models this server cannot run (ensembles, Python backends, other platforms) are reported as skipped, and so is a
 * model whose config does not parse (its error names the field); the others are served.
 */
export async function scanRepository(repo: string): Promise<RepositoryScan> {
  const entries = await fs.readdir(repo, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    throw new RangeError(
      err.code === 'ENOENT' ? `the model repository '${repo}' does not exist` : `cannot read '${repo}': ${err.message}`,
    );
  });
  const scan: RepositoryScan = { models: [], aliases: [], skipped: [] };
  const configs = new Map<string, ModelConfig>();
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const name = entry.name;
    const dir = path.join(repo, name);
    const configFile = path.join(dir, 'config.pbtxt');
    let text: string;
    try {
      text = await fs.readFile(configFile, 'utf8');
    } catch {
      scan.skipped.push({ name, reason: 'no config.pbtxt' });
      continue;
    }
    if (!MODEL_NAME.test(name)) {
      scan.skipped.push({ name, reason: 'not a model name (letters, digits, _ - .)' });
      continue;
    }
    let config: ModelConfig;
    try {
      config = await parseModelConfig(text, `${name}/config.pbtxt`);
    } catch (err) {
      if (!(err instanceof ModelConfigError)) throw err;
      scan.skipped.push({ name, reason: err.message });
      continue;
    }
    if (config.name !== name) {
      scan.skipped.push({ name, reason: `${name}/config.pbtxt: field \`name\` is '${config.name}', not '${name}'` });
      continue;
    }
    configs.set(name, config);
    const fileName = config.default_model_filename || SERVABLE_PLATFORMS[config.platform ?? ''];
    if (!fileName) {
      scan.skipped.push({
        name,
        reason: `platform '${config.platform ?? ''}'${config.backend ? ` (backend '${config.backend}')` : ''} is not one this server runs`,
      });
      continue;
    }
    const found: number[] = [];
    const stats = new Map<number, { file: string; stamp: string }>();
    for (const v of await fs.readdir(dir, { withFileTypes: true })) {
      if (!v.isDirectory() || !/^[1-9]\d{0,17}$/.test(v.name)) continue;
      const file = path.join(dir, v.name, fileName);
      const stat = await fs.stat(file).catch(() => undefined);
      if (!stat?.isFile()) continue;
      found.push(Number(v.name));
      stats.set(Number(v.name), { file, stamp: `${stat.size}:${stat.mtimeMs}` });
    }
    const versions = servedVersions(config, found);
    if (versions.length === 0) {
      scan.skipped.push({ name, reason: `no version folder holds ${fileName}` });
      continue;
    }
    scan.models.push({
      name,
      config,
      versions: versions.map((v) => {
        const s = stats.get(v)!;
        return { version: String(v), file: s.file, fingerprint: `${s.stamp}:${md5(text)}` };
      }),
    });
  }
  // Ensembles of Python-backend preprocessing and then a served model, taking one BYTES input (export-triton's).
  for (const [name, config] of configs) {
    const steps = config.ensemble_scheduling?.step ?? [];
    const last = steps[steps.length - 1];
    const target = last && scan.models.find((m) => m.name === last.model_name);
    const before = steps.slice(0, -1).map((st) => configs.get(st.model_name));
    const input = config.input ?? [];
    if (
      config.platform === 'ensemble' &&
      target &&
      before.length > 0 &&
      before.every((c) => c?.backend === 'python') &&
      input.length === 1 &&
      input[0]?.data_type === 'TYPE_STRING'
    ) {
      scan.aliases.push({ name, target: target.name });
      scan.skipped = scan.skipped.filter((sk) => sk.name !== name);
    }
  }
  return scan;
}
