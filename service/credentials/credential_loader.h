// Where the Twilio credentials come from: the environment, or a directory with one file per
// value (a Kubernetes Secret mounted as a volume), re-read when its files change.
//
// Names are the same in both: TWILIO_ACCOUNT_SID, and TWILIO_API_KEY + TWILIO_API_SECRET
// (recommended) or TWILIO_AUTH_TOKEN.
//
// Usage:
//   Snapshot<TwilioAccount> account;
//   CredentialDirectory directory("/var/run/secrets/twilio", account);
//   directory.Check();  // at start, then periodically: installs changed, valid credentials
//
// Thread-safety: ReadTwilioAccount is pure. CredentialDirectory::Check() is called from one
// thread at a time; readers use the Snapshot from any thread.
#ifndef GATEWAY_CREDENTIALS_CREDENTIAL_LOADER_H_
#define GATEWAY_CREDENTIALS_CREDENTIAL_LOADER_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/snapshot.h"
#include "reload/reload_target.h"
#include "reload/reloader.h"
#include "twilio/twilio_api.h"

namespace gateway {

// Named values: the process environment (config's ParseConfig), or a credentials directory's files.
using ValueLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Reads and checks the credential values. Errors name the value, never its content.
absl::StatusOr<TwilioAccount> ReadTwilioAccount(const ValueLookup& lookup);

class CredentialDirectory {
 public:
  CredentialDirectory(std::string directory, Snapshot<TwilioAccount>& account);

  // Reads the files; when they differ from the last read, validates them and installs them
  // (kLoaded) or keeps the credentials in use (kInvalid, `error` says why, without values).
  ReloadResult Check(std::string* error = nullptr);

  const std::string& directory() const { return account_.name(); }

 private:
  ReloadTarget<TwilioAccount> account_;  // Named by the directory.
};

}  // namespace gateway

#endif  // GATEWAY_CREDENTIALS_CREDENTIAL_LOADER_H_
