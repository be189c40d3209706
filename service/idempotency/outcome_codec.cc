#include "idempotency/outcome_codec.h"

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/error_details.h"
#include "common/json_text.h"
#include "common/sha256.h"

namespace gateway {
namespace {

using Json = nlohmann::json;
constexpr int kVersion = 1;

// Reads an optional string property without throwing: false when present with another type.
bool ReadString(const Json& object, const char* name, std::string* out) {
  auto it = object.find(name);
  if (it == object.end()) return true;
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

void AppendDate(std::string* out, const std::optional<absl::Time>& date) {
  if (date.has_value())
    absl::StrAppend(out, ",\"date_created_unix_ns\":", absl::ToUnixNanos(*date));
}

// The properties Subscription and Message share, in nlohmann's (sorted) order up to "sid".
template <typename T>
void AppendCommon(std::string* out, const T& resource) {
  out->append("{\"account_sid\":");
  AppendJsonString(out, resource.account_sid);
  out->append(",\"call_sid\":");
  AppendJsonString(out, resource.call_sid);
  AppendDate(out, resource.date_created);
  out->append(",\"sid\":");
  AppendJsonString(out, resource.sid);
}

void AppendResource(std::string* out, const Subscription& s) {
  out->append("{\"subscription\":");
  AppendCommon(out, s);
  out->append(",\"uri\":");
  AppendJsonString(out, s.uri);
  out->append("}");
}

void AppendResource(std::string* out, const Message& m) {
  out->append("{\"message\":");
  AppendCommon(out, m);
  out->append("}");
}

void AppendResource(std::string* out, const Deletion&) { out->append("{\"deletion\":{}"); }

// Reads the fields Subscription and Message share; false on a wrong type.
template <typename T>
bool ReadCommon(const Json& object, T* out) {
  if (!ReadString(object, "account_sid", &out->account_sid) ||
      !ReadString(object, "call_sid", &out->call_sid) || !ReadString(object, "sid", &out->sid)) {
    return false;
  }
  if (auto d = object.find("date_created_unix_ns"); d != object.end()) {
    if (!d->is_number_integer()) return false;
    out->date_created = absl::FromUnixNanos(d->get<int64_t>());
  }
  return true;
}

}  // namespace

// Written by hand (DecodeOutcome reads it with nlohmann): this runs once per operation, and
// building a json document to dump it cost six times as much. Keys in nlohmann's (sorted)
// order, so records read the same whichever version wrote them.
std::string EncodeOutcome(const absl::StatusOr<Resource>& result, bool may_exist) {
  std::string out;
  out.reserve(512);
  if (result.ok()) {
    std::visit([&out](const auto& resource) { AppendResource(&out, resource); }, *result);
  } else {
    const absl::Status& status = result.status();
    absl::StrAppend(&out, "{\"error\":{\"code\":", static_cast<int>(status.code()),
                    ",\"may_exist\":", may_exist ? "true" : "false", ",\"message\":");
    AppendJsonString(&out, status.message());
    // Payload URLs in sorted order, as nlohmann wrote them.
    std::map<std::string, std::string> payloads;
    status.ForEachPayload([&payloads](absl::string_view url, const absl::Cord& value) {
      payloads[std::string(url)] = absl::Base64Escape(std::string(value));
    });
    out.append(",\"payloads\":{");
    bool first = true;
    for (const auto& [url, value] : payloads) {
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(&out, url);
      out.push_back(':');
      AppendJsonString(&out, value);
    }
    out.append("}}");
  }
  absl::StrAppend(&out, ",\"v\":", kVersion, "}");
  return out;
}

absl::StatusOr<StoredOutcome> DecodeOutcome(absl::string_view encoded) {
  const Json json = Json::parse(encoded, nullptr, /*allow_exceptions=*/false);
  auto bad = [] { return absl::InternalError("unreadable idempotency record"); };
  if (!json.is_object()) return bad();
  auto version = json.find("v");
  if (version == json.end() || !version->is_number_integer() ||
      version->get<int64_t>() != kVersion) {
    return bad();
  }
  if (auto it = json.find("subscription"); it != json.end() && it->is_object()) {
    Subscription s;
    if (!ReadCommon(*it, &s) || !ReadString(*it, "uri", &s.uri)) return bad();
    return StoredOutcome{.result = Resource(std::move(s))};
  }
  if (auto it = json.find("message"); it != json.end() && it->is_object()) {
    Message m;
    if (!ReadCommon(*it, &m)) return bad();
    return StoredOutcome{.result = Resource(std::move(m))};
  }
  if (auto it = json.find("deletion"); it != json.end() && it->is_object()) {
    return StoredOutcome{.result = Resource(Deletion{})};
  }
  auto it = json.find("error");
  if (it == json.end() || !it->is_object()) return bad();
  auto code = it->find("code");
  if (code == it->end() || !code->is_number_integer() || code->get<int64_t>() <= 0 ||
      code->get<int64_t>() > 16) {
    return bad();
  }
  std::string message;
  if (!ReadString(*it, "message", &message)) return bad();
  absl::Status status(static_cast<absl::StatusCode>(code->get<int64_t>()), message);
  if (auto p = it->find("payloads"); p != it->end() && p->is_object()) {
    for (const auto& [url, value] : p->items()) {
      std::string bytes;
      if (!value.is_string() || !absl::Base64Unescape(value.get<std::string>(), &bytes)) {
        return bad();
      }
      status.SetPayload(url, absl::Cord(bytes));
    }
  }
  bool may_exist = false;
  if (auto m = it->find("may_exist"); m != it->end()) {
    if (!m->is_boolean()) return bad();
    may_exist = m->get<bool>();
  } else {
    // Written by a version that kept it in the error's ErrorInfo metadata.
    const auto metadata = GetErrorMetadata(status);
    auto old = metadata.find("subscription_may_exist");
    may_exist = old != metadata.end() && old->second == "true";
  }
  return StoredOutcome{.result = std::move(status), .may_exist = may_exist};
}

std::string RequestFingerprint(const CreateSubscriptionRequest& request) {
  // Length-prefixed fields, so no two different requests encode alike.
  const std::string canonical =
      absl::StrCat(request.account_sid.size(), ":", request.account_sid, request.call_sid.size(),
                   ":", request.call_sid, request.callback.size(), ":", request.callback,
                   request.method == CallbackMethod::kGet ? "GET" : "POST");
  return Sha256Hex(canonical);
}

std::string RequestFingerprint(const SendMessageRequest& request) {
  const std::string canonical = absl::StrCat(
      "message/", request.account_sid.size(), ":", request.account_sid, request.call_sid.size(),
      ":", request.call_sid, request.content.size(), ":", request.content);
  return Sha256Hex(canonical);
}

}  // namespace gateway
