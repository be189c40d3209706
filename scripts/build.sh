#!/usr/bin/env bash
# Configures and builds into build/ (or build-asan/ with --sanitize). Used by run.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ "${1:-}" == "--sanitize" ]]; then
  build_dir=build-asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DGATEWAY_SANITIZE=ON)
fi
if [[ "${CI:-}" == "true" ]]; then
  flags+=(-DGATEWAY_WERROR=ON)
fi
cmake -S . -B "$build_dir" -G Ninja "${flags[@]}" >/dev/null
ninja -C "$build_dir" -j "$(nproc)"
