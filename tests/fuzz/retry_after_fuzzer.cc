// Fuzzes the two date-bearing headers' parsers with the whole input as the header value:
// ParseRetryAfter (delta-seconds or IMF-fixdate) and ParseRfc2822Date (Twilio's date_created).
// Traps on a negative or clock-inconsistent retry delay, and on an accepted date that is not a
// finite time or does not survive formatting and parsing again.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/rfc2822.h"
#include "twilio/twilio_api.h"

namespace gateway {
namespace {

void Require(bool holds, const char* invariant) {
  if (holds) return;
  std::fprintf(stderr, "invariant violated: %s\n", invariant);
  __builtin_trap();
}

bool IsFinite(absl::Time t) { return t != absl::InfiniteFuture() && t != absl::InfinitePast(); }

void FuzzParseRetryAfter(absl::string_view value) {
  // Ascending clocks: the Unix epoch, Twilio's era, and a far future.
  const absl::Time clocks[] = {
      absl::UnixEpoch(),
      absl::FromCivil(absl::CivilSecond(2024, 6, 1, 12, 0, 0), absl::UTCTimeZone()),
      absl::FromCivil(absl::CivilSecond(9000, 1, 1, 0, 0, 0), absl::UTCTimeZone()),
  };
  std::optional<absl::Duration> previous;
  for (size_t i = 0; i < std::size(clocks); ++i) {
    const std::optional<absl::Duration> delay = ParseRetryAfter(value, clocks[i]);
    if (i > 0) {
      Require(delay.has_value() == previous.has_value(),
              "whether it parses does not depend on now");
    }
    if (!delay.has_value()) {
      previous = delay;
      continue;
    }
    Require(*delay >= absl::ZeroDuration(), "ParseRetryAfter never returns a negative duration");
    if (previous.has_value()) {
      Require(*delay <= *previous, "a later clock never yields a longer delay");
    }
    previous = delay;
  }

  const absl::string_view stripped = absl::StripAsciiWhitespace(value);
  if (!stripped.empty() && std::all_of(stripped.begin(), stripped.end(), absl::ascii_isdigit)) {
    int64_t seconds = 0;
    if (stripped.size() <= 9 && absl::SimpleAtoi(stripped, &seconds)) {
      Require(previous == absl::Seconds(seconds), "delta-seconds are taken as they are");
    } else {
      Require(!previous.has_value(), "over-long delta-seconds are rejected");
    }
  }
}

void FuzzParseRfc2822Date(absl::string_view text) {
  const absl::StatusOr<absl::Time> parsed = ParseRfc2822Date(text);
  if (!parsed.ok()) {
    Require(parsed.status().code() == absl::StatusCode::kInvalidArgument,
            "a bad date is INVALID_ARGUMENT");
    return;
  }
  const absl::Time t = *parsed;
  Require(IsFinite(t), "an accepted RFC 2822 date is a finite time");
  Require(absl::ToUnixSeconds(t) * absl::Seconds(1) == t - absl::UnixEpoch(),
          "an accepted RFC 2822 date has whole seconds");
  const absl::CivilSecond utc = absl::ToCivilSecond(t, absl::UTCTimeZone());
  if (utc.year() < 0 || utc.year() > 9999) return;  // A zone offset moved it out of 4 digits.

  const std::string rfc2822 =
      absl::FormatTime("%a, %d %b %E4Y %H:%M:%S +0000", t, absl::UTCTimeZone());
  const absl::StatusOr<absl::Time> again = ParseRfc2822Date(rfc2822);
  Require(again.ok() && *again == t, "an accepted RFC 2822 date round-trips");

  // The same instant as an IMF-fixdate Retry-After: the delay is measured from now.
  const std::string imf = absl::FormatTime("%a, %d %b %E4Y %H:%M:%S GMT", t, absl::UTCTimeZone());
  Require(ParseRetryAfter(imf, t - absl::Seconds(90)) == absl::Seconds(90),
          "an HTTP date 90 s ahead is a 90 s delay");
  Require(ParseRetryAfter(imf, t + absl::Seconds(1)) == absl::ZeroDuration(),
          "a past HTTP date is no delay");
}

}  // namespace
}  // namespace gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  gateway::FuzzParseRetryAfter(input);
  gateway::FuzzParseRfc2822Date(input);
  return 0;
}
