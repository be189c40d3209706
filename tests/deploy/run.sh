#!/usr/bin/env bash
# ctest deploy.manifests: installs the test's npm packages (kubernetes-models, yaml) from the
# committed lock file when they are missing, then runs the manifest test with node's runner.
set -euo pipefail
cd "$(dirname "$0")"
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "deploy.manifests needs $tool (Debian: apt-get install nodejs npm)" >&2; exit 1; }
done
if [[ ! -d node_modules/kubernetes-models || ! -d node_modules/yaml \
      || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec node --test manifests.test.mjs
