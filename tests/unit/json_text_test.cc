#include "common/json_text.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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

// ---- ReadJsonStrings ----------------------------------------------------------------------

struct Read {
  absl::Status status;
  std::string sid = "unset";
  std::string uri = "unset";
};

Read ReadSidAndUri(absl::string_view text) {
  Read read;
  read.status = ReadJsonStrings(text, {{"sid", &read.sid}, {"uri", &read.uri}});
  return read;
}

// Whether nlohmann's parser accepts `text`: the reader must agree on every text.
bool NlohmannAccepts(absl::string_view text) {
  return !nlohmann::json::parse(text.begin(), text.end(), nullptr, false).is_discarded();
}

TEST(ReadJsonStringsTest, ReadsNamedStringsAndLeavesMissingOnesAlone) {
  Read read = ReadSidAndUri(R"({"sid": "ZY1", "other": "x"})");
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(read.sid, "ZY1");
  EXPECT_EQ(read.uri, "unset");
  EXPECT_TRUE(ReadSidAndUri(" {} ").status.ok());
}

TEST(ReadJsonStringsTest, NullClearsTheValue) {
  Read read = ReadSidAndUri(R"({"sid":null,"uri":"u"})");
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(read.sid, "");
  EXPECT_EQ(read.uri, "u");
}

TEST(ReadJsonStringsTest, UnescapesStringsAndNames) {
  Read read = ReadSidAndUri(
      R"({"\u0073id":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00","uri":"\u0000"})");
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(read.sid, "a\"b\\c/d\b\f\n\r\t\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(read.uri, std::string(1, '\0'));
}

TEST(ReadJsonStringsTest, SkipsNestedValuesOfOtherMembers) {
  Read read = ReadSidAndUri(
      R"({"a":{"sid":"inner","b":[1,-2.5e3,true,false,null,{},[],[{"c":[]}]]},"sid":"outer",)"
      R"("n":0,"e":1E+2,"big":123456789012345678901234567890})");
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(read.sid, "outer");
}

TEST(ReadJsonStringsTest, LastOfDuplicateNamesWins) {
  EXPECT_EQ(ReadSidAndUri(R"({"sid":"a","sid":"b"})").sid, "b");
  EXPECT_TRUE(ReadSidAndUri(R"({"sid":1,"sid":"b"})").status.ok());
  EXPECT_FALSE(ReadSidAndUri(R"({"sid":"b","sid":1})").status.ok());
}

TEST(ReadJsonStringsTest, NamesTheFirstMemberOfAnotherType) {
  EXPECT_EQ(ReadSidAndUri(R"({"uri":{},"sid":[]})").status.message(),
            "property sid is not a string");
  EXPECT_EQ(ReadSidAndUri(R"({"uri":5})").status.message(), "property uri is not a string");
  EXPECT_EQ(ReadSidAndUri(R"({"sid":true})").status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReadJsonStringsTest, TellsOtherJsonFromNoJson) {
  for (const char* text : {"[]", "\"sid\"", "42", "null", " true "}) {
    EXPECT_EQ(ReadSidAndUri(text).status.message(), "is not a JSON object") << text;
  }
  for (const char* text : {"", " ", "<html>", "[1,]", "nul"}) {
    EXPECT_EQ(ReadSidAndUri(text).status.message(), "is not valid JSON") << text;
  }
}

TEST(ReadJsonStringsTest, AcceptsExactlyWhatNlohmannAccepts) {
  for (const std::string& text : std::vector<std::string>{
           R"({"sid":"ZY1"})",
           "\xEF\xBB\xBF{}",
           R"({"sid":"ZY1"} x)",
           R"({"sid":"ZY1",})",
           R"({"sid" "ZY1"})",
           R"({sid:"ZY1"})",
           R"({"sid":'ZY1'})",
           "{\"sid\":\"a\tb\"}",
           "{\"sid\":\"a\x01\"}",
           R"({"sid":"\x"})",
           R"({"sid":"\u12"})",
           R"({"sid":"\ud800"})",
           R"({"sid":"\udc00"})",
           R"({"sid":"\ud800\u0041"})",
           "{\"sid\":\"\xC3\"}",
           "{\"sid\":\"\xED\xA0\x80\"}",
           "{\"sid\":\"\xF4\x90\x80\x80\"}",
           R"({"n":01})",
           R"({"n":-})",
           R"({"n":1.})",
           R"({"n":.5})",
           R"({"n":1e})",
           R"({"n":-0})",
           R"({"n":1e400})",
           R"({"n":-1e400})",
           R"({"n":1e-400})",
           R"({"n":tru})",
           R"({"n":nulls})",
           R"({"a":[1 2]})",
           R"({"a":{"b"}})",
           R"({"a":{"b":1,}})",
           R"({"a":[})",
           R"({"a":]})",
           std::string(R"({"a":)") + std::string(2000, '[') + std::string(2000, ']') + "}",
           std::string("{\"sid\":\"a\0\"}", 11),
           "{\"sid\":\"ZY1\"}\n\r\t "}) {
    EXPECT_EQ(ReadSidAndUri(text).status.ok(), NlohmannAccepts(text)) << text;
  }
}

TEST(ReadJsonStringsTest, RejectsEveryTruncation) {
  const std::string full = R"({"sid":"ZY\u00e91","uri":null,"x":[{"y":-1.5e-3}]})";
  for (size_t len = 0; len < full.size(); ++len) {
    EXPECT_FALSE(ReadSidAndUri(full.substr(0, len)).status.ok()) << len;
  }
  EXPECT_TRUE(ReadSidAndUri(full).status.ok());
}

}  // namespace
}  // namespace gateway
