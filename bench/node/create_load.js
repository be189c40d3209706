#!/usr/bin/env node
// The baseline the gateway is compared against: the official Twilio Node.js helper library
// (npm package `twilio`) creating UserDefinedMessageSubscriptions itself, pointed at the same local
// upstream as the gateway by setting `client.api.baseUrl`, at a fixed concurrency (closed loop),
// one process. Prints one JSON object on stdout: throughput, latency percentiles and the process's
// CPU time over the measurement window (process.cpuUsage(): every thread of the process).
//
// Usage: node create_load.js --base-url http://127.0.0.1:PORT [--concurrency 64] [--duration 10]
//          [--warmup 2] [--account-sid AC..] [--username SK..] [--password SECRET]
//          [--call-sid CA..] [--callback URL] [--key-prefix P]
"use strict";

const twilio = require("twilio");

function parseArgs(argv) {
  const args = {
    baseUrl: "",
    concurrency: 64,
    duration: 10,
    warmup: 2,
    accountSid: "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    // The simulator's built-in test credentials; not secrets.
    username: "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    password: "simulator-api-secret",
    callSid: "CA0123456789abcdef0123456789abcdef",
    callback: "https://example.com/twilio/messages",
    keyPrefix: `node-${Date.now().toString(16)}-${process.pid}-`,
    timeout: 5000,
  };
  const names = {
    "--base-url": ["baseUrl", String],
    "--concurrency": ["concurrency", Number],
    "--duration": ["duration", Number],
    "--warmup": ["warmup", Number],
    "--account-sid": ["accountSid", String],
    "--username": ["username", String],
    "--password": ["password", String],
    "--call-sid": ["callSid", String],
    "--callback": ["callback", String],
    "--key-prefix": ["keyPrefix", String],
    "--timeout-ms": ["timeout", Number],
  };
  for (let i = 2; i < argv.length; i += 2) {
    const spec = names[argv[i]];
    if (!spec || i + 1 >= argv.length) {
      console.error(`create_load.js: bad argument ${argv[i]}`);
      process.exit(2);
    }
    args[spec[0]] = spec[1](argv[i + 1]);
  }
  if (!args.baseUrl) {
    console.error("create_load.js: --base-url is required");
    process.exit(2);
  }
  return args;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

async function main() {
  const args = parseArgs(process.argv);
  // With an API key the account goes in the options, as Twilio documents.
  const client = twilio(args.username, args.password, {
    accountSid: args.accountSid,
    timeout: args.timeout,
  });
  // Every request of the Api domain is built from this base URL (lib/base/Domain.js).
  client.api.baseUrl = args.baseUrl;
  const subscriptions = client.api.v2010
    .accounts(args.accountSid)
    .calls(args.callSid).userDefinedMessageSubscriptions;

  const start = process.hrtime.bigint();
  const nanos = (s) => BigInt(Math.round(s * 1e9));
  const windowStart = start + nanos(args.warmup);
  const windowEnd = windowStart + nanos(args.duration);
  let cpuAtStart = null;
  let cpuInWindow = null;
  let rssMax = 0;
  const latenciesUs = [];
  const codes = {};
  let seq = 0;
  let ok = 0;
  let errors = 0;
  let completedTotal = 0;

  const ticker = setInterval(() => {
    const now = process.hrtime.bigint();
    if (now >= windowStart && now < windowEnd) rssMax = Math.max(rssMax, process.memoryUsage.rss());
    process.stderr.write(
      `[node ${Number(now - start) / 1e9}s] completed ${completedTotal} ok ${ok} errors ${errors}\n`);
  }, 1000);
  const windowStartTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
  }, args.warmup * 1000);
  const windowEndTimer = setTimeout(() => {
    cpuInWindow = process.cpuUsage(cpuAtStart);
  }, (args.warmup + args.duration) * 1000);

  async function worker() {
    for (;;) {
      const sent = process.hrtime.bigint();
      if (sent >= windowEnd) return;
      let code = "OK";
      let success = true;
      try {
        await subscriptions.create({
          callback: args.callback,
          method: "POST",
          idempotencyKey: `${args.keyPrefix}${seq++}`,
        });
      } catch (e) {
        success = false;
        code = e.status ? `HTTP_${e.status}` : e.code || "ERROR";
      }
      const done = process.hrtime.bigint();
      completedTotal++;
      if (done >= windowStart && done < windowEnd) {
        latenciesUs.push(Number(done - sent) / 1000);
        codes[code] = (codes[code] || 0) + 1;
        if (success) ok++;
        else errors++;
      }
    }
  }

  await Promise.all(Array.from({ length: args.concurrency }, worker));
  clearInterval(ticker);
  clearTimeout(windowStartTimer);
  clearTimeout(windowEndTimer);
  if (cpuInWindow === null) cpuInWindow = process.cpuUsage(cpuAtStart ?? undefined);

  latenciesUs.sort((a, b) => a - b);
  const requests = latenciesUs.length;
  const cpuSeconds = (cpuInWindow.user + cpuInWindow.system) / 1e6;
  const mean = requests ? latenciesUs.reduce((a, b) => a + b, 0) / requests : 0;
  const result = {
    label: "node-twilio",
    target: "node-twilio",
    twilio_version: require("twilio/package.json").version,
    node_version: process.version,
    mode: "closed",
    concurrency: args.concurrency,
    duration_s: args.duration,
    warmup_s: args.warmup,
    requests,
    ok,
    errors,
    throughput_per_s: requests / args.duration,
    ok_per_s: ok / args.duration,
    latency_us: {
      count: requests,
      min: Math.round(latenciesUs[0] || 0),
      mean,
      p50: Math.round(percentile(latenciesUs, 50)),
      p90: Math.round(percentile(latenciesUs, 90)),
      p99: Math.round(percentile(latenciesUs, 99)),
      "p99.9": Math.round(percentile(latenciesUs, 99.9)),
      max: Math.round(latenciesUs[requests - 1] || 0),
    },
    codes,
    cpu_s: cpuSeconds,
    rss_kib_max: Math.round(rssMax / 1024),
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
