#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit and
# integration). With --sanitize, does the same in an AddressSanitizer + UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
scripts/install-deps.sh $mode
scripts/build.sh $mode

build_dir=build
if [[ "$mode" == "--sanitize" ]]; then
  build_dir=build-asan
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
export GATEWAY_TEST_LOG_DIR="$PWD/$build_dir/test-logs"
mkdir -p "$GATEWAY_TEST_LOG_DIR"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)"
