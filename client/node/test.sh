#!/usr/bin/env bash
# The Node package's own tests, run on the package as a user installs it:
#
#   client/node/test.sh GATEWAY_BINARY [WORK_DIR]
#
# Packs client/node (npm pack), installs the tarball and the TypeScript compiler of its
# devDependencies into an empty project in WORK_DIR (from npm's cache when it has them), copies
# test/ and examples/ beside it, starts the Twilio simulator and the two gateways of
# tests/clients/fixture.sh, and runs `node --test` there with their addresses, the CA and the
# token in the environment (GATEWAY_TARGET, GATEWAY_TLS_TARGET, GATEWAY_CA, GATEWAY_TOKEN,
# GATEWAY_CLIENT_CERT, GATEWAY_CLIENT_KEY, SIMULATOR_URL, GATEWAY_WEBHOOK_TARGET and
# GATEWAY_WEBHOOK_URL (the gateway that receives Twilio's deliveries), TSC, NODE_PACKAGE_TARBALL). Then no file
# left in WORK_DIR may hold the token. Every process it started is stopped on exit. Logs stay in
# WORK_DIR (default: a temporary directory, removed on success).
set -euo pipefail

gateway="${1:?usage: test.sh GATEWAY_BINARY [WORK_DIR]}"
node_dir="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$node_dir/../.." && pwd)"
python=/usr/bin/python3

# shellcheck source=tests/clients/fixture.sh
source "$repo/tests/clients/fixture.sh"
fixture_prepare client/node/test.sh "${2:-}"
command -v node >/dev/null && command -v npm >/dev/null \
  || die "node and npm not found (Debian: apt-get install nodejs npm)"

# --- the package, installed as a user installs it -----------------------------------------------
tarball="$work/$(cd "$node_dir" && npm pack --pack-destination "$work" --silent --loglevel=error)"
[[ -f "$tarball" ]] || die "npm pack wrote no tarball"
typescript="typescript@$(cd "$node_dir" && node -p 'require("./package.json").devDependencies.typescript')"
project="$work/project"
mkdir -p "$project"
printf '{"name": "node-package-test", "version": "0.0.0", "private": true}\n' >"$project/package.json"
(cd "$project" && npm install --prefer-offline --no-audit --no-fund --loglevel=error \
  "$tarball" "$typescript" >"$work/npm-install.log" 2>&1) \
  || die "npm install of $tarball failed: $(tail -n 20 "$work/npm-install.log")"
# The tests and examples, outside the package: they import it by name, from node_modules.
cp -R "$node_dir/test" "$node_dir/examples" "$project/"

# --- simulator, certificates, and the two gateways ----------------------------------------------
fixture_start

export GATEWAY_TARGET="127.0.0.1:$gateway_port"
# By host name: the server certificate names localhost, and an IP makes Node warn (DEP0123).
export GATEWAY_TLS_TARGET="localhost:$tls_port"
export GATEWAY_CA="$pki/ca.pem"
export GATEWAY_TOKEN="$token"
export GATEWAY_CLIENT_CERT="$pki/client.pem"
export GATEWAY_CLIENT_KEY="$pki/client.key"
export SIMULATOR_URL="http://127.0.0.1:$sim_port"
export GATEWAY_WEBHOOK_TARGET="127.0.0.1:$webhook_gateway_port"
export GATEWAY_WEBHOOK_URL="$webhook_url"
export TSC="$project/node_modules/.bin/tsc"
export NODE_PACKAGE_TARBALL="$tarball"

# --- the tests ----------------------------------------------------------------------------------
# One file at a time: some change the simulator's delay and faults for everyone.
code=0
(cd "$project" && timeout 240 node --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$work/tests.tap" \
  test/*.test.js) || code=$?
passed="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$work/tests.tap")"
failed="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$work/tests.tap")"
passed="${passed:-0}"
failed="${failed:-0}"
if [[ $code -ne 0 && $failed -eq 0 ]]; then failed=1; echo "not ok - node --test exited $code"; fi

if fixture_no_token_left; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "node package: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
