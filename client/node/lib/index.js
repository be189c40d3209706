// @twilio-gateway/client: the Node.js client of the Twilio subscription gateway
// (twilio_gateway.v1.SubscriptionService and MessageService). Types: index.d.ts; usage: README.md.
"use strict";

const { status } = require("@grpc/grpc-js");

const { MessageStream, SubscriptionClient, channelCredentials } = require("./client");
const { decodeStatusDetails } = require("./details");
const { GatewayError, nextStep, statusCodeName } = require("./errors");
const { detailToJson, messageToJson, subscriptionToJson } = require("./json");
const { PROTO_DIR, loadDetailTypes, loadMessageService, loadService } = require("./protos");

// Shorthand properties only: Node's ES module loader finds the names of a CommonJS module's
// exports by reading this literal (cjs-module-lexer), so `import { SubscriptionClient }` works.
module.exports = {
  SubscriptionClient,
  MessageStream,
  GatewayError,
  nextStep,
  statusCodeName,
  status,
  subscriptionToJson,
  // Lower level, for calling the service with @grpc/grpc-js directly.
  PROTO_DIR,
  channelCredentials,
  loadService,
  loadMessageService,
  loadDetailTypes,
  decodeStatusDetails,
  detailToJson,
  messageToJson,
};
