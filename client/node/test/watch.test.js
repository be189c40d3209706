// SubscriptionClient.watch() and create() without a callback, against the gateway that receives
// Twilio's deliveries (tests/clients/fixture.sh: --webhook-listen, --public-webhook-url) and the
// simulator playing the Voice SDK (POST /_sim/deliver signs each message as Twilio does).
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { after, describe, test } = require("node:test");

const { GatewayError, MessageStream, SubscriptionClient, status } = require("@twilio-gateway/client");

const { fixture, simAdmin } = require("./helpers");

// Every stream has a deadline: a message that never comes fails the test instead of hanging it.
const STREAM_TIMEOUT_MS = 30_000;

const receiver = new SubscriptionClient(fixture.webhookTarget);
const plain = new SubscriptionClient(fixture.target);
after(() => {
  receiver.close();
  plain.close();
});

// A call no other test has messages on (the simulator treats every call as in progress).
const newCall = () => `CA${crypto.randomBytes(16).toString("hex")}`;

async function deliver(callSid, contents) {
  const answer = await simAdmin("POST", "/_sim/deliver", { call_sid: callSid, contents });
  assert.deepEqual(
    answer.deliveries.map((d) => d.status),
    contents.map(() => 200),
  );
}

// The next `count` messages of the stream's async iterator.
async function take(iterator, count) {
  const out = [];
  while (out.length < count) {
    const { value, done } = await iterator.next();
    assert.equal(done, false, `the stream ended after ${out.length} messages`);
    out.push(value);
  }
  return out;
}

// How the stream ends: the error it fails with, or null when it ends without one.
async function ending(stream) {
  try {
    for await (const message of stream) assert.fail(`unexpected message ${JSON.stringify(message)}`);
    return null;
  } catch (e) {
    assert.ok(e instanceof GatewayError, `${e?.stack ?? e} is not a GatewayError`);
    return e;
  }
}

describe("SubscriptionClient.create without a callback", () => {
  test("subscribes the gateway's own URL when it has a receiver", async () => {
    const subscription = await receiver.create({ callSid: newCall() });
    const { subscriptions } = await simAdmin("GET", "/_sim/subscriptions");
    assert.deepEqual(
      subscriptions.filter((s) => s.sid === subscription.sid).map((s) => s.callback),
      [fixture.webhookUrl],
    );
  });
});

describe("SubscriptionClient.watch", () => {
  test("streams the delivered messages in order, then resumes after a cursor", async () => {
    const callSid = newCall();
    await receiver.create({ callSid });
    const stream = receiver.watch({ callSid, fromOldest: true }, { timeoutMs: STREAM_TIMEOUT_MS });
    assert.ok(stream instanceof MessageStream);
    await deliver(callSid, ['{"text": "one"}', '{"text": "two"}', "[3]"]);
    const iterator = stream[Symbol.asyncIterator]();
    const first = await take(iterator, 3);
    assert.deepEqual(
      first.map((m) => [m.sequenceNumber, JSON.parse(m.content)]),
      [
        [0, { text: "one" }],
        [1, { text: "two" }],
        [2, [3]],
      ],
    );
    for (const message of first) {
      assert.equal(message.callSid, callSid);
      assert.equal(message.accountSid, "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
      assert.match(message.sid, /^KX[0-9a-f]{32}$/);
      assert.equal(message.contentType, "application/json");
      assert.ok(message.timestamp instanceof Date);
      assert.ok(Math.abs(message.timestamp.getTime() - Date.now()) < 300_000);
      assert.ok(message.cursor);
    }
    assert.equal(stream.cursor, first[2].cursor);
    stream.cancel();
    assert.equal(await ending(stream), null, "a cancelled stream ends without an error");

    await deliver(callSid, ["4"]);
    const resumed = receiver.watch({ callSid, cursor: first[1].cursor }, { timeoutMs: STREAM_TIMEOUT_MS });
    const later = await take(resumed[Symbol.asyncIterator](), 2);
    assert.deepEqual(
      later.map((m) => m.sid),
      [first[2].sid, later[1].sid],
    );
    assert.equal(later[1].content, "4");
    resumed.destroy();
  });

  test("an AbortSignal ends the stream without an error", async () => {
    const controller = new AbortController();
    const stream = receiver.watch({ callSid: newCall() }, { signal: controller.signal, timeoutMs: STREAM_TIMEOUT_MS });
    setTimeout(() => controller.abort(), 200);
    assert.equal(await ending(stream), null);
  });

  test("the error that ends a stream carries where to resume", async () => {
    const callSid = newCall();
    await receiver.create({ callSid });
    const stream = receiver.watch({ callSid, fromOldest: true }, { timeoutMs: 3000 });
    await deliver(callSid, ["{}"]);
    const iterator = stream[Symbol.asyncIterator]();
    const [message] = await take(iterator, 1);
    const error = await iterator.next().then(
      () => assert.fail("the stream went on past its deadline"),
      (e) => e,
    );
    assert.ok(error instanceof GatewayError);
    assert.equal(error.code, status.DEADLINE_EXCEEDED);
    assert.equal(error.operation, "watch");
    assert.equal(error.resumeCursor, message.cursor);
    assert.equal(error.toJSON().resume_cursor, message.cursor);
    assert.equal("idempotency_key" in error.toJSON(), false);
    assert.equal(error.nextStep, "watch again with the resume cursor: nothing it still keeps after it is lost");
  });

  test("a malformed cursor is INVALID_ARGUMENT naming it", async () => {
    const error = await ending(receiver.watch({ cursor: "not-a-cursor" }, { timeoutMs: STREAM_TIMEOUT_MS }));
    assert.equal(error?.code, status.INVALID_ARGUMENT);
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["cursor"],
    );
    assert.equal(error.nextStep, "fix the request: retrying it unchanged cannot succeed");
  });

  test("a gateway without a receiver is FAILED_PRECONDITION", async () => {
    const error = await ending(plain.watch({}, { timeoutMs: STREAM_TIMEOUT_MS }));
    assert.equal(error?.code, status.FAILED_PRECONDITION);
    assert.equal(error.resumeCursor, null);
    assert.match(error.nextStep, /operator/);
  });

  test("checks its arguments before calling", () => {
    assert.throws(() => receiver.watch({ fromOldest: "yes" }), TypeError);
    assert.throws(() => receiver.watch({ callSid: 1 }), TypeError);
    assert.throws(() => receiver.watch({ content: "{}" }), TypeError);
    assert.throws(() => receiver.watch({}, { timeoutMs: 0 }), TypeError);
  });
});
