// The README's examples run as written (examples/, copied beside the tests by test.sh) against
// the real gateways, and the README shows them as they are.
"use strict";

const assert = require("node:assert/strict");
const { execFile } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { test } = require("node:test");
const { promisify } = require("node:util");

const { fixture } = require("./helpers");

const run = promisify(execFile);
const examples = path.join(__dirname, "..", "examples");
const readme = fs.readFileSync(
  path.join(path.dirname(require.resolve("@twilio-gateway/client/package.json")), "README.md"),
  "utf8",
);

// An example's code without its opening comment: what the README shows.
function code(file) {
  const lines = fs.readFileSync(path.join(examples, file), "utf8").split("\n");
  return lines.slice(lines.findIndex((line) => !line.startsWith("//"))).join("\n");
}

test("quickstart.mjs creates over TLS with a token, in five lines the README shows", async () => {
  assert.equal(code("quickstart.mjs").trimEnd().split("\n").length, 5);
  assert.ok(readme.includes("```js\n" + code("quickstart.mjs") + "```"), "README.md does not show quickstart.mjs");
  const { stdout } = await run(process.execPath, [path.join(examples, "quickstart.mjs")], {
    env: {
      ...process.env,
      GATEWAY_TARGET: fixture.tlsTarget,
      GATEWAY_CA: fixture.caFile,
      GATEWAY_TOKEN: fixture.token,
    },
  });
  assert.match(stdout, /^created ZY[0-9a-f]{32} with idempotency key [0-9a-f-]{36}\n$/);
});

test("errors.mjs shows what a failed create says, as the README shows it", async () => {
  assert.ok(readme.includes("```js\n" + code("errors.mjs") + "```"), "README.md does not show errors.mjs");
  const { stdout } = await run(process.execPath, [path.join(examples, "errors.mjs"), "CA-not-a-call"], {
    env: { ...process.env, GATEWAY_TARGET: fixture.target },
  });
  const printed = stdout.match(/^INVALID_ARGUMENT INVALID_REQUEST \[ 'call_sid' \] (.*) \(key ([0-9a-f-]{36})\)\n$/);
  assert.ok(printed, `errors.mjs printed ${JSON.stringify(stdout)}`);
  assert.equal(printed[1], "fix the request and use a new key: retrying this one cannot succeed");
});
