#include "limits/concurrency_limiter.h"

#include <utility>

namespace gateway {

ConcurrencyLimiter::ConcurrencyLimiter(ConcurrencyLimiterOptions options, Timer& timer)
    : options_(options), timer_(timer) {}

bool ConcurrencyLimiter::TryAcquire(const std::string& account) {
  absl::MutexLock lock(&mu_);
  Account& a = accounts_[account];
  // Arrival order: nobody overtakes a non-empty queue.
  if (a.in_flight >= options_.max_in_flight_per_account || !a.queue.empty()) return false;
  ++a.in_flight;
  return true;
}

ConcurrencyLimiter::Ticket ConcurrencyLimiter::Enqueue(const std::string& account,
                                                       absl::Time deadline, Granted granted) {
  absl::MutexLock lock(&mu_);
  Account& a = accounts_[account];
  if (a.queue.empty() && a.in_flight < options_.max_in_flight_per_account) {
    // A permit came free since the caller's TryAcquire(): take it now (so nobody is queued
    // behind a free permit) and grant it from the timer thread, never inline.
    ++a.in_flight;
    const Ticket ticket = next_ticket_++;
    timer_.Schedule(absl::InfinitePast(), [granted = std::move(granted)]() mutable {
      std::move(granted)(absl::OkStatus());
    });
    return ticket;
  }
  if (static_cast<int>(a.queue.size()) >= options_.max_queued_per_account) return 0;
  const Ticket ticket = next_ticket_++;
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
  return ticket;
}

std::optional<ConcurrencyLimiter::Granted> ConcurrencyLimiter::TakeWaiterLocked(Ticket ticket) {
  auto owner = ticket_accounts_.find(ticket);
  if (owner == ticket_accounts_.end()) return std::nullopt;
  Account& a = accounts_[owner->second];
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
    for (const Waiter& w : accounts_[owner->second].queue) {
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
    if (!a.queue.empty()) {
      // Hand the permit straight to the oldest waiter; in_flight is unchanged.
      Waiter waiter = std::move(a.queue.front());
      a.queue.pop_front();
      ticket_accounts_.erase(waiter.ticket);
      timer_.Cancel(waiter.timer_id);
      next = std::move(waiter.granted);
    } else if (--a.in_flight == 0) {
      accounts_.erase(it);
    }
  }
  if (next.has_value()) std::move (*next)(absl::OkStatus());
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
