// One file whose parsed value is swapped into a Snapshot when its content changes and parses;
// a file that fails to parse leaves the previous value in use.
//
// Thread-safety: Check() from one thread at a time (the Reloader's); readers use the Snapshot.
#ifndef GATEWAY_RELOAD_RELOADABLE_FILE_H_
#define GATEWAY_RELOAD_RELOADABLE_FILE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/file.h"
#include "common/sha256.h"
#include "common/snapshot.h"
#include "reload/reloader.h"

namespace gateway {

template <typename T>
class ReloadableFile {
 public:
  using Parser = std::function<absl::StatusOr<T>(absl::string_view contents)>;

  ReloadableFile(std::string path, Parser parse, Snapshot<T>& target)
      : path_(std::move(path)), parse_(std::move(parse)), target_(target) {}

  ReloadResult Check(std::string* error = nullptr) {
    std::optional<std::string> contents = ReadFile(path_);
    // A missing file is a change like any other: it is reported, and the old value stays.
    std::string digest = contents.has_value() ? Sha256Hex(*contents) : "missing";
    if (checked_once_ && digest == last_digest_) return ReloadResult::kUnchanged;
    checked_once_ = true;
    last_digest_ = std::move(digest);
    if (!contents.has_value()) {
      if (error != nullptr) *error = absl::StrCat(path_, ": cannot be read");
      return ReloadResult::kInvalid;
    }
    absl::StatusOr<T> parsed = parse_(*contents);
    if (!parsed.ok()) {
      if (error != nullptr) *error = absl::StrCat(path_, ": ", parsed.status().message());
      return ReloadResult::kInvalid;
    }
    target_.Set(std::make_shared<const T>(*std::move(parsed)));
    return ReloadResult::kLoaded;
  }

 private:
  const std::string path_;
  const Parser parse_;
  Snapshot<T>& target_;
  std::string last_digest_;
  bool checked_once_ = false;
};

}  // namespace gateway

#endif  // GATEWAY_RELOAD_RELOADABLE_FILE_H_
