#include "idempotency/outcome_codec.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace gateway {
namespace {

using Json = nlohmann::json;
constexpr int kVersion = 1;

}  // namespace

std::string EncodeOutcome(const absl::StatusOr<Subscription>& outcome) {
  Json json = {{"v", kVersion}};
  if (outcome.ok()) {
    const Subscription& s = *outcome;
    json["subscription"] = {{"account_sid", s.account_sid},
                            {"call_sid", s.call_sid},
                            {"sid", s.sid},
                            {"uri", s.uri},
                            {"idempotency_key", s.idempotency_key}};
    if (s.date_created.has_value()) {
      json["subscription"]["date_created_unix_ns"] = absl::ToUnixNanos(*s.date_created);
    }
  } else {
    Json payloads = Json::object();
    outcome.status().ForEachPayload([&payloads](absl::string_view url, const absl::Cord& value) {
      payloads[std::string(url)] = absl::Base64Escape(std::string(value));
    });
    json["error"] = {{"code", static_cast<int>(outcome.status().code())},
                     {"message", std::string(outcome.status().message())},
                     {"payloads", payloads}};
  }
  return json.dump();
}

absl::StatusOr<absl::StatusOr<Subscription>> DecodeOutcome(absl::string_view encoded) {
  const Json json = Json::parse(encoded, nullptr, /*allow_exceptions=*/false);
  auto bad = [] { return absl::InternalError("unreadable idempotency record"); };
  if (!json.is_object() || json.value("v", 0) != kVersion) return bad();
  if (auto it = json.find("subscription"); it != json.end() && it->is_object()) {
    Subscription s;
    s.account_sid = it->value("account_sid", "");
    s.call_sid = it->value("call_sid", "");
    s.sid = it->value("sid", "");
    s.uri = it->value("uri", "");
    s.idempotency_key = it->value("idempotency_key", "");
    if (auto d = it->find("date_created_unix_ns"); d != it->end() && d->is_number_integer()) {
      s.date_created = absl::FromUnixNanos(d->get<int64_t>());
    }
    return absl::StatusOr<Subscription>(std::move(s));
  }
  auto it = json.find("error");
  if (it == json.end() || !it->is_object()) return bad();
  const int code = it->value("code", 2);
  if (code <= 0 || code > 16) return bad();
  absl::Status status(static_cast<absl::StatusCode>(code), it->value("message", ""));
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
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(canonical.data(), canonical.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), length));
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
