// SubscriptionClient: calls the gateway's SubscriptionService (create, delete) and MessageService
// (send, and watch: a stream of the messages the SDKs send) with a deadline per call, the idempotency key of a create or send generated before
// sending (so the caller knows it even when the call times out), and failures thrown as
// GatewayError with the details decoded.
//
//   const client = new SubscriptionClient("gateway:50051", { caFile: "ca.pem", token });
//   const subscription = await client.create({ callSid: "CA...", callback: "https://..." });
//   await client.send({ callSid: "CA...", content: JSON.stringify({ text: "hi" }) });
//   await client.delete({ callSid: "CA...", sid: subscription.sid });
//   for await (const message of client.watch({ callSid: "CA...", cursor })) cursor = message.cursor;
//
// One client holds one channel for both services; its calls may run concurrently. close() ends
// the channel.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const { Readable } = require("node:stream");

const grpc = require("@grpc/grpc-js");

const { fromServiceError } = require("./errors");
const { loadDetailTypes, loadMessageService, loadService } = require("./protos");

const DEFAULT_TIMEOUT_MS = 10_000;
const TLS_OPTIONS = ["ca", "caFile", "cert", "certFile", "key", "keyFile"];
const CLIENT_OPTIONS = new Set([...TLS_OPTIONS, "token", "timeoutMs", "channelOptions"]);
// Each request's fields, by their names here and in the proto.
const REQUEST_FIELDS = {
  create: {
    callSid: "call_sid",
    callback: "callback",
    method: "method",
    idempotencyKey: "idempotency_key",
    accountSid: "account_sid",
  },
  delete: { callSid: "call_sid", sid: "sid", accountSid: "account_sid" },
  send: { callSid: "call_sid", content: "content", idempotencyKey: "idempotency_key", accountSid: "account_sid" },
  watch: { callSid: "call_sid", accountSid: "account_sid", cursor: "cursor", fromOldest: "from_oldest" },
};
const METHODS = { POST: "CALLBACK_METHOD_POST", GET: "CALLBACK_METHOD_GET" };

// The contents of a PEM given inline or as a file, or null when neither. Empty is an error: an
// empty CA would make gRPC quietly trust the system's roots instead.
function pem(inline, file, what) {
  if (inline !== undefined && file !== undefined) {
    throw new TypeError(`give ${what} or ${what}File, not both`);
  }
  if (file !== undefined) {
    let contents;
    try {
      contents = fs.readFileSync(file);
    } catch (e) {
      throw new Error(`cannot read ${what}File ${file}: ${e.message}`);
    }
    if (contents.length === 0) throw new Error(`${what}File ${file} is empty`);
    return contents;
  }
  if (inline === undefined || inline === null) return null;
  const contents = Buffer.from(inline);
  if (contents.length === 0) throw new Error(`${what} is empty`);
  return contents;
}

// Channel credentials: plaintext without a CA; else TLS verified against it, with a client
// certificate (mutual TLS) when cert and key are given. Each PEM inline (ca, cert, key: string
// or Buffer) or from a file (caFile, certFile, keyFile), read now.
function channelCredentials({ ca, caFile, cert, certFile, key, keyFile } = {}) {
  const caPem = pem(ca, caFile, "ca");
  const certPem = pem(cert, certFile, "cert");
  const keyPem = pem(key, keyFile, "key");
  if ((certPem === null) !== (keyPem === null)) throw new TypeError("a client cert and its key go together");
  if (caPem === null) {
    if (certPem !== null) throw new TypeError("a client cert needs a ca (TLS)");
    return grpc.credentials.createInsecure();
  }
  return grpc.credentials.createSsl(caPem, keyPem, certPem);
}

// The request of `operation` in the proto's terms; a create or send gets an idempotency key: the
// caller's, or a new UUID v4.
function wireRequest(operation, request) {
  if (request === null || typeof request !== "object") throw new TypeError(`${operation}() needs a request object`);
  const fields = REQUEST_FIELDS[operation];
  const wire = {};
  for (const [name, value] of Object.entries(request)) {
    if (!Object.hasOwn(fields, name)) {
      throw new TypeError(`unknown request field ${name} (known: ${Object.keys(fields).join(", ")})`);
    }
    if (value === undefined) continue;
    if (name === "fromOldest") {
      if (typeof value !== "boolean") throw new TypeError("request field fromOldest must be a boolean");
    } else if (typeof value !== "string") {
      const hint = name === "content" ? " of JSON text: use JSON.stringify()" : "";
      throw new TypeError(`request field ${name} must be a string${hint}`);
    }
    wire[fields[name]] = value;
  }
  if (operation === "delete" || operation === "watch") return wire;
  if (wire.method !== undefined) {
    const method = METHODS[wire.method.toUpperCase()];
    if (!method) {
      throw new TypeError(`request field method must be "POST" or "GET", not ${JSON.stringify(wire.method)}`);
    }
    wire.method = method;
  }
  // Empty counts as unset, as in the C++ client.
  if (!wire.idempotency_key) wire.idempotency_key = crypto.randomUUID();
  return wire;
}

function checkTimeout(timeoutMs, what) {
  if (!(typeof timeoutMs === "number" && timeoutMs > 0 && Number.isFinite(timeoutMs))) {
    throw new TypeError(`${what} must be a positive number of milliseconds`);
  }
}

function firstValue(metadata, name) {
  const value = metadata?.get(name)?.[0];
  return value === undefined ? "" : String(value);
}

function toTimestamp(created) {
  return created ? new Date(Number(created.seconds) * 1000 + Math.floor(created.nanos / 1e6)) : null;
}

function toMessage(response, replayed, requestId) {
  return {
    accountSid: response.account_sid,
    callSid: response.call_sid,
    sid: response.sid,
    dateCreated: toTimestamp(response.date_created),
    idempotencyKey: response.idempotency_key,
    replayed,
    requestId,
  };
}

function toSubscription(response, replayed, requestId) {
  return {
    accountSid: response.account_sid,
    callSid: response.call_sid,
    sid: response.sid,
    dateCreated: toTimestamp(response.date_created),
    uri: response.uri,
    idempotencyKey: response.idempotency_key,
    replayed,
    requestId,
  };
}

function toCallMessage(m) {
  return {
    sid: m.sid,
    accountSid: m.account_sid,
    callSid: m.call_sid,
    sequenceNumber: Number(m.sequence_number),
    content: m.content,
    contentType: m.content_type,
    timestamp: toTimestamp(m.timestamp),
    cursor: m.cursor,
  };
}

// A Watch in progress: a Readable in object mode of messages (so also an async iterator), in
// order. It does not end by itself: it fails with the GatewayError that ended the stream, whose
// resumeCursor is where to watch again, or ends without error after cancel() (or destroy(), or
// the call's AbortSignal). `cursor` is the last message's, else the one it started after.
class MessageStream extends Readable {
  #call;
  #cancelled = false;

  constructor(call, cursor) {
    super({ objectMode: true });
    this.cursor = cursor;
    this.#call = call;
    let requestId = "";
    call.on("metadata", (headers) => {
      requestId = firstValue(headers, "x-request-id");
    });
    call.on("data", (message) => {
      const out = toCallMessage(message);
      this.cursor = out.cursor;
      if (!this.push(out)) call.pause();
    });
    // grpc-js emits the error as the status arrives, and "end" once the messages received before
    // it have been taken: so they all come out first, then the error.
    let failure = null;
    call.on("error", (error) => {
      if (this.#cancelled) return;
      failure = fromServiceError(error, {
        idempotencyKey: "",
        requestId,
        detailTypes: loadDetailTypes(),
        operation: "watch",
      });
    });
    call.on("end", () => {
      if (failure === null) {
        this.push(null);
        return;
      }
      // This stream's own word first: the gateway's `cursor` (errorInfo.metadata) is the last
      // message it wrote, which a broken connection may have lost on the way. Without one (no
      // message yet, a watch of new ones) the gateway's says where the stream started.
      failure.resumeCursor = this.cursor || failure.errorInfo?.metadata?.cursor || null;
      this.destroy(failure);
    });
  }

  _read() {
    this.#call.resume();
  }

  _destroy(error, callback) {
    if (!error) this.#cancelled = true;
    this.#call.cancel();
    callback(error);
  }

  // Ends the stream without an error.
  cancel() {
    this.#cancelled = true;
    this.#call.cancel();
  }
}

class SubscriptionClient {
  #stub;
  #messages;
  #token;
  #timeoutMs;

  // target: "host:port". options: the channel's TLS (see channelCredentials), `token` (sent as
  // "authorization: Bearer <token>" on every call; empty: none), `timeoutMs` (each call's
  // default deadline, 10 s) and `channelOptions` (grpc-js channel options).
  constructor(target, options = {}) {
    if (typeof target !== "string" || target === "") throw new TypeError('target must be "host:port"');
    for (const name of Object.keys(options)) {
      if (!CLIENT_OPTIONS.has(name)) {
        throw new TypeError(`unknown option ${name} (known: ${[...CLIENT_OPTIONS].join(", ")})`);
      }
    }
    const { token = "", timeoutMs = DEFAULT_TIMEOUT_MS, channelOptions = {} } = options;
    if (typeof token !== "string") throw new TypeError("token must be a string");
    checkTimeout(timeoutMs, "timeoutMs");
    const SubscriptionService = loadService();
    this.#stub = new SubscriptionService(target, channelCredentials(options), channelOptions);
    // The same channel: grpc-js shares it between clients made over another client's channel.
    const MessageService = loadMessageService();
    this.#messages = new MessageService(target, null, { channelOverride: this.#stub.getChannel() });
    this.#token = token;
    this.#timeoutMs = timeoutMs;
  }

  // Creates the subscription, or throws a GatewayError. request: callSid, callback, and
  // optionally method ("POST" or "GET"), idempotencyKey (generated when empty) and accountSid.
  // options: timeoutMs (the deadline for the whole call, the gateway's retries included) and an
  // AbortSignal that cancels the call.
  async create(request, options = {}) {
    const wire = wireRequest("create", request);
    return this.#call(this.#stub, "Create", "create", wire, options, toSubscription);
  }

  // Deletes the subscription, or throws a GatewayError (NOT_FOUND: no such subscription, call or
  // account). request: callSid, sid (as create() returned it) and optionally accountSid. Resolves
  // to {requestId} once it is gone, also when an earlier attempt of this call deleted it and its
  // answer was lost. No idempotency key: deleting again is always safe. options: as create()'s.
  async delete(request, options = {}) {
    const wire = wireRequest("delete", request);
    return this.#call(this.#stub, "Delete", "delete", wire, options, (_response, _replayed, requestId) => ({
      requestId,
    }));
  }

  // Sends a message to the Voice SDK on the call, or throws a GatewayError (its messageMayExist
  // says whether it may have been sent). request: callSid, content (one JSON document as text, at
  // most 4096 bytes: use JSON.stringify), and optionally idempotencyKey (generated when empty;
  // the same key sends the message at most once) and accountSid. options: as create()'s.
  async send(request, options = {}) {
    const wire = wireRequest("send", request);
    return this.#call(this.#messages, "Send", "send", wire, options, toMessage);
  }

  // Streams the messages Voice SDK clients send on calls, as Twilio delivers them to the gateway's
  // webhook (README, "Receiving messages"): a MessageStream. request: callSid (only that call's),
  // accountSid (absent: the gateway's account), cursor (resume after that message) or fromOldest
  // (without a cursor: the oldest message kept, instead of the next one received); all optional.
  // options: timeoutMs (a deadline for the whole stream; default none, not the client's) and an
  // AbortSignal that ends it without error.
  watch(request = {}, { timeoutMs, signal } = {}) {
    const wire = wireRequest("watch", request);
    if (timeoutMs !== undefined) checkTimeout(timeoutMs, "timeoutMs");
    const metadata = new grpc.Metadata();
    if (this.#token) metadata.set("authorization", `Bearer ${this.#token}`);
    const callOptions = timeoutMs === undefined ? {} : { deadline: new Date(Date.now() + timeoutMs) };
    const stream = new MessageStream(this.#messages.Watch(wire, metadata, callOptions), wire.cursor || null);
    if (signal) {
      const cancel = () => stream.cancel();
      if (signal.aborted) cancel();
      signal.addEventListener("abort", cancel, { once: true });
      stream.on("close", () => signal.removeEventListener("abort", cancel));
    }
    return stream;
  }

  #call(stub, method, operation, wire, { timeoutMs = this.#timeoutMs, signal } = {}, toResult) {
    checkTimeout(timeoutMs, "timeoutMs");
    const metadata = new grpc.Metadata();
    if (this.#token) metadata.set("authorization", `Bearer ${this.#token}`);
    const deadline = new Date(Date.now() + timeoutMs);
    return new Promise((resolve, reject) => {
      let outcome = null;
      let requestId = "";
      const call = stub[method](wire, metadata, { deadline }, (error, response) => {
        outcome = { error, response };
      });
      const cancel = () => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
      if (signal?.aborted) cancel();
      call.on("metadata", (headers) => {
        requestId = firstValue(headers, "x-request-id");
      });
      // grpc-js runs the callback first, then emits the status with the trailers.
      call.on("status", ({ metadata: trailers }) => {
        signal?.removeEventListener("abort", cancel);
        requestId ||= firstValue(trailers, "x-request-id");
        if (outcome.error) {
          reject(
            fromServiceError(outcome.error, {
              idempotencyKey: wire.idempotency_key ?? "",
              requestId,
              detailTypes: loadDetailTypes(),
              operation,
            }),
          );
        } else {
          const replayed = firstValue(trailers, "idempotent-replay") === "true";
          resolve(toResult(outcome.response, replayed, requestId));
        }
      });
    });
  }

  // Ends the channel, which both services' stubs share.
  close() {
    this.#stub.close();
  }
}

module.exports = { MessageStream, SubscriptionClient, channelCredentials };
