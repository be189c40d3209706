// The one classification of an upstream attempt: what a transfer's result says about the
// operation's effect, the status the caller would get, Retry-After, and the bounded labels that
// metrics count it under. The engine, the retry policy and metrics only read it.
//
// Pure function; thread-safe.
#ifndef GATEWAY_TWILIO_ATTEMPT_H_
#define GATEWAY_TWILIO_ATTEMPT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "http/http_transport.h"
#include "model/outcome.h"
#include "model/resources.h"
#include "twilio/twilio_api.h"

namespace gateway {

struct AttemptResult {
  AttemptOutcome outcome = AttemptOutcome::kRejected;
  // Twilio may have acted on this attempt: it was ambiguous, stopped after sending, or the
  // transport resent it by itself (an earlier send, unanswered, may have been acted on whatever
  // the last one's answer says).
  bool may_have_acted = false;
  // The attempt's own time ran out (the engine tells its deadline from its attempt timeout).
  bool timed_out = false;
  // Twilio refused it with 429: the account is over its concurrent-request limit (code 20429;
  // any 429 is taken as that signal). The account's adaptive limit backs off on it.
  bool throttled = false;
  // Twilio took the request for processing: any answer below 500 but 429, a rejection included.
  // The account's adaptive limit grows on it; a 5xx or no answer says nothing about concurrency.
  bool accepted = false;
  // The answer settles the operation for its key: a success, or a rejection of the request
  // itself (400, 404, 413, 422, 31212) that the same request would get again. The guard
  // records it for replay; any other failure may change (a call becoming active, credentials
  // fixed, an outage ending).
  bool settled = false;
  // The resource on success; otherwise the error the caller gets if no attempt follows.
  absl::StatusOr<Resource> result = absl::UnknownError("no response");
  // What Twilio asked to wait, read once against the engine's clock.
  std::optional<absl::Duration> retry_after;
  // For logs and the final error message: "server error (5xx) HTTP 503". Empty on success,
  // which nothing logs.
  std::string summary;
  // Metric labels: Twilio's HTTP status, or 0 and the failure kind (connect, timeout, io,
  // cancelled) when no response arrived; and the reason a retry of it is counted under
  // (throttled, server_error, timeout, connect_failed, connection_lost, unreadable_response).
  int http_status = 0;
  absl::string_view failure;
  absl::string_view retry_reason;
};

AttemptResult ClassifyAttempt(TwilioCall::Kind kind, const HttpResult& http, absl::Time now);

}  // namespace gateway

#endif  // GATEWAY_TWILIO_ATTEMPT_H_
