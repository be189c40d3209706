// The README's example of a failed create: what the caller gets to act on.
// Run by test/examples.test.js with GATEWAY_TARGET set and an invalid call SID as the argument.
import { GatewayError, SubscriptionClient } from "@twilio-gateway/client";
const gateway = new SubscriptionClient(process.env.GATEWAY_TARGET);
try {
  await gateway.create({ callSid: process.argv[2], callback: "https://example.com/twilio/messages" }, { timeoutMs: 5000 });
} catch (e) {
  if (!(e instanceof GatewayError)) throw e;
  // e.g. INVALID_ARGUMENT INVALID_REQUEST [ 'call_sid' ]: fix the request and use a new key: ...
  console.log(e.codeName, e.reason, e.fieldViolations.map((v) => v.field), `${e.nextStep} (key ${e.idempotencyKey})`);
} finally {
  gateway.close();
}
