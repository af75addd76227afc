#!/usr/bin/env bash
# Fresh-machine set-up for Debian 12: system packages, npm dependencies, native addon, TypeScript.
# Idempotent: each step is skipped when already done, so a second run takes seconds.
#   SKIP_APT=1     do not touch system packages
#   SKIP_BUILD=1   install only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[setup] %s\n' "$*"; }

# 1. System packages.
APT_PACKAGES=(libtorch-dev python3-torch python3-torchvision python3-onnx libopenblas0-openmp cmake g++ make
  ninja-build clang-format libjpeg62-turbo-dev liblcms2-dev python3-fastapi python3-uvicorn python3-multipart
  libjemalloc2 libgloo-dev)
# The Open Inference Protocol tests: a gRPC client with stubs generated from proto/, config.pbtxt read back.
APT_PACKAGES+=(python3-grpcio python3-grpc-tools python3-protobuf)
if [[ "${SKIP_APT:-0}" != 1 ]] && command -v dpkg-query > /dev/null; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
      command -v sudo > /dev/null || { echo "[setup] need root or sudo to install: ${missing[*]}" >&2; exit 1; }
      SUDO=(sudo)
    fi
    say "installing system packages: ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    say "system packages present"
  fi
fi

# 2. npm dependencies (offline-safe: install scripts are skipped, so onnxruntime-node downloads nothing and the
#    addon is built below, once).
stamp=node_modules/.trt-flowers-installed
lock_hash=$(sha256sum package-lock.json package.json | sha256sum | cut -c1-16)
if [[ ! -f $stamp || $(cat "$stamp") != "$lock_hash" ]]; then
  say "installing npm dependencies"
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts --no-audit --no-fund
  echo "$lock_hash" > "$stamp"
else
  say "npm dependencies present"
fi
if [[ -d .git ]] && [[ "$(git config core.hooksPath 2> /dev/null)" != ".husky/_" ]]; then
  npx --no-install husky > /dev/null 2>&1 || true
fi

[[ "${SKIP_BUILD:-0}" == 1 ]] && exit 0

# 3. Native addon (incremental) and TypeScript.
say "building the native addon"
node scripts/build-native.js
say "compiling TypeScript"
npx --no-install tsc -p tsconfig.build.json
say "done: npx trt-flowers doctor"
