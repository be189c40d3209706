// Caps in-flight upstream requests per Twilio account and queues the rest in arrival order.
//
// Twilio limits concurrent REST requests per account and answers 429 past it; only a central
// gateway can enforce that for all its callers. Each upstream attempt holds one permit.
//
// Usage:
//   if (limiter.TryAcquire(account)) { send; ... limiter.Release(account); }
//   else limiter.Enqueue(account, deadline, [](absl::Status s) { if (s.ok()) send; });
//
// Thread-safety: safe from any thread. Enqueue()'s callback never runs inline: it runs on the
// thread that calls Release() (the permit is handed over), on the timer thread at the deadline
// (DEADLINE_EXCEEDED), or on the thread calling Cancel() (CANCELLED). Callers must not hold
// locks the callback takes while calling Release() or Cancel().
#ifndef GATEWAY_LIMITS_CONCURRENCY_LIMITER_H_
#define GATEWAY_LIMITS_CONCURRENCY_LIMITER_H_

#include <cstdint>
#include <list>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace gateway {

struct ConcurrencyLimiterOptions {
  int max_in_flight_per_account = 25;
  int max_queued_per_account = 1000;
};

class ConcurrencyLimiter {
 public:
  using Ticket = std::uint64_t;
  using Granted = absl::AnyInvocable<void(absl::Status) &&>;

  ConcurrencyLimiter(ConcurrencyLimiterOptions options, Timer& timer);

  bool TryAcquire(const std::string& account);
  // Queues for a permit (or takes one that came free since TryAcquire(), granting it from the
  // timer thread). Returns 0 and does not queue (nor call `granted`) when the queue is full:
  // the caller answers RESOURCE_EXHAUSTED. Cancel() of a ticket already granted is a no-op.
  Ticket Enqueue(const std::string& account, absl::Time deadline, Granted granted);
  void Cancel(Ticket ticket);
  void Release(const std::string& account);

  int in_flight(const std::string& account) const;
  int queued(const std::string& account) const;
  // Over every account, for metrics.
  int total_in_flight() const;
  int total_queued() const;

 private:
  struct Waiter {
    Ticket ticket;
    Timer::TimerId timer_id;
    Granted granted;
  };
  struct Account {
    int in_flight = 0;
    std::list<Waiter> queue;
  };

  // Removes a waiter by ticket; returns its callback if it was still queued.
  std::optional<Granted> TakeWaiterLocked(Ticket ticket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ConcurrencyLimiterOptions options_;
  Timer& timer_;
  mutable absl::Mutex mu_;
  Ticket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, Account> accounts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Ticket, std::string> ticket_accounts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway

#endif  // GATEWAY_LIMITS_CONCURRENCY_LIMITER_H_
