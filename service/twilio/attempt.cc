#include "twilio/attempt.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/error_details.h"

namespace gateway {
namespace {

struct Effect {
  AttemptOutcome outcome;
  absl::string_view why;
};

// What the result says about Twilio having acted; the reasons are Twilio's documented rules.
Effect EffectOf(const HttpResult& http, bool body_readable) {
  switch (http.failure) {
    case TransportFailure::kCancelled:
      return {AttemptOutcome::kStopped, "stopped by the gateway"};
    case TransportFailure::kConnect:
      // Resolve, connect or TLS handshake failed: no byte of the request reached Twilio, unless
      // the transport had sent it on a connection that died and then failed to reconnect.
      if (http.request_sent) {
        return {AttemptOutcome::kAmbiguous,
                "connection lost after sending, then could not connect"};
      }
      return {AttemptOutcome::kNeverApplied, "could not connect"};
    case TransportFailure::kTimeout:
    case TransportFailure::kIo:
      if (!http.request_sent) return {AttemptOutcome::kNeverApplied, "failed before sending"};
      // The request went out and the answer was lost: Twilio may have acted. Retrying is safe
      // only because every attempt carries the same IdempotencyKey (or deleting is idempotent).
      return {AttemptOutcome::kAmbiguous, http.failure == TransportFailure::kTimeout
                                              ? "timed out after sending"
                                              : "connection lost after sending"};
    case TransportFailure::kNone:
      break;
  }
  const int status = http.response.status;
  if (status >= 200 && status < 300) {
    if (body_readable) return {AttemptOutcome::kSucceeded, "succeeded"};
    // Done, but the answer is unusable; the same key asks Twilio for the same resource.
    return {AttemptOutcome::kAmbiguous, "unreadable success response"};
  }
  // Twilio rejects requests over its concurrency limit before processing them.
  if (status == 429) return {AttemptOutcome::kNeverApplied, "throttled (429)"};
  // A 5xx may come after the resource was recorded: ambiguous, safe with the same key.
  if (status >= 500) return {AttemptOutcome::kAmbiguous, "server error (5xx)"};
  return {AttemptOutcome::kRejected, "rejected"};
}

absl::string_view FailureLabel(TransportFailure failure) {
  switch (failure) {
    case TransportFailure::kNone:
      return "";
    case TransportFailure::kConnect:
      return "connect";
    case TransportFailure::kTimeout:
      return "timeout";
    case TransportFailure::kIo:
      return "io";
    case TransportFailure::kCancelled:
      return "cancelled";
  }
  return "io";
}

absl::string_view RetryReason(const HttpResult& http) {
  switch (http.failure) {
    case TransportFailure::kConnect:
      return "connect_failed";
    case TransportFailure::kTimeout:
      return "timeout";
    case TransportFailure::kIo:
    case TransportFailure::kCancelled:
      return http.request_sent ? "connection_lost" : "connect_failed";
    case TransportFailure::kNone:
      break;
  }
  if (http.response.status == 429) return "throttled";
  if (http.response.status >= 500) return "server_error";
  return "unreadable_response";
}

}  // namespace

AttemptResult ClassifyAttempt(TwilioCall::Kind kind, const HttpResult& http, absl::Time now) {
  AttemptResult out;
  out.failure = FailureLabel(http.failure);
  out.retry_reason = RetryReason(http);
  out.timed_out = http.failure == TransportFailure::kTimeout;
  out.throttled = http.failure == TransportFailure::kNone && http.response.status == 429;
  out.accepted = http.failure == TransportFailure::kNone && !out.throttled &&
                 http.response.status >= 200 && http.response.status < 500;
  bool body_readable = false;
  if (http.failure == TransportFailure::kCancelled) {
    // Not the caller's cancel (that finishes the call first): the transport is stopping.
    absl::Status stopped = absl::UnavailableError(
        absl::StrCat("the gateway stopped the upstream request: ", http.error));
    SetErrorInfo(stopped, "GATEWAY_STOPPING");
    out.result = std::move(stopped);
  } else if (http.failure != TransportFailure::kNone) {
    out.result = StatusFromTransportFailure(http);
  } else {
    out.http_status = http.response.status;
    if (http.response.status >= 200 && http.response.status < 300) {
      out.result = ParseResource(kind, http.response.body);
      body_readable = out.result.ok();
      out.settled = body_readable;
      if (!body_readable) {
        absl::Status status = out.result.status();
        SetErrorInfo(status, "UNREADABLE_TWILIO_RESPONSE");
        out.result = std::move(status);
      }
    } else {
      HttpError error = ReadHttpError(kind, http.response);
      out.settled = error.settled;
      absl::Status status = std::move(error.status);
      if (http.response.retry_after.has_value()) {
        out.retry_after = ParseRetryAfter(*http.response.retry_after, now);
        if (out.retry_after.has_value()) SetRetryDelay(status, *out.retry_after);
      }
      out.result = std::move(status);
    }
  }
  const Effect effect = EffectOf(http, body_readable);
  out.outcome = effect.outcome;
  out.may_have_acted = effect.outcome == AttemptOutcome::kAmbiguous ||
                       (effect.outcome == AttemptOutcome::kStopped && http.request_sent) ||
                       http.sends > 1;
  if (effect.outcome != AttemptOutcome::kSucceeded) {
    out.summary = http.failure == TransportFailure::kNone
                      ? absl::StrCat(effect.why, " HTTP ", http.response.status)
                      : absl::StrCat(effect.why, " (", http.error, ")");
  }
  return out;
}

}  // namespace gateway
