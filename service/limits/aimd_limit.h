// The adaptive part of an account's concurrency limit: additive increase, multiplicative
// decrease (AIMD), the rule TCP's congestion avoidance uses for its window and Netflix's
// concurrency-limits uses in AIMDLimit.
//
// Twilio tells an account it is over its concurrent-request limit only by answering 429 (code
// 20429), and publishes no figure (third parties cite 100). So the limit is learned:
//   - Each accepted attempt adds 1/window, the window being the limit itself (TCP: one segment
//     per round trip) or, under a fleet lease, the fleet's limit, so that the replicas together
//     grow by one permit per fleet window rather than one each. It grows only while the account
//     uses at least half its limit (Netflix's AIMDLimit does the same): an account that sends
//     little learns nothing about Twilio's limit, and must not climb to the ceiling and then
//     burst.
//   - A 429 multiplies it by backoff_ratio (0.5 as TCP; Netflix defaults to 0.9 for latency
//     signals, but a 429 is an explicit overload signal), once per overload: only a 429 to an
//     attempt sent after the previous cut cuts again (TCP NewReno's rule). The attempts already
//     in flight at the first 429 were sent under the old limit; their 429s are the same overload.
//     And a 429 is answered at once, so a rule of "once per interval" would let a permit over
//     the limit spin through hundreds of 429s before the interval ends.
//   - The limit stays within [1, ceiling]: the ceiling is --account-limit-max, or this replica's
//     share of the fleet's limit (limits/fleet_leases.h).
//
// A value type; not thread-safe (ConcurrencyLimiter keeps one per account under its lock).
#ifndef GATEWAY_LIMITS_AIMD_LIMIT_H_
#define GATEWAY_LIMITS_AIMD_LIMIT_H_

#include <optional>

#include "absl/time/time.h"

namespace gateway {

struct AimdOptions {
  // Where a new account starts, and the ceiling when nothing lower applies.
  int initial_limit = 25;
  int max_limit = 100;
  double backoff_ratio = 0.5;
  // 429s never cut below this (a replica under a lease: its share of it). Twilio's 429s follow
  // load, but a floor keeps 429s that do not (another limit, another client of the account)
  // from driving the limit down to one permit, where one slow request stalls the account.
  int min_limit = 1;
  // The fleet's limit is cut at most once per interval (replicas report an overload one lease
  // period apart, so the same overload reaches the store several times); see
  // limits/redis_fleet_limit.h.
  absl::Duration backoff_interval = absl::Seconds(1);
};

class AimdLimit {
 public:
  // Starts at `start`, within [1, ceiling].
  AimdLimit(const AimdOptions& options, double start, int ceiling);

  // Whole permits: at least 1.
  int limit() const;
  // The exact value, for reports and metrics.
  double value() const { return value_; }
  int ceiling() const { return ceiling_; }

  // At least half the limit is in use with `in_flight` permits held: only then do accepted
  // attempts say the limit could be higher.
  bool Saturated(int in_flight) const { return 2 * in_flight >= limit(); }
  // Twilio accepted an attempt sent while `in_flight` permits (this one included) were held.
  // Returns what it added: 1/window (window: the limit itself when not given), or 0 when not
  // Saturated() or already at the ceiling.
  double OnAccepted(int in_flight, std::optional<double> window = std::nullopt);
  // Twilio answered 429 at `now` to an attempt sent at `sent`. Returns whether the limit was
  // cut (false when the attempt was sent before the previous cut).
  bool OnThrottled(absl::Time now, absl::Time sent);
  // Sets the value, the ceiling and the floor (a new lease): `value` clamped to [floor,
  // ceiling]; the floor is min_limit unless given, and at most the ceiling.
  void Reset(double value, int ceiling, std::optional<int> floor = std::nullopt);

 private:
  AimdOptions options_;
  double value_;
  int ceiling_;
  int floor_;
  absl::Time last_cut_ = absl::InfinitePast();
};

}  // namespace gateway

#endif  // GATEWAY_LIMITS_AIMD_LIMIT_H_
