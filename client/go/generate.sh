#!/usr/bin/env bash
# Generates the Go code of the gateway's API from proto/ (checked in; scripts/generate-clients.sh
# runs this and, with --check, fails when the checked-in copy is stale).
#
#   client/go/generate.sh OUT_DIR
#
# writes OUT_DIR/gen/twilio_gateway/v1/{subscription,message}_service.pb.go and their _grpc.pb.go.
#
# Debian 12's generators: protoc-gen-go 1.3.5 (golang-goprotobuf-dev) for the messages, which
# matches the github.com/golang/protobuf 1.3.5 runtime Debian's gRPC 1.33 is built with, and
# protoc-gen-go-grpc (protoc-gen-go-grpc 1.33) for the service. The .proto files stay untouched:
# their go_package names another module, so `M` options map each file to this module's package,
# and google/protobuf/timestamp.proto to the runtime's own Timestamp type. google.rpc's Status and
# error details are not generated here: grpc-go's status package already uses genproto's
# (google.golang.org/genproto/googleapis/rpc), and a second copy would register the same
# message names twice.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto_dir="$(cd "$here/../../proto" && pwd)"
out="${1:?usage: client/go/generate.sh OUT_DIR}"
protoc="${PROTOC:-protoc}"
go_plugin="${PROTOC_GEN_GO:-/usr/bin/protoc-gen-go}"
grpc_plugin="${PROTOC_GEN_GO_GRPC:-/usr/bin/protoc-gen-go-grpc}"

die() { echo "generate.sh: $*" >&2; exit 1; }
command -v "$protoc" >/dev/null || die "$protoc not found (apt-get install protobuf-compiler)"
[[ -x "$go_plugin" ]] || die "$go_plugin not found (apt-get install golang-goprotobuf-dev)"
[[ -x "$grpc_plugin" ]] || die "$grpc_plugin not found (apt-get install protoc-gen-go-grpc)"

module="example.com/twilio-gateway/client/go"
mappings="Mtwilio_gateway/v1/subscription_service.proto=$module/gen/twilio_gateway/v1"
mappings+=",Mtwilio_gateway/v1/message_service.proto=$module/gen/twilio_gateway/v1"
mappings+=",Mgoogle/protobuf/timestamp.proto=github.com/golang/protobuf/ptypes/timestamp"

mkdir -p "$out/gen"
"$protoc" -I "$proto_dir" \
  --plugin=protoc-gen-go="$go_plugin" --go_out="$out/gen" \
  --go_opt="paths=source_relative,$mappings" \
  --plugin=protoc-gen-go-grpc="$grpc_plugin" --go-grpc_out="$out/gen" \
  --go-grpc_opt="paths=source_relative,$mappings" \
  "$proto_dir/twilio_gateway/v1/subscription_service.proto" \
  "$proto_dir/twilio_gateway/v1/message_service.proto"
echo "generated Go code in $out/gen/twilio_gateway/v1" >&2
