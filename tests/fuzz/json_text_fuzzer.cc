// Fuzzes the hand-written JSON string output (common/json_text.h) that log lines and idempotency
// records are made of. Traps unless every input becomes one valid JSON string that reads back as
// the input (valid UTF-8) or with U+FFFD in place of the invalid bytes, and unless Utf8Prefix()
// returns a prefix within its bound that never ends inside a character.
//
// Input format: the first two bytes are Utf8Prefix()'s bound (big-endian); the rest is the text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "common/json_text.h"

namespace {

void Require(bool holds, const char* invariant) {
  if (holds) return;
  std::fprintf(stderr, "invariant violated: %s\n", invariant);
  __builtin_trap();
}

// nlohmann's strict dump() throws exactly on invalid UTF-8.
bool IsValidUtf8(absl::string_view text) {
  try {
    (void)nlohmann::json(std::string(text)).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t bound = static_cast<size_t>(data[0]) << 8 | data[1];
  const absl::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  const bool valid = IsValidUtf8(text);

  std::string out = "x";  // Appends: what is already there stays.
  gateway::AppendJsonString(&out, text);
  Require(out[0] == 'x', "appends without touching what was there");
  const nlohmann::json parsed =
      nlohmann::json::parse(out.substr(1), nullptr, /*allow_exceptions=*/false);
  Require(parsed.is_string(), "the output is one valid JSON string");
  const std::string& back = parsed.get_ref<const std::string&>();
  if (valid) {
    Require(back == text, "valid UTF-8 reads back unchanged");
  } else {
    Require(absl::StrContains(back, "\xEF\xBF\xBD"), "invalid bytes become U+FFFD");
  }
  Require(out.find('\n') == std::string::npos, "one line: newlines are escaped");

  const absl::string_view prefix = gateway::Utf8Prefix(text, bound);
  Require(prefix.data() == text.data(), "a prefix of the text");
  Require(prefix.size() <= bound || prefix.size() == text.size(), "within the bound");
  if (text.size() > bound) Require(prefix.size() + 3 >= bound, "backs off at most 3 bytes");
  if (text.size() <= bound) Require(prefix.size() == text.size(), "short text stays whole");
  if (valid) Require(IsValidUtf8(prefix), "never ends inside a character");
  return 0;
}
