// The one reload rule, whatever is read (one file, a directory of Secret files): compare a digest
// of what was read with the last check's; when it changed, parse it and install the value in a
// Snapshot, or keep the value in use and say why. Digests rather than contents are kept, so an
// unchanged source costs no parse or log line and no second copy of a secret stays in memory.
//
// Usage:
//   ReloadTarget<Policy> target(path, snapshot);
//   std::optional<std::string> contents = ReadFile(path);
//   return target.Offer(Sha256Hex(*contents), [&] { return ParsePolicy(*contents); }, error);
//
// Thread-safety: Offer() from one thread at a time (the Reloader's); readers use the Snapshot.
#ifndef GATEWAY_RELOAD_RELOAD_TARGET_H_
#define GATEWAY_RELOAD_RELOAD_TARGET_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/snapshot.h"
#include "reload/reloader.h"

namespace gateway {

template <typename T>
class ReloadTarget {
 public:
  // `name` prefixes error messages (a path); `target` must outlive this.
  ReloadTarget(std::string name, Snapshot<T>& target) : name_(std::move(name)), target_(target) {}

  // kUnchanged when `digest` equals the last one offered; otherwise calls `parse` once and
  // installs its value (kLoaded) or sets `*error` to "name: why" (kInvalid). A rejected digest
  // is remembered too: the same bad content is reported once, not at every check.
  ReloadResult Offer(std::string digest, absl::FunctionRef<absl::StatusOr<T>()> parse,
                     std::string* error) {
    if (last_digest_ == digest) return ReloadResult::kUnchanged;
    last_digest_ = std::move(digest);
    absl::StatusOr<T> parsed = parse();
    if (!parsed.ok()) {
      if (error != nullptr) *error = absl::StrCat(name_, ": ", parsed.status().message());
      return ReloadResult::kInvalid;
    }
    target_.Set(std::make_shared<const T>(*std::move(parsed)));
    return ReloadResult::kLoaded;
  }

  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  Snapshot<T>& target_;
  std::optional<std::string> last_digest_;  // Unset until the first offer.
};

}  // namespace gateway

#endif  // GATEWAY_RELOAD_RELOAD_TARGET_H_
