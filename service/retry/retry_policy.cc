#include "retry/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace gateway {

bool ShouldRetry(AttemptOutcome outcome, const RetryOptions& options, bool naturally_idempotent) {
  switch (outcome) {
    case AttemptOutcome::kNeverApplied:
      return true;
    case AttemptOutcome::kAmbiguous:
      return options.retry_ambiguous || naturally_idempotent;
    case AttemptOutcome::kSucceeded:
    case AttemptOutcome::kRejected:
    case AttemptOutcome::kStopped:
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
