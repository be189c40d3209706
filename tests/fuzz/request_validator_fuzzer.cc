// Fuzzes the request validator: ValidateCreateRequest, ValidateDeleteRequest and
// ValidateSendRequest with every input field under the fuzzer's control, and CallbackProblem and
// ContentProblem with the raw input. Traps when the validator accepts something a caller must
// never be able to send to Twilio, or rejects in a way the API cannot report.
//
// Input format (stable, so corpus files stay meaningful and seeds can be written by hand):
// fields separated by '\n' in the order account_sid, call_sid, callback, method, idempotency_key.
// The key takes the rest of the input, newlines included; missing fields are empty. The method
// line is a decimal int when it parses as one, else its first four bytes as an int.
// Delete reads the third line as the subscription sid; Send reads everything after the second
// line (newlines included) as the content, and the fifth field as its key.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "common/error_details.h"
#include "model/requests.h"
#include "validation/request_validator.h"

namespace gateway {
namespace {

constexpr absl::string_view kDefaultAccount = "AC0123456789abcdef0123456789ABCDEF";

void Require(bool holds, const char* invariant) {
  if (holds) return;
  std::fprintf(stderr, "invariant violated: %s\n", invariant);
  __builtin_trap();
}

// ^prefix[0-9a-fA-F]{32}$, written out independently of IsSid().
bool MatchesSid(absl::string_view value, absl::string_view prefix) {
  if (value.size() != prefix.size() + 32 || value.substr(0, prefix.size()) != prefix) return false;
  for (char c : value.substr(prefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

// What any accepted callback must satisfy, whatever the finer URL rules are.
void CheckAcceptedCallback(absl::string_view url) {
  Require(url.size() <= kMaxCallbackLength, "accepted callback is at most 4000 characters");
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    Require(u > 0x20 && u < 0x7f, "accepted callback is printable ASCII without spaces");
  }
  Require(absl::StartsWithIgnoreCase(url, "http://") || absl::StartsWithIgnoreCase(url, "https://"),
          "accepted callback starts with http:// or https://");
  const absl::string_view rest = url.substr(url.find("://") + 3);
  // The authority is a hostname, so the URL cannot go straight on to a port, path or userinfo.
  Require(!rest.empty() && absl::ascii_isalnum(rest.front()),
          "accepted callback has a hostname starting with a letter or digit");
  const absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  Require(authority.find('@') == absl::string_view::npos, "accepted callback has no userinfo");
}

std::vector<absl::string_view> SplitFields(absl::string_view input, size_t count) {
  std::vector<absl::string_view> fields;
  while (fields.size() + 1 < count) {
    const size_t end = input.find('\n');
    if (end == absl::string_view::npos) break;
    fields.push_back(input.substr(0, end));
    input.remove_prefix(end + 1);
  }
  fields.push_back(input);
  fields.resize(count);
  return fields;
}

int MethodFrom(absl::string_view text) {
  int method = 0;
  if (absl::SimpleAtoi(text, &method)) return method;
  uint32_t bits = 0;
  if (text.empty()) return 0;
  std::memcpy(&bits, text.data(), std::min(text.size(), sizeof(bits)));
  return static_cast<int>(bits);
}

void FuzzValidateCreateRequest(absl::string_view data) {
  const std::vector<absl::string_view> fields = SplitFields(data, 5);
  CreateSubscriptionInput input;
  input.account_sid = std::string(fields[0]);
  input.call_sid = std::string(fields[1]);
  input.callback = std::string(fields[2]);
  input.method = MethodFrom(fields[3]);
  input.idempotency_key = std::string(fields[4]);

  absl::StatusOr<CreateSubscriptionRequest> result = ValidateCreateRequest(input, kDefaultAccount);
  const bool callback_ok = CallbackProblem(input.callback).empty();
  if (result.ok()) {
    const CreateSubscriptionRequest& out = *result;
    Require(MatchesSid(out.call_sid, "CA"), "accepted call_sid matches ^CA[0-9a-fA-F]{32}$");
    Require(MatchesSid(out.account_sid, "AC"), "accepted account_sid matches ^AC[0-9a-fA-F]{32}$");
    Require(out.account_sid == (input.account_sid.empty() ? kDefaultAccount : input.account_sid),
            "account_sid is the caller's or the default");
    Require(out.call_sid == input.call_sid && out.callback == input.callback &&
                out.idempotency_key == input.idempotency_key,
            "validation does not rewrite accepted fields");
    Require(callback_ok, "ValidateCreateRequest and CallbackProblem agree on the callback");
    CheckAcceptedCallback(out.callback);
    Require(input.method >= 0 && input.method <= 2, "only known methods are accepted");
    Require((out.method == CallbackMethod::kGet) == (input.method == 2),
            "GET only when asked for, POST otherwise");
    Require(out.idempotency_key.size() <= kMaxIdempotencyKeyLength,
            "accepted idempotency key is at most 255 characters");
    for (char c : out.idempotency_key) {
      Require(c > 0x20 && c < 0x7f, "accepted idempotency key is printable ASCII");
    }
    return;
  }
  const absl::Status& status = result.status();
  Require(status.code() == absl::StatusCode::kInvalidArgument, "rejection is INVALID_ARGUMENT");
  const std::vector<FieldViolation> violations = GetFieldViolations(status);
  Require(!violations.empty(), "rejection names at least one field");
  static const std::set<std::string> kFields = {"account_sid", "call_sid", "callback", "method",
                                                "idempotency_key"};
  std::set<std::string> seen;
  bool callback_named = false;
  for (const FieldViolation& v : violations) {
    Require(kFields.count(v.field) == 1, "violation names a request field");
    Require(seen.insert(v.field).second, "each field is named at most once");
    Require(!v.description.empty(), "violation says what is wrong");
    callback_named = callback_named || v.field == "callback";
  }
  Require(callback_named == !callback_ok,
          "ValidateCreateRequest and CallbackProblem agree on the callback");
  Require(GetErrorReason(status).value_or("") == "INVALID_REQUEST",
          "rejection carries ErrorInfo INVALID_REQUEST");
}

// One rejection as the API reports it: INVALID_ARGUMENT naming each bad field of `allowed` once.
std::set<std::string> CheckRejection(const absl::Status& status,
                                     const std::set<std::string>& allowed) {
  Require(status.code() == absl::StatusCode::kInvalidArgument, "rejection is INVALID_ARGUMENT");
  const std::vector<FieldViolation> violations = GetFieldViolations(status);
  Require(!violations.empty(), "rejection names at least one field");
  std::set<std::string> seen;
  for (const FieldViolation& v : violations) {
    Require(allowed.count(v.field) == 1, "violation names a request field");
    Require(seen.insert(v.field).second, "each field is named at most once");
    Require(!v.description.empty(), "violation says what is wrong");
  }
  Require(GetErrorReason(status).value_or("") == "INVALID_REQUEST",
          "rejection carries ErrorInfo INVALID_REQUEST");
  return seen;
}

void FuzzValidateDeleteRequest(absl::string_view data) {
  const std::vector<absl::string_view> fields = SplitFields(data, 5);
  DeleteSubscriptionInput input;
  input.account_sid = std::string(fields[0]);
  input.call_sid = std::string(fields[1]);
  input.sid = std::string(fields[2]);
  absl::StatusOr<DeleteSubscriptionRequest> result = ValidateDeleteRequest(input, kDefaultAccount);
  if (result.ok()) {
    Require(MatchesSid(result->call_sid, "CA"), "accepted call_sid matches ^CA[0-9a-fA-F]{32}$");
    Require(MatchesSid(result->account_sid, "AC"),
            "accepted account_sid matches ^AC[0-9a-fA-F]{32}$");
    // The sid goes into the URL path unescaped.
    Require(MatchesSid(result->sid, "ZY"), "accepted sid matches ^ZY[0-9a-fA-F]{32}$");
    Require(result->sid == input.sid && result->call_sid == input.call_sid,
            "validation does not rewrite accepted fields");
    return;
  }
  const std::set<std::string> named =
      CheckRejection(result.status(), {"account_sid", "call_sid", "sid"});
  Require((named.count("sid") == 1) == !MatchesSid(input.sid, "ZY"),
          "the sid is named exactly when it is not ZY and 32 hex digits");
}

// How deep arrays and objects nest in a parsed document (a scalar: 0), walked on the DOM: a
// second reading of the depth, independent of the validator's SAX count.
int Depth(const nlohmann::json& value) {
  if (!value.is_structured()) return 0;
  int deepest = 0;
  for (const nlohmann::json& element : value) deepest = std::max(deepest, Depth(element));
  return deepest + 1;
}

bool HasByteOrderMark(absl::string_view content) {
  return absl::StartsWith(content, "\xEF\xBB\xBF");
}

// What any accepted content must satisfy, checked with another of nlohmann's entry points.
void CheckAcceptedContent(absl::string_view content) {
  Require(!content.empty(), "accepted content is not empty");
  Require(content.size() <= kMaxContentBytes, "accepted content is at most 4096 bytes");
  Require(!HasByteOrderMark(content), "accepted content has no byte order mark");
  const nlohmann::json parsed =
      nlohmann::json::parse(content.begin(), content.end(), nullptr, /*allow_exceptions=*/false);
  Require(!parsed.is_discarded(), "accepted content parses as one JSON document");
  Require(Depth(parsed) <= kMaxContentDepth, "accepted content nests at most 64 levels deep");
}

void FuzzContentProblem(absl::string_view content) {
  const std::string problem = ContentProblem(content);
  if (problem.empty()) {
    CheckAcceptedContent(content);
    return;
  }
  if (!content.empty() && content.size() <= kMaxContentBytes && !HasByteOrderMark(content)) {
    const nlohmann::json parsed =
        nlohmann::json::parse(content.begin(), content.end(), nullptr, /*allow_exceptions=*/false);
    Require(parsed.is_discarded() || Depth(parsed) > kMaxContentDepth,
            "content of a good size is refused only when it is not JSON or nests too deep");
  }
}

void FuzzValidateSendRequest(absl::string_view data) {
  const std::vector<absl::string_view> fields = SplitFields(data, 3);
  SendMessageInput input;
  input.account_sid = std::string(fields[0]);
  input.call_sid = std::string(fields[1]);
  input.content = std::string(fields[2]);
  input.idempotency_key = std::string(SplitFields(data, 5)[4]);
  absl::StatusOr<SendMessageRequest> result = ValidateSendRequest(input, kDefaultAccount);
  const bool content_ok = ContentProblem(input.content).empty();
  if (result.ok()) {
    const SendMessageRequest& out = *result;
    Require(MatchesSid(out.call_sid, "CA"), "accepted call_sid matches ^CA[0-9a-fA-F]{32}$");
    Require(MatchesSid(out.account_sid, "AC"), "accepted account_sid matches ^AC[0-9a-fA-F]{32}$");
    Require(out.account_sid == (input.account_sid.empty() ? kDefaultAccount : input.account_sid),
            "account_sid is the caller's or the default");
    Require(out.content == input.content && out.idempotency_key == input.idempotency_key,
            "validation does not rewrite accepted fields");
    Require(content_ok, "ValidateSendRequest and ContentProblem agree on the content");
    CheckAcceptedContent(out.content);
    Require(IsValidIdempotencyKey(out.idempotency_key), "accepted idempotency key is valid");
    return;
  }
  const std::set<std::string> named =
      CheckRejection(result.status(), {"account_sid", "call_sid", "content", "idempotency_key"});
  Require((named.count("content") == 1) == !content_ok,
          "ValidateSendRequest and ContentProblem agree on the content");
}

void FuzzCallbackProblem(absl::string_view url) {
  if (CallbackProblem(url).empty()) CheckAcceptedCallback(url);
}

}  // namespace
}  // namespace gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  gateway::FuzzValidateCreateRequest(input);
  gateway::FuzzValidateDeleteRequest(input);
  gateway::FuzzValidateSendRequest(input);
  gateway::FuzzCallbackProblem(input);
  gateway::FuzzContentProblem(input);
  return 0;
}
