#!/usr/bin/env bash
# The Python client package's own tests (client/python/tests) against the real gateway:
#
#   client/python/test.sh GATEWAY_BINARY [WORK_DIR]
#
# Installs the package as a user would, offline, into a venv on Debian's python3-grpcio and
# python3-protobuf (--system-site-packages, --no-build-isolation --no-index: no PyPI needed).
# It installs from a clean copy of client/python, so that a build/ left by an earlier in-tree
# install cannot slip stale modules into the wheel. Then it starts the clients' shared fixture
# (tests/clients/fixture.sh: the Twilio simulator, a plain gateway and one that wants callers to
# authenticate) and runs pytest with them described in CLIENT_TEST_* variables (see
# tests/conftest.py). Finally no file left in WORK_DIR may hold the fixture's tokens. Every process
# it started is stopped on exit. Logs stay in WORK_DIR (default: a temporary directory, removed
# on success).
set -euo pipefail

gateway="${1:?usage: client/python/test.sh GATEWAY_BINARY [WORK_DIR]}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
package="$repo/client/python"
python=/usr/bin/python3

remove_work=false
if [[ -n "${2:-}" ]]; then
  work="$2"
  rm -rf "$work"
  mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/python-package.XXXXXX")"
  remove_work=true
fi

pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $status -ne 0 ]]; then
    for log in "$work"/gateway.err "$work"/gateway-tls.err "$work"/simulator.err; do
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

die() { echo "client/python/test.sh: $*" >&2; exit 1; }

[[ -x "$gateway" ]] || die "gateway binary $gateway not found"
[[ -x "$python" ]] || die "$python not found"
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
# A developer's own token must not reach the cases that expect none.
unset SUBSCRIPTION_CLI_TOKEN
# Nothing written into the source tree (tests/__pycache__).
export PYTHONDONTWRITEBYTECODE=1

# --- the package, installed -------------------------------------------------------------------
mkdir -p "$work/package"
tar -C "$package" --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ -cf - . \
  | tar -C "$work/package" -xf -
"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install --quiet --no-cache-dir --no-build-isolation --no-index "$work/package" \
  >"$work/pip.log" 2>&1 || die "pip install failed: $(cat "$work/pip.log")"

# --- simulator, certificates, and the two gateways --------------------------------------------
# shellcheck source=../../tests/clients/fixture.sh
source "$repo/tests/clients/fixture.sh"
fixture_start

export CLIENT_TEST_TARGET="127.0.0.1:$gateway_port"
export CLIENT_TEST_TLS_TARGET="127.0.0.1:$tls_port"
export CLIENT_TEST_CA="$pki/ca.pem"
export CLIENT_TEST_CLIENT_CERT="$pki/client.pem"
export CLIENT_TEST_CLIENT_KEY="$pki/client.key"
export CLIENT_TEST_TOKEN="$token"
export CLIENT_TEST_SIMULATOR="http://127.0.0.1:$sim_port"

# --- the tests ----------------------------------------------------------------------------------
code=0
(cd "$work" && "$work/venv/bin/python" -m pytest "$package/tests" -q -p no:cacheprovider) || code=$?

# No file left here (the gateways' logs, pip's, the token file) holds a token. The patterns reach
# grep through a pipe: argv is readable by every user.
scan=0
leaks="$(grep -rlF -f <(printf '%s\n' "$token" "$wrong_token") "$work")" || scan=$?
if [[ $scan -ne 1 ]]; then
  echo "client/python/test.sh: a token is in files under $work (grep status $scan: ${leaks:-nothing})" >&2
  code=1
fi
exit "$code"
