#include "auth/caller_policy.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "auth/caller_tokens.h"
#include "model/sid.h"

namespace gateway {

absl::StatusOr<CallerPolicy> CallerPolicy::Parse(absl::string_view text) {
  using Json = nlohmann::json;
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("is not valid JSON");
  if (!json.is_object() || json.size() != 1 || !json.contains("callers") ||
      !json["callers"].is_object()) {
    return absl::InvalidArgumentError("must be an object with one member, \"callers\"");
  }
  CallerPolicy out;
  for (const auto& [caller, entry] : json["callers"].items()) {
    auto invalid = [&caller = caller](absl::string_view problem) {
      return absl::InvalidArgumentError(absl::StrCat("callers.", caller, ": ", problem));
    };
    if (!IsCallerName(caller)) return invalid("name has characters outside [A-Za-z0-9._-:/@]");
    if (!entry.is_object() || entry.size() != 1 || !entry.contains("accounts") ||
        !entry["accounts"].is_array()) {
      return invalid("must be {\"accounts\": [...]}");
    }
    std::vector<std::string> accounts;
    for (const Json& account : entry["accounts"]) {
      if (!account.is_string()) return invalid("accounts must be strings");
      const std::string& sid = account.get_ref<const std::string&>();
      if (sid != "*" && sid != "default" && !IsSid(sid, "AC")) {
        return invalid(absl::StrCat("\"", sid.substr(0, 40),
                                    "\" is not \"*\", \"default\" or an account SID (AC...)"));
      }
      accounts.push_back(sid);
    }
    out.accounts_by_caller_.emplace(caller, std::move(accounts));
  }
  return out;
}

bool CallerPolicy::Allows(absl::string_view caller, absl::string_view account_sid,
                          absl::string_view default_account_sid) const {
  auto it = accounts_by_caller_.find(caller);
  if (it == accounts_by_caller_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(), [&](const std::string& allowed) {
    return allowed == "*" || allowed == account_sid ||
           (allowed == "default" && account_sid == default_account_sid);
  });
}

}  // namespace gateway
