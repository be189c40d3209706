// Caps in-flight upstream requests per Twilio account and queues the rest in arrival order.
//
// Twilio limits concurrent REST requests per account and answers 429 past it; only a central
// gateway can enforce that for all its callers. Each upstream attempt holds one permit.
//
// The limit is fixed (max_in_flight_per_account), or adaptive: an AimdLimit per account
// (limits/aimd_limit.h) fed by Feedback() on each attempt's answer, under a ceiling of
// aimd.max_limit or, when `leased`, of this replica's share of the fleet's limit, which
// FleetLeases (limits/fleet_leases.h) takes reports from and applies leases to.
//
// Usage:
//   if (limiter.TryAcquire(account)) { send; ... limiter.Feedback(account, kind);
//                                      limiter.Release(account); }
//   else limiter.Enqueue(account, deadline, [](absl::Status s) { if (s.ok()) send; });
//
// Thread-safety: safe from any thread. Enqueue()'s callback never runs inline: it runs on the
// thread that calls Release() (the permit is handed over), on the timer thread at the deadline
// (DEADLINE_EXCEEDED), on the thread calling Cancel() (CANCELLED), or on the timer thread when a
// raised limit (Feedback(), ApplyLeases()) frees permits. Callers must not hold locks the
// callback takes while calling Release() or Cancel().
#ifndef GATEWAY_LIMITS_CONCURRENCY_LIMITER_H_
#define GATEWAY_LIMITS_CONCURRENCY_LIMITER_H_

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "limits/aimd_limit.h"
#include "limits/fleet_limit.h"

namespace gateway {

struct ConcurrencyLimiterOptions {
  // The fixed limit, when not adaptive.
  int max_in_flight_per_account = 25;
  int max_queued_per_account = 1000;
  // AIMD per account, starting at aimd.initial_limit under a ceiling of aimd.max_limit.
  bool adaptive = false;
  AimdOptions aimd = {};
  // Adaptive, under leases of the fleet's limit: a new account holds one permit until its first
  // lease (one store round trip), or, if the store cannot answer, `max_limit / replicas last
  // seen` (initial_limit if none were); a replica that loses the store keeps its last lease.
  bool leased = false;
  // An account without permits held or waited for is forgotten after this long idle (its
  // learned limit with it; the fleet's stays in the store).
  absl::Duration forget_idle = absl::Minutes(1);
};

// What an attempt's answer says about the account's limit.
enum class UpstreamFeedback {
  kAccepted,   // Twilio answered and did not refuse for concurrency: grow.
  kThrottled,  // 429: over Twilio's limit: cut.
  kOther,      // No answer, or a 5xx: says nothing about the limit.
};

class ConcurrencyLimiter {
 public:
  using Ticket = std::uint64_t;
  using Granted = absl::AnyInvocable<void(absl::Status) &&>;

  ConcurrencyLimiter(ConcurrencyLimiterOptions options, Timer& timer, const Clock& clock);

  bool TryAcquire(const std::string& account);
  // Queues for a permit (or takes one that came free since TryAcquire(), granting it from the
  // timer thread). Returns 0 and does not queue (nor call `granted`) when the queue is full:
  // the caller answers RESOURCE_EXHAUSTED. Cancel() of a ticket already granted is a no-op.
  Ticket Enqueue(const std::string& account, absl::Time deadline, Granted granted);
  void Cancel(Ticket ticket);
  void Release(const std::string& account);
  // The answer to an attempt sent at `sent`, with its permit still held (call before its
  // Release()). Only adaptive limits use it.
  void Feedback(const std::string& account, UpstreamFeedback feedback, absl::Time sent);

  int in_flight(const std::string& account) const;
  int queued(const std::string& account) const;
  // Permits the account may hold now (the fixed limit for an account never seen, or 1 while
  // it awaits its first lease).
  int limit(const std::string& account) const;
  // Over every account, for metrics.
  int total_in_flight() const;
  int total_queued() const;
  // Every account's current limit, for metrics.
  std::vector<std::pair<std::string, double>> limits() const;

  // Leased mode, for FleetLeases. Reports of every account (and clears them), forgetting idle
  // ones first.
  std::vector<FleetReport> TakeReports();
  // Applies what the store answered: each account's permits become its share of the fleet's
  // limit (less any cut since its report).
  void ApplyLeases(const std::vector<FleetLease>& leases);
  // The store did not answer: accounts keep their last lease; those awaiting a first one get
  // the fallback (see `leased` above).
  void LeasesUnavailable();
  // Called (without the limiter's lock) when an account appears that awaits its first lease,
  // so that the exchange happens now rather than at the next period. Set before use.
  void SetOnNewAccount(absl::AnyInvocable<void()> on_new_account);

 private:
  struct Waiter {
    Ticket ticket;
    Timer::TimerId timer_id;
    Granted granted;
  };
  struct Account {
    explicit Account(const AimdLimit& start) : limit(start) {}
    int in_flight = 0;
    std::list<Waiter> queue;
    AimdLimit limit;
    absl::Time last_used = absl::InfinitePast();
    // Leased mode: the last lease (nullopt before the first), and the feedback since the last
    // report.
    std::optional<FleetLease> lease;
    double increase = 0;
    bool cut = false;
  };

  // The account, created if new (then `*created` is set).
  Account& AccountLocked(const std::string& account, bool* created)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int LimitLocked(const Account& a) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Grants waiters the permits a raised limit frees, from the timer thread.
  void GrantWaitersLocked(Account& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetIdleLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes a waiter by ticket; returns its callback if it was still queued.
  std::optional<Granted> TakeWaiterLocked(Ticket ticket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyNewAccount(bool created);

  const ConcurrencyLimiterOptions options_;
  Timer& timer_;
  const Clock& clock_;
  absl::AnyInvocable<void()> on_new_account_;  // Set before use.
  mutable absl::Mutex mu_;
  Ticket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, Account> accounts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Ticket, std::string> ticket_accounts_ ABSL_GUARDED_BY(mu_);
  absl::Time last_forget_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Replicas the store last reported for any account: the fallback divides max_limit by it.
  int replicas_last_seen_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gateway

#endif  // GATEWAY_LIMITS_CONCURRENCY_LIMITER_H_
