#!/usr/bin/env bash
# Installs the packed package into a fresh temporary project, as a user's dependency, with no prebuild inside:
# node-gyp-build then falls back to `node-gyp rebuild` over binding.gyp. Then runs the `trt-flowers` bin there.
# Proves the install fallback (binding.gyp), the packaged files and the bin entry. Needs dist/ (npm run build:ts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
work=$(mktemp -d -t trt-flowers-install-XXXXXX)
trap 'rm -rf "$work"' EXIT

[[ -f dist/cli/index.js ]] || { echo "check-install: dist/ missing, run npm run build:ts first" >&2; exit 1; }
# Pack without prebuilds/ so the install must compile.
stash=""
if [[ -d prebuilds ]]; then stash=$(mktemp -d); mv prebuilds "$stash/"; fi
restore() { [[ -n $stash ]] && mv "$stash/prebuilds" "$root/" && rmdir "$stash"; rm -rf "$work"; }
trap restore EXIT
tarball=$(npm pack --silent --ignore-scripts --pack-destination "$work" | tail -1)
echo "[check-install] packed $tarball ($(du -k "$work/$tarball" | cut -f1) KiB)"

cd "$work"
npm init -y > /dev/null
start=$(date +%s)
JOBS=max ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund "./$tarball" > install.log 2>&1 || {
  tail -40 install.log
  echo "[check-install] npm install failed" >&2
  exit 1
}
echo "[check-install] installed (node-gyp build from binding.gyp) in $(($(date +%s) - start)) s"
[[ -f node_modules/trt-flowers/build/Release/trt_flowers.node ]] || { echo "[check-install] no addon was built" >&2; exit 1; }
npx --no-install trt-flowers doctor --json > doctor.json
node -e "
const r = JSON.parse(require('fs').readFileSync('doctor.json', 'utf8'));
if (!r.addon.loaded || !/^\d+\.\d+/.test(r.libtorch.version)) { console.error(r); process.exit(1); }
console.log('[check-install] npx trt-flowers doctor: libtorch ' + r.libtorch.version + ', addon loaded');
"
node --input-type=module -e "
import { TorchModel } from 'trt-flowers';
const m = await TorchModel.load('$root/test/.fixtures/tiny.pt');
const out = await m.forward(new Float32Array(3 * 32 * 32), [1, 3, 32, 32]);
await m.dispose();
if (out.logits.length !== 5) process.exit(1);
console.log('[check-install] import { TorchModel } from \"trt-flowers\": forward ok');
"
node --input-type=module -e "
import { Engine, exportOnnx } from 'trt-flowers';
const onnx = '$work/tiny.onnx';
await exportOnnx({ checkpoint: '$root/test/.fixtures/tiny.pt', out: onnx, verify: false });
const engine = await Engine.load(onnx);
const [p] = await engine.infer({ data: new Float32Array(3 * 224 * 224), shape: [1, 3, 224, 224] });
await engine.dispose();
if (engine.info.backend !== 'onnxruntime' || !p.predictedClass) process.exit(1);
console.log('[check-install] Engine over ONNX Runtime (worker threads) from the installed package: ' + p.predictedClass);
"
