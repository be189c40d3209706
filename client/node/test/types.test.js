// The package's TypeScript declarations, as a TypeScript user of the installed package sees them:
// test/types/usage.ts must compile (and its @ts-expect-error lines must be errors). test.sh sets
// TSC to the TypeScript compiler of client/node's devDependencies.
"use strict";

const assert = require("node:assert/strict");
const { execFile } = require("node:child_process");
const path = require("node:path");
const { test } = require("node:test");
const { promisify } = require("node:util");

const run = promisify(execFile);

test("the declarations type-check a typed use of the package", async () => {
  const tsc = process.env.TSC;
  assert.ok(tsc, "TSC is not set: run the tests with client/node/test.sh");
  const project = path.join(__dirname, "types", "tsconfig.json");
  const result = await run(tsc, ["--noEmit", "-p", project]).catch((e) => e);
  assert.equal(result.code ?? 0, 0, `tsc failed:\n${result.stdout}${result.stderr}`);
});
