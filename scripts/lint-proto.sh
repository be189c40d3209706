#!/usr/bin/env bash
# Proto style check: `buf lint` with the repository's buf.yaml (module proto/, the vendored
# proto/google/rpc excluded), then `buf format` (fails on any formatting difference, showing it).
#
# Uses `buf` from PATH when it is the pinned version; otherwise installs the npm package
# @bufbuild/buf (which ships the native binary) into build-tools/buf (git-ignored) once.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
buf=""
if command -v buf >/dev/null && [[ "$(buf --version 2>/dev/null)" == "$BUF_VERSION" ]]; then
  buf="$(command -v buf)"
else
  tools="${BUF_TOOLS_DIR:-$PWD/build-tools/buf}"
  buf="$tools/node_modules/.bin/buf"
  if [[ ! -x "$buf" || "$("$buf" --version 2>/dev/null)" != "$BUF_VERSION" ]]; then
    command -v npm >/dev/null || { echo "lint-proto.sh: needs npm (Debian: apt-get install npm)" >&2; exit 1; }
    echo "lint-proto.sh: installing @bufbuild/buf@$BUF_VERSION into $tools" >&2
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error "@bufbuild/buf@$BUF_VERSION"
  fi
fi

status=0
"$buf" lint || status=1
"$buf" format --diff --exit-code --path proto/twilio_gateway || status=1
if [[ $status -eq 0 ]]; then
  echo "proto lint: buf lint and buf format found nothing"
else
  echo "proto lint: FAILED (see above)" >&2
fi
exit $status
