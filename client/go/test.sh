#!/usr/bin/env bash
# The Go module's own tests, offline, against the real gateway:
#
#   client/go/test.sh GATEWAY_BINARY [WORK_DIR]
#
# Links Debian's Go sources into client/go/vendor (vendor.sh), starts the Twilio simulator and the
# gateways of tests/clients/fixture.sh, and runs gofmt, `go vet ./...` and `go test -v ./...` in
# client/go with their addresses, the CA, the token and a client certificate in the environment
# (TEST_GATEWAY_TARGET, TEST_GATEWAY_TLS_TARGET, TEST_GATEWAY_CA_FILE, TEST_GATEWAY_TOKEN,
# TEST_GATEWAY_CLIENT_CERT, TEST_GATEWAY_CLIENT_KEY, TEST_SIMULATOR_URL; the gateway that receives
# Twilio's deliveries: TEST_GATEWAY_WEBHOOK_TARGET, TEST_GATEWAY_WEBHOOK_URL). Here no test may
# skip: a skipped integration test fails the run. Then no file left in WORK_DIR may hold the token.
# Go's build cache and GOPATH live in WORK_DIR (the cache survives reruns with the same WORK_DIR),
# never in $HOME. Every process it started is stopped on exit. Logs stay in WORK_DIR (default: a
# temporary directory, removed on success).
set -euo pipefail

gateway="${1:?usage: test.sh GATEWAY_BINARY [WORK_DIR]}"
go_dir="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$go_dir/../.." && pwd)"
python=/usr/bin/python3

# shellcheck source=tests/clients/fixture.sh
source "$repo/tests/clients/fixture.sh"
fixture_prepare client/go/test.sh "${2:-}" go-cache
command -v go >/dev/null || die "go not found (apt-get install golang-go)"

# --- Go, offline and self-contained ---------------------------------------------------------------
# No module proxy, no checksum database, no user or workspace settings, no $HOME: the module and
# its vendor/ links to /usr/share/gocode are all there is.
export GOPROXY=off GOSUMDB=off GOFLAGS=-mod=vendor GOENV=off GOWORK=off GOTOOLCHAIN=local
export GOCACHE="$work/go-cache" GOPATH="$work/gopath" GOTMPDIR="$work/go-tmp"
mkdir -p "$GOTMPDIR"
"$go_dir/vendor.sh" 2>"$work/vendor.log" || die "vendor.sh failed: $(cat "$work/vendor.log")"

# --- simulator, certificates, and the two gateways ----------------------------------------------
fixture_start

export TEST_GATEWAY_TARGET="127.0.0.1:$gateway_port"
export TEST_GATEWAY_TLS_TARGET="127.0.0.1:$tls_port"
export TEST_GATEWAY_CA_FILE="$pki/ca.pem"
export TEST_GATEWAY_TOKEN="$token"
export TEST_GATEWAY_CLIENT_CERT="$pki/client.pem"
export TEST_GATEWAY_CLIENT_KEY="$pki/client.key"
export TEST_SIMULATOR_URL="http://127.0.0.1:$sim_port"
export TEST_GATEWAY_WEBHOOK_TARGET="127.0.0.1:$webhook_gateway_port"
export TEST_GATEWAY_WEBHOOK_URL="$webhook_url"

# --- the checks ---------------------------------------------------------------------------------
passed=0
failed=0
cd "$go_dir"
unformatted="$(gofmt -l gateway gen)"
if [[ -z "$unformatted" ]]; then
  echo "ok - gofmt"
  passed=$((passed + 1))
else
  echo "not ok - gofmt: run gofmt -w on $unformatted"
  failed=$((failed + 1))
fi
if go vet ./... >"$work/go-vet.log" 2>&1; then
  echo "ok - go vet ./..."
  passed=$((passed + 1))
else
  cat "$work/go-vet.log"
  echo "not ok - go vet ./..."
  failed=$((failed + 1))
fi

# -count=1: every run talks to the gateway; nothing comes from Go's test cache.
code=0
timeout 240 go test -count=1 -v ./... 2>&1 | tee "$work/go-test.log" || code=$?
count() { grep -cE "^\s*--- $1: " "$work/go-test.log" || true; }
passed=$((passed + $(count PASS)))
failed=$((failed + $(count FAIL)))
skipped="$(count SKIP)"
if [[ $skipped -gt 0 ]]; then
  grep -E -A1 '^\s*--- SKIP: ' "$work/go-test.log"
  echo "not ok - $skipped tests skipped: each must run here"
  failed=$((failed + skipped))
fi
if [[ $code -ne 0 && $(count FAIL) -eq 0 ]]; then
  echo "not ok - go test exited $code"
  failed=$((failed + 1))
fi

if fixture_no_token_left; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "go module: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
