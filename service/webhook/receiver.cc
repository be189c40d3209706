#include "webhook/receiver.h"

#include <algorithm>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/host_port.h"
#include "common/log.h"
#include "common/rfc2822.h"
#include "model/sid.h"

namespace gateway {
namespace {

constexpr absl::string_view kHealthPath = "/healthz";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> DecodeComponent(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      const int high = i + 1 < text.size() ? HexValue(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The fields as the delivery named them; a repeated field is malformed.
struct Fields {
  std::optional<std::string> sid, account_sid, call_sid, sequence_number, content, content_type,
      timestamp;

  std::optional<std::string>* Find(absl::string_view name) {
    if (name == "Sid") return &sid;
    if (name == "AccountSid") return &account_sid;
    if (name == "CallSid") return &call_sid;
    if (name == "SequenceNumber") return &sequence_number;
    if (name == "Content") return &content;
    if (name == "ContentType") return &content_type;
    if (name == "Timestamp") return &timestamp;
    return nullptr;  // Twilio may add fields; they are signed, not stored.
  }
};

absl::Status Malformed(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", problem));
}

absl::StatusOr<CallMessage> FromFields(Fields fields) {
  CallMessage message;
  if (!fields.sid.has_value() || !IsSid(*fields.sid, "KX")) {
    return Malformed("Sid", "must be KX followed by 32 hexadecimal digits");
  }
  if (!fields.account_sid.has_value() || !IsSid(*fields.account_sid, "AC")) {
    return Malformed("AccountSid", "must be AC followed by 32 hexadecimal digits");
  }
  if (!fields.call_sid.has_value() || !IsSid(*fields.call_sid, "CA")) {
    return Malformed("CallSid", "must be CA followed by 32 hexadecimal digits");
  }
  // Digits only: SimpleAtoi alone would also take a sign or surrounding spaces.
  if (!fields.sequence_number.has_value() || fields.sequence_number->empty() ||
      !std::all_of(fields.sequence_number->begin(), fields.sequence_number->end(),
                   [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(*fields.sequence_number, &message.sequence_number)) {
    return Malformed("SequenceNumber", "must be a number from 0");
  }
  if (!fields.content.has_value()) return Malformed("Content", "is missing");
  message.sid = *std::move(fields.sid);
  message.account_sid = *std::move(fields.account_sid);
  message.call_sid = *std::move(fields.call_sid);
  message.content = *std::move(fields.content);
  if (fields.content_type.has_value()) {
    if (fields.content_type->size() > 255) return Malformed("ContentType", "is too long");
    message.content_type = *std::move(fields.content_type);
  }
  // A timestamp Twilio wrote in another form is not a reason to refuse the message.
  if (fields.timestamp.has_value()) {
    absl::StatusOr<absl::Time> when = ParseRfc2822Date(*fields.timestamp);
    if (when.ok()) message.timestamp = *when;
  }
  return message;
}

std::string ParamsSummary(const absl::Status& status) {
  // The message names a field and a fixed problem: never the value sent.
  return absl::StrCat("400 Bad Request: ", status.message(), "\n");
}

}  // namespace

std::optional<FormParams> DecodeForm(absl::string_view text) {
  FormParams params;
  if (text.empty()) return params;
  for (absl::string_view pair : absl::StrSplit(text, '&')) {
    if (pair.empty()) continue;
    const std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    std::optional<std::string> name = DecodeComponent(parts.first);
    std::optional<std::string> value = DecodeComponent(parts.second);
    if (!name.has_value() || !value.has_value()) return std::nullopt;
    params.emplace_back(*std::move(name), *std::move(value));
  }
  return params;
}

absl::StatusOr<CallMessage> ParseDelivery(const FormParams& params) {
  Fields fields;
  for (const auto& [name, value] : params) {
    std::optional<std::string>* field = fields.Find(name);
    if (field == nullptr) continue;
    if (field->has_value()) return Malformed(name, "is repeated");
    *field = value;
  }
  return FromFields(std::move(fields));
}

absl::StatusOr<CallMessage> ParseJsonDelivery(absl::string_view body) {
  // nlohmann keeps the last of two equal names, where another reader may keep the first: a
  // field named twice is refused, as in a form. Names inside nested values are no fields.
  Fields fields;
  std::optional<std::string> repeated;
  std::vector<std::string> names;
  const nlohmann::json::parser_callback_t note_names =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (depth == 1 && event == nlohmann::json::parse_event_t::key && !repeated.has_value()) {
          const std::string& name = parsed.get_ref<const std::string&>();
          if (fields.Find(name) != nullptr) {
            if (std::find(names.begin(), names.end(), name) != names.end()) repeated = name;
            names.push_back(name);
          }
        }
        return true;
      };
  const nlohmann::json json = nlohmann::json::parse(body, note_names, /*allow_exceptions=*/false);
  if (!json.is_object()) return Malformed("body", "is not a JSON object");
  if (repeated.has_value()) return Malformed(*repeated, "is repeated");
  for (const auto& [name, value] : json.items()) {
    std::optional<std::string>* field = fields.Find(name);
    if (field == nullptr) continue;
    if (value.is_string()) {
      *field = value.get<std::string>();
    } else if (value.is_number_integer()) {
      *field = value.dump();  // SequenceNumber may come as a number.
    } else if (name == "Content" && !value.is_null()) {
      *field = value.dump();  // An SDK message Twilio embedded as JSON rather than as text.
    } else if (!value.is_null()) {
      return Malformed(name, "has the wrong type");
    }
  }
  return FromFields(std::move(fields));
}

absl::StatusOr<std::unique_ptr<WebhookReceiver>> WebhookReceiver::Create(
    WebhookReceiverOptions options, AccountSource account, MessageLog& log, const Clock& clock,
    Observer observer) {
  const absl::string_view url = options.public_url;
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "https://") && !absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError("--public-webhook-url must start with https:// or http://");
  }
  if (absl::StrContains(url, '#')) {
    return absl::InvalidArgumentError("--public-webhook-url must not have a fragment");
  }
  // The host ends at the path or, with none ("https://host?tenant=1"), at the query. Checked as
  // the signature check reads it: a URL it cannot read would fail every delivery.
  const size_t host_end = rest.find_first_of("/?");
  const absl::string_view authority = rest.substr(0, host_end);
  if (absl::StrContains(authority, '@')) {
    return absl::InvalidArgumentError("--public-webhook-url must name a host (and no user)");
  }
  if (absl::StatusOr<UrlAuthority> split = SplitUrlAuthority(authority); !split.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--public-webhook-url must name a host[:port]: ", split.status().message()));
  }
  absl::string_view path =
      host_end == absl::string_view::npos ? absl::string_view() : rest.substr(host_end);
  path = path.substr(0, path.find('?'));
  if (path.empty()) path = "/";
  const std::string base(url.substr(0, url.find('?')));
  return std::unique_ptr<WebhookReceiver>(new WebhookReceiver(std::move(options), base,
                                                              std::string(path), std::move(account),
                                                              log, clock, std::move(observer)));
}

WebhookReceiver::WebhookReceiver(WebhookReceiverOptions options, std::string base_url,
                                 std::string path, AccountSource account, MessageLog& log,
                                 const Clock& clock, Observer observer)
    : options_(std::move(options)),
      base_url_(std::move(base_url)),
      path_(std::move(path)),
      account_(std::move(account)),
      log_(log),
      clock_(clock),
      observer_(std::move(observer)) {}

std::vector<std::string> WebhookReceiver::Tokens(const WebhookAccount& account) {
  const absl::Time now = clock_.Now();
  const std::string& current = account.auth_token;
  absl::MutexLock lock(&mu_);
  if (current != current_token_) {
    if (!current_token_.empty()) {
      previous_token_ = std::move(current_token_);
      // From the reload that brought the new token, when known and not later than now.
      const absl::Time changed =
          account.since == absl::InfinitePast() ? now : std::min(account.since, now);
      previous_until_ = changed + options_.token_overlap;
      Log(LogLevel::kInfo, "webhook auth token changed; the previous one verifies until",
          {{"until", absl::FormatTime(previous_until_)}});
    }
    current_token_ = current;
  }
  std::vector<std::string> tokens = {current_token_};
  if (!previous_token_.empty() && now < previous_until_) tokens.push_back(previous_token_);
  return tokens;
}

HttpServer::Response WebhookReceiver::Answer(int status, absl::string_view result,
                                             absl::string_view body) {
  if (observer_) observer_(result);
  if (status >= 400 && status != 404) {
    Log(LogLevel::kInfo, "webhook request refused",
        {{"status", absl::StrCat(status)}, {"reason", std::string(result)}});
  }
  HttpServer::Response response{.status = status, .body = std::string(body)};
  if (status == 405) response.headers.emplace_back("Allow", "POST, GET");
  return response;
}

std::variant<HttpServer::Response, CallMessage> WebhookReceiver::Check(
    const HttpServer::Request& request) {
  if (request.path != path_) {
    if (request.path == kHealthPath && (request.method == "GET" || request.method == "HEAD")) {
      return HttpServer::Response{.status = 200, .body = "ok\n"};
    }
    return Answer(404, "not_found", "404 Not Found\n");
  }
  const bool post = request.method == "POST";
  if (!post && request.method != "GET") {
    return Answer(405, "method_not_allowed", "405 Method Not Allowed\n");
  }
  const WebhookAccount account = account_();
  const std::vector<std::string> tokens = Tokens(account);
  const std::string url =
      request.query.empty() ? base_url_ : absl::StrCat(base_url_, "?", request.query);
  const absl::string_view signature = request.Header(kTwilioSignatureHeader).value_or("");

  // A form body, or GET's query, is signed as parameters; any other body by its hash.
  const absl::string_view content_type = request.Header("Content-Type").value_or("");
  const bool form =
      !post || absl::StartsWithIgnoreCase(absl::StripLeadingAsciiWhitespace(content_type),
                                          "application/x-www-form-urlencoded");
  absl::StatusOr<CallMessage> message;
  SignatureVerdict verdict;
  if (form) {
    std::optional<FormParams> params = DecodeForm(post ? request.body : request.query);
    if (!params.has_value()) return Answer(400, "malformed", "400 Bad Request: bad escape\n");
    // GET carries its parameters in the URL, which the signature already covers.
    verdict = VerifyFormSignature(tokens, url, post ? *params : FormParams{}, signature);
    if (verdict.ok()) message = ParseDelivery(*params);
  } else {
    verdict = VerifyBodySignature(tokens, url, request.body, signature);
    if (verdict.ok()) message = ParseJsonDelivery(request.body);
  }
  if (!verdict.ok()) {
    return Answer(403, SignatureErrorName(verdict.error), "403 Forbidden\n");
  }
  if (!message.ok()) return Answer(400, "malformed", ParamsSummary(message.status()));
  if (message->account_sid != account.account_sid) {
    return Answer(403, "unknown_account", "403 Forbidden\n");
  }

  return *std::move(message);
}

void WebhookReceiver::Handle(const HttpServer::Request& request, HttpServer::Respond respond) {
  std::variant<HttpServer::Response, CallMessage> checked = Check(request);
  if (auto* refused = std::get_if<HttpServer::Response>(&checked)) {
    std::move(respond)(std::move(*refused));
    return;
  }
  log_.Append(
      std::get<CallMessage>(std::move(checked)),
      [this, respond = std::move(respond)](absl::StatusOr<MessageLog::Appended> appended) mutable {
        if (!appended.ok()) {
          Log(LogLevel::kWarning, "webhook message not stored",
              {{"error", appended.status().message()}});
          std::move(respond)(Answer(503, "store_unavailable", "503 Service Unavailable\n"));
          return;
        }
        std::move(respond)(Answer(200, appended->duplicate ? "duplicate" : "stored", ""));
      });
}

HttpServer::Response WebhookReceiver::Handle(const HttpServer::Request& request) {
  std::promise<HttpServer::Response> answered;
  std::future<HttpServer::Response> response = answered.get_future();
  Handle(request, [&answered](HttpServer::Response r) { answered.set_value(std::move(r)); });
  return response.get();
}

}  // namespace gateway
