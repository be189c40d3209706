#!/usr/bin/env node
// Sends the e2e case `oversized` with the Node.js example client's code and reports the answers.
//
//   check_e2e.py --oversized-spec | node send_oversized.js --target HOST:PORT
//
// Values of up to 1 MiB cannot go through the client's command line (Linux caps one argument at
// 128 KiB), so this sends them with the client's own pieces: its service definition, its channel
// credentials (default channel options: the limits under test are the defaults) and its decoding
// of the status details. Prints a JSON list with one report per request, in the spec's order: the
// code, the message, the details as the client prints them, and the length of each trailing
// metadata value.
"use strict";

const fs = require("node:fs");
const { createRequire } = require("node:module");
const path = require("node:path");
const { parseArgs } = require("node:util");

const clientFile = path.resolve(__dirname, "../../client/node/create_subscription.js");
const client = require(clientFile);
// The client's own copy of grpc-js, for the status names.
const grpc = createRequire(clientFile)("@grpc/grpc-js");

const CODE_NAMES = Object.fromEntries(
  Object.entries(grpc.status).map(([name, code]) => [code, name]),
);

function send(stub, request) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + 5000);
    stub.Create(request, new grpc.Metadata(), { deadline }, (error) => resolve(error));
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      target: { type: "string" },
      "proto-dir": { type: "string", default: path.resolve(__dirname, "../../proto") },
    },
  });
  if (!values.target) throw new Error("--target is required");
  const spec = JSON.parse(fs.readFileSync(0, "utf8"));
  const SubscriptionService = client.loadService(values["proto-dir"]);
  const detailTypes = client.loadDetailTypes(values["proto-dir"]);
  const stub = new SubscriptionService(values.target, client.channelCredentials({}));
  const reports = [];
  for (const { field, fill, size } of spec.cases) {
    const error = await send(stub, { ...spec.base, [field]: fill.repeat(size) });
    const report = { field, size, code: "OK", code_number: 0, message: "", details: [] };
    report.trailers = [];
    if (error) {
      const { status, details } = client.decodeStatusDetails(error, detailTypes);
      Object.assign(report, {
        code: CODE_NAMES[error.code] ?? "UNKNOWN",
        code_number: error.code,
        message: error.details ?? "",
        details: details.map(client.detailToJson),
        trailers: Object.entries(error.metadata?.toJSON() ?? {}).flatMap(([key, list]) =>
          list.map((value) => [key, Buffer.byteLength(value)]),
        ),
      });
      if (status && status.code !== error.code) report.status_code_mismatch = status.code;
    }
    reports.push(report);
  }
  stub.close();
  process.stdout.write(`${JSON.stringify(reports, null, 1)}\n`);
}

main().catch((e) => {
  process.stderr.write(`send_oversized.js: ${e.stack ?? e}\n`);
  process.exitCode = 1;
});
