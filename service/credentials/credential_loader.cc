#include "credentials/credential_loader.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/sha256.h"
#include "model/sid.h"

namespace gateway {
namespace {

constexpr const char* kNames[] = {"TWILIO_ACCOUNT_SID", "TWILIO_API_KEY", "TWILIO_API_SECRET",
                                  "TWILIO_AUTH_TOKEN"};

absl::Status Invalid(absl::string_view name, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(name, " ", problem));
}

// A Secret file's value; `kubectl create secret --from-file` keeps a trailing newline.
std::optional<std::string> ReadValueFile(const std::string& path) {
  std::optional<std::string> value = ReadFile(path);
  if (!value.has_value()) return std::nullopt;
  while (!value->empty() && (value->back() == '\n' || value->back() == '\r')) value->pop_back();
  return value;
}

}  // namespace

absl::StatusOr<TwilioAccount> ReadTwilioAccount(const ValueLookup& lookup) {
  TwilioAccount out;
  std::optional<std::string> account = lookup("TWILIO_ACCOUNT_SID");
  if (!account || account->empty()) return Invalid("TWILIO_ACCOUNT_SID", "is not set");
  if (!IsSid(*account, "AC")) {
    return Invalid("TWILIO_ACCOUNT_SID", "must be AC followed by 32 hexadecimal digits");
  }
  out.account_sid = *account;
  std::optional<std::string> key = lookup("TWILIO_API_KEY");
  if (key && !key->empty()) {
    if (!IsSid(*key, "SK")) {
      return Invalid("TWILIO_API_KEY", "must be SK followed by 32 hexadecimal digits");
    }
    std::optional<std::string> secret = lookup("TWILIO_API_SECRET");
    if (!secret || secret->empty()) {
      return Invalid("TWILIO_API_SECRET", "is not set (required with TWILIO_API_KEY)");
    }
    out.credentials = {*key, *std::move(secret)};
    out.api_key = true;
    // Optional beside a key: only the webhook receiver needs it, and the gateway checks that
    // when it starts the receiver.
    out.auth_token = lookup("TWILIO_AUTH_TOKEN").value_or("");
    return out;
  }
  std::optional<std::string> token = lookup("TWILIO_AUTH_TOKEN");
  if (!token || token->empty()) {
    return Invalid("TWILIO_AUTH_TOKEN",
                   "is not set (or set TWILIO_API_KEY and TWILIO_API_SECRET, recommended)");
  }
  out.auth_token = *token;
  out.credentials = {*account, *std::move(token)};
  return out;
}

CredentialDirectory::CredentialDirectory(std::string directory, Snapshot<TwilioAccount>& account)
    : account_(std::move(directory), account) {}

ReloadResult CredentialDirectory::Check(std::string* error) {
  // Kubernetes swaps a Secret volume's files at once (an atomic symlink flip), so one pass
  // over the files sees either the old set or the new one.
  absl::flat_hash_map<std::string, std::string> values;
  std::string digest_input;
  for (const char* name : kNames) {
    std::optional<std::string> value = ReadValueFile(absl::StrCat(directory(), "/", name));
    absl::StrAppend(&digest_input, name, value.has_value() ? "=" : "-",
                    value.has_value() ? Sha256Hex(*value) : "", "\n");
    if (value.has_value()) values.emplace(name, *std::move(value));
  }
  return account_.Offer(
      Sha256Hex(digest_input),
      [&values] {
        return ReadTwilioAccount([&values](const std::string& name) -> std::optional<std::string> {
          auto it = values.find(name);
          if (it == values.end()) return std::nullopt;
          return it->second;
        });
      },
      error);
}

}  // namespace gateway
