#!/usr/bin/env bash
# Compile check of the TensorRT sources against TensorRT headers, for machines without TensorRT's libraries.
#   bash scripts/check-tensorrt.sh [--cuda DIR] [--keep] HEADERS_DIR [HEADERS_DIR...]
# HEADERS_DIR holds NvInfer.h, NvInferVersion.h and NvOnnxParser.h (itself or its include/ folder), e.g. the
# include/ folder of a NVIDIA/TensorRT release tag. Every TensorRT source (native/tensorrt/*.cc,
# native/napi/tensorrt_wrap.cc, and native/addon.cc + native/core/runtime.cc when libtorch's headers are found) is
# compiled to an object file in a temporary folder with -Wall -Wextra -Werror and TF_WITH_TENSORRT, against each
# folder's headers, the CUDA headers and the Node-API headers from node_modules. Then the pure rules
# (native/tensorrt/rules.cc) are compiled with their self-test and run. One result line per header folder; exits 1
# when anything fails.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cuda=${CUDA_HOME:-/usr/local/cuda}
keep=0
dirs=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --cuda) cuda=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) dirs+=("$1"); shift ;;
  esac
done
if [[ ${#dirs[@]} -eq 0 ]]; then
  echo "usage: check-tensorrt.sh [--cuda DIR] [--keep] HEADERS_DIR [HEADERS_DIR...]" >&2
  exit 2
fi
cxx=${CXX:-g++}
[[ -f $cuda/include/cuda_runtime_api.h ]] || { echo "CUDA headers not found in $cuda/include (use --cuda DIR)" >&2; exit 2; }
cuda_version=$(sed -n -E 's/^#define CUDART_VERSION +([0-9]+).*/\1/p' "$cuda/include/cuda_runtime_api.h")
cuda_version="$((cuda_version / 1000)).$(((cuda_version % 1000) / 10))"
addon_api=$(node -p "require('path').dirname(require.resolve('node-addon-api/package.json'))") || exit 2
node_api=$(node -p "require('path').join(require('path').dirname(require.resolve('node-api-headers/package.json')), 'include')" 2> /dev/null)
[[ -f ${node_api:-}/node_api.h ]] || node_api=$(dirname "$(command -v node)")/../include/node
[[ -f $node_api/node_api.h ]] || { echo "Node-API headers (node_api.h) not found" >&2; exit 2; }

sources=(native/tensorrt/*.cc native/napi/tensorrt_wrap.cc)
torch_includes=()
for prefix in ${Torch_DIR:+$(cd "$Torch_DIR/../../.." && pwd)} /usr; do
  if [[ -f $prefix/include/torch/csrc/api/include/torch/torch.h ]]; then
    # /usr/include is on the default path already; naming it again breaks libstdc++'s #include_next.
    [[ $prefix == /usr ]] || torch_includes=(-isystem "$prefix/include")
    torch_includes+=(-isystem "$prefix/include/torch/csrc/api/include")
    sources+=(native/addon.cc native/core/runtime.cc)
    break
  fi
done

out=$(mktemp -d /tmp/trt-flowers-check.XXXXXX)
[[ $keep -eq 1 ]] || trap 'rm -rf "$out"' EXIT
flags=(-std=c++17 -fPIC -O0 -Wall -Wextra -Wno-unused-parameter -Werror
  -DTF_WITH_TENSORRT -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED
  -Inative -isystem "$addon_api" -isystem "$node_api" -isystem "$cuda/include" "${torch_includes[@]}")

status=0
for dir in "${dirs[@]}"; do
  inc=$dir
  [[ -f $inc/NvInfer.h ]] || inc=$dir/include
  if [[ ! -f $inc/NvInfer.h || ! -f $inc/NvOnnxParser.h ]]; then
    echo "FAIL $dir: NvInfer.h and NvOnnxParser.h not found"
    status=1
    continue
  fi
  ver=$(sed -n -E 's/^#define (NV_TENSORRT|TRT)_(MAJOR|MINOR|PATCH)(_ENTERPRISE)? +([0-9]+).*/\2 \4/p' "$inc/NvInferVersion.h" |
    awk '{v[$1]=$2} END {print v["MAJOR"] "." v["MINOR"] "." v["PATCH"]}')
  log=$out/tensorrt-$ver.log
  failed=()
  for src in "${sources[@]}"; do
    obj=$out/$ver/${src//\//_}.o
    mkdir -p "$(dirname "$obj")"
    if ! "$cxx" "${flags[@]}" -isystem "$inc" -c "$src" -o "$obj" >> "$log" 2>&1; then failed+=("$src"); fi
  done
  # What the objects need from TensorRT's libraries: proof that the code calls into nvinfer / nvonnxparser.
  entry=$(nm -u "$out/$ver"/*.o 2> /dev/null | grep -oE '(createInferBuilder_INTERNAL|createInferRuntime_INTERNAL|createNvOnnxParser_INTERNAL)' | sort -u | tr '\n' ' ')
  if [[ ${#failed[@]} -eq 0 ]]; then
    echo "OK   TensorRT $ver ($inc), CUDA $cuda_version: ${#sources[@]} sources compiled with -Werror; entry points: ${entry:-none}"
  else
    echo "FAIL TensorRT $ver ($inc), CUDA $cuda_version: ${failed[*]} (log: $log)"
    grep -m 20 -E 'error|warning' "$log" | sed 's/^/     /'
    keep=1
    trap - EXIT
    status=1
  fi
done

# The pure rules need neither TensorRT nor CUDA: compile them with their self-test and run it.
if "$cxx" -std=c++17 -Wall -Wextra -Werror -Inative native/tensorrt/rules.cc native/tensorrt/test/rules_test.cc \
  -o "$out/rules_test" > "$out/rules_test.log" 2>&1 && "$out/rules_test" >> "$out/rules_test.log" 2>&1; then
  echo "OK   rules self-test: $(tail -n 1 "$out/rules_test.log")"
else
  echo "FAIL rules self-test (log: $out/rules_test.log)"
  sed 's/^/     /' "$out/rules_test.log" | tail -n 20
  trap - EXIT
  status=1
fi
exit $status
