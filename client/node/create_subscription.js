#!/usr/bin/env node
// Subscribe a live Voice SDK call to Twilio user-defined messages through the gateway.
//
// Example client for twilio_gateway.v1.SubscriptionService in Node.js: @grpc/grpc-js with
// @grpc/proto-loader loading the repository's .proto files at run time (no generated code), and
// protobufjs to decode the rich error details.
//
//   cd client/node && npm ci
//   node client/node/create_subscription.js --target localhost:50051 \
//     --call-sid CA0123456789abcdef0123456789abcdef --callback https://example.com/twilio/messages
//
// TLS: --tls-ca FILE verifies the gateway against that CA bundle; add --tls-cert FILE and
// --tls-key FILE for mutual TLS. A bearer token, when the gateway wants one, is read from the
// environment variable SUBSCRIPTION_CLI_TOKEN (never a flag: command lines are visible to every
// user) and sent as `authorization: Bearer <token>` metadata.
//
// On success prints the subscription as JSON on stdout and exits 0. On failure prints the gRPC
// status, the idempotency key with what to do with it next (by the code and the ErrorInfo reason,
// as the C++ CLI says it) and the decoded details (google.rpc.BadRequest, ErrorInfo, RetryInfo and
// twilio_gateway.v1.TwilioError, carried in the `grpc-status-details-bin` trailer) on stderr,
// the details as one JSON object, and exits 1. Usage errors exit 2.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { parseArgs } = require("node:util");

const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const DEFAULT_PROTO_DIR = path.resolve(__dirname, "../../proto");
const SERVICE_PROTO = "twilio_gateway/v1/subscription_service.proto";
const DETAIL_PROTOS = ["google/rpc/status.proto", "google/rpc/error_details.proto", SERVICE_PROTO];
const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const TOKEN_ENV = "SUBSCRIPTION_CLI_TOKEN";

const USAGE = `create_subscription.js: create a Twilio UserDefinedMessageSubscription through the gateway.

Options:
  --target HOST:PORT       gateway address (default localhost:50051)
  --call-sid SID           the call: CA followed by 32 hex digits (required)
  --callback URL           where Twilio sends the messages, http or https (required)
  --method POST|GET        how Twilio calls the callback (default: Twilio's, POST)
  --idempotency-key KEY    reuse a key to retry a create safely; generated here when omitted,
                           so it is known even if the call times out
  --account-sid SID        a subaccount (AC...); default: the gateway's account
  --timeout SECONDS        deadline for the whole call, retries included (default 10)
  --tls-ca FILE            connect with TLS, verifying the gateway against this CA bundle
  --tls-cert FILE          client certificate for mutual TLS (with --tls-key)
  --tls-key FILE           its private key
  --proto-dir DIR          the repository's proto/ (default ${DEFAULT_PROTO_DIR})
  --help                   this text

A bearer token, when the gateway wants one, is read from the environment variable
${TOKEN_ENV} (never a flag: command lines are visible to every user).
`;

class UsageError extends Error {}

function parseCommandLine(argv) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      target: { type: "string", default: "localhost:50051" },
      "call-sid": { type: "string" },
      callback: { type: "string" },
      method: { type: "string" },
      "idempotency-key": { type: "string" },
      "account-sid": { type: "string" },
      timeout: { type: "string", default: "10" },
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "proto-dir": { type: "string", default: process.env.TWILIO_GATEWAY_PROTO_DIR || DEFAULT_PROTO_DIR },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return values;
  if (!values["call-sid"]) throw new UsageError("--call-sid is required");
  if (!values.callback) throw new UsageError("--callback is required");
  if (values.method !== undefined && !["POST", "GET"].includes(values.method.toUpperCase())) {
    throw new UsageError("--method must be POST or GET");
  }
  const timeout = Number(values.timeout);
  if (!(timeout > 0 && timeout <= 3600)) throw new UsageError("--timeout must be between 0 and 3600 seconds");
  values.timeout = timeout;
  // The same rules as the C++ CLI (client/cli/main.cc).
  if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  if (values["tls-cert"] !== undefined && values["tls-ca"] === undefined) {
    throw new UsageError("--tls-cert needs --tls-ca");
  }
  // Read now, so a missing file is a usage error rather than a failed handshake later.
  values.pem = {};
  for (const flag of ["tls-ca", "tls-cert", "tls-key"]) {
    if (values[flag] === undefined) continue;
    try {
      values.pem[flag] = fs.readFileSync(values[flag]);
    } catch (e) {
      throw new UsageError(`--${flag}: ${e.message}`);
    }
  }
  return values;
}

// Plaintext without a CA; else TLS verified against it, with a client certificate if given.
function channelCredentials(pem) {
  if (!pem["tls-ca"]) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(pem["tls-ca"], pem["tls-key"] ?? null, pem["tls-cert"] ?? null);
}

// The service, from the .proto at run time. keepCase keeps the proto's snake_case field names.
function loadService(protoDir) {
  const definition = protoLoader.loadSync(SERVICE_PROTO, {
    includeDirs: [protoDir],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
  });
  return grpc.loadPackageDefinition(definition).twilio_gateway.v1.SubscriptionService;
}

// google.rpc.Status and the detail messages, for decoding the status details trailer.
function loadDetailTypes(protoDir) {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(protoDir, target));
  root.loadSync(DETAIL_PROTOS, { keepCase: true });
  return root;
}

// Seconds + nanos as protobuf's JSON mapping writes them.
function secondsText(seconds, nanos) {
  const fraction = nanos ? `.${String(nanos).padStart(9, "0").replace(/0+$/, "")}` : "";
  return `${seconds}${fraction}`;
}

function timestampText({ seconds, nanos }) {
  const iso = new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, "");
  const fraction = nanos ? `.${String(nanos).padStart(9, "0").replace(/0+$/, "")}` : "";
  return `${iso}${fraction}Z`;
}

// A decoded message as JSON in the proto3 JSON style: Timestamp and Duration as strings,
// enums by name, 64-bit integers as strings.
function messageToJson(type, message) {
  const object = type.toObject(message, { longs: String, enums: String, defaults: false });
  const convert = (t, value) => {
    if (value === null || value === undefined) return value;
    if (t.fullName === ".google.protobuf.Duration") return `${secondsText(value.seconds ?? 0, value.nanos ?? 0)}s`;
    if (t.fullName === ".google.protobuf.Timestamp") return timestampText(value);
    const out = {};
    for (const [name, v] of Object.entries(value)) {
      const field = t.fields[name];
      const sub = field?.resolvedType;
      if (sub instanceof protobuf.Type) {
        out[name] = field.map
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, convert(sub, x)]))
          : field.repeated ? v.map((x) => convert(sub, x)) : convert(sub, v);
      } else {
        out[name] = v;
      }
    }
    return out;
  };
  return convert(type, object);
}

// The google.rpc.Status of a failed call, and its details unpacked from google.protobuf.Any:
// [{type, message}] where type is the protobufjs Type, or null for a detail type not known here.
function decodeStatusDetails(error, root) {
  const values = error.metadata?.get(STATUS_DETAILS_KEY) ?? [];
  if (values.length === 0) return { status: null, details: [] };
  const Status = root.lookupType("google.rpc.Status");
  const status = Status.decode(values[values.length - 1]);
  const details = status.details.map((any) => {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
    let type = null;
    try {
      type = root.lookupType(typeName);
    } catch {
      // unknown detail type
    }
    return { typeUrl: any.type_url, type, message: type ? type.decode(any.value) : any.value };
  });
  return { status, details };
}

function detailToJson({ typeUrl, type, message }) {
  if (!type) return { "@type": typeUrl, value_base64: Buffer.from(message).toString("base64") };
  return { "@type": typeUrl, ...messageToJson(type, message) };
}

function subscriptionToJson(subscription) {
  const out = { ...subscription };
  if (out.date_created) out.date_created = timestampText(out.date_created);
  else delete out.date_created;
  return out;
}

// What to do with the idempotency key after an error, by the gRPC code and the ErrorInfo reason:
// the same advice as the C++ CLI's NextStep (client/cli/main.cc; README, "Exactly once: the
// contract").
function nextStep(code, reason) {
  switch (code) {
    case "INVALID_ARGUMENT":
      return "fix the request and use a new key: retrying this one cannot succeed";
    case "UNKNOWN":
      if (reason === "OUTCOME_UNKNOWN") {
        return (
          "the subscription may or may not exist and the gateway will not send this key again; " +
          "a new key may create a second one"
        );
      }
      return "retry with it to repeat this create safely";
    case "FAILED_PRECONDITION":
      if (reason === "IDEMPOTENCY_KEY_REUSED") return "this key belongs to another request: use a new key";
      return "retrying with it is safe once the cause is fixed";
    case "NOT_FOUND":
    case "PERMISSION_DENIED":
    case "UNAUTHENTICATED":
      return "retrying with it changes nothing until the cause is fixed";
    default:
      return "retry with it to repeat this create safely";
  }
}

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

function main(argv) {
  let args;
  try {
    args = parseCommandLine(argv);
  } catch (e) {
    process.stderr.write(`create_subscription.js: ${e.message}\n(see --help)\n`);
    return Promise.resolve(2);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return Promise.resolve(0);
  }

  const SubscriptionService = loadService(args["proto-dir"]);
  const detailTypes = loadDetailTypes(args["proto-dir"]);
  const client = new SubscriptionService(args.target, channelCredentials(args.pem));
  const request = {
    call_sid: args["call-sid"],
    callback: args.callback,
    idempotency_key: args["idempotency-key"] || crypto.randomUUID(),
  };
  if (args.method) request.method = `CALLBACK_METHOD_${args.method.toUpperCase()}`;
  if (args["account-sid"]) request.account_sid = args["account-sid"];
  // Empty counts as unset, as in the C++ CLI. The token is never printed.
  const metadata = new grpc.Metadata();
  const token = process.env[TOKEN_ENV];
  if (token) metadata.set("authorization", `Bearer ${token}`);

  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + args.timeout * 1000);
    client.Create(request, metadata, { deadline }, (error, subscription) => {
      client.close();
      if (!error) {
        process.stdout.write(`${JSON.stringify(subscriptionToJson(subscription), null, 1)}\n`);
        resolve(0);
        return;
      }
      const { status, details } = decodeStatusDetails(error, detailTypes);
      const code = CODE_NAMES[error.code] ?? "UNKNOWN";
      const report = {
        code,
        code_number: error.code,
        message: error.details,
        idempotency_key: request.idempotency_key,
        details: details.map(detailToJson),
      };
      if (status && status.code !== error.code) report.status_code_mismatch = status.code;
      const errorInfo = details.find(({ type }) => type?.fullName === ".google.rpc.ErrorInfo");
      const next = nextStep(code, errorInfo?.message.reason ?? "");
      process.stderr.write(
        `error: ${code}: ${error.details}\n` +
          `idempotency_key: ${request.idempotency_key} (${next})\n` +
          `${JSON.stringify(report, null, 1)}\n`,
      );
      resolve(1);
    });
  });
}

module.exports = {
  channelCredentials,
  decodeStatusDetails,
  detailToJson,
  loadDetailTypes,
  loadService,
  messageToJson,
  nextStep,
};

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
