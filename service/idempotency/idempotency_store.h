// Where idempotency is kept: one record per scoped idempotency key, so that one key yields at
// most one subscription even across retries by the caller, gateway restarts and replicas.
//
// A record is either in flight (owned by one gateway call under a lease the owner renews) or
// done (holding the final outcome until the retention period ends). An in-flight record
// outlives its lease: when the owner dies or hands it over, the record stays, and the next
// Claim() takes it over, learning how long ago it was first claimed, because attempts made
// since then may have reached Twilio.
//
// Protocol for one Create:
//   Claim(key, fingerprint, lease, retention)
//     -> kClaimed:  call Twilio (Renew() the lease while doing so), then
//                   Complete(key, token, outcome) for a final outcome, or
//                   Release(key, token) when no attempt can have reached Twilio, or
//                   Renew(key, token, 0) to hand an unresolved record over to the next claimant.
//     -> kDone:     replay the stored outcome; no upstream call.
//     -> kInFlight: another call holds the key; wait (poll Claim) within the deadline.
//     -> kConflict: the key was used for a different request.
//
// Thread-safety: implementations are safe from any thread. Callbacks may run inline or on a
// store thread; callers must not hold locks across a call. Implementations never block the
// calling thread on I/O.
#ifndef GATEWAY_IDEMPOTENCY_IDEMPOTENCY_STORE_H_
#define GATEWAY_IDEMPOTENCY_IDEMPOTENCY_STORE_H_

#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gateway {

struct ClaimResult {
  enum class State { kClaimed, kInFlight, kDone, kConflict };
  State state = State::kClaimed;
  // kClaimed: identifies this claim in Complete()/Release(), so a claim that lost its lease
  // cannot overwrite its successor's record.
  std::string token;
  // kDone: the outcome passed to Complete().
  std::string outcome;
  // kClaimed over a record whose owner's lease ran out (a crashed or draining gateway): how
  // long ago the record was first claimed. Unset for a new record.
  std::optional<absl::Duration> taken_over_age;
};

class IdempotencyStore {
 public:
  using ClaimCallback = absl::AnyInvocable<void(absl::StatusOr<ClaimResult>) &&>;
  using DoneCallback = absl::AnyInvocable<void(absl::Status) &&>;

  virtual ~IdempotencyStore() = default;

  // Claims `key` for `lease` unless a record exists whose lease is live. `fingerprint`
  // identifies the request; a record with another fingerprint yields kConflict. A new record is
  // kept for `retention` whatever becomes of its lease. Errors (store unreachable) are
  // UNAVAILABLE.
  virtual void Claim(const std::string& key, const std::string& fingerprint, absl::Duration lease,
                     absl::Duration retention, ClaimCallback done) = 0;

  // Extends a claim still held to `lease` from now; a zero lease hands the record over at once.
  // FAILED_PRECONDITION when the claim was lost (taken over or finished).
  virtual void Renew(const std::string& key, const std::string& token, absl::Duration lease,
                     DoneCallback done) = 0;

  // Stores the final `outcome` under a claim still held; kept for `retention`.
  virtual void Complete(const std::string& key, const std::string& token,
                        const std::string& outcome, absl::Duration retention,
                        DoneCallback done) = 0;

  // Drops a claim still held, leaving no record: only when nothing can have reached Twilio.
  virtual void Release(const std::string& key, const std::string& token, DoneCallback done) = 0;

  // Ends the store's own threads before the objects its callbacks reach go away: calls in
  // progress finish, queued ones fail with UNAVAILABLE, each callback has run when it returns,
  // and later calls fail at once. A store without threads has nothing to end.
  virtual void Shutdown() {}
};

}  // namespace gateway

#endif  // GATEWAY_IDEMPOTENCY_IDEMPOTENCY_STORE_H_
