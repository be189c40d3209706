#!/usr/bin/env bash
# End-to-end test of an example client in another language against the real gateway:
#
#   tests/clients/run_e2e.sh python|node GATEWAY_BINARY [WORK_DIR]
#
# Starts the Twilio simulator and the gateway (both on free loopback ports), then runs the
# example client (client/python/create_subscription.py or client/node/create_subscription.js)
# for a success, an idempotent replay, and errors whose decoded details it checks: a bad call_sid
# (INVALID_ARGUMENT + BadRequest naming call_sid), a call Twilio does not know (NOT_FOUND +
# TwilioError 20404) and throttling (RESOURCE_EXHAUSTED + RetryInfo); finally it checks that the
# gateway exits 0 on SIGTERM. Every process it started is stopped on exit. Logs stay in WORK_DIR (default: a temporary directory, removed on success).
set -euo pipefail

lang="${1:?usage: run_e2e.sh python|node GATEWAY_BINARY [WORK_DIR]}"
gateway="${2:?usage: run_e2e.sh python|node GATEWAY_BINARY [WORK_DIR]}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
python=/usr/bin/python3
check="$repo/tests/clients/check_e2e.py"

remove_work=false
if [[ -n "${3:-}" ]]; then
  work="$3"
  rm -rf "$work"
  mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/clients-e2e.XXXXXX")"
  remove_work=true
fi

pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $status -ne 0 ]]; then
    for log in "$work"/gateway.err "$work"/simulator.err; do
      [[ -s "$log" ]] && { echo "--- last lines of $log" >&2; tail -n 20 "$log" >&2; }
    done
    echo "logs kept in $work" >&2
  elif $remove_work; then
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "run_e2e.sh: $*" >&2; exit 1; }

[[ -x "$gateway" ]] || die "gateway binary $gateway not found"
[[ -x "$python" ]] || die "$python not found"

# --- the client under test ----------------------------------------------------------------------
case "$lang" in
  python)
    "$repo/client/python/generate.sh" "$work/py-stubs"
    client=("$python" "$repo/client/python/create_subscription.py" --stubs "$work/py-stubs")
    ;;
  node)
    command -v node >/dev/null || die "node not found (Debian: apt-get install nodejs npm)"
    node_dir="$repo/client/node"
    if [[ ! -d "$node_dir/node_modules/@grpc/grpc-js" || ! -d "$node_dir/node_modules/@grpc/proto-loader" \
          || "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]]; then
      (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    client=(node "$node_dir/create_subscription.js")
    ;;
  *) die "unknown client language $lang (python or node)" ;;
esac

# --- simulator and gateway ----------------------------------------------------------------------
wait_for() {  # wait_for DESCRIPTION PID TEST...: up to 15 s for TEST to succeed while PID lives
  local what="$1" pid="$2"; shift 2
  for _ in $(seq 150); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || die "$what exited before it was ready"
    sleep 0.1
  done
  die "$what not ready after 15 s"
}

"$python" "$repo/tests/twilio_simulator/twilio_simulator.py" --port 0 \
  --port-file "$work/simulator.port" --quiet >"$work/simulator.out" 2>"$work/simulator.err" &
pids+=($!)
wait_for "the simulator" "${pids[-1]}" test -s "$work/simulator.port"
sim_port="$(cat "$work/simulator.port")"

# Only the simulator's credentials: a developer's real Twilio settings must not leak in.
env -u TWILIO_API_KEY -u TWILIO_API_SECRET -u TWILIO_EDGE -u TWILIO_REGION -u TWILIO_BASE_URL \
  TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_AUTH_TOKEN=simulator-auth-token \
  GATEWAY_MAX_ATTEMPTS=2 \
  "$gateway" --listen 127.0.0.1:0 --twilio-base-url "http://127.0.0.1:$sim_port" \
  >"$work/gateway.out" 2>"$work/gateway.err" &
gateway_pid=$!
pids+=("$gateway_pid")
wait_for "the gateway" "$gateway_pid" grep -q "^twilio-gateway listening on " "$work/gateway.out"
gateway_port="$(sed -n 's/^twilio-gateway listening on .*:\([0-9][0-9]*\)$/\1/p' "$work/gateway.out")"
[[ -n "$gateway_port" ]] || die "no port in: $(cat "$work/gateway.out")"

sim_admin() {  # sim_admin METHOD PATH [JSON]: the simulator's admin API
  "$python" - "$1" "http://127.0.0.1:$sim_port$2" "${3:-}" <<'EOF'
import sys, urllib.request
method, url, body = sys.argv[1:4]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=10).read()
EOF
}

# --- the cases ----------------------------------------------------------------------------------
passed=0
failed=0
last_output=""
run_case() {  # run_case NAME CHECK_PARAMS -- CLIENT_ARGS...
  local name="$1" params=() code=0
  shift
  while [[ "$1" != "--" ]]; do params+=("$1"); shift; done
  shift
  timeout 60 "${client[@]}" --target "127.0.0.1:$gateway_port" "$@" \
    >"$work/$name.stdout" 2>"$work/$name.stderr" || code=$?
  if last_output="$("$python" "$check" "$name" "$code" "$work/$name.stdout" "$work/$name.stderr" "${params[@]}")"; then
    echo "ok - $lang client: $name"
    passed=$((passed + 1))
  else
    echo "not ok - $lang client: $name"
    failed=$((failed + 1))
  fi
}

call=CA0123456789abcdef0123456789abcdef
key="e2e-$lang-$$-$RANDOM"
run_case success call_sid=$call key="$key" -- \
  --call-sid $call --callback https://example.com/twilio/messages --method GET --idempotency-key "$key" --timeout 10
first_sid="$last_output"
run_case replay call_sid=$call key="$key" sid="$first_sid" -- \
  --call-sid $call --callback https://example.com/twilio/messages --method GET --idempotency-key "$key" --timeout 10

run_case invalid_call_sid key=bad-sid-key -- \
  --call-sid CA-not-a-call --callback https://example.com/twilio/messages --idempotency-key bad-sid-key

missing=CA00000000000000000000000000000404
sim_admin PUT "/_sim/calls/$missing" '{"state": "missing"}'
run_case call_not_found key=missing-key -- \
  --call-sid $missing --callback https://example.com/twilio/messages --idempotency-key missing-key --timeout 10

throttled=CA00000000000000000000000000000429
sim_admin POST /_sim/faults "{\"rules\": [{\"status\": 429, \"retry_after\": \"1\", \"call_sid\": \"$throttled\"}]}"
run_case throttled key=throttled-key -- \
  --call-sid $throttled --callback https://example.com/twilio/messages --idempotency-key throttled-key --timeout 10

# SIGTERM: the gateway drains and exits 0.
kill -TERM "$gateway_pid"
code=0
wait "$gateway_pid" || code=$?
remaining=()
for pid in "${pids[@]}"; do [[ "$pid" == "$gateway_pid" ]] || remaining+=("$pid"); done
pids=("${remaining[@]}")
if [[ $code -eq 0 ]]; then
  echo "ok - gateway exits 0 on SIGTERM"
  passed=$((passed + 1))
else
  echo "not ok - gateway exits 0 on SIGTERM (exit status $code)"
  failed=$((failed + 1))
fi

echo "$lang client e2e: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
