/** What the bench feeds the engines: the model files, the photos, and the labelled photos for accuracy. */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import { packageRoot } from '../util/paths.js';
import { mapLimit } from '../util/fs.js';
import { decodeResized } from '../data/preprocess.js';
import { readSplitManifest } from '../data/split.js';
import { isImageFile, listImages, spread } from '../data/files.js';
import { DataError, ModelLoadError } from '../errors.js';
import { runDataDir } from '../train/data-source.js';

const MODEL_EXTENSIONS = new Set(['.pt', '.pth', '.torchscript', '.onnx', '.engine', '.plan']);

/** True for a file name the bench treats as a model. */
export function isModelFile(name: string): boolean {
  return MODEL_EXTENSIONS.has(path.extname(name).toLowerCase());
}

/** The model files named, then those under `dir` (recursive, sorted), each once. Throws ModelLoadError. */
export async function collectModels(files: readonly string[] = [], dir?: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of files) {
    if (!existsSync(f)) throw new ModelLoadError(`model file '${f}' not found`);
    out.push(path.resolve(f));
  }
  if (dir) {
    if (!(await fs.stat(dir).catch(() => undefined))?.isDirectory()) {
      throw new ModelLoadError(`models folder '${dir}' not found`);
    }
    const found: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await fs.readdir(d, { withFileTypes: true })) {
        if (e.name.startsWith('.')) continue;
        const full = path.join(d, e.name);
        if (e.isDirectory()) await walk(full);
        else if ((e.isFile() || e.isSymbolicLink()) && isModelFile(e.name)) found.push(path.resolve(full));
      }
    };
    await walk(dir);
    if (found.length === 0) {
      throw new ModelLoadError(`no model files (.pt, .pth, .onnx, .engine, .plan) under '${dir}'`);
    }
    out.push(...found.sort());
  }
  if (out.length === 0) throw new ModelLoadError('no model to benchmark: give --model-path FILE or --models-dir DIR');
  return [...new Set(out)];
}

/** The default photo folder: TRT_FLOWERS_DATA, else ../shared/data/flower_photos beside the package. */
export function defaultImageDir(): string | undefined {
  const env = process.env.TRT_FLOWERS_DATA;
  if (env && existsSync(env)) return path.resolve(env);
  const shared = path.resolve(packageRoot, '..', 'shared', 'data', 'flower_photos');
  return existsSync(shared) ? shared : undefined;
}

/** The photos of the e2e runs: the files given, or `count` spread evenly over a folder's sorted listing. */
export async function collectPhotos(
  images: string | readonly string[] | undefined,
  count: number,
): Promise<{ files: string[]; from: string | null }> {
  if (Array.isArray(images)) {
    for (const f of images as string[]) {
      if (!existsSync(f)) throw new DataError(`image '${f}' not found`);
    }
    return { files: images.map((f) => path.resolve(f)), from: null };
  }
  const dir = (images as string | undefined) ?? defaultImageDir();
  if (!dir) return { files: [], from: null };
  const stat = await fs.stat(dir).catch(() => undefined);
  if (stat?.isFile()) return { files: [path.resolve(dir)], from: path.resolve(dir) };
  const all = await listImages(dir);
  if (all.length === 0) throw new DataError(`no images (jpg, jpeg, png, bmp, tif, tiff, webp) under '${dir}'`);
  return { files: spread(all, count), from: path.resolve(dir) };
}

/** Splits photos into those that decode and those that do not (corrupt, truncated, unsupported), with the reason. */
export async function checkPhotos(
  files: readonly string[],
): Promise<{ ok: string[]; bad: { path: string; reason: string }[] }> {
  const checked = await mapLimit(files, 4, (f) =>
    decodeResized(f, { size: 16 }).then(
      () => undefined,
      (err: Error) => err.message,
    ),
  );
  return {
    ok: files.filter((_, i) => checked[i] === undefined),
    bad: files.flatMap((f, i) => (checked[i] === undefined ? [] : [{ path: f, reason: checked[i] as string }])),
  };
}

/** A labelled photo: its file and class name. */
export interface LabelledImage {
  path: string;
  label: string;
}

export interface EvalSet {
  split: string;
  /** Where the labels came from. */
  source: string;
  items: LabelledImage[];
}

/**
 * The run folder a model file belongs to: runs/<id>/checkpoints/{best,last}/model.pt or runs/<id>/x.pt (a folder
 * with split.json), else the run named by the model's metadata run_id under ./runs.
 */
export function runFolderOf(modelPath: string, runId?: string): string | undefined {
  const dir = path.dirname(path.resolve(modelPath));
  for (const candidate of [path.join(dir, '..', '..'), dir]) {
    if (existsSync(path.join(candidate, 'split.json'))) return path.resolve(candidate);
  }
  if (runId && /^[\w.-]+$/.test(runId)) {
    const byId = path.resolve('runs', runId);
    if (existsSync(path.join(byId, 'split.json'))) return byId;
  }
  return undefined;
}

/**
 * The labelled photos for accuracy. 'train' | 'val' | 'test': that part of `runDir`/split.json, its paths taken
 * relative to `imagesDir` (else the data folder the run trained on). 'all': every image in the class sub-folders of
 * `imagesDir`, labelled by folder name. `limit` > 0 keeps that many, spread evenly. Throws DataError.
 */
export async function loadEvalSet(options: {
  split: 'train' | 'val' | 'test' | 'all';
  runDir?: string | undefined;
  imagesDir?: string | undefined;
  classes: readonly string[];
  limit?: number;
  /** The command's flags, for the messages. Defaults to bench's: --eval-split, --images. */
  flags?: { split: string; images: string };
}): Promise<EvalSet> {
  const { split, classes } = options;
  const { split: splitFlag, images: imagesFlag } = options.flags ?? { split: '--eval-split', images: '--images' };
  let items: LabelledImage[];
  let source: string;
  if (split === 'all') {
    const dir = options.imagesDir;
    if (!dir) throw new DataError(`${splitFlag} all needs ${imagesFlag} DIR with one sub-folder per class`);
    items = [];
    for (const cls of classes) {
      const sub = path.join(dir, cls);
      if (!existsSync(sub)) continue;
      for (const f of await listImages(sub)) items.push({ path: f, label: cls });
    }
    if (items.length === 0) {
      throw new DataError(`no images in class sub-folders of '${dir}' (expected ${classes.join(', ')})`);
    }
    source = `class folders of ${path.resolve(dir)}`;
  } else {
    if (!options.runDir) {
      throw new DataError(
        `${splitFlag} ${split} needs a training run's split.json: give --run runs/<id>, or a model file inside ` +
          `runs/<id>/; or use ${splitFlag} all with ${imagesFlag} DIR (one sub-folder per class)`,
      );
    }
    const file = path.join(options.runDir, 'split.json');
    const manifest = await readSplitManifest(file);
    const root = options.imagesDir ?? (await runDataDir(options.runDir)) ?? defaultImageDir();
    if (!root) {
      throw new DataError(
        `cannot tell where the photos of ${file} are: give ${imagesFlag} DIR (the data folder of the run)`,
      );
    }
    items = manifest[split].map((it) => ({
      path: path.join(root, it.path),
      label: manifest.classes[it.label] ?? `class_${it.label}`,
    }));
    if (items.length === 0) throw new DataError(`the ${split} part of ${file} is empty`);
    const missing = items.find((it) => !existsSync(it.path));
    if (missing) {
      throw new DataError(
        `'${missing.path}' of ${file} is missing: give ${imagesFlag} DIR (the data folder of the run)`,
      );
    }
    source = `${path.resolve(file)} (photos under ${path.resolve(root)})`;
  }
  items = items.filter((it) => isImageFile(it.path));
  if (options.limit && options.limit > 0) items = spread(items, options.limit);
  return { split, source, items };
}

/** What the engine builder recorded beside an engine (<file>.json, format trt-flowers-engine/1), in short. */
export interface BuildSummary {
  precision: string;
  /** e.g. 'entropy on 500 photos'. */
  calibration: string | null;
  /** The builder's check against the FP32 model: top-1 agreement on its photos. */
  top1Agreement: number | null;
  verifiedOn: number | null;
  builtAt: string | null;
  seconds: number | null;
}

/** The engine builder's sidecar of a model file, or undefined when there is none (or it is not one). */
export async function readBuildSidecar(file: string): Promise<BuildSummary | undefined> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fs.readFile(`${file}.json`, 'utf8'));
  } catch {
    return undefined;
  }
  const j = raw as {
    format?: unknown;
    precision?: unknown;
    calibration?: { method?: unknown; images?: unknown } | null;
    verification?: { images?: unknown; top1_agreement?: unknown } | null;
    built_at?: unknown;
    seconds?: unknown;
  };
  if (j?.format !== 'trt-flowers-engine/1') return undefined;
  const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const cal = j.calibration;
  return {
    precision: typeof j.precision === 'string' ? j.precision : 'unknown',
    calibration:
      cal && typeof cal.method === 'string'
        ? `${cal.method}${typeof cal.images === 'number' ? ` on ${cal.images} photos` : ''}`
        : null,
    top1Agreement: numOrNull(j.verification?.top1_agreement),
    verifiedOn: numOrNull(j.verification?.images),
    builtAt: typeof j.built_at === 'string' ? j.built_at : null,
    seconds: numOrNull(j.seconds),
  };
}
