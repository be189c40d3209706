// Applies an IdempotencyStore to one keyed operation (Create, Send): claims the key, replays a
// stored outcome, waits for a call with the same key still in flight, refuses a key reused for a
// different request, and stores the final outcome.
//
// An ambiguous outcome (an attempt may have taken effect) is never released: the
// record stays in flight and the guard resolves it in the background, re-sending the same
// request with the same key through the same upstream engine until Twilio gives a definite
// answer or Twilio's memory of the key may have lapsed. Then it records the answer, or
// OUTCOME_UNKNOWN; it never sends the key again after that. A caller retry with the key joins
// the resolution (it waits on the record) or replays its result.
//
// Usage (from Operations):
//   guard.Run({.record_key = ..., .fingerprint = ..., ...},
//             [&](const UpstreamPlan& plan, UpstreamDone d) { return engine.Start(..., plan, d); },
//             done);
//   ...
//   guard.Drain(deadline);  // on SIGTERM, after the RPCs: finish or hand over resolutions
//
// Thread-safety: Run() and Drain() may be called from any thread. `done` runs exactly once, on
// a store, timer or transport thread (or inline when the store answers inline); it must not
// block.
#ifndef GATEWAY_IDEMPOTENCY_IDEMPOTENCY_GUARD_H_
#define GATEWAY_IDEMPOTENCY_IDEMPOTENCY_GUARD_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "idempotency/idempotency_store.h"
#include "metrics/gateway_metrics.h"
#include "model/outcome.h"

namespace gateway {

// One request under an idempotency key, as the guard sees it.
struct GuardedRequest {
  // The record's key in the store: the operation's namespace, the caller and account scope,
  // and the idempotency key.
  std::string record_key;
  // Identifies the request's content: the same key with another fingerprint is a conflict.
  std::string fingerprint;
  std::string idempotency_key;  // As sent to Twilio; echoed in every report.
  std::string call_sid;         // For logs.
  absl::Time deadline = absl::InfiniteFuture();
};

struct IdempotencyOptions {
  // How long a final outcome is replayed for its key; also how long an unresolved record is
  // kept.
  absl::Duration retention = absl::Hours(24);
  // How often a call waiting on the same key in flight checks again.
  absl::Duration poll_interval = absl::Milliseconds(50);
  // A claim's lease. The owner renews it every third of it while it works, so the record of a
  // killed owner is taken over by the next claimant within a lease.
  absl::Duration lease = absl::Seconds(2);
  // A caller waiting for a resolution is answered this long before its deadline, so that it
  // receives UNAVAILABLE with RetryInfo rather than its own DEADLINE_EXCEEDED.
  absl::Duration answer_margin = absl::Milliseconds(50);
  // How long a caller told OUTCOME_RESOLVING should wait before retrying with the key.
  absl::Duration resolving_retry_delay = absl::Milliseconds(500);
};

class IdempotencyGuard {
 public:
  using Done = absl::AnyInvocable<void(Outcome) &&>;
  using UpstreamDone = absl::AnyInvocable<void(UpstreamOutcome) &&>;
  // Starts one run of attempts; called once for the caller and again for a resolution.
  using StartUpstream =
      absl::AnyInvocable<std::shared_ptr<PendingCall>(const UpstreamPlan&, UpstreamDone)>;

  // `metrics` may be null.
  IdempotencyGuard(IdempotencyOptions options, IdempotencyStore& store, Timer& timer,
                   const Clock& clock, GatewayMetrics* metrics = nullptr);
  // Waits for a lease renewal in progress; calls still running must not outlive the guard.
  ~IdempotencyGuard();

  std::shared_ptr<PendingCall> Run(GuardedRequest request, StartUpstream start, Done done);

  // Lets resolutions in progress finish until `deadline`, then stops the rest and hands their
  // records over (the next claimant, on any replica sharing the store, takes them over at
  // once). Returns when their store writes are done, or 2 s after `deadline`.
  void Drain(absl::Time deadline);

  // Resolutions in progress.
  int resolving() const;

 private:
  class Call;

  void Track(std::shared_ptr<Call> call);
  void Untrack(Call* call);
  // Leases of the records calls own are renewed by one tick every lease/3, which runs only while
  // some record is owned: a timer per call would wake the timer thread twice per Create.
  void Own(const std::shared_ptr<Call>& call);
  void Disown(Call* call);
  void RenewLeases();

  const IdempotencyOptions options_;
  IdempotencyStore& store_;
  Timer& timer_;
  const Clock& clock_;
  GatewayMetrics* const metrics_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<Call*, std::shared_ptr<Call>> resolving_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Call*, std::weak_ptr<Call>> owned_ ABSL_GUARDED_BY(mu_);
  std::optional<Timer::TimerId> lease_tick_ ABSL_GUARDED_BY(mu_);
  bool renewing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace gateway

#endif  // GATEWAY_IDEMPOTENCY_IDEMPOTENCY_GUARD_H_
