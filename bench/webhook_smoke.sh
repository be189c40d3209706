#!/usr/bin/env bash
# Smoke test of the webhook load generator (ctest bench.webhook_smoke): starts the gateway with
# its webhook receiver (memory message log) on loopback, runs webhook-loadgen for two seconds at
# a low rate with a Watch on the same gateway, and checks that it exits 0 and reports every
# acknowledged delivery received once: 0 lost, 0 duplicated. Figures are not asserted.
# Usage: bench/webhook_smoke.sh LOADGEN GATEWAY PYTHON
set -euo pipefail
loadgen="$1" gateway="$2" python="$3"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

webhook_port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$webhook_port/twilio/messages"
# Test credentials of the smoke test only; not secrets. The upstream is a closed port: nothing
# here calls Twilio.
export TWILIO_ACCOUNT_SID=ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb TWILIO_AUTH_TOKEN=webhook-smoke-token
env -u TWILIO_API_KEY -u TWILIO_API_SECRET -u TWILIO_EDGE -u TWILIO_REGION \
  TWILIO_BASE_URL=http://127.0.0.1:9 "$gateway" --listen 127.0.0.1:0 \
  --webhook-listen "127.0.0.1:$webhook_port" --public-webhook-url "$url" \
  >"$work/gateway.out" 2>"$work/gateway.log" &
pids+=($!)
for _ in $(seq 100); do
  grep -q "listening on" "$work/gateway.out" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$work/gateway.out")
if [[ -z "$port" ]]; then
  echo "webhook smoke: the gateway did not start:" >&2
  cat "$work/gateway.log" >&2
  exit 1
fi

status=0
"$loadgen" --url "$url" --rate 50 --duration 2s --warmup 0.5s --watch "127.0.0.1:$port" \
  --watch-grace 5s --monitor "gateway=${pids[0]}" --json >"$work/result.json" \
  2>"$work/loadgen.log" || status=$?
cat "$work/loadgen.log" >&2
if [[ $status -ne 0 ]]; then
  echo "webhook smoke: webhook-loadgen exited $status" >&2
  exit 1
fi
"$python" - "$work/result.json" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    result = json.load(f)
assert result["ok"] > 0, f"no deliveries acknowledged: {result['codes']}"
assert result["errors"] == 0, result["codes"]
(watch,) = result["watchers"]
assert watch["lost"] == 0 and watch["duplicated"] == 0, watch
assert watch["received"] == result["acked_total"], (watch, result["acked_total"])
assert watch["delivery_us"]["count"] > 0, watch
print(f"webhook smoke: {watch['received']} of {result['acked_total']} acknowledged received once, "
      f"0 lost, 0 duplicated; delivery p50 {watch['delivery_us']['p50']} us")
PY
