// Where idempotency is kept: one record per scoped idempotency key, so that one key yields at
// most one subscription even across retries by the caller, gateway restarts and replicas.
//
// A record is either in flight (claimed by one gateway call, with a lease that expires if that
// gateway dies) or done (holding the final outcome until the retention period ends).
//
// Protocol for one Create with a caller-supplied key:
//   Claim(key, fingerprint, lease)
//     -> kClaimed:  call Twilio, then Complete(key, token, outcome, retention) for a final outcome
//                   or Release(key, token) when the outcome stayed unknown (a later retry with the
//                   same key must try again).
//     -> kDone:     replay the stored outcome; no upstream call.
//     -> kInFlight: another call holds the key; wait (poll Claim) within the deadline.
//     -> kConflict: the key was used for a different request.
//
// Thread-safety: implementations are safe from any thread. Callbacks may run inline or on a
// store thread; callers must not hold locks across a call. Implementations never block the
// calling thread on I/O.
#ifndef GATEWAY_IDEMPOTENCY_IDEMPOTENCY_STORE_H_
#define GATEWAY_IDEMPOTENCY_IDEMPOTENCY_STORE_H_

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
};

class IdempotencyStore {
 public:
  using ClaimCallback = absl::AnyInvocable<void(absl::StatusOr<ClaimResult>) &&>;
  using DoneCallback = absl::AnyInvocable<void(absl::Status) &&>;

  virtual ~IdempotencyStore() = default;

  // Claims `key` for `lease` unless a record exists. `fingerprint` identifies the request;
  // a record with another fingerprint yields kConflict. Errors (store unreachable) are
  // UNAVAILABLE.
  virtual void Claim(const std::string& key, const std::string& fingerprint, absl::Duration lease,
                     ClaimCallback done) = 0;

  // Stores the final `outcome` under a claim still held; kept for `retention`.
  virtual void Complete(const std::string& key, const std::string& token,
                        const std::string& outcome, absl::Duration retention,
                        DoneCallback done) = 0;

  // Drops a claim still held, leaving no record.
  virtual void Release(const std::string& key, const std::string& token, DoneCallback done) = 0;
};

}  // namespace gateway

#endif  // GATEWAY_IDEMPOTENCY_IDEMPOTENCY_STORE_H_
