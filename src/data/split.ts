import fs from 'node:fs/promises';

import { DataError } from '../errors.js';
import { compareStrings, writeFileAtomic } from '../util/fs.js';
import type { DatasetIndex, DuplicateGroup, ExcludedFile } from './indexer.js';
import { Rng } from './rng.js';

export type SplitName = 'train' | 'val' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

/** One image of a split. */
export interface SplitItem {
  /** POSIX path relative to the data root. */
  path: string;
  label: number;
  md5: string;
}

/** The split shared by training, evaluation and calibration (JSON on disk). */
export interface SplitManifest {
  version: 1;
  classes: string[];
  seed: number;
  ratios: [number, number, number];
  /** DatasetIndex.checksum of the data the split was made from. */
  dataChecksum: string;
  counts: Record<SplitName, number[]>;
  train: SplitItem[];
  val: SplitItem[];
  test: SplitItem[];
  /** Files left out at index time (corrupt, truncated, ...), with their reason. */
  excluded: ExcludedFile[];
  /** Identical bytes under several paths; a conflict is the same bytes under two classes. */
  duplicates: DuplicateGroup[];
}

/** Options of createSplit. */
export interface SplitOptions {
  /** Train / val / test fractions, summing to 1. Defaults to [0.7, 0.15, 0.15]. */
  ratios?: readonly [number, number, number];
  /** Seed of the shuffle. Defaults to 42. */
  seed?: number;
  /** Leave out files whose bytes appear under two classes (label conflicts). Defaults to false (kept, reported). */
  dropConflicts?: boolean;
}

/**
 * Stratified, seeded split. Files with identical bytes form one group that goes to one split as a whole, so a photo
 * never appears in both train and test. Within each class the groups are shuffled with the seed and cut at the
 * rounded ratio boundaries. Same index + same options = same split, run after run.
 */
export function createSplit(index: DatasetIndex, options: SplitOptions = {}): SplitManifest {
  const ratios = options.ratios ?? [0.7, 0.15, 0.15];
  const seed = options.seed ?? 42;
  const sum = ratios[0] + ratios[1] + ratios[2];
  if (ratios.some((r) => !(r >= 0)) || Math.abs(sum - 1) > 1e-6) {
    throw new DataError(`split ratios must be non-negative and sum to 1, got [${ratios.join(', ')}]`);
  }
  const conflicts = new Set(index.duplicates.filter((d) => d.conflict).map((d) => d.md5));
  const excluded = [...index.invalid];
  const groups = new Map<string, SplitItem[]>();
  for (const image of [...index.images].sort((a, b) => compareStrings(a.path, b.path))) {
    if (options.dropConflicts && conflicts.has(image.md5)) {
      excluded.push({ path: image.path, reason: 'same bytes under another class (label conflict)' });
      continue;
    }
    const item = { path: image.path, label: image.label, md5: image.md5 };
    const group = groups.get(image.md5);
    if (group) group.push(item);
    else groups.set(image.md5, [item]);
  }
  // A group is stratified under the class of its first path.
  const perClass: SplitItem[][][] = index.classes.map(() => []);
  for (const group of groups.values()) perClass[(group[0] as SplitItem).label]?.push(group);
  const out: Record<SplitName, SplitItem[]> = { train: [], val: [], test: [] };
  for (const [label, classGroups] of perClass.entries()) {
    new Rng(seed, 'split', index.classes[label] as string).shuffle(classGroups);
    const total = classGroups.reduce((n, g) => n + g.length, 0);
    const trainEnd = Math.round(total * ratios[0]);
    const valEnd = Math.round(total * (ratios[0] + ratios[1]));
    let taken = 0;
    for (const group of classGroups) {
      const target = taken < trainEnd ? out.train : taken < valEnd ? out.val : out.test;
      target.push(...group);
      taken += group.length;
    }
  }
  const counts = {} as Record<SplitName, number[]>;
  for (const name of SPLIT_NAMES) {
    out[name].sort((a, b) => compareStrings(a.path, b.path));
    counts[name] = index.classes.map((_, label) => out[name].filter((i) => i.label === label).length);
  }
  return {
    version: 1,
    classes: [...index.classes],
    seed,
    ratios: [...ratios],
    dataChecksum: index.checksum,
    counts,
    ...out,
    excluded,
    duplicates: index.duplicates,
  };
}

/** Writes a split manifest atomically (temp file + rename). */
export async function writeSplitManifest(file: string, manifest: SplitManifest): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(manifest, null, 1)}\n`);
}

/** Reads and checks a split manifest. Throws DataError when it is missing or malformed. */
export async function readSplitManifest(file: string): Promise<SplitManifest> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new DataError(`cannot read split manifest '${file}': ${(err as Error).message}`, { cause: err });
  }
  const m = parsed as Partial<SplitManifest>;
  if (
    m?.version !== 1 ||
    !Array.isArray(m.classes) ||
    typeof m.dataChecksum !== 'string' ||
    !SPLIT_NAMES.every((s) => Array.isArray(m[s]))
  ) {
    throw new DataError(`'${file}' is not a split manifest (version 1 with classes, dataChecksum, train, val, test)`);
  }
  return m as SplitManifest;
}

/**
 * Returns the split stored in `file` when it was made from the same data (checksum), classes, ratios and seed;
 * otherwise creates it and writes it. Training, evaluation and calibration call this with the same file.
 */
export async function loadOrCreateSplit(
  file: string,
  index: DatasetIndex,
  options: SplitOptions = {},
): Promise<SplitManifest> {
  const wanted = createSplit(index, options);
  try {
    const stored = await readSplitManifest(file);
    const same =
      stored.dataChecksum === wanted.dataChecksum &&
      stored.seed === wanted.seed &&
      JSON.stringify(stored.ratios) === JSON.stringify(wanted.ratios) &&
      JSON.stringify(stored.classes) === JSON.stringify(wanted.classes);
    if (same) return stored;
  } catch {
    // missing or unreadable: write a fresh one
  }
  await writeSplitManifest(file, wanted);
  return wanted;
}
