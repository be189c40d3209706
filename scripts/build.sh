#!/usr/bin/env bash
# Configures and builds into build/ (or build-asan/ with --sanitize).
# Usage: scripts/build.sh [--sanitize] [ninja targets...]   (default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ "${1:-}" == "--sanitize" ]]; then
  shift
  build_dir=build-asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DGATEWAY_SANITIZE=ON)
fi
if [[ "${CI:-}" == "true" ]]; then
  flags+=(-DGATEWAY_WERROR=ON)
fi
cmake -S . -B "$build_dir" -G Ninja "${flags[@]}" >/dev/null
ninja -C "$build_dir" -j "$(nproc)" "$@"
