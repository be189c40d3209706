#include "auth/caller_tokens.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/sha256.h"

namespace gateway {

bool IsCallerName(absl::string_view name) {
  if (name.empty() || name.size() > 256) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-' && c != ':' && c != '/' &&
        c != '@') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<CallerTokens> CallerTokens::Parse(absl::string_view text) {
  CallerTokens out;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto invalid = [line_number](absl::string_view problem) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", problem));
    };
    if (fields.size() != 2) return invalid("want \"caller sha256:HEX\"");
    if (!IsCallerName(fields[0]))
      return invalid("caller name has characters outside [A-Za-z0-9._-:/@]");
    absl::string_view digest = fields[1];
    if (!absl::ConsumePrefix(&digest, "sha256:") || digest.size() != 64 ||
        !std::all_of(digest.begin(), digest.end(),
                     [](char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f'); })) {
      return invalid("digest must be sha256: followed by 64 lowercase hexadecimal digits");
    }
    if (!out.callers_by_digest_.emplace(std::string(digest), std::string(fields[0])).second) {
      return invalid("the same token digest appears twice");
    }
  }
  return out;
}

std::optional<std::string> CallerTokens::Find(absl::string_view token) const {
  // Looked up by digest: timing reveals at most something about a digest, not about a token.
  auto it = callers_by_digest_.find(Sha256Hex(token));
  if (it == callers_by_digest_.end()) return std::nullopt;
  return it->second;
}

}  // namespace gateway
