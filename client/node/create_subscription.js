#!/usr/bin/env node
// Subscribe a live Voice SDK call to Twilio user-defined messages through the gateway: the
// command line of the @twilio-gateway/client package (`create-subscription` once installed), the
// C++ CLI's equivalent, over the package's SubscriptionClient (lib/).
//
//   npx create-subscription --target localhost:50051 \
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

const fs = require("node:fs");
const { parseArgs } = require("node:util");

const {
  GatewayError,
  SubscriptionClient,
  channelCredentials,
  decodeStatusDetails,
  detailToJson,
  loadDetailTypes,
  loadService,
  messageToJson,
  nextStep,
  subscriptionToJson,
} = require("./lib");

const TOKEN_ENV = "SUBSCRIPTION_CLI_TOKEN";

const USAGE = `create-subscription: create a Twilio UserDefinedMessageSubscription through the gateway.

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
    if (values.pem[flag].length === 0) throw new UsageError(`--${flag}: ${values[flag]} is empty`);
  }
  return values;
}

async function main(argv) {
  let args;
  let client;
  try {
    args = parseCommandLine(argv);
    if (args.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    // Empty counts as unset, as in the C++ CLI. The token is never printed.
    client = new SubscriptionClient(args.target, {
      ca: args.pem["tls-ca"],
      cert: args.pem["tls-cert"],
      key: args.pem["tls-key"],
      token: process.env[TOKEN_ENV] ?? "",
      timeoutMs: args.timeout * 1000,
    });
  } catch (e) {
    process.stderr.write(`create-subscription: ${e.message}\n(see --help)\n`);
    return 2;
  }
  try {
    const subscription = await client.create({
      callSid: args["call-sid"],
      callback: args.callback,
      method: args.method?.toUpperCase(),
      idempotencyKey: args["idempotency-key"],
      accountSid: args["account-sid"],
    });
    process.stdout.write(`${JSON.stringify(subscriptionToJson(subscription), null, 1)}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof GatewayError)) throw e;
    process.stderr.write(
      `error: ${e.codeName}: ${e.statusMessage}\n` +
        `idempotency_key: ${e.idempotencyKey} (${e.nextStep})\n` +
        `${JSON.stringify(e, null, 1)}\n`,
    );
    return 1;
  } finally {
    client.close();
  }
}

// The library's pieces, as this script exported them before it was built over the library
// (tests/clients/send_oversized.js sends with them).
module.exports = {
  channelCredentials,
  decodeStatusDetails,
  detailToJson,
  loadDetailTypes,
  loadService,
  main,
  messageToJson,
  nextStep,
};

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
