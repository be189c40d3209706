// What may be retried, and how long to wait first. The single source of truth for both; the
// reasons are in retry_policy.cc next to the classification.
//
// Pure functions; thread-safe.
#ifndef GATEWAY_RETRY_RETRY_POLICY_H_
#define GATEWAY_RETRY_RETRY_POLICY_H_

#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "http/http_transport.h"

namespace gateway {

// What one attempt's result says about the subscription.
enum class AttemptOutcome {
  kSucceeded,     // 2xx with a readable body.
  kNeverApplied,  // Twilio cannot have acted: 429, or the request never left.
  kAmbiguous,     // Twilio may have acted: 5xx, timeout or reset after sending, unreadable 2xx.
  kRejected,      // A definite answer (4xx other than 429): retrying changes nothing.
  kCancelled,     // The caller gave up.
};

struct AttemptClass {
  AttemptOutcome outcome;
  absl::string_view why;  // Short, for logs and the final error message.
};

// `body_readable` is whether a 2xx body parsed; ignored for other results.
AttemptClass ClassifyAttempt(const HttpResult& result, bool body_readable);

struct RetryOptions {
  int max_attempts = 5;
  absl::Duration backoff_base = absl::Milliseconds(100);
  absl::Duration backoff_cap = absl::Seconds(2);
  // Longest Retry-After honoured; a larger value is cut to this.
  absl::Duration retry_after_cap = absl::Seconds(5);
  // When false only never-applied results are retried (for operators who want no ambiguous
  // retries even with an idempotency key).
  bool retry_ambiguous = true;
};

bool ShouldRetry(AttemptOutcome outcome, const RetryOptions& options);

// "Full jitter" (AWS Architecture Blog, 2015): uniform in [0, min(cap, base * 2^retry)), which
// spreads a burst of failed callers instead of making them retry in lockstep. `retry` counts
// from 0 for the first retry; `uniform01` is a draw from [0, 1).
absl::Duration FullJitterBackoff(int retry, absl::Duration base, absl::Duration cap,
                                 double uniform01);

// The wait before retry number `retry`: the server's Retry-After when it sent one (capped),
// never less than the jittered backoff.
absl::Duration RetryDelay(int retry, const RetryOptions& options, double uniform01,
                          std::optional<absl::Duration> retry_after);

}  // namespace gateway

#endif  // GATEWAY_RETRY_RETRY_POLICY_H_
