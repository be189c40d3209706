// Fuzzes what comes back from Twilio: ParseResource on the body for each operation (checked
// against the nlohmann document it replaced: the same bodies accepted, the same strings read), and
// ClassifyAttempt (then an idempotency record and ToGrpcStatus, as the gateway does) on status,
// Retry-After and body. Traps when a parsed resource does not survive a round trip, when an
// error status lacks what the caller needs to act on it, or when the classification and the
// status disagree.
//
// Input format (stable, so corpus files stay meaningful and seeds can be written by hand):
//   line 1: HTTP status, decimal; anything else is read as a 16-bit number from its first bytes
//   line 2: Retry-After value; an empty line means the header is absent
//   rest:   response body
#include <grpcpp/support/status.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "api/grpc_status.h"
#include "common/error_details.h"
#include "common/rfc2822.h"
#include "google/rpc/status.pb.h"
#include "http/http_transport.h"
#include "idempotency/outcome_codec.h"
#include "model/resources.h"
#include "twilio/attempt.h"
#include "twilio/twilio_api.h"

namespace gateway {
namespace {

void Require(bool holds, const char* invariant) {
  if (holds) return;
  std::fprintf(stderr, "invariant violated: %s\n", invariant);
  __builtin_trap();
}

// Pops the next '\n'-terminated line; the whole rest when there is no newline.
absl::string_view NextLine(absl::string_view& input) {
  const size_t end = input.find('\n');
  absl::string_view line = input.substr(0, end);
  input.remove_prefix(end == absl::string_view::npos ? input.size() : end + 1);
  return line;
}

int StatusFrom(absl::string_view text) {
  int status = 0;
  if (absl::SimpleAtoi(text, &status)) return status;
  uint16_t bits = 0;
  for (size_t i = 0; i < std::min<size_t>(text.size(), 2); ++i) {
    bits = static_cast<uint16_t>(bits << 8 | static_cast<unsigned char>(text[i]));
  }
  return bits;
}

// The RFC 2822 form Twilio sends, for years ParseRfc2822Date can read back.
std::optional<std::string> FormatRfc2822(absl::Time t) {
  const absl::CivilSecond civil = absl::ToCivilSecond(t, absl::UTCTimeZone());
  if (civil.year() < 0 || civil.year() > 9999) return std::nullopt;
  return absl::FormatTime("%a, %d %b %E4Y %H:%M:%S +0000", t, absl::UTCTimeZone());
}

// The clock ClassifyAttempt reads Retry-After against: any fixed time will do.
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2024, 6, 1, 12, 0, 0), absl::UTCTimeZone());

void CheckDate(const std::optional<absl::Time>& date_created, nlohmann::json& again,
               std::optional<std::string>& date) {
  if (!date_created.has_value()) return;
  Require(*date_created != absl::InfiniteFuture() && *date_created != absl::InfinitePast(),
          "date_created is a finite time");
  date = FormatRfc2822(*date_created);
  if (date.has_value()) again["date_created"] = *date;
}

// What ParseResource read through an nlohmann document before it read the text itself: the
// reference the hand-written reader must agree with.
absl::StatusOr<Subscription> ReferenceParse(absl::string_view body) {
  const nlohmann::json json =
      nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InternalError("Twilio response is not valid JSON");
  if (!json.is_object()) return absl::InternalError("Twilio response is not a JSON object");
  Subscription out;
  std::string date;
  for (auto [name, value] : {std::pair<const char*, std::string*>{"account_sid", &out.account_sid},
                             {"call_sid", &out.call_sid},
                             {"sid", &out.sid},
                             {"uri", &out.uri},
                             {"date_created", &date}}) {
    auto it = json.find(name);
    if (it == json.end() || it->is_null()) continue;
    if (!it->is_string()) {
      return absl::InternalError(std::string("Twilio response property ") + name +
                                 " is not a string");
    }
    *value = it->get<std::string>();
  }
  if (!date.empty()) {
    absl::StatusOr<absl::Time> parsed = ParseRfc2822Date(date);
    if (!parsed.ok()) return absl::InternalError("date_created");
    out.date_created = *parsed;
  }
  return out;
}

void FuzzParseResource(absl::string_view body) {
  const absl::StatusOr<Resource> deleted =
      ParseResource(TwilioCall::Kind::kDeleteSubscription, body);
  Require(deleted.ok() && std::holds_alternative<Deletion>(*deleted),
          "a Delete's 2xx is a deletion whatever its body");

  const absl::StatusOr<Resource> created =
      ParseResource(TwilioCall::Kind::kCreateSubscription, body);
  const absl::StatusOr<Resource> sent = ParseResource(TwilioCall::Kind::kSendMessage, body);
  Require(created.ok() == sent.ok(), "Create and Send read the same bodies");
  const absl::StatusOr<Subscription> reference = ReferenceParse(body);
  Require(created.ok() == reference.ok(), "the reader accepts what nlohmann's document did");
  if (!created.ok() && !absl::StrContains(created.status().message(), "date_created")) {
    Require(created.status().message() == reference.status().message(),
            "the reader rejects for the reason nlohmann's document did");
  }
  if (created.ok()) {
    Require(std::get<Subscription>(*created) == *reference,
            "the reader reads the strings nlohmann's document held");
  }
  if (!created.ok()) {
    Require(created.status().code() == absl::StatusCode::kInternal,
            "an unreadable 2xx body is INTERNAL");
    Require(sent.status().code() == absl::StatusCode::kInternal,
            "an unreadable 2xx body is INTERNAL");
    return;
  }
  Require(std::holds_alternative<Subscription>(*created), "Create yields a subscription");
  Require(std::holds_alternative<Message>(*sent), "Send yields a message");
  const Subscription& subscription = std::get<Subscription>(*created);
  const Message& message = std::get<Message>(*sent);
  Require(message.account_sid == subscription.account_sid &&
              message.call_sid == subscription.call_sid && message.sid == subscription.sid &&
              message.date_created == subscription.date_created,
          "Create and Send read the shared properties alike");

  nlohmann::json again = nlohmann::json::object();
  again["account_sid"] = subscription.account_sid;
  again["call_sid"] = subscription.call_sid;
  again["sid"] = subscription.sid;
  again["uri"] = subscription.uri;
  std::optional<std::string> date;
  CheckDate(subscription.date_created, again, date);
  // Strings from a parsed body are valid UTF-8, so dump() in strict mode must not throw.
  const std::string dumped = again.dump();
  const absl::StatusOr<Resource> reparsed =
      ParseResource(TwilioCall::Kind::kCreateSubscription, dumped);
  Require(reparsed.ok() && std::holds_alternative<Subscription>(*reparsed),
          "a parsed subscription re-serializes to a parseable body");
  const Subscription& back = std::get<Subscription>(*reparsed);
  Require(back.account_sid == subscription.account_sid && back.call_sid == subscription.call_sid &&
              back.sid == subscription.sid && back.uri == subscription.uri,
          "subscription fields round-trip");
  if (date.has_value()) {
    Require(back.date_created == subscription.date_created, "date_created round-trips");
  }

  // What the idempotency record keeps is what the caller got. Records keep dates as int64 Unix
  // nanoseconds (years 1678 to 2262); Twilio's dates are far inside.
  if (subscription.date_created.has_value() &&
      std::abs(absl::ToUnixSeconds(*subscription.date_created)) >= int64_t{9'000'000'000}) {
    return;
  }
  for (const Resource& resource : {*created, *sent}) {
    const absl::StatusOr<StoredOutcome> stored =
        DecodeOutcome(EncodeOutcome(resource, /*may_exist=*/false));
    Require(stored.ok() && stored->result.ok(), "a resource round-trips through a record");
    Require(*stored->result == resource, "the stored resource is the same resource");
  }
}

void FuzzClassifyAttempt(TwilioCall::Kind kind, const HttpResponse& response) {
  HttpResult http;
  http.request_sent = true;
  http.response = response;
  const AttemptResult attempt = ClassifyAttempt(kind, http, kNow);
  Require(attempt.http_status == response.status, "a response is labelled by its status");
  Require(attempt.failure.empty(), "a response is no transport failure");
  const bool success = response.status >= 200 && response.status < 300;
  if (success) {
    Require((attempt.outcome == AttemptOutcome::kSucceeded) == attempt.result.ok(),
            "a 2xx succeeds exactly when its body is read");
    if (!attempt.result.ok()) {
      Require(attempt.outcome == AttemptOutcome::kAmbiguous, "an unreadable 2xx is ambiguous");
      Require(attempt.result.status().code() == absl::StatusCode::kInternal,
              "an unreadable 2xx is INTERNAL");
      Require(GetErrorReason(attempt.result.status()) == "UNREADABLE_TWILIO_RESPONSE",
              "an unreadable 2xx says so");
    }
    return;
  }
  Require(!attempt.result.ok(), "a non-2xx is an error");
  const absl::Status& status = attempt.result.status();
  Require(status.code() != absl::StatusCode::kUnknown, "errors get a code the caller can act on");
  Require(attempt.outcome != AttemptOutcome::kSucceeded, "a non-2xx never succeeds");

  const std::optional<TwilioErrorInfo> error = GetTwilioError(status);
  Require(error.has_value(), "every HTTP error carries a TwilioError detail");
  Require(error->http_status == response.status, "TwilioError keeps the HTTP status");
  const std::optional<std::string> reason = GetErrorReason(status);
  Require(reason.has_value() && !reason->empty(), "every HTTP error carries an ErrorInfo reason");
  const bool by_code = error->code == 21220 || error->code == 31211 || error->code == 31212;
  if (response.status == 429) {
    Require(attempt.outcome == AttemptOutcome::kNeverApplied, "429 was never applied");
    if (!by_code) {
      Require(status.code() == absl::StatusCode::kResourceExhausted, "429 is RESOURCE_EXHAUSTED");
    }
  }
  if (response.status >= 500) {
    Require(attempt.outcome == AttemptOutcome::kAmbiguous && attempt.may_have_acted,
            "5xx is ambiguous");
    if (!by_code) Require(status.code() == absl::StatusCode::kUnavailable, "5xx is UNAVAILABLE");
  }
  if (response.status == 404 && !by_code) {
    Require(status.code() == absl::StatusCode::kNotFound, "404 is NOT_FOUND");
    Require(*reason == (kind == TwilioCall::Kind::kDeleteSubscription ? "SUBSCRIPTION_NOT_FOUND"
                                                                      : "CALL_NOT_FOUND"),
            "404 names what the operation looked for");
  }
  if (error->code == 31212) {
    const std::vector<FieldViolation> violations = GetFieldViolations(status);
    Require(violations.size() == 1 && violations[0].field == "content",
            "a message too large names the content");
  }

  const std::optional<absl::Duration> delay = GetRetryDelay(status);
  Require(delay.has_value() == attempt.retry_after.has_value(),
          "a retry delay exactly when Retry-After was read");
  // RetryInfo holds int64 nanoseconds: longer delays (292 years) are cut to that.
  if (delay.has_value() && *attempt.retry_after < absl::Hours(24 * 365 * 290)) {
    Require(*delay == *attempt.retry_after, "the retry delay is the Retry-After read");
  }
  if (delay.has_value()) {
    Require(response.retry_after.has_value(), "a retry delay only when Twilio sent Retry-After");
    Require(*delay >= absl::ZeroDuration(), "the retry delay is never negative");
  }
  if (response.retry_after.has_value()) {
    Require(attempt.retry_after == ParseRetryAfter(*response.retry_after, kNow),
            "Retry-After is read against the given clock");
    const absl::string_view value = absl::StripAsciiWhitespace(*response.retry_after);
    int64_t seconds = 0;
    if (!value.empty() && value.size() <= 9 &&
        std::all_of(value.begin(), value.end(), absl::ascii_isdigit) &&
        absl::SimpleAtoi(value, &seconds)) {
      Require(delay == absl::Seconds(seconds), "Retry-After seconds become the retry delay");
    }
  }

  // Replayable answers (404, 400) are kept as idempotency records; whatever Twilio wrote must
  // survive one (a message cut inside a character once aborted the process here).
  const absl::StatusOr<StoredOutcome> stored =
      DecodeOutcome(EncodeOutcome(status, attempt.may_have_acted));
  Require(stored.ok(), "the error round-trips through an idempotency record");
  Require(stored->result.status() == status, "the stored error is the same error");
  Require(stored->may_exist == attempt.may_have_acted, "may_exist round-trips");

  // What the client receives: same code and message, details intact in the trailer.
  const grpc::Status grpc_status = ToGrpcStatus(status);
  Require(static_cast<int>(grpc_status.error_code()) == static_cast<int>(status.code()),
          "gRPC code matches");
  Require(grpc_status.error_message() == status.message(), "gRPC message matches");
  google::rpc::Status rich;
  Require(rich.ParseFromString(grpc_status.error_details()), "error details parse");
  Require(rich.code() == static_cast<int>(status.code()), "rich status code matches");
  Require(rich.details_size() >= 2, "trailer carries TwilioError and ErrorInfo");
}

}  // namespace
}  // namespace gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  gateway::HttpResponse response;
  response.status = gateway::StatusFrom(gateway::NextLine(input));
  if (absl::string_view retry_after = gateway::NextLine(input); !retry_after.empty()) {
    response.retry_after = std::string(retry_after);
  }
  response.body = std::string(input);
  gateway::FuzzParseResource(input);
  for (auto kind :
       {gateway::TwilioCall::Kind::kCreateSubscription,
        gateway::TwilioCall::Kind::kDeleteSubscription, gateway::TwilioCall::Kind::kSendMessage}) {
    gateway::FuzzClassifyAttempt(kind, response);
  }
  return 0;
}
