import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { Command } from 'commander';

import { DataError } from '../../errors.js';
import { indexOptionsOf, splitOptionsOf } from '../../data/options.js';
import { defaultDataSection, loadDataSection, type DataSection } from '../../data/section.js';

/** The package root (three levels up from src/cli/commands or dist/cli/commands). */
const packagePath = (rel: string): string => fileURLToPath(new URL(`../../../${rel}`, import.meta.url));

/** The committed manifest of tf_flowers. */
export const DEFAULT_MANIFEST = packagePath('data/tf_flowers.dvc.yaml');

interface CommonOptions {
  dataDir?: string;
  config?: string;
  json?: boolean;
}

async function config(opts: CommonOptions): Promise<DataSection> {
  const file = opts.config ?? packagePath('configs/data.yaml');
  if (!opts.config && !existsSync(file)) return defaultDataSection();
  return loadDataSection(file);
}

/** The data modules, loaded when a subcommand runs (not for --help). */
async function dataLib(): Promise<
  typeof import('../../data/fetch.js') &
    typeof import('../../data/indexer.js') &
    typeof import('../../data/manifest.js') &
    typeof import('../../data/split.js') &
    typeof import('../../data/stats.js')
> {
  const modules = await Promise.all([
    import('../../data/fetch.js'),
    import('../../data/indexer.js'),
    import('../../data/manifest.js'),
    import('../../data/split.js'),
    import('../../data/stats.js'),
  ]);
  return Object.assign({}, ...modules) as Awaited<ReturnType<typeof dataLib>>;
}

const print = (text: string): void => void process.stdout.write(`${text}\n`);

/** Progress on stderr, only for a terminal. */
function progress(label: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (done, total) => {
    if (done === total || done % 50 === 0)
      process.stderr.write(`\r${label} ${done}/${total}${done === total ? '\n' : ''}`);
  };
}

/** Registers `trt-flowers data stats|verify|fetch|manifest|split`. */
export function registerDataCommand(program: Command): void {
  const data = program.command('data').description('index, check, split and download the flower photos');
  const dataDirHelp = 'data folder (else config data.root, else env TRT_FLOWERS_DATA)';

  data
    .command('stats')
    .description('per-class counts, image sizes, duplicates and unreadable files')
    .option('--data-dir <dir>', dataDirHelp)
    .option('--config <file>', 'data config YAML (default: configs/data.yaml)')
    .option('--json', 'print JSON')
    .action(async (opts: CommonOptions) => {
      const cfg = await config(opts);
      const { resolveDataDir, indexDataset, computeStats, formatStats } = await dataLib();
      const root = resolveDataDir({ flag: opts.dataDir, config: cfg.root });
      const onProgress = progress('indexing');
      const index = await indexDataset(root, { ...indexOptionsOf(cfg), ...(onProgress ? { onProgress } : {}) });
      const stats = computeStats(index);
      print(opts.json ? JSON.stringify(stats, null, 2) : formatStats(stats));
    });

  data
    .command('verify')
    .description('compare a data folder with the committed manifest (missing, extra and changed files)')
    .option('--data-dir <dir>', dataDirHelp)
    .option('--config <file>', 'data config YAML (default: configs/data.yaml)')
    .option('--manifest <file>', 'manifest YAML', DEFAULT_MANIFEST)
    .option('--json', 'print JSON')
    .action(async (opts: CommonOptions & { manifest: string }) => {
      const cfg = await config(opts);
      const { resolveDataDir, readManifest, verifyDataDir, formatVerify } = await dataLib();
      const root = resolveDataDir({ flag: opts.dataDir, config: cfg.root });
      const manifest = await readManifest(opts.manifest);
      const result = await verifyDataDir(root, manifest);
      print(
        opts.json ? JSON.stringify({ root, manifest: opts.manifest, ...result }, null, 2) : formatVerify(root, result),
      );
      if (!result.ok) {
        const first = [...result.changed, ...result.missing, ...result.extra].slice(0, 3).join(', ');
        throw new DataError(`data folder '${root}' does not match '${opts.manifest}'${first ? ` (${first})` : ''}`);
      }
    });

  data
    .command('fetch')
    .description('download the tf_flowers archive, check its sha256 and extract it atomically')
    .option('--url <url>', 'archive URL, file:// URL or local path (default: config data.url)')
    .option('--sha256 <hex>', 'expected sha256 of the archive (default: config data.sha256)')
    .option('--out <dir>', 'destination folder (default: config data.root, else data/flower_photos)')
    .option('--force', 'replace an existing folder')
    .option('--manifest <file>', 'verify the result against this manifest', DEFAULT_MANIFEST)
    .option('--no-verify', 'skip the check against the manifest')
    .option('--config <file>', 'data config YAML (default: configs/data.yaml)')
    .option('--json', 'print JSON')
    .action(
      async (
        opts: CommonOptions & {
          url?: string;
          sha256?: string;
          out?: string;
          force?: boolean;
          manifest: string;
          verify: boolean;
        },
      ) => {
        const cfg = await config(opts);
        const { readManifest, verifyDataDir, formatVerify, fetchDataset } = await dataLib();
        const out = opts.out ?? cfg.root ?? 'data/flower_photos';
        const result = await fetchDataset({
          url: opts.url ?? cfg.url,
          sha256: opts.sha256 ?? cfg.sha256,
          out,
          force: opts.force ?? false,
        });
        let verified: boolean | undefined;
        if (opts.verify && existsSync(opts.manifest)) {
          const check = await verifyDataDir(result.dir, await readManifest(opts.manifest));
          verified = check.ok;
          if (!check.ok) {
            print(formatVerify(result.dir, check));
            throw new DataError(`fetched data in '${result.dir}' does not match '${opts.manifest}'`);
          }
        }
        if (opts.json) print(JSON.stringify({ ...result, verified }, null, 2));
        else if (result.skipped) print(`'${result.dir}' already exists (use --force to download again)`);
        else print(`fetched ${result.bytes} bytes (sha256 ${result.sha256}) into '${result.dir}'`);
      },
    );

  data
    .command('manifest')
    .description('write the DVC-style manifest (and per-file list) of a data folder')
    .option('--data-dir <dir>', dataDirHelp)
    .option('--config <file>', 'data config YAML (default: configs/data.yaml)')
    .option('--manifest <file>', 'manifest YAML to write', DEFAULT_MANIFEST)
    .action(async (opts: CommonOptions & { manifest: string }) => {
      const cfg = await config(opts);
      const { resolveDataDir, createManifest, writeManifest } = await dataLib();
      const root = resolveDataDir({ flag: opts.dataDir, config: cfg.root });
      const manifest = await createManifest(root, {
        name: 'flower_photos',
        source: { url: cfg.url, sha256: cfg.sha256 },
      });
      await writeManifest(opts.manifest, manifest);
      print(`wrote '${opts.manifest}': ${manifest.nfiles} files, ${manifest.size} bytes, md5 ${manifest.md5}.dir`);
    });

  data
    .command('split')
    .description('write the stratified, seeded train/val/test split shared by training, evaluation and calibration')
    .option('--data-dir <dir>', dataDirHelp)
    .option('--config <file>', 'data config YAML (default: configs/data.yaml)')
    .option('--out <file>', 'split manifest JSON to write', 'split.json')
    .option('--drop-conflicts', 'leave out files whose bytes appear under two classes')
    .action(async (opts: CommonOptions & { out: string; dropConflicts?: boolean }) => {
      const cfg = await config(opts);
      const { resolveDataDir, indexDataset, createSplit, writeSplitManifest } = await dataLib();
      const root = resolveDataDir({ flag: opts.dataDir, config: cfg.root });
      const index = await indexDataset(root, indexOptionsOf(cfg));
      const split = createSplit(index, { ...splitOptionsOf(cfg), dropConflicts: opts.dropConflicts ?? false });
      await writeSplitManifest(opts.out, split);
      const n = (s: number[]): number => s.reduce((a, b) => a + b, 0);
      print(
        `wrote '${opts.out}': train ${n(split.counts.train)}, val ${n(split.counts.val)}, test ${n(split.counts.test)} ` +
          `(seed ${split.seed}, data md5 ${split.dataChecksum}.dir, ${split.excluded.length} excluded)`,
      );
    });
}
