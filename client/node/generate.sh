#!/usr/bin/env bash
# Copies the .proto files the Node package loads at run time (@grpc/proto-loader, protobufjs: no
# generated code) from the repository's proto/ into the package, so the installed package carries
# its own contract:
#
#   client/node/generate.sh OUT_DIR       scripts/generate-clients.sh runs it with client/node
#
# OUT_DIR then holds proto/twilio_gateway/v1/*.proto and proto/google/rpc/{status,error_details}.proto,
# laid out as checked in under client/node/. (google/protobuf's well-known types, which these
# import, are built into protobufjs.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_dir="$(cd "$here/../../proto" && pwd)"
out="${1:?usage: generate.sh OUT_DIR}"

# Only what is copied here lives in OUT_DIR/proto: a file removed from proto/ goes here too.
rm -rf "$out/proto"
mkdir -p "$out/proto/twilio_gateway/v1" "$out/proto/google/rpc"
cp "$proto_dir"/twilio_gateway/v1/*.proto "$out/proto/twilio_gateway/v1/"
cp "$proto_dir/google/rpc/status.proto" "$proto_dir/google/rpc/error_details.proto" \
  "$out/proto/google/rpc/"
echo "copied the Node package's .proto files into $out/proto" >&2
