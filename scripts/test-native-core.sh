#!/usr/bin/env bash
# Builds and runs the plain C++ core tests with ctest, in build-core-tests/ (apart from the addon's build/):
#   bash scripts/test-native-core.sh [extra cmake -D options]
# Needs cmake, g++ and libtorch (the tests link its c10), not Node or TensorRT. Honours Torch_DIR and
# CMAKE_BUILD_PARALLEL_LEVEL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=build-core-tests
args=(-S . -B "$dir" -DTRT_FLOWERS_BUILD_TESTS=ON -DTRT_FLOWERS_BUILD_ADDON=OFF -DCMAKE_BUILD_TYPE=Debug)
[[ -n ${Torch_DIR:-} ]] && args+=("-DTorch_DIR=$Torch_DIR")
cmake "${args[@]}" "$@" > /dev/null
cmake --build "$dir" --parallel "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
ctest --test-dir "$dir" --output-on-failure
