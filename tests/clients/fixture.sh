# The fixture of the clients' end-to-end tests, sourced by tests/clients/run_e2e.sh and by the
# client packages' own test scripts (client/*/test.sh): the Twilio simulator, a plain gateway,
# and a gateway that wants callers to authenticate (TLS, bearer tokens, client certificates from a
# CA made here with openssl, a caller policy), all on free loopback ports.
#
# The sourcing script sets $repo, $gateway (the binary) and $python (/usr/bin/python3), then
#   fixture_prepare NAME [WORK_DIR [KEEP]]
# makes $work (WORK_DIR emptied but for an entry named KEEP, or a temporary directory removed on
# success), an array pids=() whose processes are stopped on exit (the fixture's logs are printed
# on failure), die(), and checks the tools. Then
#   fixture_start
# sets sim_port, gateway_pid/gateway_port, tls_pid/tls_port, pki (ca.pem, client.pem/.key,
# stranger.pem/.key), token, wrong_token, token_caller, cert_caller, and offers sim_admin and
# sim_requests. A third gateway, webhook_pid/webhook_gateway_port, receives Twilio's deliveries
# (--webhook-listen on webhook_port, --public-webhook-url webhook_url): a Create without a callback
# subscribes to it, and POST /_sim/deliver reaches its Watch streams. The tokens are fixed test values (the secret scanner looks for them); at the end
# fixture_no_token_left checks that no file in $work holds one.

fixture_prepare() {  # fixture_prepare NAME [WORK_DIR [KEEP]]
  fixture_name="$1"
  remove_work=false
  if [[ -n "${2:-}" ]]; then
    work="$2"
    mkdir -p "$work"
    find "$work" -mindepth 1 -maxdepth 1 ! -name "${3:-.}" -exec rm -rf {} +
  else
    work="$(mktemp -d "${TMPDIR:-/tmp}/${fixture_name//\//-}.XXXXXX")"
    remove_work=true
  fi
  work="$(cd "$work" && pwd)"
  pids=()
  trap fixture_cleanup EXIT
  trap 'exit 130' INT TERM
  [[ -x "$gateway" ]] || die "gateway binary $gateway not found"
  [[ -x "$python" ]] || die "$python not found"
  command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
  # A developer's own token must not reach the cases that expect none.
  unset SUBSCRIPTION_CLI_TOKEN
}

die() { echo "$fixture_name: $*" >&2; exit 1; }

fixture_cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $status -ne 0 ]]; then
    for log in "$work"/gateway.err "$work"/gateway-tls.err "$work"/gateway-webhook.err \
        "$work"/simulator.err; do
      [[ -s "$log" ]] && { echo "--- last lines of $log" >&2; tail -n 20 "$log" >&2; }
    done
    echo "logs kept in $work" >&2
  elif $remove_work; then
    rm -rf "$work"
  fi
  exit "$status"
}

# No file left in $work (client output, gateway logs, the token file) holds a token. The patterns
# reach grep through a pipe: argv is readable by every user. Prints "ok - ..." or "not ok - ...".
fixture_no_token_left() {
  local scan=0 leaks
  leaks="$(grep -rlF -f <(printf '%s\n' "$token" "$wrong_token") "$work")" || scan=$?
  if [[ $scan -eq 1 ]]; then
    echo "ok - no token in $work"
    return 0
  fi
  echo "not ok - no token in $work (grep status $scan, found in: ${leaks:-nothing})"
  return 1
}

fixture_start() {
  # --- certificates, tokens and the caller policy -------------------------------------------------
  # Fixed values, so the suite's secret scanner (tests/integration/check_logs_for_secrets.py) can
  # look for them too. Only their digests are written to a file.
  token="clients-e2e-token-4b7d02e9c1a6f835"
  wrong_token="clients-e2e-wrong-token-8e3f61d0a95c27b4"
  token_caller="e2e-client"
  cert_caller="spiffe://clients-e2e.test/ns/e2e/sa/client"

  pki="$work/pki"
  mkdir -p "$pki"
  make_ca() {  # make_ca NAME: NAME.pem, NAME.key
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$1" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
      -keyout "$pki/$1.key" -out "$pki/$1.pem" 2>>"$pki/openssl.log" \
      || die "openssl failed: $(cat "$pki/openssl.log")"
  }
  make_leaf() {  # make_leaf NAME CA SUBJECT_ALT_NAME EXTENDED_KEY_USAGE: NAME.pem, NAME.key
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$3" "$4" >"$pki/$1.ext"
    { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$pki/$1.key" -out "$pki/$1.csr" \
      && openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" -CAcreateserial \
        -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem"; } 2>>"$pki/openssl.log" \
      || die "openssl failed: $(cat "$pki/openssl.log")"
  }
  make_ca ca
  make_leaf server ca "DNS:localhost,IP:127.0.0.1" serverAuth
  make_leaf client ca "URI:$cert_caller" clientAuth
  # Chains to the same CA, but its identity (a DNS SAN) is not in the policy.
  make_leaf stranger ca "DNS:stranger.clients-e2e.test" clientAuth

  {
    echo "# caller digest"
    printf '%s sha256:%s\n' "$token_caller" "$(printf %s "$token" | sha256sum | cut -d' ' -f1)"
  } >"$work/caller-tokens"
  printf '{"callers": {\n  "%s": {"accounts": ["default"]},\n  "%s": {"accounts": ["default"]}\n}}\n' \
    "$token_caller" "$cert_caller" >"$work/caller-policy.json"

  # --- simulator and gateways ---------------------------------------------------------------------
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

  start_gateway() {  # start_gateway NAME [FLAGS...]: sets started_pid and started_port
    local name="$1"
    shift
    # Only the simulator's credentials: a developer's real Twilio settings must not leak in.
    env -u TWILIO_API_KEY -u TWILIO_API_SECRET -u TWILIO_EDGE -u TWILIO_REGION -u TWILIO_BASE_URL \
      TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_AUTH_TOKEN=simulator-auth-token \
      GATEWAY_MAX_ATTEMPTS=2 \
      "$gateway" --listen 127.0.0.1:0 --twilio-base-url "http://127.0.0.1:$sim_port" "$@" \
      >"$work/$name.out" 2>"$work/$name.err" &
    started_pid=$!
    pids+=("$started_pid")
    wait_for "$name" "$started_pid" grep -q "^twilio-gateway listening on " "$work/$name.out"
    started_port="$(sed -n 's/^twilio-gateway listening on .*:\([0-9][0-9]*\)$/\1/p' "$work/$name.out")"
    [[ -n "$started_port" ]] || die "no port in: $(cat "$work/$name.out")"
  }

  start_gateway gateway
  gateway_pid=$started_pid
  gateway_port=$started_port
  # Callers must authenticate: a bearer token or a client certificate from the CA, over TLS.
  start_gateway gateway-tls --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" \
    --tls-client-ca "$pki/ca.pem" --caller-tokens "$work/caller-tokens" \
    --caller-policy "$work/caller-policy.json"
  tls_pid=$started_pid
  tls_port=$started_port
  # Receives Twilio's deliveries. Its public URL is itself: the simulator signs that URL, as
  # Twilio signs the one an Ingress publishes. The port is chosen here (free a moment ago),
  # because the URL must name it before the gateway starts.
  webhook_port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  webhook_url="http://127.0.0.1:$webhook_port/twilio/messages"
  start_gateway gateway-webhook --webhook-listen "127.0.0.1:$webhook_port" \
    --public-webhook-url "$webhook_url"
  webhook_pid=$started_pid
  webhook_gateway_port=$started_port

}

sim_admin() {  # sim_admin METHOD PATH [JSON]: the simulator's admin API
  "$python" - "$1" "http://127.0.0.1:$sim_port$2" "${3:-}" <<'EOF'
import sys, urllib.request
method, url, body = sys.argv[1:4]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=10).read()
EOF
}

sim_requests() {  # how many API requests the simulator has received
  "$python" - "http://127.0.0.1:$sim_port/_sim/stats" <<'EOF'
import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1], timeout=10))["requests"])
EOF
}
