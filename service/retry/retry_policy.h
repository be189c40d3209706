// What may be retried, and how long to wait first. Attempts are classified in twilio/attempt.h.
//
// Pure functions; thread-safe.
#ifndef GATEWAY_RETRY_RETRY_POLICY_H_
#define GATEWAY_RETRY_RETRY_POLICY_H_

#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "model/outcome.h"

namespace gateway {

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

// Whether an attempt with this outcome may be repeated. A naturally idempotent operation
// (Delete) retries ambiguous outcomes whatever `retry_ambiguous` says: repeating it is harmless.
bool ShouldRetry(AttemptOutcome outcome, const RetryOptions& options, bool naturally_idempotent);

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
