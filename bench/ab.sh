#!/usr/bin/env bash
# A/B pairs: the CPU one Create costs the gateway, for two gateway binaries run alternately
# against the same fixed upstream (nginx answering 201 at once), so that a noisy machine
# moves both alike. This is how a change's cost is judged (docs/benchmarks.md).
#
# Usage: bench/ab.sh BINARY_A BINARY_B [PAIRS] [RATE]
#   PAIRS  runs of each binary, alternating A B A B ... (default 5)
#   RATE   Creates per second, open loop (default 1000)
# Needs nginx-light and libnginx-mod-http-echo (bench/run.sh installs them) and a built
# gateway-loadgen (LOADGEN, default build/bench/gateway-loadgen). Prints one line per run and
# the median CPU per Create (µs) of each binary.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 2 ]] || { sed -n '2,11p' "$0"; exit 2; }
bin_a=$(realpath "$1"); bin_b=$(realpath "$2"); pairs=${3:-5}; rate=${4:-1000}
loadgen=${LOADGEN:-build/bench/gateway-loadgen}
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for_port() {
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench/ab.sh: nothing listens on $1" >&2; exit 1
}

nginx_port=$(free_port)
sed -e "s|@PORT@|$nginx_port|g" -e "s|@DELAYED_PORT@|$(free_port)|g" -e "s|@DELAY_S@|0.2|g" \
  -e "s|@PREFIX@|$work|g" bench/nginx.conf >"$work/nginx.conf"
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -e "$work/error.log" &
pids+=($!)
wait_for_port "$nginx_port"

run() {  # label, binary
  local port; port=$(free_port)
  # The simulator's built-in test credentials (nginx ignores them); not secrets.
  env -u TWILIO_AUTH_TOKEN -u TWILIO_EDGE -u TWILIO_REGION GATEWAY_ACCOUNT_LIMIT_ADAPTIVE=false \
    GATEWAY_MAX_UPSTREAM_IN_FLIGHT=4000 \
    TWILIO_BASE_URL="http://127.0.0.1:$nginx_port" TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
    TWILIO_API_KEY=SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_API_SECRET=simulator-api-secret \
    "$2" --listen "127.0.0.1:$port" >/dev/null 2>"$work/gateway.log" &
  local pid=$!
  wait_for_port "$port"
  "$loadgen" --target "127.0.0.1:$port" --rate "$rate" --warmup 2s --duration 8s --quiet --json \
    --monitor "gateway=$pid" >"$work/run.json" 2>/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  /usr/bin/python3 - "$1" "$work/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
g = r["monitored"]["gateway"]
print(f'{sys.argv[1]} cpu_per_create_us={g["cpu_s"] * 1e6 / max(r["ok"], 1):.0f} ok={r["ok"]} '
      f'errors={r["errors"]} p50_ms={r["latency_us"]["p50"] / 1000:.2f} '
      f'p99_ms={r["latency_us"]["p99"] / 1000:.2f}')
PY
}

for i in $(seq "$pairs"); do
  run A "$bin_a" | tee -a "$work/results"
  run B "$bin_b" | tee -a "$work/results"
done
/usr/bin/python3 - "$work/results" <<'PY'
import statistics, sys
cost = {"A": [], "B": []}
for line in open(sys.argv[1]):
    label, field = line.split()[:2]
    cost[label].append(float(field.split("=")[1]))
a, b = statistics.median(cost["A"]), statistics.median(cost["B"])
print(f"median CPU per Create: A {a:.0f} µs, B {b:.0f} µs, B/A {b / a:.3f}")
PY
