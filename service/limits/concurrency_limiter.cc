#include "limits/concurrency_limiter.h"

#include <algorithm>
#include <utility>

namespace gateway {

ConcurrencyLimiter::ConcurrencyLimiter(ConcurrencyLimiterOptions options, Timer& timer,
                                       const Clock& clock)
    : options_(options), timer_(timer), clock_(clock) {}

void ConcurrencyLimiter::SetOnNewAccount(absl::AnyInvocable<void()> on_new_account) {
  on_new_account_ = std::move(on_new_account);
}

ConcurrencyLimiter::Account& ConcurrencyLimiter::AccountLocked(const std::string& account,
                                                               bool* created) {
  auto it = accounts_.find(account);
  if (it != accounts_.end()) return it->second;
  *created = true;
  // Leased: one permit until the fleet's answer (one round trip) says how many.
  const AimdLimit start = options_.leased ? AimdLimit(options_.aimd, 1, 1)
                                          : AimdLimit(options_.aimd, options_.aimd.initial_limit,
                                                      options_.aimd.max_limit);
  return accounts_.try_emplace(account, start).first->second;
}

int ConcurrencyLimiter::LimitLocked(const Account& a) const {
  return options_.adaptive ? a.limit.limit() : options_.max_in_flight_per_account;
}

void ConcurrencyLimiter::NotifyNewAccount(bool created) {
  if (created && options_.leased && on_new_account_) on_new_account_();
}

bool ConcurrencyLimiter::TryAcquire(const std::string& account) {
  bool created = false;
  bool acquired = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    ForgetIdleLocked(now);
    Account& a = AccountLocked(account, &created);
    a.last_used = now;
    // Arrival order: nobody overtakes a non-empty queue.
    if (a.in_flight < LimitLocked(a) && a.queue.empty()) {
      ++a.in_flight;
      acquired = true;
    }
  }
  NotifyNewAccount(created);
  return acquired;
}

ConcurrencyLimiter::Ticket ConcurrencyLimiter::Enqueue(const std::string& account,
                                                       absl::Time deadline, Granted granted) {
  bool created = false;
  Ticket ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    Account& a = AccountLocked(account, &created);
    a.last_used = clock_.Now();
    if (a.queue.empty() && a.in_flight < LimitLocked(a)) {
      // A permit came free since the caller's TryAcquire(): take it now (so nobody is queued
      // behind a free permit) and grant it from the timer thread, never inline.
      ++a.in_flight;
      ticket = next_ticket_++;
      timer_.Schedule(absl::InfinitePast(), [granted = std::move(granted)]() mutable {
        std::move(granted)(absl::OkStatus());
      });
    } else if (static_cast<int>(a.queue.size()) < options_.max_queued_per_account) {
      ticket = next_ticket_++;
      const Timer::TimerId timer_id = timer_.Schedule(deadline, [this, ticket] {
        std::optional<Granted> expired;
        {
          absl::MutexLock lock(&mu_);
          expired = TakeWaiterLocked(ticket);
        }
        if (expired.has_value()) {
          std::move (*expired)(absl::DeadlineExceededError(
              "deadline reached while queued behind the per-account upstream concurrency limit"));
        }
      });
      a.queue.push_back(Waiter{ticket, timer_id, std::move(granted)});
      ticket_accounts_.emplace(ticket, account);
    }
  }
  NotifyNewAccount(created);
  return ticket;
}

std::optional<ConcurrencyLimiter::Granted> ConcurrencyLimiter::TakeWaiterLocked(Ticket ticket) {
  auto owner = ticket_accounts_.find(ticket);
  if (owner == ticket_accounts_.end()) return std::nullopt;
  Account& a = accounts_.at(owner->second);
  ticket_accounts_.erase(owner);
  for (auto it = a.queue.begin(); it != a.queue.end(); ++it) {
    if (it->ticket == ticket) {
      Granted granted = std::move(it->granted);
      a.queue.erase(it);
      return granted;
    }
  }
  return std::nullopt;
}

void ConcurrencyLimiter::Cancel(Ticket ticket) {
  std::optional<Granted> cancelled;
  {
    absl::MutexLock lock(&mu_);
    auto owner = ticket_accounts_.find(ticket);
    if (owner == ticket_accounts_.end()) return;
    for (const Waiter& w : accounts_.at(owner->second).queue) {
      if (w.ticket == ticket) timer_.Cancel(w.timer_id);
    }
    cancelled = TakeWaiterLocked(ticket);
  }
  if (cancelled.has_value()) std::move (*cancelled)(absl::CancelledError("cancelled while queued"));
}

void ConcurrencyLimiter::Release(const std::string& account) {
  std::optional<Granted> next;
  {
    absl::MutexLock lock(&mu_);
    auto it = accounts_.find(account);
    if (it == accounts_.end()) return;
    Account& a = it->second;
    a.last_used = clock_.Now();
    // A limit cut below the permits held lets them drain before anyone else goes.
    if (!a.queue.empty() && a.in_flight <= LimitLocked(a)) {
      // Hand the permit straight to the oldest waiter; in_flight is unchanged.
      Waiter waiter = std::move(a.queue.front());
      a.queue.pop_front();
      ticket_accounts_.erase(waiter.ticket);
      timer_.Cancel(waiter.timer_id);
      next = std::move(waiter.granted);
    } else {
      --a.in_flight;
      // A fixed limit learns nothing: forget the account at once, as before limits adapted.
      if (!options_.adaptive && a.in_flight == 0 && a.queue.empty()) accounts_.erase(it);
    }
  }
  if (next.has_value()) std::move (*next)(absl::OkStatus());
}

void ConcurrencyLimiter::Feedback(const std::string& account, UpstreamFeedback feedback,
                                  absl::Time sent) {
  if (!options_.adaptive || feedback == UpstreamFeedback::kOther) return;
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  if (it == accounts_.end()) return;
  Account& a = it->second;
  if (feedback == UpstreamFeedback::kThrottled) {
    if (a.limit.OnThrottled(clock_.Now(), sent)) a.cut = true;
    return;
  }
  // The fleet grows by one permit per fleet window: 1/F per accepted attempt while this replica
  // uses its share, even when its own limit is at the share (its ceiling) and cannot grow until
  // the fleet's does. Its own limit grows at the same pace (after a cut, back towards its
  // share), so that n replicas do not grow n times as fast as one.
  std::optional<double> window;
  if (a.lease.has_value()) window = std::max(a.lease->fleet_limit, 1.0);
  if (options_.leased && a.limit.Saturated(a.in_flight)) {
    a.increase += 1 / window.value_or(a.limit.value());
  }
  if (a.limit.OnAccepted(a.in_flight, window) > 0) GrantWaitersLocked(a);
}

void ConcurrencyLimiter::GrantWaitersLocked(Account& a) {
  while (!a.queue.empty() && a.in_flight < LimitLocked(a)) {
    Waiter waiter = std::move(a.queue.front());
    a.queue.pop_front();
    ticket_accounts_.erase(waiter.ticket);
    timer_.Cancel(waiter.timer_id);
    ++a.in_flight;
    timer_.Schedule(absl::InfinitePast(), [granted = std::move(waiter.granted)]() mutable {
      std::move(granted)(absl::OkStatus());
    });
  }
}

void ConcurrencyLimiter::ForgetIdleLocked(absl::Time now) {
  if (!options_.adaptive || now < last_forget_ + options_.forget_idle) return;
  last_forget_ = now;
  absl::erase_if(accounts_, [&](const auto& entry) {
    const Account& a = entry.second;
    return a.in_flight == 0 && a.queue.empty() && a.last_used + options_.forget_idle <= now;
  });
}

std::vector<FleetReport> ConcurrencyLimiter::TakeReports() {
  absl::MutexLock lock(&mu_);
  ForgetIdleLocked(clock_.Now());
  std::vector<FleetReport> reports;
  reports.reserve(accounts_.size());
  for (auto& [name, a] : accounts_) {
    reports.push_back({.account = name, .increase = a.increase, .throttled = a.cut});
    a.increase = 0;
    a.cut = false;
  }
  return reports;
}

void ConcurrencyLimiter::ApplyLeases(const std::vector<FleetLease>& leases) {
  absl::MutexLock lock(&mu_);
  for (const FleetLease& lease : leases) {
    replicas_last_seen_ = std::max(1, lease.replicas);
    auto it = accounts_.find(lease.account);
    if (it == accounts_.end()) continue;
    Account& a = it->second;
    const int permits = LeaseShare(lease.fleet_limit, lease.replicas, lease.index, lease.account);
    // A cut since the report is not in the fleet's limit yet: keep it until the next report.
    const int replicas = std::max(1, lease.replicas);
    a.limit.Reset(a.cut ? std::min<double>(a.limit.value(), permits) : permits, permits,
                  (options_.aimd.min_limit + replicas - 1) / replicas);
    a.lease = lease;
    GrantWaitersLocked(a);
  }
}

void ConcurrencyLimiter::LeasesUnavailable() {
  absl::MutexLock lock(&mu_);
  const int fallback = replicas_last_seen_ > 0
                           ? std::max(1, options_.aimd.max_limit / replicas_last_seen_)
                           : options_.aimd.initial_limit;
  for (auto& [name, a] : accounts_) {
    if (a.lease.has_value() || a.limit.ceiling() >= fallback) continue;
    // Never leased: start where a lone replica would, under the fallback ceiling. AIMD still
    // cuts on 429s; the ceiling holds until the store answers again.
    a.limit.Reset(std::min(fallback, options_.aimd.initial_limit), fallback,
                  options_.aimd.min_limit / std::max(1, replicas_last_seen_));
    GrantWaitersLocked(a);
  }
}

int ConcurrencyLimiter::limit(const std::string& account) const {
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  if (it == accounts_.end()) {
    return options_.adaptive ? (options_.leased ? 1 : options_.aimd.initial_limit)
                             : options_.max_in_flight_per_account;
  }
  return LimitLocked(it->second);
}

std::vector<std::pair<std::string, double>> ConcurrencyLimiter::limits() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, double>> out;
  out.reserve(accounts_.size());
  for (const auto& [name, a] : accounts_) out.emplace_back(name, LimitLocked(a));
  return out;
}

int ConcurrencyLimiter::in_flight(const std::string& account) const {
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  return it == accounts_.end() ? 0 : it->second.in_flight;
}

int ConcurrencyLimiter::total_in_flight() const {
  absl::MutexLock lock(&mu_);
  int total = 0;
  for (const auto& [name, account] : accounts_) total += account.in_flight;
  return total;
}

int ConcurrencyLimiter::total_queued() const {
  absl::MutexLock lock(&mu_);
  int total = 0;
  for (const auto& [name, account] : accounts_) total += static_cast<int>(account.queue.size());
  return total;
}

int ConcurrencyLimiter::queued(const std::string& account) const {
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  return it == accounts_.end() ? 0 : static_cast<int>(it->second.queue.size());
}

}  // namespace gateway
