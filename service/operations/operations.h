// The gateway's three operations on Twilio's user-defined messages: Create and Delete a
// subscription, Send a message. Each is a small description (validate the input, build the
// TwilioCall, say whether it carries an idempotency key); all three then take one corridor:
//   credentials -> validation -> caller policy -> deadline -> [idempotency guard] -> engine
// The keyed operations (Create, Send) run under the idempotency guard, records scoped by
// operation, caller and account; Delete, naturally idempotent, goes straight to the engine.
// Knows nothing of gRPC: the api/ floor renders the typed Outcome.
//
// Usage:
//   Operations ops(options, account, engine, clock, random, {.policy = &p, .idempotency = &g});
//   auto call = ops.Send(input, deadline, [](Outcome outcome) {...});
//   call->Cancel();  // optional: the caller went away
//
// Thread-safety: every method is safe from any thread. `done` runs exactly once, on a
// transport, timer or store thread, or inline for invalid input; it must not block.
#ifndef GATEWAY_OPERATIONS_OPERATIONS_H_
#define GATEWAY_OPERATIONS_OPERATIONS_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/caller_policy.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/snapshot.h"
#include "idempotency/idempotency_guard.h"
#include "model/outcome.h"
#include "model/requests.h"
#include "twilio/twilio_api.h"
#include "upstream/upstream_engine.h"

namespace gateway {

struct OperationsOptions {
  // Deadline for requests that arrive without one.
  absl::Duration default_deadline = absl::Seconds(10);
  // The callback of a Create that names none: the gateway's own public webhook URL when its
  // receiver is configured; empty makes `callback` required.
  std::string default_callback = {};
};

// Optional collaborators; null means no authorization (any caller may use any account) and no
// idempotency records.
struct OperationsControls {
  const Snapshot<CallerPolicy>* policy = nullptr;
  IdempotencyGuard* idempotency = nullptr;
};

// The outcome of an error before anything was sent: nothing can exist, and the caller's key is
// echoed only when valid (an invalid one may be any size).
Outcome NothingSent(absl::Status status, absl::string_view idempotency_key);

class Operations {
 public:
  using Done = absl::AnyInvocable<void(Outcome) &&>;

  // All references must outlive the object and every call it started. Each call uses the
  // credentials `account` holds when it starts, for all its attempts.
  Operations(OperationsOptions options, const Snapshot<TwilioAccount>& account,
             UpstreamEngine& engine, const Clock& clock, Random& random,
             OperationsControls controls = {});

  // `deadline` is absl::InfiniteFuture() when the caller set none.
  std::shared_ptr<PendingCall> Create(const CreateSubscriptionInput& input, absl::Time deadline,
                                      Done done);
  std::shared_ptr<PendingCall> Delete(const DeleteSubscriptionInput& input, absl::Time deadline,
                                      Done done);
  std::shared_ptr<PendingCall> Send(const SendMessageInput& input, absl::Time deadline, Done done);

  // A Watch's scope, after the checks an operation's input gets: the filters' shapes and the
  // caller policy (with ErrorInfo reason CALLER_NOT_ALLOWED). Nothing is sent anywhere.
  absl::StatusOr<WatchRequest> AuthorizeWatch(const WatchInput& input) const;

 private:
  // One operation, described: the Twilio call to make and, for a keyed operation, the
  // fingerprint its idempotency record is checked against (empty: not keyed).
  struct Plan {
    TwilioCall call;
    std::string fingerprint;
  };
  // Validates against the default account and describes the operation; a generated key is
  // drawn from `random` when the caller sent none.
  using Describe = absl::FunctionRef<absl::StatusOr<Plan>(absl::string_view default_account)>;

  std::shared_ptr<PendingCall> Run(const CallInput& input, absl::string_view input_key,
                                   absl::Time deadline, Describe describe, Done done);
  // OK when no policy is configured or it lets `caller` use `account_sid`.
  absl::Status CheckPolicy(absl::string_view caller, absl::string_view account_sid,
                           absl::string_view default_account_sid) const;

  const OperationsOptions options_;
  const Snapshot<TwilioAccount>& account_;
  UpstreamEngine& engine_;
  const Clock& clock_;
  Random& random_;
  const OperationsControls controls_;
};

}  // namespace gateway

#endif  // GATEWAY_OPERATIONS_OPERATIONS_H_
