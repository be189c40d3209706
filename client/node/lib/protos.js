// The gateway's contract as this package loads it at run time, without generated code: the
// service for @grpc/grpc-js (through @grpc/proto-loader) and the error-detail types for
// protobufjs. The .proto files ship in the package (proto/, copied from the repository's proto/
// by generate.sh); google/protobuf's well-known types they import are built into protobufjs.
//
// Loading parses the files once per directory; the results are shared and read-only.
"use strict";

const path = require("node:path");

const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const PROTO_DIR = path.join(__dirname, "..", "proto");
const SERVICE_PROTO = "twilio_gateway/v1/subscription_service.proto";
const MESSAGE_SERVICE_PROTO = "twilio_gateway/v1/message_service.proto";
const DETAIL_PROTOS = ["google/rpc/status.proto", "google/rpc/error_details.proto", SERVICE_PROTO];

const packages = new Map();
const detailRoots = new Map();

// The package twilio_gateway.v1 with both services. keepCase: messages use the proto's
// snake_case field names, as on the wire and in every other language's client.
function loadPackage(protoDir) {
  if (!packages.has(protoDir)) {
    const definition = protoLoader.loadSync([SERVICE_PROTO, MESSAGE_SERVICE_PROTO], {
      includeDirs: [protoDir],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
    });
    packages.set(protoDir, grpc.loadPackageDefinition(definition).twilio_gateway.v1);
  }
  return packages.get(protoDir);
}

// The SubscriptionService client constructor.
function loadService(protoDir = PROTO_DIR) {
  return loadPackage(protoDir).SubscriptionService;
}

// The MessageService client constructor.
function loadMessageService(protoDir = PROTO_DIR) {
  return loadPackage(protoDir).MessageService;
}

// A protobufjs Root with google.rpc.Status, the google.rpc detail messages and the service's own
// (TwilioError), for decoding the `grpc-status-details-bin` trailer.
function loadDetailTypes(protoDir = PROTO_DIR) {
  if (!detailRoots.has(protoDir)) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(protoDir, target));
    root.loadSync(DETAIL_PROTOS, { keepCase: true });
    detailRoots.set(protoDir, root);
  }
  return detailRoots.get(protoDir);
}

module.exports = { PROTO_DIR, loadDetailTypes, loadMessageService, loadService };
