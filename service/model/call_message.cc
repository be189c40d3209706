#include "model/call_message.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace gateway {
namespace {

// Digits only: SimpleAtoi alone would also take a sign or surrounding spaces.
bool ParseDigits(absl::string_view text, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, out);
}

}  // namespace

std::optional<LogPosition> LogPosition::Parse(absl::string_view cursor) {
  const std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(cursor, absl::MaxSplits('-', 1));
  LogPosition position;
  if (!ParseDigits(parts.first, &position.millis) ||
      !ParseDigits(parts.second, &position.sequence)) {
    return std::nullopt;
  }
  return position;
}

std::string LogPosition::ToString() const { return absl::StrCat(millis, "-", sequence); }

}  // namespace gateway
