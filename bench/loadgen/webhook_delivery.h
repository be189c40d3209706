// Signed Twilio webhook deliveries for the load generator: one JSON body per sequence number,
// signed as Twilio signs a JSON body (X-Twilio-Signature over the public URL with its
// bodySHA256 query parameter), with a SID unique to the run and the send time in its Content.
//
// Sid: "KX" + the run's 16 hex digits + the sequence number in 16 hex digits, so a subscriber
// can tell the run's messages and their sequence numbers apart without a table. Content:
// {"seq":N,"sent_ns":T} with T on CLOCK_MONOTONIC, read when the body is built.
//
// Thread-safety: Build() is const and safe from any thread.
#ifndef GATEWAY_BENCH_LOADGEN_WEBHOOK_DELIVERY_H_
#define GATEWAY_BENCH_LOADGEN_WEBHOOK_DELIVERY_H_

#include <cstdint>
#include <string>

#include "curl_target.h"
#include "target.h"

namespace loadgen {

struct WebhookDeliveryOptions {
  std::string post_url;    // where the request goes, e.g. http://127.0.0.1:8443/twilio/messages
  std::string public_url;  // the URL Twilio was given, which is signed (often post_url)
  std::string auth_token;
  std::string account_sid;
  std::string call_sid;
  uint64_t run_id = 0;  // distinguishes runs sharing a store
};

class WebhookDeliveries {
 public:
  explicit WebhookDeliveries(WebhookDeliveryOptions options);

  HttpPost Build(const Request& request) const;

  // "KX" + the run's 16 hex digits: every SID of the run starts with it.
  const std::string& sid_prefix() const { return sid_prefix_; }

 private:
  const WebhookDeliveryOptions options_;
  const std::string sid_prefix_;
  const std::string timestamp_;  // RFC 2822, the run's start (Twilio's own is informational)
};

}  // namespace loadgen

#endif  // GATEWAY_BENCH_LOADGEN_WEBHOOK_DELIVERY_H_
