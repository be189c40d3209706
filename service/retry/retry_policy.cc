#include "retry/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace gateway {

AttemptClass ClassifyAttempt(const HttpResult& result, bool body_readable) {
  switch (result.failure) {
    case TransportFailure::kCancelled:
      return {AttemptOutcome::kCancelled, "cancelled"};
    case TransportFailure::kConnect:
      // Resolve, connect or TLS handshake failed: no byte of the request reached Twilio.
      return {AttemptOutcome::kNeverApplied, "could not connect"};
    case TransportFailure::kTimeout:
    case TransportFailure::kIo:
      if (!result.request_sent) return {AttemptOutcome::kNeverApplied, "failed before sending"};
      // The request went out and the answer was lost: Twilio may have created the
      // subscription. Retrying is safe only because every attempt carries the same
      // IdempotencyKey.
      return {AttemptOutcome::kAmbiguous, result.failure == TransportFailure::kTimeout
                                              ? "timed out after sending"
                                              : "connection lost after sending"};
    case TransportFailure::kNone:
      break;
  }
  const int status = result.response.status;
  if (status >= 200 && status < 300) {
    if (body_readable) return {AttemptOutcome::kSucceeded, "created"};
    // Created, but the answer is unusable; the same key asks Twilio for the same subscription.
    return {AttemptOutcome::kAmbiguous, "unreadable success response"};
  }
  // Twilio rejects requests over its concurrency limit before processing them.
  if (status == 429) return {AttemptOutcome::kNeverApplied, "throttled (429)"};
  // A 5xx may come after the subscription was recorded: ambiguous, safe with the same key.
  if (status >= 500) return {AttemptOutcome::kAmbiguous, "server error (5xx)"};
  return {AttemptOutcome::kRejected, "rejected"};
}

bool ShouldRetry(AttemptOutcome outcome, const RetryOptions& options) {
  switch (outcome) {
    case AttemptOutcome::kNeverApplied:
      return true;
    case AttemptOutcome::kAmbiguous:
      return options.retry_ambiguous;
    case AttemptOutcome::kSucceeded:
    case AttemptOutcome::kRejected:
    case AttemptOutcome::kCancelled:
      return false;
  }
  return false;
}

absl::Duration FullJitterBackoff(int retry, absl::Duration base, absl::Duration cap,
                                 double uniform01) {
  // Doubling stops once it passes the cap, so large retry counts cannot overflow.
  absl::Duration ceiling = base;
  for (int i = 0; i < retry && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap);
  const double u = std::clamp(uniform01, 0.0, 1.0);
  // Clamped below 2^63 ns (292 years) so that the conversion to integer stays defined.
  const double nanos = std::min(std::floor(absl::ToDoubleNanoseconds(ceiling) * u), 9.2e18);
  return absl::Nanoseconds(static_cast<int64_t>(nanos));
}

absl::Duration RetryDelay(int retry, const RetryOptions& options, double uniform01,
                          std::optional<absl::Duration> retry_after) {
  const absl::Duration backoff =
      FullJitterBackoff(retry, options.backoff_base, options.backoff_cap, uniform01);
  if (!retry_after.has_value()) return backoff;
  return std::max(backoff, std::min(*retry_after, options.retry_after_cap));
}

}  // namespace gateway
