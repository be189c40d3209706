// SubscriptionClient.create against the real gateway and the Twilio simulator (test.sh starts
// them): success, an invalid request, a replay, TLS with a token or a client certificate, a
// deadline, cancellation, and the decoded details of Twilio's errors.
"use strict";

const assert = require("node:assert/strict");
const { after, describe, test } = require("node:test");

const { GatewayError, SubscriptionClient, status } = require("@twilio-gateway/client");

const { CALLBACK, CALL_SID, UUID_V4, fixture, simAdmin, upstreamRequests } = require("./helpers");

// Each test's own key, so that no test replays another's answer.
let keys = 0;
const newKey = (name) => `node-package-${name}-${process.pid}-${++keys}`;

const clients = [];
function client(target = fixture.target, options = {}) {
  const made = new SubscriptionClient(target, options);
  clients.push(made);
  return made;
}
after(() => clients.forEach((c) => c.close()));

// The GatewayError a create fails with; fails the test when it succeeds or throws anything else.
async function createError(gateway, request, options) {
  const error = await gateway.create(request, options).then(
    (subscription) => assert.fail(`created ${subscription.sid}, want an error`),
    (e) => e,
  );
  assert.ok(error instanceof GatewayError, `${error?.stack ?? error} is not a GatewayError`);
  return error;
}

// Runs fn with every simulator answer delayed by delayMs.
async function withSimulatorDelay(delayMs, fn) {
  await simAdmin("POST", "/_sim/config", { delay_ms: delayMs });
  try {
    return await fn();
  } finally {
    await simAdmin("POST", "/_sim/config", { delay_ms: 0 });
  }
}

describe("SubscriptionClient.create", () => {
  test("creates a subscription with a key generated before sending", async () => {
    const subscription = await client().create({ callSid: CALL_SID, callback: CALLBACK, method: "GET" });
    assert.match(subscription.sid, /^ZY[0-9a-f]{32}$/);
    assert.equal(subscription.callSid, CALL_SID);
    assert.match(subscription.accountSid, /^AC[0-9a-f]{32}$/);
    assert.match(subscription.idempotencyKey, UUID_V4);
    assert.ok(subscription.dateCreated instanceof Date && !Number.isNaN(subscription.dateCreated.getTime()));
    assert.ok(subscription.uri.endsWith(`/UserDefinedMessageSubscriptions/${subscription.sid}.json`));
    assert.equal(subscription.replayed, false);
    assert.notEqual(subscription.requestId, "", "no x-request-id");
    const sent = (await simAdmin("GET", "/_sim/subscriptions")).subscriptions.find(
      (s) => s.idempotency_key === subscription.idempotencyKey,
    );
    assert.equal(sent?.method, "GET", "the simulator got another method");
    assert.equal(sent?.callback, CALLBACK);
  });

  test("an invalid request names the field and says to use a new key", async () => {
    const error = await createError(client(), { callSid: "CA-not-a-call", callback: CALLBACK });
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.equal(error.reason, "INVALID_REQUEST");
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["call_sid"],
    );
    assert.ok(error.fieldViolations[0].description, "no description of the violation");
    // The key was generated here and the gateway reports the same one.
    assert.match(error.idempotencyKey, UUID_V4);
    assert.equal(error.errorInfo.metadata.idempotency_key, error.idempotencyKey);
    assert.equal(error.errorInfo.domain, "twilio-gateway");
    assert.equal(error.subscriptionMayExist, false);
    assert.equal(error.attempts, 0);
    assert.equal(error.nextStep, "fix the request and use a new key: retrying this one cannot succeed");
    assert.equal(error.message, `INVALID_ARGUMENT: ${error.statusMessage}`);
    assert.match(error.statusMessage, /call_sid/);
    assert.notEqual(error.requestId, "", "no x-request-id");
    assert.equal(await upstreamRequests(error.idempotencyKey), 0, "an invalid request reached Twilio");
  });

  test("a missing callback is named too", async () => {
    const error = await createError(client(), { callSid: CALL_SID, callback: "" });
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.deepEqual(
      error.fieldViolations.map((v) => v.field),
      ["callback"],
    );
  });

  test("a retry with the same key replays the first answer without calling Twilio", async () => {
    const gateway = client();
    const key = newKey("replay");
    const first = await gateway.create({ callSid: CALL_SID, callback: CALLBACK, idempotencyKey: key });
    assert.equal(first.idempotencyKey, key);
    assert.equal(first.replayed, false);
    assert.equal(await upstreamRequests(key), 1);
    const again = await gateway.create({ callSid: CALL_SID, callback: CALLBACK, idempotencyKey: key });
    assert.equal(again.sid, first.sid);
    assert.equal(again.replayed, true);
    assert.equal(await upstreamRequests(key), 1, "the replay called Twilio");
    // The key belongs to that request: another request with it is refused.
    const other = await createError(gateway, {
      callSid: CALL_SID,
      callback: `${CALLBACK}/other`,
      idempotencyKey: key,
    });
    assert.equal(other.code, status.FAILED_PRECONDITION);
    assert.equal(other.reason, "IDEMPOTENCY_KEY_REUSED");
    assert.equal(other.nextStep, "this key belongs to another request: use a new key");
  });

  test("an error Twilio answered is replayed as an error, marked so", async () => {
    const missing = "CA00000000000000000000000000000404";
    await simAdmin("PUT", `/_sim/calls/${missing}`, { state: "missing" });
    const gateway = client();
    const key = newKey("not-found");
    const error = await createError(gateway, { callSid: missing, callback: CALLBACK, idempotencyKey: key });
    assert.equal(error.code, status.NOT_FOUND);
    assert.equal(error.reason, "CALL_NOT_FOUND");
    assert.equal(error.twilioError.code, 20404);
    assert.equal(error.twilioError.httpStatus, 404);
    assert.match(error.twilioError.moreInfo, /^https:\/\//);
    assert.ok(error.twilioError.message);
    assert.equal(error.attempts, 1);
    assert.equal(error.subscriptionMayExist, false);
    assert.equal(error.replayed, false);
    assert.equal(error.nextStep, "retrying with it changes nothing until the cause is fixed");
    const replay = await createError(gateway, { callSid: missing, callback: CALLBACK, idempotencyKey: key });
    assert.equal(replay.code, status.NOT_FOUND);
    assert.equal(replay.replayed, true);
    assert.equal(await upstreamRequests(key), 1);
  });

  test("throttling carries RetryInfo's delay and Twilio's error", async () => {
    const throttled = "CA00000000000000000000000000000429";
    await simAdmin("POST", "/_sim/faults", { rules: [{ status: 429, retry_after: "1", call_sid: throttled }] });
    try {
      const error = await createError(client(), { callSid: throttled, callback: CALLBACK });
      assert.equal(error.code, status.RESOURCE_EXHAUSTED);
      assert.equal(error.reason, "TWILIO_THROTTLED");
      assert.equal(error.retryDelayMs, 1000);
      assert.equal(error.twilioError.code, 20429);
      assert.equal(error.twilioError.httpStatus, 429);
      assert.equal(error.nextStep, "retry with it to repeat this create safely");
      // toJSON() is the report the CLI prints.
      const report = JSON.parse(JSON.stringify(error));
      assert.equal(report.code, "RESOURCE_EXHAUSTED");
      assert.equal(report.code_number, status.RESOURCE_EXHAUSTED);
      assert.equal(report.idempotency_key, error.idempotencyKey);
      const retryInfo = report.details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.RetryInfo");
      assert.equal(retryInfo?.retry_delay, "1s");
      assert.equal("status_code_mismatch" in report, false);
    } finally {
      await simAdmin("DELETE", "/_sim/faults");
    }
  });

  test("a deadline the gateway sees it cannot meet is DEADLINE_EXCEEDED at once, with the key", async () => {
    // Twilio throttles and asks for 5 s: no retry fits in the 1 s deadline.
    const slow = "CA00000000000000000000000000000503";
    await simAdmin("POST", "/_sim/faults", { rules: [{ status: 429, retry_after: "5", call_sid: slow }] });
    try {
      const started = Date.now();
      const error = await createError(client(), { callSid: slow, callback: CALLBACK }, { timeoutMs: 1000 });
      const took = Date.now() - started;
      assert.equal(error.code, status.DEADLINE_EXCEEDED, error.message);
      assert.ok(took < 900, `the gateway answered after ${took} ms, not at once`);
      assert.equal(error.reason, "DEADLINE_EXCEEDED");
      assert.match(error.idempotencyKey, UUID_V4);
      assert.equal(error.errorInfo.metadata.idempotency_key, error.idempotencyKey);
      assert.equal(error.retryDelayMs, 5000);
      assert.equal(error.twilioError.code, 20429);
      // Twilio never processed a throttled request.
      assert.equal(error.subscriptionMayExist, false);
      assert.equal(error.nextStep, "retry with it to repeat this create safely");
    } finally {
      await simAdmin("DELETE", "/_sim/faults");
    }
  });

  test("the caller's deadline ends a slow call with the key, and a retry with it finds one subscription", async () => {
    const gateway = client();
    const request = { callSid: CALL_SID, callback: CALLBACK };
    const error = await withSimulatorDelay(2000, async () => {
      const started = Date.now();
      const e = await createError(gateway, request, { timeoutMs: 500 });
      const took = Date.now() - started;
      assert.ok(took < 1500, `the call took ${took} ms with a 500 ms deadline`);
      return e;
    });
    // Twilio may have acted on the attempt the deadline cut short. Whichever side notices the
    // deadline first answers: grpc-js (DEADLINE_EXCEEDED, no details) or the gateway, which
    // then resolves the outcome in the background (UNAVAILABLE, OUTCOME_RESOLVING; README,
    // "Exactly once"). Both say to retry with the key.
    const answered = `${error.codeName} ${error.reason}`.trim();
    assert.ok(["DEADLINE_EXCEEDED", "UNAVAILABLE OUTCOME_RESOLVING"].includes(answered), error.message);
    assert.match(error.idempotencyKey, UUID_V4);
    assert.equal(error.subscriptionMayExist, true);
    assert.equal(error.nextStep, "retry with it to repeat this create safely");
    const retried = await gateway.create({ ...request, idempotencyKey: error.idempotencyKey });
    assert.equal(retried.idempotencyKey, error.idempotencyKey);
    const created = (await simAdmin("GET", "/_sim/subscriptions")).subscriptions.filter(
      (s) => s.idempotency_key === error.idempotencyKey,
    );
    assert.equal(created.length, 1, `${created.length} subscriptions for the key`);
    assert.equal(created[0].sid, retried.sid);
  });

  test("an AbortSignal cancels the call", async () => {
    const gateway = client();
    const error = await withSimulatorDelay(2000, () =>
      createError(gateway, { callSid: CALL_SID, callback: CALLBACK }, { signal: AbortSignal.timeout(200) }),
    );
    assert.equal(error.code, status.CANCELLED);
    assert.match(error.idempotencyKey, UUID_V4);
  });
});

describe("SubscriptionClient over TLS", () => {
  test("a token is accepted", async () => {
    const gateway = client(fixture.tlsTarget, { caFile: fixture.caFile, token: fixture.token });
    const subscription = await gateway.create({ callSid: CALL_SID, callback: CALLBACK });
    assert.match(subscription.sid, /^ZY[0-9a-f]{32}$/);
  });

  test("without a token the caller is unauthenticated", async () => {
    const error = await createError(client(fixture.tlsTarget, { caFile: fixture.caFile }), {
      callSid: CALL_SID,
      callback: CALLBACK,
    });
    assert.equal(error.code, status.UNAUTHENTICATED);
    assert.equal(error.reason, "CALLER_UNAUTHENTICATED");
    assert.equal(error.nextStep, "retrying with it changes nothing until the cause is fixed");
  });

  test("a client certificate is accepted", async () => {
    const gateway = client(fixture.tlsTarget, {
      caFile: fixture.caFile,
      certFile: fixture.certFile,
      keyFile: fixture.keyFile,
    });
    const subscription = await gateway.create({ callSid: CALL_SID, callback: CALLBACK });
    assert.match(subscription.sid, /^ZY[0-9a-f]{32}$/);
  });

  test("a plaintext client gets no answer from the TLS gateway", async () => {
    const error = await createError(
      client(fixture.tlsTarget),
      { callSid: CALL_SID, callback: CALLBACK },
      {
        timeoutMs: 2000,
      },
    );
    assert.ok([status.UNAVAILABLE, status.DEADLINE_EXCEEDED].includes(error.code), error.message);
    assert.equal(error.errorInfo, null);
    assert.equal(error.subscriptionMayExist, true);
  });
});
