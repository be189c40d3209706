// Keeps a ConcurrencyLimiter's adaptive limits under leases of the fleet's limits: every lease
// period, one Exchange() with the FleetLimitStore carries the limiter's reports (AIMD growth and
// cuts per account) and brings back each account's fleet limit, which the limiter turns into
// this replica's permits (LeaseShare()). An account seen for the first time is exchanged at
// once, so it waits one round trip for its lease, not a period. When the store cannot answer,
// the limiter falls back (ConcurrencyLimiter::LeasesUnavailable()) and the next period tries
// again; the transitions are logged once each.
//
// Usage:
//   FleetLeases leases({.period = absl::Seconds(1)}, limiter, store, timer);
//   leases.Start();
//   ...
//   leases.Stop();  // then shut down the timer and the store
//
// Thread-safety: every method is safe from any thread. Exchanges run from the timer thread and
// complete on the store's thread; one at a time.
#ifndef GATEWAY_LIMITS_FLEET_LEASES_H_
#define GATEWAY_LIMITS_FLEET_LEASES_H_

#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "limits/concurrency_limiter.h"
#include "limits/fleet_limit.h"

namespace gateway {

struct FleetLeaseOptions {
  absl::Duration period = absl::Seconds(1);
};

class FleetLeases {
 public:
  // The references must outlive this object; the store's and the timer's callbacks must have
  // ended (their Shutdown()) before it is destroyed.
  FleetLeases(FleetLeaseOptions options, ConcurrencyLimiter& limiter, FleetLimitStore& store,
              Timer& timer, const Clock& clock);

  void Start();
  // No exchange starts after this returns.
  void Stop();

  // Exchanges now if none is under way (else right after it), instead of at the next period.
  void ExchangeSoon();

 private:
  void Tick();
  void OnExchanged(absl::StatusOr<std::vector<FleetLease>> leases);
  void ScheduleLocked(absl::Time when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const FleetLeaseOptions options_;
  ConcurrencyLimiter& limiter_;
  FleetLimitStore& store_;
  Timer& timer_;
  const Clock& clock_;
  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool exchanging_ ABSL_GUARDED_BY(mu_) = false;
  bool again_ ABSL_GUARDED_BY(mu_) = false;
  bool store_down_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<Timer::TimerId> next_ ABSL_GUARDED_BY(mu_);
  absl::Time next_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

}  // namespace gateway

#endif  // GATEWAY_LIMITS_FLEET_LEASES_H_
