// How an operation's result travels, typed, from the Twilio attempt up to the api/ floor, which
// alone renders it into gRPC details, metrics and the audit line.
#ifndef GATEWAY_MODEL_OUTCOME_H_
#define GATEWAY_MODEL_OUTCOME_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "model/resources.h"

namespace gateway {

// What every answer tells the caller besides the result.
struct Report {
  // The key the request was (or would have been) sent with: the caller's, or a generated one.
  // Empty for operations without a key, and for a caller's key that was invalid (it may be any
  // size).
  std::string idempotency_key;
  // Upstream attempts this call made (0 for a replay or when nothing was sent).
  int attempts = 0;
  // The operation may have taken effect despite the error (a subscription or message may exist).
  bool may_exist = false;
  // The result is a stored outcome, answered again for a repeated idempotency key.
  bool replayed = false;
};

// One operation's answer. An error's ErrorInfo reason, TwilioError, BadRequest and RetryInfo
// ride in the status, set where the error arises; the report's fields are added by api/.
struct Outcome {
  absl::StatusOr<Resource> result = absl::UnknownError("no outcome");
  Report report;
};

// What one attempt's result says about the operation's effect.
enum class AttemptOutcome {
  kSucceeded,     // 2xx with a readable body.
  kNeverApplied,  // Twilio cannot have acted: 429, or the request never left.
  kAmbiguous,     // Twilio may have acted: 5xx, timeout or reset after sending, unreadable 2xx.
  kRejected,      // A definite answer (4xx other than 429): retrying changes nothing.
  kStopped,       // The transport stopped the transfer (shutdown); it may have been sent.
};

// A call in progress; Cancel() ends it with CANCELLED and abandons its upstream work.
class PendingCall {
 public:
  virtual ~PendingCall() = default;
  virtual void Cancel() = 0;
};

// What the idempotency guard asks of the upstream engine for one run of attempts.
struct UpstreamPlan {
  // The caller's deadline; absl::InfiniteFuture() for a resolution, which the key window ends.
  absl::Time deadline = absl::InfiniteFuture();
  // When the record was first claimed: Twilio's memory of the key is counted from here. (The
  // default allows no resend after an ambiguous attempt.)
  absl::Time window_start = absl::InfinitePast();
  // An earlier run, or an owner now gone, may already have taken effect.
  bool may_exist = false;
  // A background resolution: no caller, its own retry budget and attempt limit. It waits a
  // backoff (at least `retry_after`, what Twilio last asked for) before its first attempt.
  bool resolution = false;
  std::optional<absl::Duration> retry_after = std::nullopt;
};

// What one run of attempts found, for the guard to decide on.
struct UpstreamOutcome {
  absl::StatusOr<Resource> result = absl::UnknownError("no outcome");
  // Twilio's last answer settles the operation for its key (a success, or a rejection the same
  // request would get again): the guard records it for replay.
  bool settled = false;
  // An attempt (of this run or an earlier one) may have taken effect.
  bool may_exist = false;
  // The run stopped because no further attempt could end inside Twilio's key window: sending
  // the key again could act twice.
  bool window_closed = false;
  int attempts = 0;
};

}  // namespace gateway

#endif  // GATEWAY_MODEL_OUTCOME_H_
