#include "common/rfc2822.h"

#include <algorithm>
#include <array>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"

namespace gateway {
namespace {

constexpr std::array<absl::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<absl::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu",
                                                    "Fri", "Sat", "Sun"};

bool ParseDigits(absl::string_view text, size_t min_len, size_t max_len, int* out) {
  if (text.size() < min_len || text.size() > max_len) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return absl::SimpleAtoi(text, out);
}

// Offset east of UTC in minutes.
bool ParseZone(absl::string_view zone, int* minutes) {
  if (zone.size() == 5 && (zone[0] == '+' || zone[0] == '-')) {
    int hh = 0;
    int mm = 0;
    if (!ParseDigits(zone.substr(1, 2), 2, 2, &hh) || !ParseDigits(zone.substr(3, 2), 2, 2, &mm) ||
        mm > 59) {
      return false;
    }
    *minutes = (zone[0] == '-' ? -1 : 1) * (hh * 60 + mm);
    return true;
  }
  struct Named {
    absl::string_view name;
    int hours;
  };
  static constexpr Named kNamed[] = {{"UT", 0},   {"GMT", 0},  {"UTC", 0},  {"Z", 0},
                                     {"EST", -5}, {"EDT", -4}, {"CST", -6}, {"CDT", -5},
                                     {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
  for (const Named& n : kNamed) {
    if (absl::EqualsIgnoreCase(zone, n.name)) {
      *minutes = n.hours * 60;
      return true;
    }
  }
  return false;
}

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("not an RFC 2822 date (", why, "): \"",
                                                 absl::CEscape(text.substr(0, 64)), "\""));
}

}  // namespace

absl::StatusOr<absl::Time> ParseRfc2822Date(absl::string_view text) {
  // Folding whitespace is spaces or tabs, and none is required after the weekday's comma.
  absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  std::string spaced;
  if (trimmed.size() > 4 && trimmed[3] == ',' && trimmed[4] != ' ' && trimmed[4] != '\t') {
    spaced = absl::StrCat(trimmed.substr(0, 4), " ", trimmed.substr(4));
  } else {
    spaced = std::string(trimmed);
  }
  std::vector<absl::string_view> parts =
      absl::StrSplit(spaced, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  int weekday = -1;  // 0 = Monday, as kDays.
  if (!parts.empty() && parts[0].size() == 4 && parts[0].back() == ',') {
    absl::string_view day = parts[0].substr(0, 3);
    for (size_t i = 0; i < kDays.size(); ++i) {
      if (absl::EqualsIgnoreCase(kDays[i], day)) weekday = static_cast<int>(i);
    }
    if (weekday < 0) return Bad(text, "unknown day of week");
    parts.erase(parts.begin());
  }
  if (parts.size() != 5) return Bad(text, "expected day month year time zone");

  int day = 0;
  if (!ParseDigits(parts[0], 1, 2, &day) || day < 1) return Bad(text, "bad day");
  int month = 0;
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (absl::EqualsIgnoreCase(parts[1], kMonths[i])) month = static_cast<int>(i) + 1;
  }
  if (month == 0) return Bad(text, "unknown month");
  int year = 0;
  if (!ParseDigits(parts[2], 2, 4, &year) || parts[2].size() == 3) return Bad(text, "bad year");
  if (parts[2].size() == 2) year += year < 50 ? 2000 : 1900;  // RFC 2822 section 4.3.

  std::vector<absl::string_view> hms = absl::StrSplit(parts[3], ':');
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (hms.size() < 2 || hms.size() > 3 || !ParseDigits(hms[0], 2, 2, &hour) ||
      !ParseDigits(hms[1], 2, 2, &minute) ||
      (hms.size() == 3 && !ParseDigits(hms[2], 2, 2, &second)) || hour > 23 || minute > 59 ||
      second > 60) {
    return Bad(text, "bad time of day");
  }
  int zone_minutes = 0;
  if (!ParseZone(parts[4], &zone_minutes)) return Bad(text, "bad time zone");

  const absl::CivilSecond civil(year, month, day, hour, minute, std::min(second, 59));
  // CivilSecond normalizes out-of-range fields (Feb 30 -> Mar 2); such dates are invalid here.
  if (civil.day() != day || civil.month() != month) return Bad(text, "no such date");
  // RFC 2822 3.3: the day of week, when present, must be the one the date falls on.
  if (weekday >= 0 && static_cast<int>(absl::GetWeekday(absl::CivilDay(civil))) != weekday) {
    return Bad(text, "day of week does not match the date");
  }
  return absl::FromCivil(civil, absl::UTCTimeZone()) - absl::Minutes(zone_minutes);
}

}  // namespace gateway
