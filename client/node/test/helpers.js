// What the package's tests share: where the gateways and the simulator are (set by test.sh, from
// tests/clients/fixture.sh) and the simulator's admin API.
"use strict";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with client/node/test.sh`);
  return value;
}

const CALL_SID = "CA0123456789abcdef0123456789abcdef";
const CALLBACK = "https://example.com/twilio/messages";
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const fixture = {
  // The plain gateway, and the one that wants TLS and a token or a client certificate.
  target: env("GATEWAY_TARGET"),
  tlsTarget: env("GATEWAY_TLS_TARGET"),
  caFile: env("GATEWAY_CA"),
  token: env("GATEWAY_TOKEN"),
  certFile: env("GATEWAY_CLIENT_CERT"),
  keyFile: env("GATEWAY_CLIENT_KEY"),
  simulator: env("SIMULATOR_URL"),
  // The gateway that receives Twilio's deliveries (watch), and its public webhook URL.
  webhookTarget: env("GATEWAY_WEBHOOK_TARGET"),
  webhookUrl: env("GATEWAY_WEBHOOK_URL"),
};

// The simulator's admin API (tests/twilio_simulator): METHOD /_sim/PATH with a JSON body.
async function simAdmin(method, path, body) {
  const response = await fetch(`${fixture.simulator}${path}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`simulator ${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

// How many API requests the simulator received with this idempotency key (its statistics are
// by account/call/key).
async function upstreamRequests(key) {
  const stats = await simAdmin("GET", "/_sim/stats");
  return Object.entries(stats.by_key ?? {})
    .filter(([name]) => name.endsWith(`/${key}`))
    .reduce((sum, [, { requests }]) => sum + requests, 0);
}

module.exports = { CALLBACK, CALL_SID, UUID_V4, fixture, simAdmin, upstreamRequests };
