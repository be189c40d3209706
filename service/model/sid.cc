#include "model/sid.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace gateway {

bool IsSid(absl::string_view value, absl::string_view prefix) {
  if (value.size() != prefix.size() + 32 || !absl::StartsWith(value, prefix)) return false;
  for (char c : value.substr(prefix.size())) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  return true;
}

}  // namespace gateway
