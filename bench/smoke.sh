#!/usr/bin/env bash
# Smoke test of the load generator (ctest bench.loadgen_smoke): starts the Twilio simulator and
# the gateway on loopback, runs gateway-loadgen for two seconds at a low rate, and checks that it
# exits 0 and prints valid JSON with a non-zero OK count. Figures are not asserted.
# Usage: bench/smoke.sh LOADGEN GATEWAY PYTHON SIMULATOR_SCRIPT
set -euo pipefail
loadgen="$1" gateway="$2" python="$3" simulator="$4"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

wait_for_file() {  # path, what
  for _ in $(seq 100); do
    [[ -s "$1" ]] && return 0
    sleep 0.1
  done
  echo "smoke: $2 did not start" >&2
  exit 1
}

"$python" "$simulator" --host 127.0.0.1 --port 0 --port-file "$work/sim.port" --quiet \
  >/dev/null 2>"$work/sim.log" &
pids+=($!)
wait_for_file "$work/sim.port" "the simulator"

# The simulator's built-in test credentials; not secrets.
env -u TWILIO_AUTH_TOKEN -u TWILIO_EDGE -u TWILIO_REGION \
  TWILIO_BASE_URL="http://127.0.0.1:$(cat "$work/sim.port")" \
  TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa \
  TWILIO_API_KEY=SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_API_SECRET=simulator-api-secret \
  "$gateway" --listen 127.0.0.1:0 >"$work/gateway.out" 2>"$work/gateway.log" &
pids+=($!)
for _ in $(seq 100); do
  grep -q "listening on" "$work/gateway.out" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$work/gateway.out")
if [[ -z "$port" ]]; then
  echo "smoke: the gateway did not start:" >&2
  cat "$work/gateway.log" >&2
  exit 1
fi

status=0
"$loadgen" --target "127.0.0.1:$port" --rate 50 --duration 2s --warmup 0.5s --channels 2 \
  --monitor "gateway=${pids[1]}" --json >"$work/result.json" 2>"$work/loadgen.log" || status=$?
cat "$work/loadgen.log" >&2
if [[ $status -ne 0 ]]; then
  echo "smoke: gateway-loadgen exited $status" >&2
  exit 1
fi
"$python" - "$work/result.json" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    result = json.load(f)
ok = result["ok"]
assert ok > 0, f"no OK responses: {result['codes']}"
assert result["latency_us"]["count"] == result["requests"], result
assert result["monitored"]["gateway"]["cpu_s"] >= 0, result
print(f"smoke: {ok} OK of {result['requests']}, p50 {result['latency_us']['p50']} us")
PY
