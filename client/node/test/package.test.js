// The installed package itself: that the tests use it and not the source tree, what it exports
// (to require() and to import), the .proto files it ships, its argument checks, and its CLI.
"use strict";

const assert = require("node:assert/strict");
const { execFile } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { test } = require("node:test");
const { promisify } = require("node:util");

const client = require("@twilio-gateway/client");
const { GatewayError, SubscriptionClient, nextStep, statusCodeName } = client;

const { CALLBACK, CALL_SID, fixture } = require("./helpers");

const run = promisify(execFile);
const packageDir = path.dirname(require.resolve("@twilio-gateway/client/package.json"));

test("the package under test is the installed one", () => {
  assert.ok(
    packageDir.split(path.sep).includes("node_modules"),
    `@twilio-gateway/client resolves to ${packageDir}, not to an installed copy`,
  );
  assert.ok(client.PROTO_DIR.startsWith(packageDir));
});

test("the tarball holds the package and nothing else", async () => {
  const tarball = process.env.NODE_PACKAGE_TARBALL;
  assert.ok(tarball, "NODE_PACKAGE_TARBALL is not set: run the tests with client/node/test.sh");
  const { stdout } = await run("tar", ["-tzf", tarball]);
  const files = stdout
    .trim()
    .split("\n")
    .map((f) => f.replace(/^package\//, ""))
    .sort();
  for (const file of ["package.json", "README.md", "create_subscription.js", "lib/index.js", "lib/index.d.ts"]) {
    assert.ok(files.includes(file), `${file} is not in the tarball`);
  }
  const unexpected = files.filter(
    (f) => !/^(package\.json|README\.md|create_subscription\.js|lib\/[a-z_]+\.(js|d\.ts)|proto\/.+\.proto)$/.test(f),
  );
  assert.deepEqual(unexpected, [], "files that do not belong in the package");
});

test("it ships the .proto files it loads", () => {
  for (const file of [
    "twilio_gateway/v1/subscription_service.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
  ]) {
    assert.ok(fs.existsSync(path.join(client.PROTO_DIR, file)), `${file} is not in the package`);
  }
  assert.equal(typeof client.loadService().service.Create, "object");
  assert.ok(client.loadDetailTypes().lookupType("twilio_gateway.v1.TwilioError"));
});

test("an ES module imports the same names as require() gets", async () => {
  const esm = await import("@twilio-gateway/client");
  assert.deepEqual(
    Object.keys(esm)
      .filter((name) => name !== "default")
      .sort(),
    Object.keys(client).sort(),
  );
  assert.equal(esm.SubscriptionClient, SubscriptionClient);
});

test("the TypeScript declarations declare what the package exports", () => {
  const declarations = fs.readFileSync(path.join(packageDir, "lib", "index.d.ts"), "utf8");
  const declared = [...declarations.matchAll(/^export (?:class|function|const) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual([...new Set(declared)].sort(), Object.keys(client).sort());
});

test("contradictory or unreadable TLS options are refused at construction", () => {
  assert.throws(() => new SubscriptionClient(fixture.target, { certFile: fixture.certFile }), TypeError);
  assert.throws(
    () => new SubscriptionClient(fixture.target, { certFile: fixture.certFile, keyFile: fixture.keyFile }),
    /needs a ca/,
  );
  assert.throws(() => new SubscriptionClient(fixture.target, { ca: "x", caFile: fixture.caFile }), TypeError);
  // Beside the tests, in test.sh's work directory.
  const empty = path.join(__dirname, "empty.pem");
  fs.writeFileSync(empty, "");
  assert.throws(() => new SubscriptionClient(fixture.target, { caFile: empty }), /empty/);
  assert.throws(() => new SubscriptionClient(fixture.target, { caFile: `${empty}.missing` }), /cannot read/);
  assert.throws(() => new SubscriptionClient(fixture.target, { tls: {} }), /unknown option tls/);
  assert.throws(() => new SubscriptionClient(fixture.target, { timeoutMs: 0 }), TypeError);
});

test("a malformed request is refused before sending", async () => {
  const gateway = new SubscriptionClient(fixture.target);
  try {
    await assert.rejects(gateway.create({ call_sid: CALL_SID, callback: CALLBACK }), /unknown request field call_sid/);
    await assert.rejects(gateway.create({ callSid: CALL_SID, callback: CALLBACK, method: "PUT" }), TypeError);
    await assert.rejects(gateway.create({ callSid: CALL_SID, callback: CALLBACK }, { timeoutMs: -1 }), TypeError);
  } finally {
    gateway.close();
  }
});

test("nextStep gives the C++ CLI's advice", () => {
  assert.equal(
    nextStep("UNKNOWN", "OUTCOME_UNKNOWN"),
    "the subscription may or may not exist and the gateway will not send this key again; " +
      "a new key may create a second one",
  );
  assert.equal(nextStep("UNKNOWN", ""), "retry with it to repeat this create safely");
  assert.equal(nextStep("FAILED_PRECONDITION", "CALL_NOT_ACTIVE"), "retrying with it is safe once the cause is fixed");
  assert.equal(nextStep("UNAVAILABLE", "OUTCOME_RESOLVING"), "retry with it to repeat this create safely");
  assert.equal(statusCodeName(99), "UNKNOWN");
  const error = new GatewayError({
    code: client.status.UNKNOWN,
    statusMessage: "outcome unknown",
    idempotencyKey: "k",
    errorInfo: { reason: "OUTCOME_UNKNOWN", domain: "twilio-gateway", metadata: { subscription_may_exist: "true" } },
  });
  assert.equal(error.nextStep, nextStep("UNKNOWN", "OUTCOME_UNKNOWN"));
  assert.equal(error.subscriptionMayExist, true);
});

test("the create-subscription command creates, and reports errors as the C++ CLI does", async () => {
  const bin = path.join(packageDir, "..", "..", ".bin", "create-subscription");
  assert.ok(fs.existsSync(bin), `${bin} not installed`);
  const help = await run(bin, ["--help"]);
  assert.match(help.stdout, /--call-sid SID/);

  const created = await run(bin, ["--target", fixture.target, "--call-sid", CALL_SID, "--callback", CALLBACK]);
  const subscription = JSON.parse(created.stdout);
  assert.match(subscription.sid, /^ZY[0-9a-f]{32}$/);
  assert.match(subscription.date_created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const failed = await run(bin, [
    "--target",
    fixture.target,
    "--call-sid",
    "CA1",
    "--callback",
    CALLBACK,
    "--idempotency-key",
    "cli-key",
  ]).then(
    () => assert.fail("exit status 0"),
    (e) => e,
  );
  assert.equal(failed.code, 1);
  const lines = failed.stderr.split("\n");
  assert.match(lines[0], /^error: INVALID_ARGUMENT: /);
  assert.equal(lines[1], `idempotency_key: cli-key (${nextStep("INVALID_ARGUMENT", "")})`);
  const report = JSON.parse(lines.slice(2).join("\n"));
  assert.equal(report.idempotency_key, "cli-key");
  assert.ok(report.details.some((d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest"));

  const usage = await run(bin, ["--call-sid", CALL_SID]).then(
    () => assert.fail("exit status 0"),
    (e) => e,
  );
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--callback is required/);
});
