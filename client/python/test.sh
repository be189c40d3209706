#!/usr/bin/env bash
# The Python client package's own tests (client/python/tests) against the real gateway:
#
#   client/python/test.sh GATEWAY_BINARY [WORK_DIR]
#
# Installs the package as a user would, offline, into a venv on Debian's python3-grpcio and
# python3-protobuf (--system-site-packages, --no-build-isolation --no-index: no PyPI needed).
# It installs from a clean copy of client/python, so that a build/ left by an earlier in-tree
# install cannot slip stale modules into the wheel. Then it starts the clients' shared fixture
# (tests/clients/fixture.sh: the Twilio simulator, a plain gateway, one that wants callers to
# authenticate, and one that receives Twilio's deliveries) and runs pytest with them described in CLIENT_TEST_* variables (see
# tests/conftest.py). Finally no file left in WORK_DIR may hold the fixture's tokens. Every process
# it started is stopped on exit. Logs stay in WORK_DIR (default: a temporary directory, removed
# on success).
set -euo pipefail

gateway="${1:?usage: client/python/test.sh GATEWAY_BINARY [WORK_DIR]}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
package="$repo/client/python"
python=/usr/bin/python3

# shellcheck source=tests/clients/fixture.sh
source "$repo/tests/clients/fixture.sh"
fixture_prepare client/python/test.sh "${2:-}"
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
fixture_start

export CLIENT_TEST_TARGET="127.0.0.1:$gateway_port"
export CLIENT_TEST_TLS_TARGET="127.0.0.1:$tls_port"
export CLIENT_TEST_CA="$pki/ca.pem"
export CLIENT_TEST_CLIENT_CERT="$pki/client.pem"
export CLIENT_TEST_CLIENT_KEY="$pki/client.key"
export CLIENT_TEST_TOKEN="$token"
export CLIENT_TEST_SIMULATOR="http://127.0.0.1:$sim_port"
export CLIENT_TEST_WEBHOOK_TARGET="127.0.0.1:$webhook_gateway_port"
export CLIENT_TEST_WEBHOOK_URL="$webhook_url"

# --- the tests ----------------------------------------------------------------------------------
code=0
(cd "$work" && "$work/venv/bin/python" -m pytest "$package/tests" -q -p no:cacheprovider) || code=$?

fixture_no_token_left || code=1
exit "$code"
