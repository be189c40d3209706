// One file whose parsed value is swapped into a Snapshot when its content changes and parses;
// a file that fails to parse leaves the previous value in use.
//
// Thread-safety: Check() from one thread at a time (the Reloader's); readers use the Snapshot.
#ifndef GATEWAY_RELOAD_RELOADABLE_FILE_H_
#define GATEWAY_RELOAD_RELOADABLE_FILE_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/file.h"
#include "common/sha256.h"
#include "common/snapshot.h"
#include "reload/reload_target.h"
#include "reload/reloader.h"

namespace gateway {

template <typename T>
class ReloadableFile {
 public:
  using Parser = std::function<absl::StatusOr<T>(absl::string_view contents)>;

  ReloadableFile(std::string path, Parser parse, Snapshot<T>& target)
      : parse_(std::move(parse)), target_(std::move(path), target) {}

  ReloadResult Check(std::string* error = nullptr) {
    std::optional<std::string> contents = ReadFile(target_.name());
    // A missing file is a change like any other: it is reported, and the old value stays.
    std::string digest = contents.has_value() ? Sha256Hex(*contents) : "missing";
    return target_.Offer(
        std::move(digest),
        [&]() -> absl::StatusOr<T> {
          if (!contents.has_value()) return absl::NotFoundError("cannot be read");
          return parse_(*contents);
        },
        error);
  }

 private:
  const Parser parse_;
  ReloadTarget<T> target_;  // Named by the path.
};

}  // namespace gateway

#endif  // GATEWAY_RELOAD_RELOADABLE_FILE_H_
