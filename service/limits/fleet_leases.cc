#include "limits/fleet_leases.h"

#include <string>
#include <utility>

#include "common/log.h"

namespace gateway {

FleetLeases::FleetLeases(FleetLeaseOptions options, ConcurrencyLimiter& limiter,
                         FleetLimitStore& store, Timer& timer, const Clock& clock)
    : options_(options), limiter_(limiter), store_(store), timer_(timer), clock_(clock) {}

void FleetLeases::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  ScheduleLocked(clock_.Now());
}

void FleetLeases::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  if (next_.has_value()) timer_.Cancel(*next_);
  next_.reset();
}

void FleetLeases::ExchangeSoon() {
  absl::MutexLock lock(&mu_);
  if (!started_ || stopping_) return;
  if (exchanging_) {
    again_ = true;
    return;
  }
  const absl::Time now = clock_.Now();
  if (next_at_ <= now) return;  // Already due.
  if (next_.has_value()) timer_.Cancel(*next_);
  ScheduleLocked(now);
}

void FleetLeases::ScheduleLocked(absl::Time when) {
  next_at_ = when;
  next_ = timer_.Schedule(when, [this] { Tick(); });
}

void FleetLeases::Tick() {
  {
    absl::MutexLock lock(&mu_);
    next_.reset();
    next_at_ = absl::InfiniteFuture();
    if (stopping_ || exchanging_) return;
    exchanging_ = true;
    again_ = false;
  }
  // Also with no account yet: the exchange is this replica's heartbeat, so the fleet counts it
  // before its first request rather than after.
  std::vector<FleetReport> reports = limiter_.TakeReports();
  store_.Exchange(std::move(reports), [this](absl::StatusOr<std::vector<FleetLease>> leases) {
    OnExchanged(std::move(leases));
  });
}

void FleetLeases::OnExchanged(absl::StatusOr<std::vector<FleetLease>> leases) {
  if (leases.ok()) {
    limiter_.ApplyLeases(*leases);
  } else {
    limiter_.LeasesUnavailable();
  }
  absl::MutexLock lock(&mu_);
  exchanging_ = false;
  if (leases.ok() == store_down_) {
    store_down_ = !leases.ok();
    if (store_down_) {
      Log(LogLevel::kWarning,
          "fleet account limits unavailable: keeping the last leases (or max/replicas)",
          {{"error", std::string(leases.status().message())}});
    } else {
      Log(LogLevel::kInfo, "fleet account limits available again");
    }
  }
  if (stopping_) return;
  ScheduleLocked(again_ ? clock_.Now() : clock_.Now() + options_.period);
}

}  // namespace gateway
