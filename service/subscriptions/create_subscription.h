// Creates a subscription: validates, authorizes the caller for the account, picks the
// idempotency key, applies the idempotency guard (records scoped by caller and account),
// and runs the retry loop over an HttpTransport within the caller's deadline, one upstream
// permit per attempt. The same retry loop, planned by the guard, resolves ambiguous outcomes
// in the background. Knows nothing of gRPC.
//
// Usage:
//   CreateSubscriptionHandler handler(options, endpoint, transport, timer, clock, random,
//                                     {.idempotency = &guard, .limiter = &limiter,
//                                      .retry_budget = &budget});
//   auto call = handler.Create(input, deadline, [](absl::StatusOr<Subscription> result) {...});
//   call->Cancel();  // optional: the caller went away
//
// Thread-safety: Create() and Cancel() are safe from any thread. `done` runs exactly once, on
// a transport, timer or store thread, or inline inside Create() for invalid input or a
// deadline already past; it must not block.
#ifndef GATEWAY_SUBSCRIPTIONS_CREATE_SUBSCRIPTION_H_
#define GATEWAY_SUBSCRIPTIONS_CREATE_SUBSCRIPTION_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/caller_policy.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/snapshot.h"
#include "http/http_transport.h"
#include "idempotency/idempotency_guard.h"
#include "limits/concurrency_limiter.h"
#include "metrics/gateway_metrics.h"
#include "retry/retry_budget.h"
#include "retry/retry_policy.h"
#include "subscriptions/subscription.h"
#include "twilio/twilio_api.h"

namespace gateway {

struct CreateSubscriptionOptions {
  // e.g. "https://api.twilio.com", no trailing slash.
  std::string base_url;
  // Deadline for requests that arrive without one.
  absl::Duration default_deadline = absl::Seconds(10);
  // Longest single attempt; each attempt also ends at the overall deadline. Twilio is assumed
  // to act on a request, if at all, within this time of its sending.
  absl::Duration attempt_timeout = absl::Seconds(5);
  // How long Twilio is assumed to recognize an IdempotencyKey after it first acted on it
  // (Twilio documents no window). Once an attempt may have created the subscription, no
  // attempt is sent that could still be in Twilio's hands after the window, counted from the
  // key's first claim: window_start + key_window - attempt_timeout is the last send time.
  absl::Duration key_window = absl::Seconds(10);
  RetryOptions retry;
  // Attempts of one background resolution.
  int resolution_max_attempts = 10;
};

// Optional collaborators; each may be null (no idempotency record, no limit, no budget, no
// authorization: any caller may use any account).
struct CreateSubscriptionControls {
  const Snapshot<CallerPolicy>* policy = nullptr;
  IdempotencyGuard* idempotency = nullptr;
  ConcurrencyLimiter* limiter = nullptr;
  RetryBudget* retry_budget = nullptr;
  // Bounds background resolutions apart from the callers' retries: every RPC that reaches
  // Twilio earns it a share, every resolution attempt spends one.
  RetryBudget* resolution_budget = nullptr;
  GatewayMetrics* metrics = nullptr;
};

// Adds to an error that happened before anything was sent what every error tells the caller:
// the key to retry with (only a valid one: an invalid key may be any size), no attempts, and that
// no subscription can exist. `reason` as for SetErrorInfo ("" keeps the status' own).
void MarkNothingSent(absl::Status& status, absl::string_view reason,
                     absl::string_view idempotency_key);

class CreateSubscriptionHandler {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<Subscription>) &&>;

  // All references must outlive the handler and every call it started. Each call uses the
  // credentials `account` holds when it starts, for all its attempts.
  CreateSubscriptionHandler(CreateSubscriptionOptions options,
                            const Snapshot<TwilioAccount>& account, HttpTransport& transport,
                            Timer& timer, const Clock& clock, Random& random,
                            CreateSubscriptionControls controls = {});

  // `deadline` is absl::InfiniteFuture() when the caller set none.
  std::shared_ptr<PendingCreate> Create(const CreateSubscriptionInput& input, absl::Time deadline,
                                        Done done);

  const CreateSubscriptionOptions& options() const { return options_; }

 private:
  class Operation;

  std::shared_ptr<PendingCreate> StartUpstream(std::shared_ptr<const TwilioAccount> account,
                                               CreateSubscriptionRequest request,
                                               const UpstreamPlan& plan,
                                               IdempotencyGuard::UpstreamDone done);

  const CreateSubscriptionOptions options_;
  const Snapshot<TwilioAccount>& account_;
  HttpTransport& transport_;
  Timer& timer_;
  const Clock& clock_;
  Random& random_;
  const CreateSubscriptionControls controls_;
};

}  // namespace gateway

#endif  // GATEWAY_SUBSCRIPTIONS_CREATE_SUBSCRIPTION_H_
