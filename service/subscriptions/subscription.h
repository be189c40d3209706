// Plain C++ types for creating a UserDefinedMessageSubscription, independent of gRPC and of
// the HTTP wire format. The api/ layer converts protos to and from these.
#ifndef GATEWAY_SUBSCRIPTIONS_SUBSCRIPTION_H_
#define GATEWAY_SUBSCRIPTIONS_SUBSCRIPTION_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/time/time.h"

namespace gateway {

// How Twilio calls the callback URL.
enum class CallbackMethod { kPost, kGet };

// A create request as the caller sent it, before validation. `method` stays the raw enum number
// so that values unknown to this build can be rejected rather than silently mapped.
struct CreateSubscriptionInput {
  // Who is asking, as authenticated by the api/ layer; empty when no authentication is set up.
  std::string caller;
  std::string account_sid;  // Empty: the gateway's own account.
  std::string call_sid;
  std::string callback;
  int method = 0;               // twilio_gateway.v1.CallbackMethod
  std::string idempotency_key;  // Empty: the gateway generates one.
};

// A validated request, with defaults applied; only this reaches Twilio.
struct CreateSubscriptionRequest {
  std::string account_sid;
  std::string call_sid;
  std::string callback;
  CallbackMethod method = CallbackMethod::kPost;
  std::string idempotency_key;
};

struct Subscription {
  std::string account_sid;
  std::string call_sid;
  std::string sid;
  std::optional<absl::Time> date_created;
  std::string uri;
  std::string idempotency_key;
  // True when this is a stored outcome replayed for a repeated idempotency key.
  bool replayed = false;
  // Upstream attempts this call made (0 for a replay).
  int attempts = 0;
};

// A call in progress; Cancel() ends it with CANCELLED and abandons its upstream work.
class PendingCreate {
 public:
  virtual ~PendingCreate() = default;
  virtual void Cancel() = 0;
};

}  // namespace gateway

#endif  // GATEWAY_SUBSCRIPTIONS_SUBSCRIPTION_H_
