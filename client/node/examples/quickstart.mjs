// The README's example: create a subscription through a gateway that wants TLS and a token.
// Run by test/examples.test.js with GATEWAY_TARGET, GATEWAY_CA and GATEWAY_TOKEN set.
import { SubscriptionClient } from "@twilio-gateway/client";
const gateway = new SubscriptionClient(process.env.GATEWAY_TARGET, { caFile: process.env.GATEWAY_CA, token: process.env.GATEWAY_TOKEN });
const subscription = await gateway.create({ callSid: "CA0123456789abcdef0123456789abcdef", callback: "https://example.com/twilio/messages" });
console.log(`created ${subscription.sid} with idempotency key ${subscription.idempotencyKey}`);
gateway.close();
