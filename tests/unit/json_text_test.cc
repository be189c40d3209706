#include "common/json_text.h"

#include <nlohmann/json.hpp>
#include <string>

#include "gtest/gtest.h"

namespace gateway {
namespace {

std::string Quote(absl::string_view text) {
  std::string out;
  AppendJsonString(&out, text);
  return out;
}

// What a JSON parser reads back from Quote(text).
std::string ReadBack(absl::string_view text) {
  return nlohmann::json::parse(Quote(text)).get<std::string>();
}

TEST(AppendJsonStringTest, CopiesPlainTextAndEscapesQuoteAndBackslash) {
  EXPECT_EQ(Quote("plain text/~"), R"("plain text/~")");
  EXPECT_EQ(Quote(R"(say "hi" \o/)"), R"("say \"hi\" \\o/")");
  EXPECT_EQ(Quote(""), R"("")");
}

TEST(AppendJsonStringTest, EscapesEveryControlCharacter) {
  EXPECT_EQ(Quote("a\nb\rc\td"), R"("a\nb\rc\td")");
  EXPECT_EQ(Quote(std::string("\0\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  for (int c = 0; c < 0x20; ++c) {
    const std::string text(1, static_cast<char>(c));
    EXPECT_EQ(ReadBack(text), text) << c;
  }
  EXPECT_EQ(Quote("\x7f"), "\"\x7f\"");  // DEL needs no escape in JSON.
}

TEST(AppendJsonStringTest, KeepsValidUtf8) {
  const std::string text =
      "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\x9E \xEF\xBF\xBF \xF4\x8F\xBF\xBF";
  EXPECT_EQ(Quote(text), "\"" + text + "\"");
  EXPECT_EQ(ReadBack(text), text);
}

// nlohmann's dump() throws on these; the output must stay valid JSON instead.
TEST(AppendJsonStringTest, ReplacesEachInvalidUtf8ByteWithReplacementCharacter) {
  const std::string kFffd = "\xEF\xBF\xBD";
  EXPECT_EQ(ReadBack("a\xC3"), "a" + kFffd);                   // Truncated 2-byte sequence.
  EXPECT_EQ(ReadBack("\xE2\x82"), kFffd + kFffd);              // Truncated 3-byte sequence.
  EXPECT_EQ(ReadBack("\x80x"), kFffd + "x");                   // Lone continuation byte.
  EXPECT_EQ(ReadBack("\xC0\xAF"), kFffd + kFffd);              // Overlong '/'.
  EXPECT_EQ(ReadBack("\xE0\x80\xAF"), kFffd + kFffd + kFffd);  // Overlong, 3 bytes.
  EXPECT_EQ(ReadBack("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // UTF-16 surrogate.
  EXPECT_EQ(ReadBack("\xF4\x90\x80\x80"), std::string() + kFffd + kFffd + kFffd + kFffd);
  EXPECT_EQ(ReadBack("\xF5\xFF"), kFffd + kFffd);
  EXPECT_EQ(ReadBack("ok\xC3\xA9\xC3"), "ok\xC3\xA9" + kFffd);
}

TEST(Utf8PrefixTest, KeepsShortTextWhole) {
  EXPECT_EQ(Utf8Prefix("abc", 3), "abc");
  EXPECT_EQ(Utf8Prefix("abc", 10), "abc");
  EXPECT_EQ(Utf8Prefix("", 0), "");
}

TEST(Utf8PrefixTest, CutsBeforeASequenceItWouldSplit) {
  const std::string euro = "\xE2\x82\xAC";
  EXPECT_EQ(Utf8Prefix("ab" + euro, 2), "ab");
  EXPECT_EQ(Utf8Prefix("ab" + euro, 3), "ab");
  EXPECT_EQ(Utf8Prefix("ab" + euro, 4), "ab");
  EXPECT_EQ(Utf8Prefix("ab" + euro + "c", 5), "ab" + euro);
  EXPECT_EQ(Utf8Prefix("abcd", 2), "ab");
}

}  // namespace
}  // namespace gateway
