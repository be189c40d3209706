#!/usr/bin/env bash
# The run command: installs what is missing, builds, and starts the gateway.
#
# Without Twilio credentials in the environment it starts the project's Twilio simulator and
# points the gateway at it. Either way it then performs one sample Create with the CLI, so you
# see a subscription come back, and keeps serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh twilio-gateway subscription-cli

listen="${GATEWAY_LISTEN:-127.0.0.1:50051}"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [[ -z "${TWILIO_ACCOUNT_SID:-}" ]]; then
  echo "No TWILIO_ACCOUNT_SID set: starting the Twilio simulator (tests/twilio_simulator)."
  port_file=$(mktemp)
  /usr/bin/python3 tests/twilio_simulator/twilio_simulator.py --port 0 --port-file "$port_file" \
    --quiet &
  pids+=($!)
  for _ in $(seq 100); do [[ -s "$port_file" ]] && break; sleep 0.1; done
  export TWILIO_BASE_URL="http://127.0.0.1:$(cat "$port_file")"
  rm -f "$port_file"
  # The simulator's built-in test credentials; not secrets.
  export TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
  export TWILIO_API_KEY=SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
  export TWILIO_API_SECRET=simulator-api-secret
  call_sid=CA0123456789abcdef0123456789abcdef
else
  call_sid="${SAMPLE_CALL_SID:-}"
fi

build/service/twilio-gateway --listen "$listen" &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/${listen%:*}/${listen##*:}") 2>/dev/null && break
  sleep 0.1
done

if [[ -n "$call_sid" ]]; then
  echo
  echo "Sample Create through the gateway:"
  echo "  build/client/subscription-cli --target $listen --call-sid $call_sid --callback https://example.com/twilio/messages"
  build/client/subscription-cli --target "$listen" --call-sid "$call_sid" \
    --callback https://example.com/twilio/messages || true
else
  echo "Real Twilio: set SAMPLE_CALL_SID to a live call's SID to try a sample Create."
fi
echo
echo "Gateway serving on $listen. Ctrl-C to stop."
wait "${pids[-1]}"
