// Fuzzes what comes back from Twilio: ParseSubscriptionJson on the body, and
// StatusFromHttpResponse (then ToGrpcStatus, as the service does) on status, Retry-After and body.
// Traps when a parsed subscription does not survive a round trip, or when an error status lacks
// what the caller needs to act on it.
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
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "api/grpc_status.h"
#include "common/error_details.h"
#include "google/rpc/status.pb.h"
#include "http/http_transport.h"
#include "idempotency/outcome_codec.h"
#include "subscriptions/subscription.h"
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

void FuzzParseSubscriptionJson(absl::string_view body) {
  absl::StatusOr<Subscription> parsed = ParseSubscriptionJson(body);
  if (!parsed.ok()) {
    Require(parsed.status().code() == absl::StatusCode::kInternal,
            "an unreadable 2xx body is INTERNAL");
    return;
  }
  Require(parsed->idempotency_key.empty(), "the body never sets the idempotency key");
  nlohmann::json again = nlohmann::json::object();
  again["account_sid"] = parsed->account_sid;
  again["call_sid"] = parsed->call_sid;
  again["sid"] = parsed->sid;
  again["uri"] = parsed->uri;
  std::optional<std::string> date;
  if (parsed->date_created.has_value()) {
    Require(*parsed->date_created != absl::InfiniteFuture() &&
                *parsed->date_created != absl::InfinitePast(),
            "date_created is a finite time");
    date = FormatRfc2822(*parsed->date_created);
    if (date.has_value()) again["date_created"] = *date;
  }
  // Strings from a parsed body are valid UTF-8, so dump() in strict mode must not throw.
  absl::StatusOr<Subscription> reparsed = ParseSubscriptionJson(again.dump());
  Require(reparsed.ok(), "a parsed subscription re-serializes to a parseable body");
  Require(reparsed->account_sid == parsed->account_sid && reparsed->call_sid == parsed->call_sid &&
              reparsed->sid == parsed->sid && reparsed->uri == parsed->uri,
          "subscription fields round-trip");
  if (date.has_value()) {
    Require(reparsed->date_created == parsed->date_created, "date_created round-trips");
  }
}

void FuzzStatusFromHttpResponse(const HttpResponse& response) {
  const absl::Status status = StatusFromHttpResponse(response);
  const bool success = response.status >= 200 && response.status < 300;
  Require(status.ok() == success, "OK exactly for 2xx");
  if (success) return;
  Require(status.code() != absl::StatusCode::kUnknown, "errors get a code the caller can act on");

  const std::optional<TwilioErrorInfo> error = GetTwilioError(status);
  Require(error.has_value(), "every HTTP error carries a TwilioError detail");
  Require(error->http_status == response.status, "TwilioError keeps the HTTP status");
  const std::optional<std::string> reason = GetErrorReason(status);
  Require(reason.has_value() && !reason->empty(), "every HTTP error carries an ErrorInfo reason");
  const bool call_not_active = error->code == 21220 || error->code == 31211;
  if (response.status == 429 && !call_not_active) {
    Require(status.code() == absl::StatusCode::kResourceExhausted, "429 is RESOURCE_EXHAUSTED");
  }
  if (response.status >= 500 && !call_not_active) {
    Require(status.code() == absl::StatusCode::kUnavailable, "5xx is UNAVAILABLE");
  }

  const std::optional<absl::Duration> delay = GetRetryDelay(status);
  if (delay.has_value()) {
    Require(response.retry_after.has_value(), "a retry delay only when Twilio sent Retry-After");
    Require(*delay >= absl::ZeroDuration(), "the retry delay is never negative");
  }
  if (response.retry_after.has_value()) {
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
  absl::StatusOr<absl::StatusOr<Subscription>> stored =
      DecodeOutcome(EncodeOutcome(absl::StatusOr<Subscription>(status)));
  Require(stored.ok(), "the error round-trips through an idempotency record");
  Require(stored->status() == status, "the stored error is the same error");

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
  gateway::FuzzParseSubscriptionJson(input);
  gateway::FuzzStatusFromHttpResponse(response);
  return 0;
}
