#!/usr/bin/env bash
# Makes client/go/vendor/ (not checked in) from Debian's Go sources, so the module builds and
# tests offline, without a module proxy:
#
#   client/go/vendor.sh && cd client/go && go test ./...
#
# Each module that go.mod replaces with a directory under /usr/share/gocode/src becomes a link
# in vendor/, and vendor/modules.txt lists it with its packages, as `go mod vendor` would.
# `go mod vendor` itself cannot do this offline: Debian's gRPC and genproto declare `go 1.11`, so
# Go would first load their whole requirement graph (golang.org/x/lint, envoyproxy, ...), which
# is not installed. With vendor/ present, Go (1.14+) builds in -mod=vendor mode and reads no
# dependency's go.mod at all. Like client/node's node_modules, it is for this machine only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

# From go.mod: "path version" of each requirement, "path dir" of each replacement (the format
# `go mod edit -fmt` keeps: one per line inside the require and replace blocks).
die() { echo "vendor.sh: $*" >&2; exit 1; }
block() {  # block NAME: the lines of go.mod's "NAME (" block
  awk -v open="$1 (" '$0 == open {b = 1; next} b && $0 == ")" {b = 0} b' go.mod
}
mapfile -t requires < <(block require | awk 'NF >= 2 {print $1, $2}')
mapfile -t replaces < <(block replace | awk '$2 == "=>" {print $1, $3}')
[[ ${#requires[@]} -gt 0 && ${#replaces[@]} -gt 0 ]] || die "no require or replace block in go.mod"

replacement() {  # replacement MODULE: its directory in go.mod's replace block
  local line
  for line in "${replaces[@]}"; do
    [[ "${line%% *}" == "$1" ]] && { echo "${line#* }"; return 0; }
  done
  die "go.mod requires $1 but does not replace it with a local directory"
}

tmp="$(mktemp -d "$here/.vendor.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for line in "${requires[@]}"; do
  module="${line%% *}"
  version="${line#* }"
  dir="$(replacement "$module")"
  [[ -f "$dir/go.mod" ]] \
    || die "$dir/go.mod not found (apt-get install the Debian package of $module)"
  mkdir -p "$tmp/$(dirname "$module")"
  ln -s "$dir" "$tmp/$module"
  go_version="$(awk '$1 == "go" {print $2; exit}' "$dir/go.mod")"
  {
    echo "# $module $version => $dir"
    echo "## explicit${go_version:+; go $go_version}"
    # Every package of the module: directories with non-test Go files, outside testdata, hidden
    # or _ directories and nested modules (directories with a go.mod of their own).
    (cd "$dir" && find . -mindepth 1 \( -name testdata -o -name '.*' -o -name '_*' \
        -o -exec test -e '{}/go.mod' \; \) -prune \
        -o -type f -name '*.go' ! -name '*_test.go' -print \
      | sed 's|/[^/]*$||; s|^\.||' | sort -u | sed "s|^|$module|")
  } >>"$tmp/modules.txt.body"
done
{
  cat "$tmp/modules.txt.body"
  for line in "${replaces[@]}"; do echo "# ${line%% *} => ${line#* }"; done
} >"$tmp/modules.txt"
rm "$tmp/modules.txt.body"

rm -rf "$here/vendor"
mv "$tmp" "$here/vendor"
trap - EXIT
echo "vendor.sh: vendor/ links Debian's sources of ${#requires[@]} modules" >&2
