#!/usr/bin/env bash
# End-to-end test of an example client in another language against the real gateway:
#
#   tests/clients/run_e2e.sh python|node GATEWAY_BINARY [WORK_DIR]
#
# Starts the Twilio simulator and the gateway (both on free loopback ports), then runs the
# example client (client/python/create_subscription.py or client/node/create_subscription.js)
# for a success, an idempotent replay, and errors whose decoded details it checks: a bad call_sid
# (INVALID_ARGUMENT + BadRequest naming call_sid), a call Twilio does not know (NOT_FOUND +
# TwilioError 20404) and throttling (RESOURCE_EXHAUSTED + RetryInfo), and for every error what
# the client says to do with the idempotency key (the C++ CLI's advice: a new key for the bad
# call_sid, not a retry). Then, with the client's code at default channel settings
# (send_oversized.py or .js), each string field invalid at sizes up to 1 MiB: INVALID_ARGUMENT naming it, trailers under 4 KiB, nothing sent to Twilio. A second
# gateway wants callers to authenticate (TLS, bearer tokens, client certificates, a caller policy;
# certificates made here with openssl): the client must succeed with --tls-ca and the token in
# SUBSCRIPTION_CLI_TOKEN, get UNAUTHENTICATED without a token or with a wrong one, succeed with a
# client certificate the policy allows and get PERMISSION_DENIED with one it does not. Finally
# both gateways must exit 0 on SIGTERM, the audit must name the callers, and no file left in
# WORK_DIR may hold a token. Every process it started is stopped on exit. Logs stay in WORK_DIR
# (default: a temporary directory, removed on success).
set -euo pipefail

lang="${1:?usage: run_e2e.sh python|node GATEWAY_BINARY [WORK_DIR]}"
gateway="${2:?usage: run_e2e.sh python|node GATEWAY_BINARY [WORK_DIR]}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
python=/usr/bin/python3
check="$repo/tests/clients/check_e2e.py"

# shellcheck source=tests/clients/fixture.sh
source "$repo/tests/clients/fixture.sh"
fixture_prepare run_e2e.sh "${3:-}"

# --- the client under test ----------------------------------------------------------------------
case "$lang" in
  python)
    client=("$python" "$repo/client/python/create_subscription.py")
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

# --- simulator, certificates, and the two gateways (shared with the client packages' tests) -----
fixture_start

# --- the cases ----------------------------------------------------------------------------------
passed=0
failed=0
last_output=""
# run_case NAME CHECK_PARAMS -- CLIENT_ARGS...: runs the client against $target. A token goes in
# the environment, as a user passes it: SUBSCRIPTION_CLI_TOKEN=... run_case ...
run_case() {
  local name="$1" params=() code=0
  shift
  while [[ "$1" != "--" ]]; do params+=("$1"); shift; done
  shift
  timeout 60 "${client[@]}" --target "$target" "$@" \
    >"$work/$name.stdout" 2>"$work/$name.stderr" || code=$?
  if last_output="$("$python" "$check" "$name" "$code" "$work/$name.stdout" "$work/$name.stderr" "${params[@]}")"; then
    echo "ok - $lang client: $name"
    passed=$((passed + 1))
  else
    echo "not ok - $lang client: $name"
    failed=$((failed + 1))
  fi
}

target="127.0.0.1:$gateway_port"
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

# Values up to 1 MiB, too long for a command line: sent with the client's code, not its CLI.
case "$lang" in
  python) oversized=("$python" "$repo/tests/clients/send_oversized.py") ;;
  node) oversized=(node "$repo/tests/clients/send_oversized.js") ;;
esac
requests_before="$(sim_requests)"
code=0
"$python" "$check" --oversized-spec | timeout 120 "${oversized[@]}" --target "$target" \
  >"$work/oversized.stdout" 2>"$work/oversized.stderr" || code=$?
if "$python" "$check" oversized "$code" "$work/oversized.stdout" "$work/oversized.stderr" \
    sim_requests=$(($(sim_requests) - requests_before)); then
  echo "ok - $lang client: oversized"
  passed=$((passed + 1))
else
  echo "not ok - $lang client: oversized"
  failed=$((failed + 1))
fi

# Usage errors: the C++ CLI's rules for the TLS flags.
run_case tls_cert_without_key message="--tls-cert and --tls-key go together" -- \
  --call-sid $call --callback https://example.com/twilio/messages --tls-ca "$pki/ca.pem" \
  --tls-cert "$pki/client.pem"
run_case tls_cert_without_ca message="--tls-cert needs --tls-ca" -- \
  --call-sid $call --callback https://example.com/twilio/messages \
  --tls-cert "$pki/client.pem" --tls-key "$pki/client.key"

# The gateway that wants callers to authenticate.
target="127.0.0.1:$tls_port"
tls=(--call-sid "$call" --callback https://example.com/twilio/messages --timeout 10
     --tls-ca "$pki/ca.pem")
SUBSCRIPTION_CLI_TOKEN="$token" run_case tls_token call_sid=$call key="$key-token" -- \
  "${tls[@]}" --idempotency-key "$key-token"
run_case tls_no_token key="$key-none" -- "${tls[@]}" --idempotency-key "$key-none"
SUBSCRIPTION_CLI_TOKEN="$wrong_token" run_case tls_wrong_token key="$key-wrong" -- \
  "${tls[@]}" --idempotency-key "$key-wrong"
run_case mtls_certificate call_sid=$call key="$key-cert" -- \
  "${tls[@]}" --tls-cert "$pki/client.pem" --tls-key "$pki/client.key" --idempotency-key "$key-cert"
run_case mtls_not_allowed key="$key-stranger" -- \
  "${tls[@]}" --tls-cert "$pki/stranger.pem" --tls-key "$pki/stranger.key" \
  --idempotency-key "$key-stranger"

stop_gateway() {  # stop_gateway NAME PID: SIGTERM; the gateway drains and must exit 0
  local code=0 remaining=() pid
  kill -TERM "$2"
  wait "$2" || code=$?
  for pid in "${pids[@]}"; do [[ "$pid" == "$2" ]] || remaining+=("$pid"); done
  pids=("${remaining[@]}")
  if [[ $code -eq 0 ]]; then
    echo "ok - $1 exits 0 on SIGTERM"
    passed=$((passed + 1))
  else
    echo "not ok - $1 exits 0 on SIGTERM (exit status $code)"
    failed=$((failed + 1))
  fi
}
stop_gateway gateway "$gateway_pid"
stop_gateway gateway-tls "$tls_pid"

# The calls that succeeded were made as the token's caller and as the certificate's identity.
audit_ok() {  # audit_ok CALLER KEY: the gateway logged an OK call by CALLER with KEY
  if grep -F '"audit"' "$work/gateway-tls.err" | grep -F "\"caller\":\"$1\"" \
      | grep -F "\"idempotency_key\":\"$2\"" | grep -F '"code":"OK"' >/dev/null; then
    echo "ok - audit names caller $1"
    passed=$((passed + 1))
  else
    echo "not ok - audit names caller $1 (no OK line for key $2 in $work/gateway-tls.err)"
    failed=$((failed + 1))
  fi
}
audit_ok "$token_caller" "$key-token"
audit_ok "$cert_caller" "$key-cert"

if fixture_no_token_left; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "$lang client e2e: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
