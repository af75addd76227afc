#!/usr/bin/env node
// Values for binding.gyp, so node-gyp builds exactly the sources and libtorch that CMakeLists.txt uses.
//   node scripts/gyp-config.cjs sources|includes|libdirs|defines|jpeg
// libtorch: Torch_DIR / TORCH_DIR (its share/cmake/Torch folder) or Debian's libtorch-dev.
// libjpeg (the JPEG fast path, optional): found when jpeglib.h is on the default include path (Debian:
// libjpeg62-turbo-dev); TF_JPEG=0 builds without it. Little CMS (ICC profiles on that path, optional): lcms2.h
// (Debian: liblcms2-dev); TF_LCMS=0 builds without it.
// c10d with Gloo (data-parallel training, optional): compiled in when libtorch's ProcessGroupGloo.hpp and gloo's
// headers (Debian: libgloo-dev) are found; TF_DIST=0 builds without it.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const torchCmake = process.env.Torch_DIR || process.env.TORCH_DIR;
const prefix = torchCmake ? path.resolve(torchCmake, '..', '..', '..') : '/usr';

function list(dir) {
  return fs
    .readdirSync(path.join(root, dir))
    .filter((f) => f.endsWith('.cc'))
    .sort()
    .map((f) => `${dir}/${f}`);
}

function hasJpeg() {
  if (process.env.TF_JPEG === '0') return false;
  return ['/usr/include', '/usr/local/include'].some((d) => fs.existsSync(path.join(d, 'jpeglib.h')));
}

function hasLcms() {
  if (process.env.TF_LCMS === '0' || !hasJpeg()) return false;
  return ['/usr/include', '/usr/local/include'].some((d) => fs.existsSync(path.join(d, 'lcms2.h')));
}

function hasDist() {
  if (process.env.TF_DIST === '0') return false;
  const inc = path.join(prefix, 'include');
  return (
    fs.existsSync(path.join(inc, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupGloo.hpp')) &&
    [inc, '/usr/include', '/usr/local/include'].some((d) => fs.existsSync(path.join(d, 'gloo', 'config.h')))
  );
}

const what = process.argv[2];
if (what === 'sources') {
  const dirs = ['native/core', 'native/image', 'native/dist', 'native/napi'];
  console.log([...dirs.flatMap(list), 'native/addon.cc'].join(' '));
} else if (what === 'includes') {
  const addonApi = path.dirname(require.resolve('node-addon-api/package.json'));
  const dirs = [addonApi, path.join(root, 'native')];
  if (prefix !== '/usr') dirs.push(path.join(prefix, 'include'));
  dirs.push(path.join(prefix, 'include', 'torch', 'csrc', 'api', 'include'));
  console.log(dirs.join(' '));
} else if (what === 'libdirs') {
  // Debian's libtorch is on the default search path; another libtorch gets -L and an rpath.
  const dir = path.join(prefix, 'lib');
  console.log(prefix !== '/usr' && fs.existsSync(path.join(dir, 'libtorch.so')) ? `-L${dir} -Wl,-rpath,${dir}` : '');
} else if (what === 'defines') {
  const defines = [];
  if (hasJpeg()) defines.push('TF_WITH_JPEG');
  if (hasLcms()) defines.push('TF_WITH_LCMS');
  if (hasDist()) defines.push('TF_WITH_DIST', 'USE_DISTRIBUTED', 'USE_C10D_GLOO');
  console.log(defines.join(' '));
} else if (what === 'jpeg') {
  console.log([hasJpeg() ? '-ljpeg' : '', hasLcms() ? '-llcms2' : ''].join(' ').trim());
} else {
  console.error('usage: gyp-config.cjs sources|includes|libdirs|defines|jpeg');
  process.exit(2);
}
