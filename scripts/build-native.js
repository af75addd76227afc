#!/usr/bin/env node
// Builds the native addon with cmake-js (incremental). Honours Torch_DIR / TORCH_DIR, TENSORRT_ROOT and
// TRT_FLOWERS_BUILD_TYPE (Release by default). TRT_FLOWERS_BUILD_DIR builds elsewhere than build/ (a second addon
// against another libtorch, kept apart from the one the package loads). Extra arguments go to cmake-js, e.g.
// `-- --CDFOO=1`.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');

const out = process.env.TRT_FLOWERS_BUILD_DIR ? resolve(process.env.TRT_FLOWERS_BUILD_DIR) : join(root, 'build');
const args = [cmakeJs, 'build', '--directory', root, '--out', out];
args.push('--config', process.env.TRT_FLOWERS_BUILD_TYPE ?? 'Release');
args.push('--parallel', String(Number(process.env.CMAKE_BUILD_PARALLEL_LEVEL) || availableParallelism()));
const torchDir = process.env.Torch_DIR ?? process.env.TORCH_DIR;
if (torchDir) args.push(`--CDTorch_DIR=${torchDir}`);
if (process.env.TENSORRT_ROOT) args.push(`--CDTENSORRT_ROOT=${process.env.TENSORRT_ROOT}`);
args.push(...process.argv.slice(2));

const started = Date.now();
const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  console.error(
    '\nnative build failed. It needs cmake, g++ and libtorch (Debian: apt-get install libtorch-dev cmake g++,' +
      ' or run `npm run setup`); point Torch_DIR at another libtorch with `Torch_DIR=/path/to/share/cmake/Torch`.',
  );
  process.exit(result.status ?? 1);
}
console.log(`native addon built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
