#include "validation/request_validator.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/error_details.h"
#include "common/host_port.h"
#include "model/call_message.h"
#include "model/sid.h"

namespace gateway {
namespace {

bool IsHostLabel(absl::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    if (!absl::ascii_isalnum(c) && c != '-') return false;
  }
  return true;
}

// RFC 3986 characters allowed after the authority (path, query, fragment), '%' included for
// percent-encoded octets; everything else (spaces, controls, quotes, non-ASCII) must be encoded.
bool IsUrlTailChar(char c) {
  if (absl::ascii_isalnum(c)) return true;
  return absl::string_view("-._~:/?#[]@!$&'()*+,;=%").find(c) != absl::string_view::npos;
}

std::string HostProblem(absl::string_view host) {
  if (host.size() > 253) return "hostname is longer than 253 characters";
  if (host.find('_') != absl::string_view::npos) {
    return "hostname must not contain underscores";
  }
  absl::ConsumeSuffix(&host, ".");  // A fully qualified name may end with a dot.
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (!IsHostLabel(label)) {
      return "hostname must be dot-separated labels of letters, digits and hyphens";
    }
  }
  return "";
}

}  // namespace

bool IsValidIdempotencyKey(absl::string_view key) {
  return key.size() <= kMaxIdempotencyKeyLength &&
         std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string CallbackProblem(absl::string_view url) {
  if (url.empty()) return "is required";
  if (url.size() > kMaxCallbackLength) {
    return absl::StrCat("must be at most ", kMaxCallbackLength, " characters");
  }
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return "must not contain spaces, control or non-ASCII characters (percent-encode them)";
    }
  }
  absl::string_view rest = url;
  const size_t scheme_end = rest.find("://");
  if (scheme_end == absl::string_view::npos) return "must be an absolute http or https URL";
  const std::string scheme = absl::AsciiStrToLower(rest.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return "scheme must be http or https";
  rest.remove_prefix(scheme_end + 3);

  const size_t authority_end = rest.find_first_of("/?#");
  absl::string_view authority = rest.substr(0, authority_end);
  absl::string_view tail =
      authority_end == absl::string_view::npos ? absl::string_view() : rest.substr(authority_end);
  if (authority.find('@') != absl::string_view::npos) {
    return "must not contain a user name or password";
  }
  if (authority.empty()) return "must have a hostname";
  absl::StatusOr<UrlAuthority> split = SplitUrlAuthority(authority);
  if (!split.ok()) return std::string(split.status().message());
  if (split->bracketed) return "must use a hostname, not an IPv6 literal";
  if (std::string problem = HostProblem(split->host); !problem.empty()) return problem;
  for (char c : tail) {
    if (!IsUrlTailChar(c)) return "path or query contains a character that must be percent-encoded";
  }
  return "";
}

namespace {

// The fields every operation shares: the call and, optionally, the account.
void CheckCall(const CallInput& input, std::vector<FieldViolation>& violations,
               bool call_required = true) {
  if (input.call_sid.empty()) {
    if (call_required) violations.push_back({"call_sid", "is required"});
  } else if (!IsSid(input.call_sid, "CA")) {
    violations.push_back({"call_sid", "must be CA followed by 32 hexadecimal digits"});
  }
  if (!input.account_sid.empty() && !IsSid(input.account_sid, "AC")) {
    violations.push_back({"account_sid", "must be empty or AC followed by 32 hexadecimal digits"});
  }
}

void CheckIdempotencyKey(const std::string& key, std::vector<FieldViolation>& violations) {
  if (key.size() > kMaxIdempotencyKeyLength) {
    violations.push_back(
        {"idempotency_key",
         absl::StrCat("must be at most ", kMaxIdempotencyKeyLength, " characters")});
  } else if (!IsValidIdempotencyKey(key)) {
    violations.push_back(
        {"idempotency_key", "must be printable ASCII without spaces or control characters"});
  }
}

// Accepts what nlohmann::json::accept() does, nested at most kMaxContentDepth deep; builds
// nothing.
struct DepthLimitedSax {
  using json = nlohmann::json;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(size_t) { return Enter(); }
  bool key(json::string_t&) { return true; }
  bool end_object() { return Leave(); }
  bool start_array(size_t) { return Enter(); }
  bool end_array() { return Leave(); }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

  bool Enter() {
    too_deep = ++depth > kMaxContentDepth;
    return !too_deep;
  }
  bool Leave() {
    --depth;
    return true;
  }

  int depth = 0;
  bool too_deep = false;
};

std::string AccountOrDefault(const CallInput& input, absl::string_view default_account_sid) {
  return input.account_sid.empty() ? std::string(default_account_sid) : input.account_sid;
}

}  // namespace

std::string ContentProblem(absl::string_view content) {
  if (content.empty()) return "is required";
  if (content.size() > kMaxContentBytes) {
    return absl::StrCat("must be at most ", kMaxContentBytes, " bytes");
  }
  // nlohmann skips a byte order mark; RFC 8259 forbids sending one and lets a parser refuse it,
  // as Python's json does.
  if (absl::StartsWith(content, "\xEF\xBB\xBF")) return "must not begin with a byte order mark";
  // nlohmann's parser keeps its nesting on the heap, so deep input cannot exhaust the stack.
  DepthLimitedSax sax;
  if (!nlohmann::json::sax_parse(content.begin(), content.end(), &sax)) {
    if (sax.too_deep) {
      return absl::StrCat("must nest arrays and objects at most ", kMaxContentDepth,
                          " levels deep");
    }
    return "must be one JSON document";
  }
  return "";
}

absl::StatusOr<CreateSubscriptionRequest> ValidateCreateRequest(
    const CreateSubscriptionInput& input, absl::string_view default_account_sid) {
  std::vector<FieldViolation> violations;
  CheckCall(input, violations);
  if (std::string problem = CallbackProblem(input.callback); !problem.empty()) {
    violations.push_back({"callback", std::move(problem)});
  }
  CallbackMethod method = CallbackMethod::kPost;
  switch (input.method) {
    case 0:  // CALLBACK_METHOD_UNSPECIFIED: Twilio's default.
    case 1:
      break;
    case 2:
      method = CallbackMethod::kGet;
      break;
    default:
      violations.push_back({"method", absl::StrCat("unknown value ", input.method,
                                                   "; use CALLBACK_METHOD_POST or _GET")});
  }
  CheckIdempotencyKey(input.idempotency_key, violations);
  if (!violations.empty()) return InvalidArgument(violations);
  return CreateSubscriptionRequest{.account_sid = AccountOrDefault(input, default_account_sid),
                                   .call_sid = input.call_sid,
                                   .callback = input.callback,
                                   .method = method,
                                   .idempotency_key = input.idempotency_key};
}

absl::StatusOr<DeleteSubscriptionRequest> ValidateDeleteRequest(
    const DeleteSubscriptionInput& input, absl::string_view default_account_sid) {
  std::vector<FieldViolation> violations;
  CheckCall(input, violations);
  if (input.sid.empty()) {
    violations.push_back({"sid", "is required"});
  } else if (!IsSid(input.sid, "ZY")) {
    violations.push_back({"sid", "must be ZY followed by 32 hexadecimal digits"});
  }
  if (!violations.empty()) return InvalidArgument(violations);
  return DeleteSubscriptionRequest{.account_sid = AccountOrDefault(input, default_account_sid),
                                   .call_sid = input.call_sid,
                                   .sid = input.sid};
}

absl::StatusOr<SendMessageRequest> ValidateSendRequest(const SendMessageInput& input,
                                                       absl::string_view default_account_sid) {
  std::vector<FieldViolation> violations;
  CheckCall(input, violations);
  if (std::string problem = ContentProblem(input.content); !problem.empty()) {
    violations.push_back({"content", std::move(problem)});
  }
  CheckIdempotencyKey(input.idempotency_key, violations);
  if (!violations.empty()) return InvalidArgument(violations);
  return SendMessageRequest{.account_sid = AccountOrDefault(input, default_account_sid),
                            .call_sid = input.call_sid,
                            .content = input.content,
                            .idempotency_key = input.idempotency_key};
}

absl::StatusOr<WatchRequest> ValidateWatchRequest(const WatchInput& input,
                                                  absl::string_view default_account_sid) {
  std::vector<FieldViolation> violations;
  CheckCall(input, violations, /*call_required=*/false);
  if (!input.cursor.empty() && !LogPosition::Parse(input.cursor).has_value()) {
    violations.push_back({"cursor", "is not a cursor the gateway issued"});
  } else if (!input.cursor.empty() && input.from_oldest) {
    violations.push_back({"from_oldest", "must be false when a cursor is given"});
  }
  if (!violations.empty()) return InvalidArgument(violations);
  return WatchRequest{.account_sid = AccountOrDefault(input, default_account_sid),
                      .call_sid = input.call_sid,
                      .cursor = input.cursor,
                      .from_oldest = input.from_oldest};
}

}  // namespace gateway
