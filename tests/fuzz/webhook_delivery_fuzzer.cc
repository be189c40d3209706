// Fuzzes what the webhook receiver reads from a delivery that passed its signature check
// (webhook/receiver.h): the form decoding, and the fields of a form or JSON delivery. Twilio
// signs what it sends, but the parsing must hold for any bytes: no crash, no exception, and
// - a decoded form re-encodes (every byte escaped) to a text that decodes to the same pairs;
// - a delivery read from either form has a KX, AC and CA SID, a sequence number from 0 and a
//   bounded content type, each equal to what the delivery sent (the number but for leading
//   zeros), and reads the same again from a canonical form of itself;
// - a refusal is INVALID_ARGUMENT and names a field (or the body) first;
// - a JSON object whose fields are all strings reads as the same form parameters do.
//
// Input format: the whole input is the body, read both as a form and as JSON.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "webhook/receiver.h"

namespace gateway {
namespace {

constexpr const char* kFields[] = {"Sid",     "AccountSid",  "CallSid",  "SequenceNumber",
                                   "Content", "ContentType", "Timestamp"};

void Require(bool holds, const char* invariant) {
  if (holds) return;
  std::fprintf(stderr, "invariant violated: %s\n", invariant);
  __builtin_trap();
}

std::string EscapeAll(absl::string_view text) {
  std::string out;
  for (unsigned char c : text) absl::StrAppendFormat(&out, "%%%02x", c);
  return out;
}

bool IsSidLike(const std::string& value, absl::string_view prefix) {
  if (value.size() != 34 || !absl::StartsWith(value, prefix)) return false;
  for (char c : value.substr(2)) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void CheckRefusal(const absl::Status& status) {
  Require(status.code() == absl::StatusCode::kInvalidArgument, "a refusal is INVALID_ARGUMENT");
  bool named = absl::StartsWith(status.message(), "body ");
  for (const char* field : kFields) {
    named = named || absl::StartsWith(status.message(), absl::StrCat(field, " "));
  }
  Require(named, "a refusal names the field first");
}

// The value a form sent for `name`, if exactly once.
const std::string* Sent(const FormParams& params, absl::string_view name) {
  const std::string* found = nullptr;
  for (const auto& [n, v] : params) {
    if (n == name) found = &v;
  }
  return found;
}

void CheckMessage(const CallMessage& message) {
  Require(IsSidLike(message.sid, "KX"), "Sid is KX + 32 hex digits");
  Require(IsSidLike(message.account_sid, "AC"), "AccountSid is AC + 32 hex digits");
  Require(IsSidLike(message.call_sid, "CA"), "CallSid is CA + 32 hex digits");
  Require(message.sequence_number >= 0, "SequenceNumber is from 0");
  Require(message.content_type.size() <= 255, "ContentType is bounded");

  // Written out again (without the timestamp, which is kept only when readable), it reads the
  // same: nothing was lost or changed in the reading.
  FormParams canonical = {
      {"Sid", message.sid},          {"AccountSid", message.account_sid},
      {"CallSid", message.call_sid}, {"SequenceNumber", absl::StrCat(message.sequence_number)},
      {"Content", message.content},  {"ContentType", message.content_type}};
  absl::StatusOr<CallMessage> again = ParseDelivery(canonical);
  Require(again.ok(), "a delivery read once reads again");
  CallMessage without_time = message;
  without_time.timestamp.reset();
  Require(*again == without_time, "a delivery reads the same again");
}

void CheckForm(absl::string_view body) {
  std::optional<FormParams> params = DecodeForm(body);
  if (!body.empty() && !absl::StrContains(body, '%')) Require(params.has_value(), "no escape, ok");
  if (!params.has_value()) return;
  Require(params->size() <= static_cast<size_t>(std::count(body.begin(), body.end(), '&')) + 1,
          "at most one pair per '&'-separated part");

  std::string encoded;
  for (const auto& [name, value] : *params) {
    absl::StrAppend(&encoded, encoded.empty() ? "" : "&", EscapeAll(name), "=", EscapeAll(value));
  }
  std::optional<FormParams> decoded = DecodeForm(encoded);
  Require(decoded.has_value() && *decoded == *params, "escaped pairs decode to the same pairs");

  absl::StatusOr<CallMessage> message = ParseDelivery(*params);
  if (!message.ok()) {
    CheckRefusal(message.status());
    return;
  }
  CheckMessage(*message);
  Require(*Sent(*params, "Sid") == message->sid, "the Sid sent");
  Require(*Sent(*params, "AccountSid") == message->account_sid, "the AccountSid sent");
  Require(*Sent(*params, "CallSid") == message->call_sid, "the CallSid sent");
  Require(*Sent(*params, "Content") == message->content, "the Content sent");
  // The number as sent, but for leading zeros: nothing else (a sign, a space) was skipped.
  const std::string& number = *Sent(*params, "SequenceNumber");
  const size_t digits = number.find_first_not_of('0');
  Require(absl::StrCat(message->sequence_number) ==
              (digits == std::string::npos ? "0" : number.substr(digits)),
          "the SequenceNumber sent");
}

void CheckJson(absl::string_view body) {
  absl::StatusOr<CallMessage> message = ParseJsonDelivery(body);
  if (!message.ok()) {
    CheckRefusal(message.status());
  } else {
    CheckMessage(*message);
  }
  // Every field a string: the same reading as a form's.
  const nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return;
  FormParams params;
  for (const auto& [name, value] : json.items()) {
    if (!value.is_string()) return;
    params.emplace_back(name, value.get<std::string>());
  }
  absl::StatusOr<CallMessage> as_form = ParseDelivery(params);
  // nlohmann keeps one of two equal names, so only the JSON reading sees a repeated field.
  const bool repeated = !message.ok() && absl::StrContains(message.status().message(), "repeated");
  if (as_form.ok()) {
    Require((message.ok() && *message == *as_form) || repeated, "string fields read as a form's");
  } else {
    Require(!message.ok(), "a JSON delivery the form reading refuses");
  }
}

}  // namespace
}  // namespace gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  gateway::CheckForm(body);
  gateway::CheckJson(body);
  return 0;
}
