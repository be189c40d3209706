// GatewayError: how a failed call reaches the caller, with everything the gateway said about it
// decoded (README, "Errors"), the idempotency key the call used, and what to do with that key
// next (README, "Exactly once: the contract"). A grpc-js error becomes one in exactly one place,
// fromServiceError().
"use strict";

const grpc = require("@grpc/grpc-js");

const { decodeStatusDetails, typedDetails } = require("./details");

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

// "INVALID_ARGUMENT" and so on; "UNKNOWN" for numbers outside the canonical codes.
function statusCodeName(code) {
  return CODE_NAMES[code] ?? "UNKNOWN";
}

const OPERATIONS = ["create", "delete", "send", "watch"];

// What to do next after an error of `operation` ("create", "delete", "send" or "watch"), by the
// gRPC code name and the ErrorInfo reason: the same advice as the C++ client's NextStep
// (client/cpp/subscription_client.cc; README, "Exactly once: the contract"). For create and send
// it is about the idempotency key; a delete has none and is always safe to repeat; a watch
// resumes with its cursor (README, "Receiving messages").
function nextStep(code, reason, operation = "create") {
  if (!OPERATIONS.includes(operation)) {
    throw new TypeError(`operation must be create, delete, send or watch, not ${JSON.stringify(operation)}`);
  }
  if (operation === "watch") {
    switch (code) {
      case "OUT_OF_RANGE":
        return "messages after the cursor may be lost: watch again without it (from_oldest for what is still kept)";
      case "INVALID_ARGUMENT":
        return "fix the request: retrying it unchanged cannot succeed";
      case "PERMISSION_DENIED":
      case "UNAUTHENTICATED":
        return "retrying changes nothing until the cause is fixed";
      case "FAILED_PRECONDITION":
        return "the gateway receives no messages: ask its operator to configure its webhook";
      default:
        return "watch again with the resume cursor: nothing it still keeps after it is lost";
    }
  }
  if (operation === "delete") {
    switch (code) {
      case "INVALID_ARGUMENT":
        return "fix the request: retrying it unchanged cannot succeed";
      case "NOT_FOUND":
        return "there is no such subscription, call or account: do not retry";
      case "PERMISSION_DENIED":
      case "UNAUTHENTICATED":
        return "retrying changes nothing until the cause is fixed";
      default:
        return "retry the delete: deleting again is always safe";
    }
  }
  switch (code) {
    case "INVALID_ARGUMENT":
      return "fix the request and use a new key: retrying this one cannot succeed";
    case "UNKNOWN":
      if (reason === "OUTCOME_UNKNOWN") {
        if (operation === "send") {
          return (
            "the message may or may not have been sent and the gateway will not send this key " +
            "again; a new key may send it a second time"
          );
        }
        return (
          "the subscription may or may not exist and the gateway will not send this key again; " +
          "a new key may create a second one"
        );
      }
      return `retry with it to repeat this ${operation} safely`;
    case "FAILED_PRECONDITION":
      if (reason === "IDEMPOTENCY_KEY_REUSED") return "this key belongs to another request: use a new key";
      return "retrying with it is safe once the cause is fixed";
    case "NOT_FOUND":
    case "PERMISSION_DENIED":
    case "UNAUTHENTICATED":
      return "retrying with it changes nothing until the cause is fixed";
    default:
      return `retry with it to repeat this ${operation} safely`;
  }
}

class GatewayError extends Error {
  // Built by the client from the call's status; tests of code that uses the client may build
  // their own with the same fields (all but `code` and `idempotencyKey` optional).
  constructor({
    code,
    statusMessage = "",
    idempotencyKey,
    errorInfo = null,
    fieldViolations = [],
    retryDelayMs = null,
    twilioError = null,
    details = [],
    statusCode = null,
    requestId = "",
    operation = "create",
    resumeCursor = null,
    cause = undefined,
  }) {
    const codeName = statusCodeName(code);
    super(`${codeName}: ${statusMessage}`, cause === undefined ? undefined : { cause });
    this.name = "GatewayError";
    this.code = code;
    this.codeName = codeName;
    this.statusMessage = statusMessage;
    // The call that failed: "create", "delete" (no idempotency key: ""), "send" or "watch" (no
    // key either).
    this.operation = operation;
    // For a watch: where to watch again, the cursor of the last message the stream gave out (or
    // the one it started after), else the gateway's errorInfo.metadata.cursor (where a watch of
    // new messages that got none started); null when there is none.
    this.resumeCursor = resumeCursor;
    this.idempotencyKey = idempotencyKey;
    this.errorInfo = errorInfo;
    this.reason = errorInfo?.reason ?? "";
    const metadata = errorInfo?.metadata ?? {};
    // Only the gateway can say that nothing was created; without its word (a deadline the client
    // enforced, a lost connection) the subscription may exist.
    this.subscriptionMayExist = metadata.subscription_may_exist !== "false";
    // The same for a send: false only when the gateway says no attempt can have sent it.
    this.messageMayExist = metadata.message_may_exist !== "false";
    this.attempts = metadata.attempts !== undefined ? Number(metadata.attempts) : null;
    this.replayed = metadata.replayed === "true";
    this.fieldViolations = fieldViolations;
    this.retryDelayMs = retryDelayMs;
    this.twilioError = twilioError;
    this.details = details;
    this.statusCode = statusCode;
    this.requestId = requestId;
    this.nextStep = nextStep(codeName, this.reason, operation);
  }

  // The error as the CLIs print it: code, message, the key and the details as proto JSON.
  toJSON() {
    const report = {
      code: this.codeName,
      code_number: this.code,
      message: this.statusMessage,
      idempotency_key: this.idempotencyKey,
      details: this.details,
    };
    if (this.operation === "delete" || this.operation === "watch") delete report.idempotency_key; // none
    if (this.resumeCursor) report.resume_cursor = this.resumeCursor;
    if (this.statusCode !== null && this.statusCode !== this.code) report.status_code_mismatch = this.statusCode;
    return report;
  }
}

// A grpc-js error of a call that sent `idempotencyKey`, with its details decoded.
// A trailer that does not decode is dropped: the code and message still reach the caller.
function fromServiceError(error, { idempotencyKey, requestId = "", detailTypes = undefined, operation = "create" }) {
  let decoded = { status: null, details: [] };
  try {
    decoded = decodeStatusDetails(error, detailTypes);
  } catch {
    // not a google.rpc.Status
  }
  return new GatewayError({
    code: error.code,
    statusMessage: error.details ?? "",
    idempotencyKey,
    requestId,
    operation,
    cause: error,
    ...typedDetails(decoded),
  });
}

module.exports = { GatewayError, fromServiceError, nextStep, statusCodeName };
