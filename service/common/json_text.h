// JSON text written by hand where it is on every request's path (log lines, idempotency
// records): building an nlohmann::json document to dump it costs six times as much (callgrind).
//
// The output is always valid JSON. Invalid UTF-8 becomes U+FFFD, where nlohmann's dump() would
// throw, so a truncated or hostile string cannot take the process down.
#ifndef GATEWAY_COMMON_JSON_TEXT_H_
#define GATEWAY_COMMON_JSON_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace gateway {

// Appends `text` as a quoted JSON string (RFC 8259 escapes).
void AppendJsonString(std::string* out, absl::string_view text);

// The longest prefix of `text` no longer than `max_bytes` that does not end inside a UTF-8
// sequence.
absl::string_view Utf8Prefix(absl::string_view text, size_t max_bytes);

}  // namespace gateway

#endif  // GATEWAY_COMMON_JSON_TEXT_H_
