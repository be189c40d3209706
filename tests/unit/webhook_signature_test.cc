#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "webhook/signature.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The reference vectors of ../shared/reference/twilio-facts.md ("Receiving the messages").
constexpr char kToken[] = "12345";
constexpr char kUrl[] = "https://mycompany.com/myapp.php?foo=1&bar=2";
constexpr char kUrlWithPort[] = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
constexpr char kFormSignature[] = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
constexpr char kFormSignatureWithPort[] = "kvajT1Ptam85bY51eRf/AJRuM3w=";
constexpr char kBody[] = R"({"property": "value", "boolean": true})";
constexpr char kBodyUrl[] =
    "https://mycompany.com/myapp.php?foo=1&bar=2"
    "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
constexpr char kBodySignature[] = "a9nBmqA0ju/hNViExpshrM61xv4=";

FormParams ReferenceParams() {
  // Deliberately not in sorted order: the code must sort them.
  return {{"To", "+18005551212"},
          {"CallSid", "CA1234567890ABCDE"},
          {"From", "+14158675309"},
          {"Digits", "1234"},
          {"Caller", "+14158675309"}};
}

std::vector<std::string> Tokens(std::vector<std::string> tokens) { return tokens; }

// Changes one byte of a signature into another base64 character, keeping it well formed.
std::string FlipByte(std::string signature, size_t index) {
  signature[index] = signature[index] == 'A' ? 'B' : 'A';
  return signature;
}

TEST(WebhookSignatureTest, ComputesTheReferenceVectors) {
  EXPECT_EQ(ComputeTwilioSignature(kToken, kUrl, ReferenceParams()), kFormSignature);
  EXPECT_EQ(ComputeTwilioSignature(kToken, kUrlWithPort, ReferenceParams()),
            kFormSignatureWithPort);
  EXPECT_EQ(ComputeTwilioSignature(kToken, kBodyUrl, {}), kBodySignature);
  EXPECT_EQ(UrlWithBodySha256(kUrl, kBody), kBodyUrl);
}

TEST(WebhookSignatureTest, VerifiesTheFormVectors) {
  const auto tokens = Tokens({kToken});
  for (const char* url : {kUrl, kUrlWithPort}) {
    for (const char* signature : {kFormSignature, kFormSignatureWithPort}) {
      // Each URL form verifies both signatures: Twilio signs with or without the default port.
      SignatureVerdict verdict = VerifyFormSignature(tokens, url, ReferenceParams(), signature);
      EXPECT_TRUE(verdict.ok()) << url << " " << signature << ": "
                                << SignatureErrorName(verdict.error);
      EXPECT_EQ(verdict.token_index, 0u);
    }
  }
}

TEST(WebhookSignatureTest, VerifiesTheBodyVector) {
  SignatureVerdict verdict = VerifyBodySignature(Tokens({kToken}), kBodyUrl, kBody, kBodySignature);
  EXPECT_TRUE(verdict.ok()) << SignatureErrorName(verdict.error);
  // Twilio may also have signed it with :443.
  const std::string with_port = UrlWithDefaultPortToggled(kBodyUrl);
  EXPECT_EQ(with_port,
            "https://mycompany.com:443/myapp.php?foo=1&bar=2"
            "&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620");
  EXPECT_TRUE(VerifyBodySignature(Tokens({kToken}), with_port, kBody, kBodySignature).ok());
}

TEST(WebhookSignatureTest, RejectsAFlippedByteInEveryPositionOfTheSignature) {
  const auto tokens = Tokens({kToken});
  for (size_t i = 0; i + 1 < std::string(kFormSignature).size(); ++i) {
    const std::string tampered = FlipByte(kFormSignature, i);
    EXPECT_EQ(VerifyFormSignature(tokens, kUrl, ReferenceParams(), tampered).error,
              SignatureError::kMismatch)
        << i;
    EXPECT_EQ(VerifyBodySignature(tokens, kBodyUrl, kBody, FlipByte(kBodySignature, i)).error,
              SignatureError::kMismatch)
        << i;
  }
}

TEST(WebhookSignatureTest, RejectsATamperedUrl) {
  const auto tokens = Tokens({kToken});
  for (const char* url :
       {"https://mycompany.com/myapp.php?foo=1&bar=3",
        "https://mycompany.com/myapp.php?foo=1&bar=2&x=1", "https://mycompany.com/myapp.php?foo=1",
        "http://mycompany.com/myapp.php?foo=1&bar=2", "https://mycompany.co/myapp.php?foo=1&bar=2",
        "https://mycompany.com/Myapp.php?foo=1&bar=2",
        "https://mycompany.com:8443/myapp.php?foo=1&bar=2"}) {
    EXPECT_EQ(VerifyFormSignature(tokens, url, ReferenceParams(), kFormSignature).error,
              SignatureError::kMismatch)
        << url;
  }
}

TEST(WebhookSignatureTest, RejectsTamperedParameters) {
  const auto tokens = Tokens({kToken});
  FormParams changed_value = ReferenceParams();
  changed_value[3].second = "1235";
  FormParams renamed = ReferenceParams();
  renamed[3].first = "digits";
  FormParams added = ReferenceParams();
  added.emplace_back("Extra", "");
  FormParams removed = ReferenceParams();
  removed.pop_back();
  // Moving a byte from a name to its value keeps the concatenation but is still another request;
  // Twilio's scheme cannot tell these apart, so they verify, which documents that limit.
  FormParams shifted = ReferenceParams();
  shifted[3] = {"Digit", "s1234"};
  for (const FormParams& params : {changed_value, renamed, added, removed}) {
    EXPECT_EQ(VerifyFormSignature(tokens, kUrl, params, kFormSignature).error,
              SignatureError::kMismatch);
  }
  EXPECT_TRUE(VerifyFormSignature(tokens, kUrl, shifted, kFormSignature).ok());
  // A form signature does not pass for a JSON body at the same URL, nor the reverse.
  EXPECT_EQ(VerifyFormSignature(tokens, kUrl, {}, kFormSignature).error, SignatureError::kMismatch);
}

TEST(WebhookSignatureTest, RejectsATamperedBody) {
  const auto tokens = Tokens({kToken});
  std::string body = kBody;
  body[3] ^= 1;
  EXPECT_EQ(VerifyBodySignature(tokens, kBodyUrl, body, kBodySignature).error,
            SignatureError::kBodyHashMismatch);
  EXPECT_EQ(VerifyBodySignature(tokens, kBodyUrl, "", kBodySignature).error,
            SignatureError::kBodyHashMismatch);
  EXPECT_EQ(VerifyBodySignature(tokens, kBodyUrl, absl::StrCat(kBody, " "), kBodySignature).error,
            SignatureError::kBodyHashMismatch);
  // A forger who changes the body and its hash in the URL breaks the URL's signature instead.
  const std::string forged_url = UrlWithBodySha256(kUrl, body);
  EXPECT_EQ(VerifyBodySignature(tokens, forged_url, body, kBodySignature).error,
            SignatureError::kMismatch);
}

TEST(WebhookSignatureTest, RequiresTheBodyHashForABody) {
  // Signed over the URL alone, with no bodySHA256: any body would pass, so none does.
  const std::string signature = ComputeTwilioSignature(kToken, kUrl, {});
  EXPECT_EQ(VerifyBodySignature(Tokens({kToken}), kUrl, kBody, signature).error,
            SignatureError::kMissingBodyHash);
  // The parameter's name is matched exactly, not as a substring.
  const std::string url = "https://mycompany.com/x?xbodySHA256=00";
  EXPECT_EQ(
      VerifyBodySignature(Tokens({kToken}), url, kBody, ComputeTwilioSignature(kToken, url, {}))
          .error,
      SignatureError::kMissingBodyHash);
}

TEST(WebhookSignatureTest, RejectsTheWrongToken) {
  for (const char* token : {"12346", "1234", "123456", "54321"}) {
    EXPECT_EQ(VerifyFormSignature(Tokens({token}), kUrl, ReferenceParams(), kFormSignature).error,
              SignatureError::kMismatch)
        << token;
    EXPECT_EQ(VerifyBodySignature(Tokens({token}), kBodyUrl, kBody, kBodySignature).error,
              SignatureError::kMismatch)
        << token;
  }
}

TEST(WebhookSignatureTest, DuringRotationBothTokensVerifyAndTheVerdictSaysWhich) {
  const std::string old_token = kToken;
  const std::string new_token = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
  const auto tokens = Tokens({new_token, old_token});  // current first, then previous
  const std::string new_signature = ComputeTwilioSignature(new_token, kUrl, ReferenceParams());

  SignatureVerdict by_old = VerifyFormSignature(tokens, kUrl, ReferenceParams(), kFormSignature);
  ASSERT_TRUE(by_old.ok());
  EXPECT_EQ(by_old.token_index, 1u);
  SignatureVerdict by_new = VerifyFormSignature(tokens, kUrl, ReferenceParams(), new_signature);
  ASSERT_TRUE(by_new.ok());
  EXPECT_EQ(by_new.token_index, 0u);
  SignatureVerdict body_by_old = VerifyBodySignature(tokens, kBodyUrl, kBody, kBodySignature);
  ASSERT_TRUE(body_by_old.ok());
  EXPECT_EQ(body_by_old.token_index, 1u);

  // After the overlap the old token is dropped, and its signatures stop verifying.
  EXPECT_EQ(VerifyFormSignature(Tokens({new_token}), kUrl, ReferenceParams(), kFormSignature).error,
            SignatureError::kMismatch);
  // An empty slot (no previous token) is skipped, never used as an HMAC key.
  const std::string empty_key_signature = ComputeTwilioSignature("", kUrl, ReferenceParams());
  EXPECT_EQ(
      VerifyFormSignature(Tokens({new_token, ""}), kUrl, ReferenceParams(), empty_key_signature)
          .error,
      SignatureError::kMismatch);
}

TEST(WebhookSignatureTest, ReportsWhyWithoutSecrets) {
  const auto tokens = Tokens({kToken});
  EXPECT_EQ(VerifyFormSignature(Tokens({}), kUrl, ReferenceParams(), kFormSignature).error,
            SignatureError::kNoToken);
  EXPECT_EQ(VerifyFormSignature(Tokens({""}), kUrl, ReferenceParams(), kFormSignature).error,
            SignatureError::kNoToken);
  EXPECT_EQ(VerifyFormSignature(tokens, kUrl, ReferenceParams(), "").error,
            SignatureError::kMissingSignature);
  for (const char* malformed : {"RSOYDt4T1cUTdK1PDd93/VVr8B8", "RSOYDt4T1cUTdK1PDd93/VVr8B8==",
                                " RSOYDt4T1cUTdK1PDd93/VVr8B8=", "RSOYDt4T1cUTdK1PDd93/VVr8B8 ",
                                "RSOYDt4T1cUTdK1PDd93-VVr8B8=", "RSOYDt4T1cUTdK1PDd93/VVr8B=="}) {
    EXPECT_EQ(VerifyFormSignature(tokens, kUrl, ReferenceParams(), malformed).error,
              SignatureError::kMalformedSignature)
        << malformed;
  }
  for (const char* url :
       {"", "mycompany.com/myapp.php", "ftp://mycompany.com/x", "https:///x", "https://:443/x",
        "https://user@/x", "https://[::1/x", "https://[::1]x/", "https://a:b:443/x",
        "https://8::1]:80/x", "https://a]:80/x", "https://a:8o/x", "https://[::1]:44a/x"}) {
    EXPECT_EQ(VerifyFormSignature(tokens, url, ReferenceParams(), kFormSignature).error,
              SignatureError::kMalformedUrl)
        << url;
  }
  for (SignatureError error :
       {SignatureError::kNone, SignatureError::kNoToken, SignatureError::kMissingSignature,
        SignatureError::kMalformedSignature, SignatureError::kMalformedUrl,
        SignatureError::kMismatch, SignatureError::kMissingBodyHash,
        SignatureError::kBodyHashMismatch}) {
    const std::string name(SignatureErrorName(error));
    EXPECT_THAT(name, Not(HasSubstr(kToken)));
    EXPECT_THAT(name, Not(HasSubstr("RSOY")));
    EXPECT_NE(name, "unknown");
  }
  EXPECT_EQ(SignatureErrorName(SignatureError::kBodyHashMismatch), "body_hash_mismatch");
}

TEST(WebhookSignatureTest, RepeatedNamesAreSortedByValueAndCountedOnce) {
  // What twilio-python and twilio-node sign: each name's distinct values, sorted. The expected
  // value was computed independently: base64(HMAC-SHA1("12345", url + "Aa" + "Ab" + "Bz")).
  const std::string url = "https://example.com/hook";
  const FormParams params = {{"B", "z"}, {"A", "b"}, {"A", "a"}, {"A", "b"}};
  EXPECT_EQ(ComputeTwilioSignature(kToken, url, params), "VzlRcTTI6GbqxoRwoTV2ScFVMdQ=");
  const FormParams reordered = {{"A", "a"}, {"B", "z"}, {"A", "b"}};
  EXPECT_TRUE(
      VerifyFormSignature(Tokens({kToken}), url, reordered, "VzlRcTTI6GbqxoRwoTV2ScFVMdQ=").ok());
  // A different multiset of distinct values is a different request.
  const FormParams other = {{"A", "a"}, {"B", "z"}, {"A", "c"}};
  EXPECT_EQ(VerifyFormSignature(Tokens({kToken}), url, other, "VzlRcTTI6GbqxoRwoTV2ScFVMdQ=").error,
            SignatureError::kMismatch);
  // Names sort bytewise: uppercase before lowercase, and a prefix before its extensions.
  EXPECT_EQ(ComputeTwilioSignature(kToken, url, {{"a", "1"}, {"B", "2"}, {"Ba", "3"}}),
            ComputeTwilioSignature(kToken, url + "B2Ba3a1", {}));
}

TEST(WebhookSignatureTest, TogglesOnlyTheDefaultPort) {
  EXPECT_EQ(UrlWithDefaultPortToggled("https://a.example/x?y=1"), "https://a.example:443/x?y=1");
  EXPECT_EQ(UrlWithDefaultPortToggled("https://a.example:443/x"), "https://a.example/x");
  EXPECT_EQ(UrlWithDefaultPortToggled("http://a.example?q"), "http://a.example:80?q");
  EXPECT_EQ(UrlWithDefaultPortToggled("http://a.example:80"), "http://a.example");
  EXPECT_EQ(UrlWithDefaultPortToggled("HTTPS://a.example"), "HTTPS://a.example:443");
  EXPECT_EQ(UrlWithDefaultPortToggled("https://u:p@a.example/x"), "https://u:p@a.example:443/x");
  EXPECT_EQ(UrlWithDefaultPortToggled("https://[2001:db8::1]/x"), "https://[2001:db8::1]:443/x");
  EXPECT_EQ(UrlWithDefaultPortToggled("https://[2001:db8::1]:443/x"), "https://[2001:db8::1]/x");
  // A non-default port, or the other scheme's default, is left alone: no variant.
  EXPECT_EQ(UrlWithDefaultPortToggled("https://a.example:8443/x"), "");
  EXPECT_EQ(UrlWithDefaultPortToggled("https://a.example:80/x"), "");
  EXPECT_EQ(UrlWithDefaultPortToggled("http://a.example:443/x"), "");
  EXPECT_EQ(UrlWithDefaultPortToggled("ftp://a.example/x"), "");
  EXPECT_EQ(UrlWithDefaultPortToggled("https://a.example:/x"), "");  // an empty port is kept

  // So a signature for a URL with a non-default port verifies only with that port.
  const std::string url = "https://a.example:8443/hook";
  const std::string signature = ComputeTwilioSignature(kToken, url, {});
  EXPECT_TRUE(VerifyFormSignature(Tokens({kToken}), url, {}, signature).ok());
  EXPECT_EQ(VerifyFormSignature(Tokens({kToken}), "https://a.example/hook", {}, signature).error,
            SignatureError::kMismatch);
}

TEST(WebhookSignatureTest, BodyHashGoesIntoTheQuery) {
  EXPECT_THAT(UrlWithBodySha256("https://a.example/x", ""),
              ::testing::StartsWith("https://a.example/x?bodySHA256="));
  EXPECT_EQ(UrlWithBodySha256("https://a.example/x", ""),
            "https://a.example/x?bodySHA256="
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_THAT(UrlWithBodySha256("https://a.example/x?a=1#f", "b"),
              ::testing::MatchesRegex("https://a.example/x\\?a=1&bodySHA256=[0-9a-f]{64}#f"));
}

TEST(WebhookSignatureTest, EmptyAndHugeInputs) {
  const auto tokens = Tokens({kToken});
  // Empty body and no parameters.
  const std::string empty_url = UrlWithBodySha256("https://a.example/", "");
  EXPECT_TRUE(
      VerifyBodySignature(tokens, empty_url, "", ComputeTwilioSignature(kToken, empty_url, {}))
          .ok());
  EXPECT_TRUE(VerifyFormSignature(tokens, "https://a.example/", {},
                                  ComputeTwilioSignature(kToken, "https://a.example/", {}))
                  .ok());
  // Empty names and values still count (name + value appended, both empty).
  EXPECT_EQ(ComputeTwilioSignature(kToken, "https://a.example/", {{"", ""}}),
            ComputeTwilioSignature(kToken, "https://a.example/", {}));

  // 8 MiB body, 10,000 parameters of 1 KiB, a 64 KiB URL, a 1 KiB token.
  const std::string huge_body(8 << 20, 'x');
  const std::string huge_token(1024, 't');
  const std::string body_url = UrlWithBodySha256("https://a.example/", huge_body);
  const std::string body_signature = ComputeTwilioSignature(huge_token, body_url, {});
  EXPECT_TRUE(VerifyBodySignature(Tokens({huge_token}), body_url, huge_body, body_signature).ok());
  std::string altered = huge_body;
  altered.back() = 'y';
  EXPECT_EQ(VerifyBodySignature(Tokens({huge_token}), body_url, altered, body_signature).error,
            SignatureError::kBodyHashMismatch);

  FormParams many;
  for (int i = 0; i < 10000; ++i)
    many.emplace_back(absl::StrCat("P", 9999 - i), std::string(1024, 'v'));
  const std::string long_url = "https://a.example/" + std::string(64 << 10, 'p');
  const std::string signature = ComputeTwilioSignature(kToken, long_url, many);
  EXPECT_TRUE(VerifyFormSignature(tokens, long_url, many, signature).ok());
  many[5000].second.back() = 'w';
  EXPECT_EQ(VerifyFormSignature(tokens, long_url, many, signature).error,
            SignatureError::kMismatch);
  // A huge header is malformed, not compared.
  EXPECT_EQ(VerifyFormSignature(tokens, long_url, many, std::string(1 << 20, 'A')).error,
            SignatureError::kMalformedSignature);
}

TEST(ConstantTimeEqualsTest, ComparesEveryByteAndTheLength) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals(kFormSignature, kFormSignature));
  EXPECT_TRUE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
  const std::string base(64, 'q');
  for (size_t i = 0; i < base.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string other = base;
      other[i] = static_cast<char>(other[i] ^ (1 << bit));
      EXPECT_FALSE(ConstantTimeEquals(base, other)) << i << " " << bit;
    }
  }
}

}  // namespace
}  // namespace gateway
