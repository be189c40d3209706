// SubscriptionClient.delete and .send against the real gateway and the Twilio simulator, by the
// contract (proto/twilio_gateway/v1/*.proto). Then what needs no gateway: the arguments each call
// checks itself and the error helpers.
"use strict";

const assert = require("node:assert/strict");
const { after, describe, test } = require("node:test");

const { GatewayError, SubscriptionClient, nextStep, status } = require("@twilio-gateway/client");

const { CALLBACK, CALL_SID, UUID_V4, fixture, simAdmin } = require("./helpers");

let keys = 0;
const newKey = (name) => `node-package-${name}-${process.pid}-${++keys}`;

const gateway = new SubscriptionClient(fixture.target);
after(() => gateway.close());

// The GatewayError a call fails with; fails the test when it succeeds or throws anything else.
async function failure(promise) {
  const error = await promise.then(
    (result) => assert.fail(`succeeded with ${JSON.stringify(result)}, want an error`),
    (e) => e,
  );
  assert.ok(error instanceof GatewayError, `${error?.stack ?? error} is not a GatewayError`);
  return error;
}

// Requests the simulator received with this message key, and messages it sent for it.
async function messageStats(key) {
  const stats = await simAdmin("GET", "/_sim/stats");
  const counts = { requests: 0, messages: 0 };
  for (const [name, value] of Object.entries(stats.messages_by_key ?? {})) {
    if (!name.endsWith(`/${key}`)) continue;
    counts.requests += value.requests;
    counts.messages += value.messages;
  }
  return counts;
}

describe("SubscriptionClient.delete", () => {
  test("deletes the subscription; a second delete is NOT_FOUND", async () => {
    const { sid } = await gateway.create({ callSid: CALL_SID, callback: CALLBACK });
    const deleted = await gateway.delete({ callSid: CALL_SID, sid });
    assert.ok(deleted.requestId);
    const { subscriptions } = await simAdmin("GET", "/_sim/subscriptions");
    assert.deepEqual(subscriptions.filter((s) => s.sid === sid).map((s) => s.deleted), [true]);

    const error = await failure(gateway.delete({ callSid: CALL_SID, sid }));
    assert.equal(error.code, status.NOT_FOUND);
    assert.equal(error.twilioError?.code, 20404);
    assert.equal(error.operation, "delete");
    assert.equal(error.idempotencyKey, "");
    assert.equal(error.nextStep, "there is no such subscription, call or account: do not retry");
    assert.equal("idempotency_key" in error.toJSON(), false);
  });

  test("succeeds when an earlier attempt deleted it and its answer was lost", async () => {
    const { sid } = await gateway.create({ callSid: CALL_SID, callback: CALLBACK });
    await simAdmin("POST", "/_sim/faults", { rules: [{ operation: "delete", drop: "after", count: 1 }] });
    try {
      await gateway.delete({ callSid: CALL_SID, sid });
    } finally {
      await simAdmin("DELETE", "/_sim/faults");
    }
  });

  test("a malformed sid is INVALID_ARGUMENT naming sid", async () => {
    const error = await failure(gateway.delete({ callSid: CALL_SID, sid: "ZY-not-a-sid" }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["sid"],
    );
  });
});

describe("SubscriptionClient.send", () => {
  test("sends once per key and replays the answer", async () => {
    const key = newKey("send");
    const content = JSON.stringify({ text: "hi" });
    const first = await gateway.send({ callSid: CALL_SID, content, idempotencyKey: key });
    assert.match(first.sid, /^KX[0-9a-f]{32}$/);
    assert.equal(first.callSid, CALL_SID);
    assert.equal(first.idempotencyKey, key);
    assert.ok(first.dateCreated instanceof Date);
    assert.equal(first.replayed, false);

    const second = await gateway.send({ callSid: CALL_SID, content, idempotencyKey: key });
    assert.equal(second.sid, first.sid);
    assert.equal(second.replayed, true);
    assert.deepEqual(await messageStats(key), { requests: 1, messages: 1 });
  });

  test("generates the key before sending", async () => {
    const message = await gateway.send({ callSid: CALL_SID, content: "[1, 2]" });
    assert.match(message.idempotencyKey, UUID_V4);
  });

  test("content that is not JSON is INVALID_ARGUMENT naming content, and nothing is sent", async () => {
    const key = newKey("not-json");
    const error = await failure(gateway.send({ callSid: CALL_SID, content: "{not json", idempotencyKey: key }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["content"],
    );
    assert.equal(error.idempotencyKey, key);
    assert.equal(error.messageMayExist, false);
    assert.equal((await messageStats(key)).requests, 0);
  });

  test("a call that is not active is FAILED_PRECONDITION with Twilio's 31211", async () => {
    const inactive = "CA00000000000000000000000000031211";
    await simAdmin("PUT", `/_sim/calls/${inactive}`, { state: "completed" });
    const error = await failure(gateway.send({ callSid: inactive, content: "{}" }));
    assert.equal(error.code, status.FAILED_PRECONDITION);
    assert.equal(error.twilioError?.code, 31211);
    assert.equal(error.messageMayExist, false);
    assert.equal(error.attempts, 1);
  });
});

describe("without a gateway", () => {
  test("each call checks its own fields", async () => {
    await assert.rejects(gateway.send({ callSid: CALL_SID, content: { text: "hi" } }), /JSON\.stringify/);
    await assert.rejects(gateway.delete({ callSid: CALL_SID, sid: "ZY0", idempotencyKey: "k" }), /unknown request field idempotencyKey/);
    await assert.rejects(gateway.send({ callSid: CALL_SID, content: "{}", callback: CALLBACK }), /unknown request field callback/);
    await assert.rejects(gateway.delete(null), /delete\(\) needs a request object/);
  });

  test("nextStep and the may-exist helpers speak of the operation", () => {
    assert.equal(nextStep("UNAVAILABLE", ""), "retry with it to repeat this create safely");
    assert.equal(nextStep("UNAVAILABLE", "", "send"), "retry with it to repeat this send safely");
    assert.match(nextStep("UNKNOWN", "OUTCOME_UNKNOWN", "send"), /the message may or may not have been sent/);
    assert.equal(nextStep("UNAVAILABLE", "", "delete"), "retry the delete: deleting again is always safe");
    assert.throws(() => nextStep("UNAVAILABLE", "", "fetch"), TypeError);

    const sendError = new GatewayError({
      code: status.UNAVAILABLE,
      idempotencyKey: "k",
      operation: "send",
      errorInfo: { reason: "TWILIO_UNAVAILABLE", domain: "twilio-gateway", metadata: { attempts: "3", message_may_exist: "false" } },
    });
    assert.equal(sendError.messageMayExist, false);
    assert.equal(sendError.attempts, 3);
    assert.equal(sendError.nextStep, "retry with it to repeat this send safely");
    assert.equal(new GatewayError({ code: status.DEADLINE_EXCEEDED, idempotencyKey: "k" }).messageMayExist, true);
  });
});
