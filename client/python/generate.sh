#!/usr/bin/env bash
# Generates the Python stubs for the gateway's API from proto/ (not committed: run this first).
#
#   client/python/generate.sh [OUT_DIR]       default: client/python/gen
#
# Needs Debian's protobuf-compiler and protobuf-compiler-grpc (/usr/bin/grpc_python_plugin);
# the generated code runs with python3-grpcio and python3-protobuf. OUT_DIR then holds
# twilio_gateway/v1/subscription_service_pb2{,_grpc}.py and google/rpc/{status,error_details}_pb2.py
# (namespace packages: put OUT_DIR on sys.path / PYTHONPATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_dir="$(cd "$here/../../proto" && pwd)"
out="${1:-$here/gen}"
protoc="${PROTOC:-protoc}"
plugin="${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}"

command -v "$protoc" >/dev/null || { echo "generate.sh: $protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
[[ -x "$plugin" ]] || { echo "generate.sh: $plugin not found (apt-get install protobuf-compiler-grpc)" >&2; exit 1; }

mkdir -p "$out"
"$protoc" -I "$proto_dir" \
  --python_out="$out" \
  --grpc_out="$out" --plugin=protoc-gen-grpc="$plugin" \
  "$proto_dir/twilio_gateway/v1/subscription_service.proto" \
  "$proto_dir/google/rpc/status.proto" \
  "$proto_dir/google/rpc/error_details.proto"
echo "generated Python stubs in $out" >&2
