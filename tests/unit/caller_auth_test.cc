#include <string>

#include "auth/caller_policy.h"
#include "auth/caller_tokens.h"
#include "common/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMain[] = "AC00000000000000000000000000000000";
constexpr char kSub[] = "AC11111111111111111111111111111111";
constexpr char kOther[] = "AC22222222222222222222222222222222";

TEST(Sha256HexTest, KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CallerTokensTest, FindsCallerByToken) {
  const std::string text = "# comment\n\nbilling sha256:" + Sha256Hex("token-one") +
                           "\n  support\tsha256:" + Sha256Hex("token-two") +
                           "  \nbilling sha256:" + Sha256Hex("token-three") + "\n";
  absl::StatusOr<CallerTokens> tokens = CallerTokens::Parse(text);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->size(), 3u);
  EXPECT_EQ(tokens->Find("token-one"), "billing");
  EXPECT_EQ(tokens->Find("token-two"), "support");
  EXPECT_EQ(tokens->Find("token-three"), "billing");  // Two tokens while one rotates.
  EXPECT_EQ(tokens->Find("token-four"), std::nullopt);
  EXPECT_EQ(tokens->Find(""), std::nullopt);
  // The file holds digests: the digest itself is not a token.
  EXPECT_EQ(tokens->Find(Sha256Hex("token-one")), std::nullopt);
}

TEST(CallerTokensTest, RejectsMalformedLinesNamingTheLineButNotTheDigest) {
  const std::string digest = Sha256Hex("secret-token");
  for (const std::string& text : {
           "billing " + digest,                            // No "sha256:" prefix.
           "billing sha256:" + digest.substr(1),           // Too short.
           "billing sha256:" + std::string(64, 'G'),       // Not hex.
           "billing sha256:" + digest + " extra",          // Three fields.
           "bill\"ing sha256:" + digest,                   // Bad caller name.
           "a sha256:" + digest + "\nb sha256:" + digest,  // Same token for two callers.
       }) {
    absl::StatusOr<CallerTokens> tokens = CallerTokens::Parse("# header\n" + text);
    ASSERT_FALSE(tokens.ok()) << text;
    EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(tokens.status().message(), HasSubstr("line "));
    EXPECT_THAT(tokens.status().message(), Not(HasSubstr(digest.substr(8, 16))));
  }
}

TEST(CallerNameTest, AcceptsSpiffeIdsAndDnsNames) {
  EXPECT_TRUE(IsCallerName("spiffe://prod.example/ns/billing/sa/worker"));
  EXPECT_TRUE(IsCallerName("billing.prod.svc.cluster.local"));
  EXPECT_TRUE(IsCallerName("ops@example.com"));
  EXPECT_FALSE(IsCallerName(""));
  EXPECT_FALSE(IsCallerName("with space"));
  EXPECT_FALSE(IsCallerName("quote\""));
  EXPECT_FALSE(IsCallerName(std::string(257, 'a')));
}

TEST(CallerPolicyTest, AllowsListedAccountsOnly) {
  absl::StatusOr<CallerPolicy> policy = CallerPolicy::Parse(std::string(R"({"callers": {
      "billing": {"accounts": ["default"]},
      "support": {"accounts": ["default", ")") + kSub + R"("]},
      "ops": {"accounts": ["*"]},
      "nobody": {"accounts": []}}})");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->size(), 4u);
  EXPECT_TRUE(policy->Allows("billing", kMain, kMain));
  EXPECT_FALSE(policy->Allows("billing", kSub, kMain));
  EXPECT_TRUE(policy->Allows("support", kSub, kMain));
  EXPECT_TRUE(policy->Allows("support", kMain, kMain));
  EXPECT_FALSE(policy->Allows("support", kOther, kMain));
  EXPECT_TRUE(policy->Allows("ops", kOther, kMain));
  EXPECT_FALSE(policy->Allows("nobody", kMain, kMain));
  EXPECT_FALSE(policy->Allows("stranger", kMain, kMain));
  EXPECT_FALSE(policy->Allows("", kMain, kMain));
  // "default" follows the gateway's account, e.g. after a credential reload.
  EXPECT_TRUE(policy->Allows("billing", kOther, kOther));
}

TEST(CallerPolicyTest, RejectsMalformedFilesNamingTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "JSON"},
      {"[]", "callers"},
      {R"({"callers": {}, "extra": 1})", "callers"},
      {R"({"callers": {"a": []}})", "callers.a"},
      {R"({"callers": {"a": {"accounts": "default"}}})", "callers.a"},
      {R"({"callers": {"a": {"accounts": [1]}}})", "strings"},
      {R"({"callers": {"a": {"accounts": ["ACnothex"]}}})", "ACnothex"},
      {R"({"callers": {"a b": {"accounts": ["*"]}}})", "callers.a b"},
      {R"({"callers": {"a": {"accounts": ["*"], "typo": true}}})", "callers.a"},
  };
  for (const auto& [text, expected] : cases) {
    absl::StatusOr<CallerPolicy> policy = CallerPolicy::Parse(text);
    ASSERT_FALSE(policy.ok()) << text;
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(policy.status().message(), HasSubstr(expected)) << text;
  }
}

}  // namespace
}  // namespace gateway
