#include "common/rfc2822.h"

#include <string>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

absl::Time Utc(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

void ExpectParses(const std::string& text, absl::Time expected) {
  absl::StatusOr<absl::Time> parsed = ParseRfc2822Date(text);
  ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
  EXPECT_EQ(*parsed, expected) << text << " parsed as " << absl::FormatTime(*parsed);
}

void ExpectRejected(const std::string& text) {
  absl::StatusOr<absl::Time> parsed = ParseRfc2822Date(text);
  EXPECT_FALSE(parsed.ok()) << "\"" << text << "\" parsed as " << absl::FormatTime(*parsed);
  if (!parsed.ok()) {
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
}

TEST(ParseRfc2822DateTest, AcceptsFoldingWhitespace) {
  // RFC 2822 allows tabs and no space after the weekday's comma.
  EXPECT_EQ(*ParseRfc2822Date("Wed,18 Dec 2019 20:02:01 +0000"), Utc(2019, 12, 18, 20, 2, 1));
  EXPECT_EQ(*ParseRfc2822Date("Wed, 18 Dec 2019\t20:02:01 +0000"), Utc(2019, 12, 18, 20, 2, 1));
}

TEST(ParseRfc2822DateTest, ParsesTwilioExample) {
  ExpectParses("Wed, 18 Dec 2019 20:02:01 +0000", Utc(2019, 12, 18, 20, 2, 1));
}

TEST(ParseRfc2822DateTest, AppliesPositiveNumericZone) {
  // 20:02:01 at +05:30 is 14:32:01 UTC.
  ExpectParses("Wed, 18 Dec 2019 20:02:01 +0530", Utc(2019, 12, 18, 14, 32, 1));
}

TEST(ParseRfc2822DateTest, AppliesNegativeNumericZone) {
  // 20:02:01 at -08:00 is 04:02:01 UTC the next day.
  ExpectParses("Wed, 18 Dec 2019 20:02:01 -0800", Utc(2019, 12, 19, 4, 2, 1));
}

TEST(ParseRfc2822DateTest, AcceptsNamedUniversalZones) {
  ExpectParses("Wed, 18 Dec 2019 20:02:01 GMT", Utc(2019, 12, 18, 20, 2, 1));
  ExpectParses("Wed, 18 Dec 2019 20:02:01 UT", Utc(2019, 12, 18, 20, 2, 1));
}

TEST(ParseRfc2822DateTest, AcceptsUsZones) {
  ExpectParses("Wed, 18 Dec 2019 20:02:01 EST", Utc(2019, 12, 19, 1, 2, 1));
  ExpectParses("Wed, 18 Dec 2019 20:02:01 PDT", Utc(2019, 12, 19, 3, 2, 1));
}

TEST(ParseRfc2822DateTest, AcceptsSingleDigitDay) {
  ExpectParses("Tue, 3 Jun 2008 11:05:30 GMT", Utc(2008, 6, 3, 11, 5, 30));
}

TEST(ParseRfc2822DateTest, AcceptsMissingDayOfWeek) {
  ExpectParses("18 Dec 2019 20:02:01 +0000", Utc(2019, 12, 18, 20, 2, 1));
}

TEST(ParseRfc2822DateTest, AcceptsMissingSeconds) {
  ExpectParses("Wed, 18 Dec 2019 20:02 +0000", Utc(2019, 12, 18, 20, 2, 0));
}

TEST(ParseRfc2822DateTest, AcceptsTwoDigitYear) {
  // RFC 2822 section 4.3: 00-49 are 2000-2049, 50-99 are 1950-1999.
  ExpectParses("Tue, 3 Jun 08 11:05:30 GMT", Utc(2008, 6, 3, 11, 5, 30));
  ExpectParses("Thu, 3 Jun 99 11:05:30 GMT", Utc(1999, 6, 3, 11, 5, 30));
}

TEST(ParseRfc2822DateTest, AcceptsExtraWhitespace) {
  ExpectParses("  Wed,  18 Dec  2019 20:02:01   +0000 ", Utc(2019, 12, 18, 20, 2, 1));
}

TEST(ParseRfc2822DateTest, AcceptsLeapDay) {
  ExpectParses("Sat, 29 Feb 2020 00:00:00 +0000", Utc(2020, 2, 29, 0, 0, 0));
}

TEST(ParseRfc2822DateTest, RejectsGarbage) {
  ExpectRejected("not a date");
  ExpectRejected("2019-12-18T20:02:01Z");
  ExpectRejected("1576699321");
}

TEST(ParseRfc2822DateTest, RejectsEmpty) {
  ExpectRejected("");
  ExpectRejected("   ");
}

TEST(ParseRfc2822DateTest, RejectsImpossibleDates) {
  ExpectRejected("32 Dec 2019 20:02:01 +0000");
  ExpectRejected("0 Dec 2019 20:02:01 +0000");
  ExpectRejected("30 Feb 2020 20:02:01 +0000");
  ExpectRejected("29 Feb 2019 20:02:01 +0000");
  ExpectRejected("31 Apr 2019 20:02:01 +0000");
}

TEST(ParseRfc2822DateTest, RejectsBadTimeOfDay) {
  ExpectRejected("18 Dec 2019 24:00:00 +0000");
  ExpectRejected("18 Dec 2019 20:60:00 +0000");
  ExpectRejected("18 Dec 2019 20:2:01 +0000");
  ExpectRejected("18 Dec 2019 20 +0000");
  ExpectRejected("18 Dec 2019 20:02:01:00 +0000");
}

TEST(ParseRfc2822DateTest, RejectsBadMonth) {
  ExpectRejected("Wed, 18 Dex 2019 20:02:01 +0000");
  ExpectRejected("Wed, 18 12 2019 20:02:01 +0000");
  ExpectRejected("Wed, 18 December 2019 20:02:01 +0000");
}

TEST(ParseRfc2822DateTest, RejectsBadYear) {
  ExpectRejected("Wed, 18 Dec 201 20:02:01 +0000");
  ExpectRejected("Wed, 18 Dec 20190 20:02:01 +0000");
}

TEST(ParseRfc2822DateTest, RejectsBadZone) {
  ExpectRejected("Wed, 18 Dec 2019 20:02:01 XYZ");
  ExpectRejected("Wed, 18 Dec 2019 20:02:01 +000");
  ExpectRejected("Wed, 18 Dec 2019 20:02:01 +0060");
  ExpectRejected("Wed, 18 Dec 2019 20:02:01 0000");
  ExpectRejected("Wed, 18 Dec 2019 20:02:01");
}

TEST(ParseRfc2822DateTest, RejectsUnknownDayOfWeek) {
  ExpectRejected("Xyz, 18 Dec 2019 20:02:01 +0000");
  ExpectRejected("Wednesday, 18 Dec 2019 20:02:01 +0000");
  ExpectRejected("Wed 18 Dec 2019 20:02:01 +0000");  // The comma is part of the syntax.
}

TEST(ParseRfc2822DateTest, RejectsDayOfWeekThatContradictsTheDate) {
  // 18 Dec 2019 was a Wednesday.
  ExpectRejected("Mon, 18 Dec 2019 20:02:01 +0000");
  ExpectRejected("Thu, 18 Dec 2019 20:02:01 +0000");
  ExpectRejected("Wed, 3 Jun 2008 11:05:30 GMT");  // A Tuesday.
}

TEST(ParseRfc2822DateTest, DayOfWeekIsCaseInsensitive) {
  ExpectParses("wed, 18 dec 2019 20:02:01 +0000", Utc(2019, 12, 18, 20, 2, 1));
}

TEST(ParseRfc2822DateTest, RejectsExtraTokens) {
  ExpectRejected("Wed, 18 Dec 2019 20:02:01 +0000 extra");
  ExpectRejected("Wed, 18 Dec 2019 20:02:01 +0000 +0000");
}

}  // namespace
}  // namespace gateway
