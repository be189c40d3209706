// Messages as JSON in the proto3 JSON style with the proto's field names (as the C++ CLI prints
// them: preserve_proto_field_names): Timestamp and Duration as strings, enums by name, 64-bit
// integers as strings.
"use strict";

const protobuf = require("protobufjs");

// Seconds + nanos as protobuf's JSON mapping writes them.
function secondsText(seconds, nanos) {
  const fraction = nanos ? `.${String(nanos).padStart(9, "0").replace(/0+$/, "")}` : "";
  return `${seconds}${fraction}`;
}

function timestampText({ seconds, nanos }) {
  const iso = new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, "");
  const fraction = nanos ? `.${String(nanos).padStart(9, "0").replace(/0+$/, "")}` : "";
  return `${iso}${fraction}Z`;
}

// A protobufjs message of `type` as JSON.
function messageToJson(type, message) {
  const object = type.toObject(message, { longs: String, enums: String, defaults: false });
  const convert = (t, value) => {
    if (value === null || value === undefined) return value;
    if (t.fullName === ".google.protobuf.Duration") return `${secondsText(value.seconds ?? 0, value.nanos ?? 0)}s`;
    if (t.fullName === ".google.protobuf.Timestamp") return timestampText(value);
    const out = {};
    for (const [name, v] of Object.entries(value)) {
      const field = t.fields[name];
      const sub = field?.resolvedType;
      if (sub instanceof protobuf.Type) {
        out[name] = field.map
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, convert(sub, x)]))
          : field.repeated
            ? v.map((x) => convert(sub, x))
            : convert(sub, v);
      } else {
        out[name] = v;
      }
    }
    return out;
  };
  return convert(type, object);
}

// One decoded detail (decodeStatusDetails) as JSON with its "@type"; an unknown type's bytes in
// base64.
function detailToJson({ typeUrl, type, message }) {
  if (!type) return { "@type": typeUrl, value_base64: Buffer.from(message).toString("base64") };
  return { "@type": typeUrl, ...messageToJson(type, message) };
}

// A Subscription (SubscriptionClient.create's result) as twilio_gateway.v1.Subscription's JSON.
function subscriptionToJson(subscription) {
  const out = {
    account_sid: subscription.accountSid,
    call_sid: subscription.callSid,
    sid: subscription.sid,
  };
  if (subscription.dateCreated) {
    out.date_created = subscription.dateCreated.toISOString().replace(/\.000Z$/, "Z");
  }
  out.uri = subscription.uri;
  out.idempotency_key = subscription.idempotencyKey;
  return out;
}

module.exports = { detailToJson, messageToJson, subscriptionToJson };
