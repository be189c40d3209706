// JSON text written and read by hand where it is on every request's path (log lines,
// idempotency records, Twilio's answer): building an nlohmann::json document to dump it costs six
// times as much (callgrind), and parsing one costs 37 allocations for Twilio's five strings.
//
// The output is always valid JSON. Invalid UTF-8 becomes U+FFFD, where nlohmann's dump() would
// throw, so a truncated or hostile string cannot take the process down.
//
// ReadJsonStrings() accepts exactly the texts nlohmann::json::parse() accepts (the fuzz target
// tests/fuzz/twilio_response_fuzzer.cc compares the two) and reads a member as nlohmann's
// document would: the last of duplicate names wins.
//
// Thread-safety: pure functions.
#ifndef GATEWAY_COMMON_JSON_TEXT_H_
#define GATEWAY_COMMON_JSON_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace gateway {

// Appends `text` as a quoted JSON string (RFC 8259 escapes).
void AppendJsonString(std::string* out, absl::string_view text);

// The longest prefix of `text` no longer than `max_bytes` that does not end inside a UTF-8
// sequence.
absl::string_view Utf8Prefix(absl::string_view text, size_t max_bytes);

// One member ReadJsonStrings() looks for.
struct JsonStringMember {
  absl::string_view name;
  // Set to the member's string (unescaped); cleared when it is null; untouched when missing.
  std::string* value;
};

// Reads the string members named in `members` from `text`, which must be one valid JSON object
// (RFC 8259: UTF-8, whitespace around it only); other members are checked and skipped. Errors
// are INVALID_ARGUMENT: "is not valid JSON", "is not a JSON object", or "property NAME is not a
// string" for a named member of another type (the first of `members`). At most 64 members.
absl::Status ReadJsonStrings(absl::string_view text, absl::Span<const JsonStringMember> members);

}  // namespace gateway

#endif  // GATEWAY_COMMON_JSON_TEXT_H_
