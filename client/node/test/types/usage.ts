// A typed use of @twilio-gateway/client: compiled (not run) by test/types.test.js.
import {
  GatewayError,
  SubscriptionClient,
  decodeStatusDetails,
  loadService,
  status,
  subscriptionToJson,
  type CallMessage,
  type CreateSubscriptionRequest,
  type MessageStream,
  type WatchMessagesRequest,
  type Message,
  type SendMessageRequest,
  type Subscription,
} from "@twilio-gateway/client";

export async function sendThenDelete(gateway: SubscriptionClient, subscription: Subscription): Promise<string> {
  const request: SendMessageRequest = { callSid: subscription.callSid, content: JSON.stringify({ text: "hi" }) };
  try {
    const message: Message = await gateway.send(request, { timeoutMs: 2000 });
    const deleted = await gateway.delete({ callSid: subscription.callSid, sid: subscription.sid });
    return `${message.sid} ${message.replayed} ${deleted.requestId}`;
  } catch (e) {
    if (!(e instanceof GatewayError)) throw e;
    const mayExist: boolean = e.operation === "send" ? e.messageMayExist : e.subscriptionMayExist;
    return `${mayExist} ${e.attempts ?? 0} ${e.nextStep}`;
  }
}

export async function createOnce(target: string, token: string): Promise<Subscription | null> {
  const gateway = new SubscriptionClient(target, { caFile: "ca.pem", token, timeoutMs: 5000 });
  const request: CreateSubscriptionRequest = {
    callSid: "CA0123456789abcdef0123456789abcdef",
    callback: "https://example.com/twilio/messages",
    method: "GET",
  };
  try {
    const subscription = await gateway.create(request, { timeoutMs: 2000, signal: AbortSignal.timeout(3000) });
    const sid: string = subscription.sid;
    const created: Date | null = subscription.dateCreated;
    const json: Record<string, string> = subscriptionToJson(subscription);
    console.log(sid, created?.toISOString(), json, subscription.replayed);
    return subscription;
  } catch (e) {
    if (!(e instanceof GatewayError)) throw e;
    const retryWith: string = e.idempotencyKey;
    const delay: number | null = e.retryDelayMs;
    const fields: string[] = e.fieldViolations.map((v) => v.field);
    const twilioCode: number | undefined = e.twilioError?.code;
    const metadata: Record<string, string> | undefined = e.errorInfo?.metadata;
    if (e.code === status.DEADLINE_EXCEEDED && e.subscriptionMayExist) {
      console.log(retryWith, delay, fields, twilioCode, metadata, e.reason, e.nextStep, e.toJSON().code_number);
    }
    return null;
  } finally {
    gateway.close();
  }
}

export function lowerLevel(error: GatewayError): number {
  const Service = loadService();
  const { status: decoded, details } = decodeStatusDetails({ metadata: (error.cause as any).metadata });
  console.log(
    Service.service,
    details.map((d) => d.typeUrl),
  );
  return decoded?.code ?? 0;
}

// Mistakes the declarations must catch.
// @ts-expect-error the proto's snake_case names are not the request's
const wrongName: CreateSubscriptionRequest = { call_sid: "CA0", callback: "https://x" };
// @ts-expect-error method is POST or GET
const wrongMethod: CreateSubscriptionRequest = { callSid: "CA0", callback: "https://x", method: "PUT" };
// @ts-expect-error the target is required
new SubscriptionClient();
// @ts-expect-error content is JSON text, not a value
const wrongContent: SendMessageRequest = { callSid: "CA0", content: { text: "hi" } };
// @ts-expect-error a delete has no idempotency key
const wrongDelete: import("@twilio-gateway/client").DeleteSubscriptionRequest = { callSid: "CA0", sid: "ZY0", idempotencyKey: "k" };
console.log(wrongName, wrongMethod, wrongContent, wrongDelete);

export async function watchOnce(gateway: SubscriptionClient, cursor: string | null): Promise<string | null> {
  await gateway.create({ callSid: "CA0123456789abcdef0123456789abcdef" });
  const request: WatchMessagesRequest = cursor
    ? { callSid: "CA0123456789abcdef0123456789abcdef", cursor }
    : { callSid: "CA0123456789abcdef0123456789abcdef", fromOldest: true };
  const stream: MessageStream = gateway.watch(request, { timeoutMs: 60_000 });
  try {
    for await (const message of stream) {
      const received: CallMessage = message;
      // @ts-expect-error the iterator yields CallMessage, not any: sequenceNumber is a number
      const wrong: string = message.sequenceNumber;
      console.log(wrong);
      const sent: Date | null = received.timestamp;
      console.log(received.sequenceNumber + 1, JSON.parse(received.content), sent?.toISOString());
      cursor = received.cursor;
    }
  } catch (e) {
    if (!(e instanceof GatewayError)) throw e;
    const resume: string | null = e.resumeCursor;
    return resume;
  }
  stream.cancel();
  // @ts-expect-error fromOldest is a boolean
  gateway.watch({ fromOldest: "yes" });
  return cursor;
}
