#include "twilio/twilio_api.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/error_details.h"
#include "common/json_text.h"
#include "common/rfc2822.h"

namespace gateway {
namespace {

using Json = nlohmann::json;

// Twilio's message and more_info travel in grpc-message (percent-encoded: a non-ASCII byte
// takes three) and base64-encoded in the details, the message twice: at 256 bytes each an
// error's trailers stay under 4 KiB whatever Twilio writes. Twilio's own messages are shorter.
constexpr size_t kMaxTwilioMessageBytes = 256;

// Chosen by what the caller should do next; the README's error table mirrors this. `settled`:
// the request itself was rejected, so sending it again would be rejected again.
struct Mapping {
  absl::StatusCode code;
  const char* reason;
  bool settled = false;
};

Mapping MapHttpError(TwilioCall::Kind kind, int http_status, int twilio_code) {
  // Call exists but is not ringing or in progress: only a state change can help.
  if (twilio_code == 21220 || twilio_code == 31211) {
    return {absl::StatusCode::kFailedPrecondition, "CALL_NOT_ACTIVE"};
  }
  if (twilio_code == 31212) return {absl::StatusCode::kInvalidArgument, "MESSAGE_TOO_LARGE", true};
  switch (http_status) {
    case 400:
    case 413:
    case 422:
      return {absl::StatusCode::kInvalidArgument, "TWILIO_REJECTED_REQUEST", true};
    case 401:
      // The gateway's own credentials failed; the caller cannot fix that, the operator can.
      return {absl::StatusCode::kInternal, "GATEWAY_CREDENTIALS_REJECTED"};
    case 403:
      return {absl::StatusCode::kPermissionDenied, "TWILIO_FORBIDDEN"};
    case 404:
      // Twilio's 20404 does not say which path segment it did not find.
      return {absl::StatusCode::kNotFound,
              kind == TwilioCall::Kind::kDeleteSubscription ? "SUBSCRIPTION_NOT_FOUND"
                                                            : "CALL_NOT_FOUND",
              true};
    case 409:
      return {absl::StatusCode::kAborted, "TWILIO_CONFLICT"};
    case 429:
      return {absl::StatusCode::kResourceExhausted, "TWILIO_THROTTLED"};
    default:
      break;
  }
  if (http_status >= 500) return {absl::StatusCode::kUnavailable, "TWILIO_UNAVAILABLE"};
  if (http_status >= 400) return {absl::StatusCode::kFailedPrecondition, "TWILIO_REJECTED_REQUEST"};
  // 1xx/3xx: never expected from this API (redirects are not followed).
  return {absl::StatusCode::kInternal, "UNEXPECTED_TWILIO_RESPONSE"};
}

// Kept as they are in application/x-www-form-urlencoded; a space becomes '+', the rest %XX.
bool IsFormSafe(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '*';
}

std::string CallPath(absl::string_view account_sid, absl::string_view call_sid,
                     absl::string_view rest) {
  return absl::StrCat("/2010-04-01/Accounts/", account_sid, "/Calls/", call_sid, rest);
}

}  // namespace

absl::string_view OperationName(TwilioCall::Kind kind) {
  switch (kind) {
    case TwilioCall::Kind::kCreateSubscription:
      return "Create";
    case TwilioCall::Kind::kDeleteSubscription:
      return "Delete";
    case TwilioCall::Kind::kSendMessage:
      return "Send";
  }
  return "Unknown";
}

TwilioCall CreateSubscriptionCall(const CreateSubscriptionRequest& request) {
  return {.kind = TwilioCall::Kind::kCreateSubscription,
          .method = "POST",
          .path = CallPath(request.account_sid, request.call_sid,
                           "/UserDefinedMessageSubscriptions.json"),
          .form = {{"Callback", request.callback},
                   {"Method", request.method == CallbackMethod::kGet ? "GET" : "POST"},
                   {"IdempotencyKey", request.idempotency_key}},
          .account_sid = request.account_sid,
          .call_sid = request.call_sid,
          .idempotency_key = request.idempotency_key};
}

TwilioCall DeleteSubscriptionCall(const DeleteSubscriptionRequest& request) {
  return {.kind = TwilioCall::Kind::kDeleteSubscription,
          .method = "DELETE",
          .path = CallPath(request.account_sid, request.call_sid,
                           absl::StrCat("/UserDefinedMessageSubscriptions/", request.sid, ".json")),
          .form = {},
          .account_sid = request.account_sid,
          .call_sid = request.call_sid,
          .idempotency_key = "",
          .naturally_idempotent = true,
          .not_found_after_effect_is_success = true};
}

TwilioCall SendMessageCall(const SendMessageRequest& request) {
  return {.kind = TwilioCall::Kind::kSendMessage,
          .method = "POST",
          .path = CallPath(request.account_sid, request.call_sid, "/UserDefinedMessages.json"),
          .form = {{"Content", request.content}, {"IdempotencyKey", request.idempotency_key}},
          .account_sid = request.account_sid,
          .call_sid = request.call_sid,
          .idempotency_key = request.idempotency_key};
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  size_t size = 0;  // Counted first: the body is then one allocation.
  for (const auto& [name, value] : fields) {
    for (const std::string* part : {&name, &value}) {
      for (char c : *part) size += IsFormSafe(c) || c == ' ' ? 1 : 3;
    }
    size += 2;  // '=' and '&'.
  }
  std::string out;
  out.reserve(size);
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    for (const std::string* part : {&name, &value}) {
      for (char c : *part) {
        const auto u = static_cast<unsigned char>(c);
        if (IsFormSafe(c)) {
          out.push_back(c);
        } else if (c == ' ') {
          out.push_back('+');
        } else {
          out.push_back('%');
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0xf]);
        }
      }
      if (part == &name) out.push_back('=');
    }
  }
  return out;
}

std::string BasicAuthorization(const TwilioCredentials& credentials) {
  return absl::StrCat(
      "Basic ", absl::Base64Escape(absl::StrCat(credentials.username, ":", credentials.password)));
}

HttpRequest BuildHttpRequest(absl::string_view base_url, const TwilioCredentials& credentials,
                             const TwilioCall& call, absl::Duration timeout) {
  HttpRequest http;
  http.method = call.method;
  http.url = absl::StrCat(base_url, call.path);
  http.headers.reserve(4);
  http.headers.emplace_back("Authorization", BasicAuthorization(credentials));
  http.headers.emplace_back("Accept", "application/json");
  http.headers.emplace_back("Accept-Charset", "utf-8");
  if (!call.form.empty()) {
    http.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    http.body = FormEncode(call.form);
  }
  http.timeout = timeout;
  return http;
}

absl::StatusOr<Resource> ParseResource(TwilioCall::Kind kind, absl::string_view body) {
  if (kind == TwilioCall::Kind::kDeleteSubscription) return Deletion{};
  // Read without a document: this runs for every successful answer.
  std::string account_sid, call_sid, sid, uri, date;
  if (absl::Status read = ReadJsonStrings(body, {{"account_sid", &account_sid},
                                                 {"call_sid", &call_sid},
                                                 {"sid", &sid},
                                                 {"uri", &uri},
                                                 {"date_created", &date}});
      !read.ok()) {
    return absl::InternalError(absl::StrCat("Twilio response ", read.message()));
  }
  std::optional<absl::Time> date_created;
  if (!date.empty()) {
    absl::StatusOr<absl::Time> parsed = ParseRfc2822Date(date);
    if (!parsed.ok()) {
      return absl::InternalError(
          absl::StrCat("Twilio response date_created: ", parsed.status().message()));
    }
    date_created = *parsed;
  }
  if (kind == TwilioCall::Kind::kSendMessage) {
    return Message{.account_sid = std::move(account_sid),
                   .call_sid = std::move(call_sid),
                   .sid = std::move(sid),
                   .date_created = date_created};
  }
  return Subscription{.account_sid = std::move(account_sid),
                      .call_sid = std::move(call_sid),
                      .sid = std::move(sid),
                      .date_created = date_created,
                      .uri = std::move(uri)};
}

HttpError ReadHttpError(TwilioCall::Kind kind, const HttpResponse& response) {
  TwilioErrorInfo error;
  error.http_status = response.status;
  Json json = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object()) {
    // Twilio's codes are five digits; anything outside int32 is not one and is dropped.
    if (auto it = json.find("code"); it != json.end() && it->is_number_integer()) {
      const int64_t code =
          it->is_number_unsigned()
              ? static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX))
              : it->get<int64_t>();
      if (code >= INT32_MIN && code <= INT32_MAX) error.code = static_cast<int>(code);
    }
    // Bounded (see kMaxTwilioMessageBytes): gRPC refuses metadata over 8 KiB, which would hide
    // the real error from the caller. Cut on a character boundary: the message is stored in
    // idempotency records as JSON.
    if (auto it = json.find("message"); it != json.end() && it->is_string()) {
      error.message =
          std::string(Utf8Prefix(it->get_ref<const std::string&>(), kMaxTwilioMessageBytes));
    }
    if (auto it = json.find("more_info"); it != json.end() && it->is_string()) {
      error.more_info =
          std::string(Utf8Prefix(it->get_ref<const std::string&>(), kMaxTwilioMessageBytes));
    }
  }
  const Mapping mapping = MapHttpError(kind, response.status, error.code);
  std::string message = absl::StrCat("Twilio answered HTTP ", response.status);
  if (error.code != 0) absl::StrAppend(&message, " (error ", error.code, ")");
  if (!error.message.empty()) absl::StrAppend(&message, ": ", error.message);
  absl::Status status(mapping.code, message);
  SetTwilioError(status, error);
  SetErrorInfo(status, mapping.reason);
  // Twilio's limit is not published; the caller learns which field to shrink.
  if (error.code == 31212) AddFieldViolation(status, {"content", "Twilio: message too large"});
  return {.status = std::move(status), .settled = mapping.settled};
}

absl::Status StatusFromTransportFailure(const HttpResult& result) {
  switch (result.failure) {
    case TransportFailure::kNone:
      return absl::OkStatus();
    case TransportFailure::kConnect: {
      absl::Status s =
          absl::UnavailableError(absl::StrCat("could not reach Twilio: ", result.error));
      SetErrorInfo(s, "TWILIO_UNREACHABLE");
      return s;
    }
    case TransportFailure::kTimeout: {
      absl::Status s = absl::DeadlineExceededError(
          absl::StrCat("Twilio did not answer in time: ", result.error));
      SetErrorInfo(s, "TWILIO_TIMEOUT");
      return s;
    }
    case TransportFailure::kIo: {
      absl::Status s =
          absl::UnavailableError(absl::StrCat("connection to Twilio failed: ", result.error));
      SetErrorInfo(s, "TWILIO_CONNECTION_FAILED");
      return s;
    }
    case TransportFailure::kCancelled:
      return absl::CancelledError("request cancelled");
  }
  return absl::UnknownError("unknown transport failure");
}

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), absl::ascii_isdigit)) {
    int64_t seconds = 0;
    if (value.size() > 9 || !absl::SimpleAtoi(value, &seconds)) return std::nullopt;
    return absl::Seconds(seconds);
  }
  absl::Time when;
  std::string error;
  // IMF-fixdate, the form RFC 9110 requires senders to use.
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", value, absl::UTCTimeZone(), &when, &error)) {
    return std::nullopt;
  }
  return std::max(absl::ZeroDuration(), when - now);
}

}  // namespace gateway
