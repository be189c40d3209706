// The one engine every Twilio operation runs on: a run of attempts of one TwilioCall over an
// HttpTransport, within a deadline, one upstream permit per attempt, retrying what the retry
// policy allows after the backoff it computes, bounded by retry budgets, cancellable. Attempts
// are classified once, by twilio/attempt.h; the engine only reads the classification.
//
// The idempotency guard plans each run (UpstreamPlan): the caller's own run, and again a
// background resolution of an ambiguous outcome. Once an attempt may have taken effect, no
// attempt is sent that could still be in Twilio's hands after Twilio stops recognizing the key,
// unless the operation is naturally idempotent (Delete).
//
// Usage:
//   UpstreamEngine engine(options, transport, timer, clock, random, {.limiter = &limiter});
//   auto run = engine.Start(account, std::make_shared<const TwilioCall>(
//                               CreateSubscriptionCall(request)), plan,
//                           [](UpstreamOutcome outcome) {...});
//   run->Cancel();  // optional: the caller went away
//
// Thread-safety: Start() and Cancel() are safe from any thread. `done` runs exactly once, on a
// transport, timer or limiter thread, or inline inside Start() when no attempt fits the
// deadline; it must not block.
#ifndef GATEWAY_UPSTREAM_UPSTREAM_ENGINE_H_
#define GATEWAY_UPSTREAM_UPSTREAM_ENGINE_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/random.h"
#include "http/http_transport.h"
#include "limits/concurrency_limiter.h"
#include "metrics/gateway_metrics.h"
#include "model/outcome.h"
#include "retry/retry_budget.h"
#include "retry/retry_policy.h"
#include "twilio/twilio_api.h"

namespace gateway {

struct UpstreamOptions {
  // e.g. "https://api.twilio.com", no trailing slash.
  std::string base_url;
  // Longest single attempt; each attempt also ends at the overall deadline. Twilio is assumed
  // to act on a request, if at all, within this time of its sending.
  absl::Duration attempt_timeout = absl::Seconds(5);
  // How long Twilio is assumed to recognize an IdempotencyKey after it first acted on it
  // (Twilio documents no window). Once an attempt may have taken effect, no attempt is sent
  // that could still be in Twilio's hands after the window, counted from the key's first
  // claim: window_start + key_window - attempt_timeout is the last send time.
  absl::Duration key_window = absl::Seconds(10);
  RetryOptions retry;
  // Attempts of one background resolution.
  int resolution_max_attempts = 10;
};

// Optional collaborators; each may be null (no limit, no budget, no metrics).
struct UpstreamControls {
  ConcurrencyLimiter* limiter = nullptr;
  RetryBudget* retry_budget = nullptr;
  // Bounds background resolutions apart from the callers' retries: every caller's run that
  // reaches Twilio earns it a share, every resolution attempt spends one.
  RetryBudget* resolution_budget = nullptr;
  GatewayMetrics* metrics = nullptr;
};

class UpstreamEngine {
 public:
  using Done = absl::AnyInvocable<void(UpstreamOutcome) &&>;

  // All references must outlive the engine and every run it started.
  UpstreamEngine(UpstreamOptions options, HttpTransport& transport, Timer& timer,
                 const Clock& clock, Random& random, UpstreamControls controls = {});

  // Runs `call` with `account`'s credentials for all its attempts (a reload mid-run does not
  // switch them). Shared, not copied: a resolution runs the same call again.
  std::shared_ptr<PendingCall> Start(std::shared_ptr<const TwilioAccount> account,
                                     std::shared_ptr<const TwilioCall> call,
                                     const UpstreamPlan& plan, Done done);

  const UpstreamOptions& options() const { return options_; }

 private:
  class Run;

  const UpstreamOptions options_;
  HttpTransport& transport_;
  Timer& timer_;
  const Clock& clock_;
  Random& random_;
  const UpstreamControls controls_;
};

}  // namespace gateway

#endif  // GATEWAY_UPSTREAM_UPSTREAM_ENGINE_H_
