#!/usr/bin/env bash
# One command for every language's generated code, so it never drifts from proto/:
#   scripts/generate-clients.sh          regenerate the checked-in code of every client package
#   scripts/generate-clients.sh --check  fail (showing the difference) when any of it is stale
# Each client/<lang>/generate.sh OUT_DIR writes that package's generated files into OUT_DIR,
# laid out as they are checked in under client/<lang>/ (see each script for which paths).
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
[[ "${1:-}" == "--check" ]] && check=true
status=0
for lang in python node go; do
  script="client/$lang/generate.sh"
  [[ -x "$script" ]] || continue
  if ! $check; then
    "$script" "client/$lang"
    continue
  fi
  fresh="$(mktemp -d)"
  trap 'rm -rf "$fresh"' EXIT
  "$script" "$fresh"
  # Only the files the generator writes are compared.
  while IFS= read -r -d '' file; do
    rel="${file#"$fresh"/}"
    if ! diff -u "client/$lang/$rel" "$file" >/dev/null 2>&1; then
      echo "stale generated code: client/$lang/$rel (run scripts/generate-clients.sh)" >&2
      diff -u "client/$lang/$rel" "$file" | head -20 >&2 || true
      status=1
    fi
  done < <(find "$fresh" -type f -print0)
  rm -rf "$fresh"
done
if $check && [[ $status -eq 0 ]]; then echo "generated client code matches proto/"; fi
exit $status
