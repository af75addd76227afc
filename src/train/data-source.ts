import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { TrainConfig } from '../config/index.js';
import { fetchDataset, resolveDataDir } from '../data/fetch.js';

/** The data folder a run was trained on (params.json `dataDir`), for --resume without --data-dir. */
export async function runDataDir(runDir: string): Promise<string | undefined> {
  try {
    const params = JSON.parse(await readFile(path.join(runDir, 'params.json'), 'utf8')) as { dataDir?: unknown };
    return typeof params.dataDir === 'string' ? params.dataDir : undefined;
  } catch {
    return undefined;
  }
}

/** Where a download goes when no data folder is named: ./data/flower_photos. */
export const DEFAULT_DOWNLOAD_DIR = path.join('data', 'flower_photos');

/**
 * The data folder for training: --data-dir > data.root > TRT_FLOWERS_DATA; when none is set, ./data/flower_photos,
 * downloaded from data.url first when missing (offline, the error says how to point at a local copy).
 */
export async function resolveTrainingData(
  flag: string | undefined,
  config: TrainConfig,
  signal?: AbortSignal,
): Promise<string> {
  const named = flag ?? config.data.root ?? process.env.TRT_FLOWERS_DATA;
  if (named) return resolveDataDir({ flag, config: config.data.root });
  const out = path.resolve(DEFAULT_DOWNLOAD_DIR);
  if (existsSync(out)) return out;
  process.stderr.write(`no data folder given: fetching ${config.data.url} into ${out}\n`);
  const result = await fetchDataset({
    url: config.data.url,
    sha256: config.data.sha256,
    out,
    ...(signal ? { signal } : {}),
  });
  return result.dir;
}
