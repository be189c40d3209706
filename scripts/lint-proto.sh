#!/usr/bin/env bash
# Proto checks: `buf lint` with the repository's buf.yaml (module proto/, the vendored
# proto/google/rpc excluded), `buf format` (fails on any formatting difference, showing it), and
# `buf breaking` against the last released contract, so that no field number, name or type of a
# released message can change by accident.
#
# The released contract is checked in as a buf image, proto/released/twilio_gateway_v1.binpb
# (a record that travels with every clone, unlike a tag). On a release, after review:
#   build-tools/buf/node_modules/.bin/buf build -o proto/released/twilio_gateway_v1.binpb
# BUF_BREAKING_AGAINST overrides the baseline, e.g. '.git#tag=v1.2.0,subdir=proto'.
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
"$buf" breaking --against "${BUF_BREAKING_AGAINST:-proto/released/twilio_gateway_v1.binpb}" || status=1
if [[ $status -eq 0 ]]; then
  echo "proto lint: buf lint, buf format and buf breaking found nothing"
else
  echo "proto lint: FAILED (see above)" >&2
fi
exit $status
