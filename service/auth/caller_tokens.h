// Bearer tokens for callers without client certificates, stored as SHA-256 digests so the
// file (and this process) never holds a usable token. One line per token:
//
//   # caller        digest of the token (printf %s "$TOKEN" | sha256sum)
//   billing-worker  sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//
// A caller may have several lines, so a token is rotated by adding the new one, moving the
// caller over, then deleting the old line.
//
// Thread-safety: immutable once parsed.
#ifndef GATEWAY_AUTH_CALLER_TOKENS_H_
#define GATEWAY_AUTH_CALLER_TOKENS_H_

#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway {

class CallerTokens {
 public:
  // Errors name the line, never the digest.
  static absl::StatusOr<CallerTokens> Parse(absl::string_view text);

  // The caller a token belongs to.
  std::optional<std::string> Find(absl::string_view token) const;

  size_t size() const { return callers_by_digest_.size(); }

 private:
  absl::flat_hash_map<std::string, std::string> callers_by_digest_;
};

// Caller names: what policy files, audit lines and metrics use. Letters, digits and . _ - : / @
// (so SPIFFE IDs and DNS names fit), 1 to 256 characters.
bool IsCallerName(absl::string_view name);

}  // namespace gateway

#endif  // GATEWAY_AUTH_CALLER_TOKENS_H_
