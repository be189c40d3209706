// The three operations' requests in plain C++: as the caller sent them (`...Input`, before
// validation) and as validated (`...Request`, defaults applied; only these reach Twilio).
// The api/ floor converts protos to inputs; validation/ turns inputs into requests.
#ifndef GATEWAY_MODEL_REQUESTS_H_
#define GATEWAY_MODEL_REQUESTS_H_

#include <string>

namespace gateway {

// How Twilio calls a subscription's callback URL.
enum class CallbackMethod { kPost, kGet };

// Fields every operation shares. `caller` is who is asking, as authenticated by the api/
// floor; empty when no authentication is set up.
struct CallInput {
  std::string caller;
  std::string account_sid;  // Empty: the gateway's own account.
  std::string call_sid;
};

struct CreateSubscriptionInput : CallInput {
  std::string callback;
  // twilio_gateway.v1.CallbackMethod, kept raw so that values unknown to this build are
  // rejected rather than silently mapped.
  int method = 0;
  std::string idempotency_key;  // Empty: the gateway generates one.
};

struct DeleteSubscriptionInput : CallInput {
  std::string sid;
};

struct SendMessageInput : CallInput {
  std::string content;
  std::string idempotency_key;  // Empty: the gateway generates one.
};

struct CreateSubscriptionRequest {
  std::string account_sid;
  std::string call_sid;
  std::string callback;
  CallbackMethod method = CallbackMethod::kPost;
  std::string idempotency_key;
};

struct DeleteSubscriptionRequest {
  std::string account_sid;
  std::string call_sid;
  std::string sid;
};

struct SendMessageRequest {
  std::string account_sid;
  std::string call_sid;
  std::string content;
  std::string idempotency_key;
};

// A Watch of the messages Twilio delivers: call_sid is an optional filter here.
struct WatchInput : CallInput {
  std::string cursor;  // Empty: start at the newest message (or the oldest, with from_oldest).
  bool from_oldest = false;
};

struct WatchRequest {
  std::string account_sid;
  std::string call_sid;  // Empty: every call of the account.
  std::string cursor;
  bool from_oldest = false;
};

}  // namespace gateway

#endif  // GATEWAY_MODEL_REQUESTS_H_
