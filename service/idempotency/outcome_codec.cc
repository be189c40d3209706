#include "idempotency/outcome_codec.h"

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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

}  // namespace

// Written by hand (DecodeOutcome reads it with nlohmann): this runs once per Create, and
// building a json document to dump it cost six times as much. Keys in nlohmann's (sorted) order,
// so records read the same whichever version wrote them.
std::string EncodeOutcome(const absl::StatusOr<Subscription>& outcome) {
  std::string out;
  out.reserve(512);
  if (outcome.ok()) {
    const Subscription& s = *outcome;
    out.append("{\"subscription\":{\"account_sid\":");
    AppendJsonString(&out, s.account_sid);
    out.append(",\"call_sid\":");
    AppendJsonString(&out, s.call_sid);
    if (s.date_created.has_value()) {
      absl::StrAppend(&out, ",\"date_created_unix_ns\":", absl::ToUnixNanos(*s.date_created));
    }
    out.append(",\"idempotency_key\":");
    AppendJsonString(&out, s.idempotency_key);
    out.append(",\"sid\":");
    AppendJsonString(&out, s.sid);
    out.append(",\"uri\":");
    AppendJsonString(&out, s.uri);
    out.append("}");
  } else {
    const absl::Status& status = outcome.status();
    absl::StrAppend(&out, "{\"error\":{\"code\":", static_cast<int>(status.code()),
                    ",\"message\":");
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

absl::StatusOr<absl::StatusOr<Subscription>> DecodeOutcome(absl::string_view encoded) {
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
    if (!ReadString(*it, "account_sid", &s.account_sid) ||
        !ReadString(*it, "call_sid", &s.call_sid) || !ReadString(*it, "sid", &s.sid) ||
        !ReadString(*it, "uri", &s.uri) ||
        !ReadString(*it, "idempotency_key", &s.idempotency_key)) {
      return bad();
    }
    if (auto d = it->find("date_created_unix_ns"); d != it->end()) {
      if (!d->is_number_integer()) return bad();
      s.date_created = absl::FromUnixNanos(d->get<int64_t>());
    }
    return absl::StatusOr<Subscription>(std::move(s));
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
  return absl::StatusOr<Subscription>(status);
}

std::string RequestFingerprint(const CreateSubscriptionRequest& request) {
  // Length-prefixed fields, so no two different requests encode alike.
  const std::string canonical =
      absl::StrCat(request.account_sid.size(), ":", request.account_sid, request.call_sid.size(),
                   ":", request.call_sid, request.callback.size(), ":", request.callback,
                   request.method == CallbackMethod::kGet ? "GET" : "POST");
  return Sha256Hex(canonical);
}

bool IsReplayableOutcome(const absl::StatusOr<Subscription>& outcome) {
  switch (outcome.status().code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kInvalidArgument:
      return true;
    default:
      return false;
  }
}

}  // namespace gateway
