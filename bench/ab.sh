#!/usr/bin/env bash
# A/B pairs: what one Create costs the gateway, for two gateway binaries run alternately against
# the same fixed upstream (nginx answering 201 at once), so that a noisy machine moves both
# alike. This is how a change's cost is judged (docs/benchmarks.md).
#
# Usage: bench/ab.sh BINARY_A BINARY_B [PAIRS] [RATE]
#   PAIRS  runs of each binary, alternating A B A B ... (default 5)
#   RATE   Creates per second, open loop (default 1000; 50 with AB_MEASURE=instructions)
#   AB_MEASURE=cpu (default): the gateway's CPU time per Create (µs), over 8 s after a 2 s warm-up.
#   AB_MEASURE=instructions: instructions per Create, all threads, counted by callgrind (valgrind)
#     over 1,000 Creates after a warm-up; a noisy machine barely moves them, but the kernel's
#     share is not seen.
# Needs nginx-light and libnginx-mod-http-echo (bench/run.sh installs them), valgrind for
# instructions, and a built gateway-loadgen (LOADGEN, default build/bench/gateway-loadgen).
# Prints one line per run and the median of each binary. AB_WORK=DIR keeps the runs' files
# (gateway log, callgrind profile) in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { sed -n '2,16p' "$0"; exit 2; }
measure=${AB_MEASURE:-cpu}
[[ "$measure" == cpu || "$measure" == instructions ]] || { echo "AB_MEASURE: cpu or instructions" >&2; exit 2; }
default_rate=1000
if [[ "$measure" == instructions ]]; then
  default_rate=50
  command -v valgrind >/dev/null || { echo "bench/ab.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
fi
bin_a=$(realpath "$1"); bin_b=$(realpath "$2"); pairs=${3:-5}; rate=${4:-$default_rate}
loadgen=${LOADGEN:-build/bench/gateway-loadgen}
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
work=${AB_WORK:-$(mktemp -d)}
source bench/processes.sh
trap 'cleanup; [[ -n "${AB_WORK:-}" ]] || rm -rf "$work"' EXIT

nginx_port=$(free_port)
sed -e "s|@PORT@|$nginx_port|g" -e "s|@DELAYED_PORT@|$(free_port)|g" -e "s|@DELAY_S@|0.2|g" \
  -e "s|@PREFIX@|$work|g" bench/nginx.conf >"$work/nginx.conf"
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -e "$work/error.log" &
pids+=($!)
wait_for_port "$nginx_port" nginx

run() {  # label, binary
  local port; port=$(free_port)
  local wrapper=()
  if [[ "$measure" == instructions ]]; then
    # Counting starts only when the measured window does (callgrind_control -i on).
    wrapper=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out")
    rm -f "$work/callgrind.out"
  fi
  # The simulator's built-in test credentials (nginx ignores them); not secrets.
  env -u TWILIO_AUTH_TOKEN -u TWILIO_EDGE -u TWILIO_REGION GATEWAY_ACCOUNT_LIMIT_ADAPTIVE=false \
    GATEWAY_MAX_UPSTREAM_IN_FLIGHT=4000 \
    TWILIO_BASE_URL="http://127.0.0.1:$nginx_port" TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
    TWILIO_API_KEY=SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_API_SECRET=simulator-api-secret \
    "${wrapper[@]}" "$2" --listen "127.0.0.1:$port" >/dev/null 2>"$work/gateway.log" &
  local pid=$!
  if [[ "$measure" == cpu ]]; then
    wait_for_port "$port" gateway
    "$loadgen" --target "127.0.0.1:$port" --rate "$rate" --warmup 2s --duration 8s --quiet --json \
      --monitor "gateway=$pid" >"$work/run.json" 2>/dev/null
  else
    wait_for_port "$port" gateway 600  # valgrind starts slowly
    "$loadgen" --target "127.0.0.1:$port" --rate "$rate" --warmup 0s --duration 4s --quiet \
      >/dev/null 2>&1
    callgrind_control -i on "$pid" >"$work/control.log" 2>&1 || { cat "$work/control.log" >&2; exit 1; }
    "$loadgen" --target "127.0.0.1:$port" --rate "$rate" --warmup 0s \
      --duration "$((1000 / rate))s" --quiet --json >"$work/run.json" 2>/dev/null
    callgrind_control -i off "$pid" >/dev/null 2>&1
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  /usr/bin/python3 - "$1" "$work/run.json" "$measure" "$work/callgrind.out" <<'PY'
import json, sys
label, run, measure, profile = sys.argv[1:5]
r = json.load(open(run))
ok = max(r["ok"], 1)
if measure == "cpu":
    cost = f'cpu_per_create_us={r["monitored"]["gateway"]["cpu_s"] * 1e6 / ok:.0f}'
else:
    # callgrind's totals: Ir over the instrumented window, every thread (its "summary:" line
    # can read 0 when counting was off at the start).
    ir = sum(int(line.split()[1]) for line in open(profile) if line.startswith("totals:"))
    cost = f'instructions_per_create={ir / ok:.0f}'
print(f'{label} {cost} ok={r["ok"]} errors={r["errors"]} '
      f'p50_ms={r["latency_us"]["p50"] / 1000:.2f} p99_ms={r["latency_us"]["p99"] / 1000:.2f}')
PY
}

for i in $(seq "$pairs"); do
  run A "$bin_a" | tee -a "$work/results"
  run B "$bin_b" | tee -a "$work/results"
done
/usr/bin/python3 - "$work/results" "$measure" <<'PY'
import statistics, sys
cost = {"A": [], "B": []}
for line in open(sys.argv[1]):
    label, field = line.split()[:2]
    cost[label].append(float(field.split("=")[1]))
a, b = statistics.median(cost["A"]), statistics.median(cost["B"])
unit = "µs CPU" if sys.argv[2] == "cpu" else "instructions"
print(f"median per Create: A {a:.0f}, B {b:.0f} {unit}, B/A {b / a:.3f}")
PY
