// Applies an IdempotencyStore to one Create: claims the caller's key, replays a stored outcome,
// waits for a call with the same key still in flight, refuses a key reused for a different
// request, and stores the final outcome (or releases the claim when the outcome stayed unknown).
//
// Usage (from CreateSubscriptionHandler):
//   guard.Run(request, deadline, [&](Done d) { return StartUpstream(request, deadline, d); },
//   done);
//
// Thread-safety: Run() may be called from any thread. `done` runs exactly once, on a store,
// timer or transport thread (or inline when the store answers inline); it must not block.
#ifndef GATEWAY_IDEMPOTENCY_IDEMPOTENCY_GUARD_H_
#define GATEWAY_IDEMPOTENCY_IDEMPOTENCY_GUARD_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "idempotency/idempotency_store.h"
#include "subscriptions/subscription.h"

namespace gateway {

struct IdempotencyOptions {
  // How long a final outcome is replayed for its key.
  absl::Duration retention = absl::Hours(24);
  // How often a call waiting on the same key in flight checks again.
  absl::Duration poll_interval = absl::Milliseconds(50);
  // A claim's lease is the call's remaining deadline plus this, so a crashed gateway's claim
  // frees the key soon after its call would have ended anyway.
  absl::Duration lease_margin = absl::Seconds(2);
};

class IdempotencyGuard {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<Subscription>) &&>;
  using StartUpstream = absl::AnyInvocable<std::shared_ptr<PendingCreate>(Done) &&>;

  IdempotencyGuard(IdempotencyOptions options, IdempotencyStore& store, Timer& timer,
                   const Clock& clock);

  // `scope` separates key spaces: the caller and the account.
  std::shared_ptr<PendingCreate> Run(const CreateSubscriptionRequest& request,
                                     const std::string& scope, absl::Time deadline,
                                     StartUpstream start, Done done);

 private:
  class Call;

  const IdempotencyOptions options_;
  IdempotencyStore& store_;
  Timer& timer_;
  const Clock& clock_;
};

}  // namespace gateway

#endif  // GATEWAY_IDEMPOTENCY_IDEMPOTENCY_GUARD_H_
