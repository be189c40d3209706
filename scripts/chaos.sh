#!/usr/bin/env bash
# The full exactly-once run: the chaos tests of the test command at ten times their size
# (10,000 keys, half Create and half Send, then Deletes of a third of the subscriptions; two
# replicas on one redis-server, every gateway flag at its default, a simulator that fails 30% of
# attempts and forgets keys after 10 s, a replica killed mid-run, an outage). About 3 minutes.
# Figures on stdout and in build/test-logs/exactly-once-report.txt. The simulator logs the last
# 10,000 subscriptions and messages, which the checks read: run at most 20,000 keys.
# Usage: scripts/chaos.sh [keys]
set -euo pipefail
cd "$(dirname "$0")/.."

keys="${1:-10000}"
if [[ ! "$keys" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [keys]" >&2
  exit 2
fi
scripts/install-deps.sh
scripts/build.sh
export GATEWAY_TEST_LOG_DIR="$PWD/build/test-logs"
mkdir -p "$GATEWAY_TEST_LOG_DIR"
rm -f "$GATEWAY_TEST_LOG_DIR/exactly-once-report.txt"
CHAOS_KEYS="$keys" build/tests/integration/chaos_tests --gtest_filter='ExactlyOnceTest.*'
echo "== report"
cat "$GATEWAY_TEST_LOG_DIR/exactly-once-report.txt"
