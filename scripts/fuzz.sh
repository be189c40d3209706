#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang into build-fuzz/ and runs each for N seconds
# (default 30), starting from the seeds in tests/fuzz/corpus/<target>/. Fails on any crash,
# sanitizer report, invariant violation, timeout or out-of-memory.
# Usage: scripts/fuzz.sh [seconds]
#
# New inputs go to build-fuzz/corpus/<target>/, never into the tree; crash reproducers go to
# build-fuzz/artifacts/. To fold what a run found back into the seeds, keeping them minimal:
#   build-fuzz/tests/fuzz/<target>_fuzzer -merge=1 -max_len=8192 \
#     tests/fuzz/corpus/<target> build-fuzz/corpus/<target>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if [[ ! "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [seconds]" >&2
  exit 2
fi
targets=(request_validator twilio_response retry_after json_text webhook_signature webhook_delivery)
build_dir=build-fuzz

scripts/install-deps.sh
missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# RelWithDebInfo without -DNDEBUG: optimized, symbolized, and asserts (nlohmann's) still fire.
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g"
       -DGATEWAY_FUZZ=ON)
if [[ "${CI:-}" == "true" ]]; then
  flags+=(-DGATEWAY_WERROR=ON)
fi
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -G Ninja "${flags[@]}" >/dev/null
ninja -C "$build_dir" -j "$(nproc)" fuzzers

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
mkdir -p "$build_dir/artifacts"
failed=()
summary=()
for t in "${targets[@]}"; do
  work_corpus="$build_dir/corpus/$t"
  log="$build_dir/fuzz-$t.log"
  mkdir -p "$work_corpus"
  echo "== fuzzing $t for ${seconds}s (log: $log)"
  status=0
  # The first corpus dir receives new inputs; the checked-in seeds are only read.
  "$build_dir/tests/fuzz/${t}_fuzzer" "$work_corpus" "tests/fuzz/corpus/$t" \
    -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build_dir/artifacts/$t-" >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log" || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, ft \2, corpus \3/p' \
    <<<"$last")
  summary+=("$(printf '%-18s %s execs, %s exec/s, %s' "$t" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}")")
  if [[ $status -ne 0 ]]; then
    echo "!! $t failed (exit $status); reproducer and report:" >&2
    grep -E 'Test unit written to|ERROR: |runtime error|invariant violated|SUMMARY' "$log" >&2 || true
    tail -n 40 "$log" >&2
    failed+=("$t")
  fi
done

echo "== fuzzing summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzzing FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing passed"
