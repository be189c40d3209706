#include "validation/request_validator.h"

#include <string>

#include "absl/status/status.h"
#include "common/error_details.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr char kAccount[] = "AC0123456789abcdef0123456789ABCDEF";
constexpr char kDefaultAccount[] = "ACffffffffffffffffffffffffffffffff";
constexpr char kCall[] = "CA0123456789abcdef0123456789abcdef";

CreateSubscriptionInput ValidInput() {
  CreateSubscriptionInput input;
  input.account_sid = kAccount;
  input.call_sid = kCall;
  input.callback = "https://example.com/twilio/messages";
  input.method = 1;
  input.idempotency_key = "key-1";
  return input;
}

// The `field` names of the violations in an INVALID_ARGUMENT result.
std::vector<std::string> ViolatedFields(const absl::StatusOr<CreateSubscriptionRequest>& result) {
  std::vector<std::string> out;
  for (const FieldViolation& v : GetFieldViolations(result.status())) {
    out.push_back(v.field);
  }
  return out;
}

// ---- IsSid ----------------------------------------------------------------------------------

TEST(IsSidTest, AcceptsPrefixAndThirtyTwoHexDigits) {
  EXPECT_TRUE(IsSid(kCall, "CA"));
  EXPECT_TRUE(IsSid(kAccount, "AC"));
  EXPECT_TRUE(IsSid("ZY" + std::string(32, 'F'), "ZY"));
}

TEST(IsSidTest, AcceptsLowercaseAndUppercaseHex) {
  EXPECT_TRUE(IsSid("CA" + std::string(32, 'a'), "CA"));
  EXPECT_TRUE(IsSid("CA" + std::string(32, 'A'), "CA"));
}

TEST(IsSidTest, RejectsWrongLength) {
  EXPECT_FALSE(IsSid("CA" + std::string(31, '0'), "CA"));  // 33 characters.
  EXPECT_FALSE(IsSid("CA" + std::string(33, '0'), "CA"));  // 35 characters.
  EXPECT_FALSE(IsSid("CA", "CA"));
}

TEST(IsSidTest, RejectsNonHexDigits) {
  EXPECT_FALSE(IsSid("CA" + std::string(31, '0') + "g", "CA"));
  EXPECT_FALSE(IsSid("CA" + std::string(31, '0') + " ", "CA"));
  EXPECT_FALSE(IsSid("CA" + std::string(31, '0') + "-", "CA"));
}

TEST(IsSidTest, RejectsWrongPrefix) {
  EXPECT_FALSE(IsSid(kCall, "AC"));
  EXPECT_FALSE(IsSid(kAccount, "CA"));
  EXPECT_FALSE(IsSid("ca" + std::string(32, '0'), "CA"));  // The prefix is case-sensitive.
}

TEST(IsSidTest, RejectsEmpty) { EXPECT_FALSE(IsSid("", "CA")); }

// ---- CallbackProblem ------------------------------------------------------------------------

TEST(CallbackProblemTest, AcceptsHttpAndHttps) {
  EXPECT_EQ(CallbackProblem("http://example.com/hook"), "");
  EXPECT_EQ(CallbackProblem("https://example.com/hook"), "");
  EXPECT_EQ(CallbackProblem("HTTPS://Example.COM/hook"), "");
  EXPECT_EQ(CallbackProblem("https://example.com"), "");
}

TEST(CallbackProblemTest, RejectsOtherSchemes) {
  EXPECT_THAT(CallbackProblem("ftp://example.com/hook"), HasSubstr("scheme"));
  EXPECT_THAT(CallbackProblem("javascript://example.com"), Not(IsEmpty()));
}

TEST(CallbackProblemTest, RejectsMissingScheme) {
  EXPECT_THAT(CallbackProblem("example.com/hook"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("//example.com/hook"), Not(IsEmpty()));
}

TEST(CallbackProblemTest, RejectsEmpty) { EXPECT_THAT(CallbackProblem(""), Not(IsEmpty())); }

TEST(CallbackProblemTest, RejectsUserInfo) {
  EXPECT_THAT(CallbackProblem("https://user:pass@example.com/hook"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://user@example.com/hook"), Not(IsEmpty()));
}

TEST(CallbackProblemTest, AllowsAtSignInPath) {
  EXPECT_EQ(CallbackProblem("https://example.com/users/@me"), "");
}

TEST(CallbackProblemTest, RejectsUnderscoreInHost) {
  EXPECT_THAT(CallbackProblem("https://my_host.example.com/hook"), HasSubstr("underscore"));
}

TEST(CallbackProblemTest, AllowsUnderscoreInPath) {
  EXPECT_EQ(CallbackProblem("https://example.com/my_hook?a_b=c_d"), "");
}

TEST(CallbackProblemTest, RejectsIpv6Literal) {
  EXPECT_THAT(CallbackProblem("https://[::1]/hook"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://[2001:db8::1]:8443/hook"), Not(IsEmpty()));
}

TEST(CallbackProblemTest, RejectsMissingHost) {
  EXPECT_THAT(CallbackProblem("https:///hook"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://:443/hook"), Not(IsEmpty()));
}

TEST(CallbackProblemTest, RejectsBadPorts) {
  EXPECT_THAT(CallbackProblem("https://example.com:0/hook"), HasSubstr("port"));
  EXPECT_THAT(CallbackProblem("https://example.com:65536/hook"), HasSubstr("port"));
  EXPECT_THAT(CallbackProblem("https://example.com:abc/hook"), HasSubstr("port"));
  EXPECT_THAT(CallbackProblem("https://example.com:/hook"), HasSubstr("port"));
  EXPECT_THAT(CallbackProblem("https://example.com:-1/hook"), HasSubstr("port"));
}

TEST(CallbackProblemTest, AcceptsValidPorts) {
  EXPECT_EQ(CallbackProblem("https://example.com:443/hook"), "");
  EXPECT_EQ(CallbackProblem("http://example.com:1"), "");
  EXPECT_EQ(CallbackProblem("http://example.com:65535/"), "");
}

TEST(CallbackProblemTest, AcceptsTrailingDotFqdn) {
  EXPECT_EQ(CallbackProblem("https://example.com./hook"), "");
}

TEST(CallbackProblemTest, RejectsMalformedLabels) {
  EXPECT_THAT(CallbackProblem("https://example..com/hook"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://-example.com/hook"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://example-.com/hook"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://.example.com/hook"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://exa!mple.com/hook"), Not(IsEmpty()));
}

TEST(CallbackProblemTest, LabelLongerThan63CharactersRejected) {
  EXPECT_EQ(CallbackProblem("https://" + std::string(63, 'a') + ".com/"), "");
  EXPECT_THAT(CallbackProblem("https://" + std::string(64, 'a') + ".com/"), Not(IsEmpty()));
}

TEST(CallbackProblemTest, HostnameLongerThan253CharactersRejected) {
  const std::string label(63, 'a');
  // 3 * 63 + 61 + 3 dots = 253 characters.
  const std::string host_253 = label + "." + label + "." + label + "." + std::string(61, 'b');
  ASSERT_EQ(host_253.size(), 253u);
  EXPECT_EQ(CallbackProblem("https://" + host_253 + "/hook"), "");
  const std::string host_254 = label + "." + label + "." + label + "." + std::string(62, 'b');
  ASSERT_EQ(host_254.size(), 254u);
  EXPECT_THAT(CallbackProblem("https://" + host_254 + "/hook"), HasSubstr("253"));
}

TEST(CallbackProblemTest, RejectsSpacesControlAndNonAsciiCharacters) {
  EXPECT_THAT(CallbackProblem("https://example.com/a b"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://example.com/a\tb"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://example.com/a\nb"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem(std::string("https://example.com/a\0b", 23)), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://example.com/a\x7f"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://ex\xC3\xA4mple.com/"), Not(IsEmpty()));  // "exämple".
  EXPECT_THAT(CallbackProblem("https://example.com/caf\xC3\xA9"), Not(IsEmpty()));
}

TEST(CallbackProblemTest, RejectsCharactersThatMustBePercentEncoded) {
  EXPECT_THAT(CallbackProblem("https://example.com/a\"b"), Not(IsEmpty()));
  EXPECT_THAT(CallbackProblem("https://example.com/a<b>"), Not(IsEmpty()));
  EXPECT_EQ(CallbackProblem("https://example.com/a%20b"), "");
}

TEST(CallbackProblemTest, LengthLimitIs4000Characters) {
  const std::string prefix = "https://example.com/";
  const std::string at_limit = prefix + std::string(kMaxCallbackLength - prefix.size(), 'a');
  ASSERT_EQ(at_limit.size(), 4000u);
  EXPECT_EQ(CallbackProblem(at_limit), "");
  EXPECT_THAT(CallbackProblem(at_limit + "a"), HasSubstr("4000"));
}

TEST(CallbackProblemTest, AcceptsQueryAndFragment) {
  EXPECT_EQ(CallbackProblem("https://example.com/hook?a=1&b=%2F#frag"), "");
  EXPECT_EQ(CallbackProblem("https://example.com?a=1"), "");
  EXPECT_EQ(CallbackProblem("https://example.com#top"), "");
}

// ---- ValidateCreateRequest ------------------------------------------------------------------

TEST(ValidateCreateRequestTest, ValidRequestPassesThrough) {
  absl::StatusOr<CreateSubscriptionRequest> result =
      ValidateCreateRequest(ValidInput(), kDefaultAccount);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->account_sid, kAccount);
  EXPECT_EQ(result->call_sid, kCall);
  EXPECT_EQ(result->callback, "https://example.com/twilio/messages");
  EXPECT_EQ(result->method, CallbackMethod::kPost);
  EXPECT_EQ(result->idempotency_key, "key-1");
}

TEST(ValidateCreateRequestTest, AppliesDefaultAccountWhenNoneGiven) {
  CreateSubscriptionInput input = ValidInput();
  input.account_sid = "";
  absl::StatusOr<CreateSubscriptionRequest> result = ValidateCreateRequest(input, kDefaultAccount);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->account_sid, kDefaultAccount);
}

TEST(ValidateCreateRequestTest, LowercaseHexSidsAccepted) {
  CreateSubscriptionInput input = ValidInput();
  input.call_sid = "CA" + std::string(32, 'e');
  input.account_sid = "AC" + std::string(32, 'b');
  EXPECT_TRUE(ValidateCreateRequest(input, kDefaultAccount).ok());
}

TEST(ValidateCreateRequestTest, RejectsBadCallSid) {
  for (const std::string& bad :
       {std::string(""), "CA" + std::string(31, '0'), "CA" + std::string(33, '0'),
        "CA" + std::string(31, '0') + "z", "AC" + std::string(32, '0')}) {
    CreateSubscriptionInput input = ValidInput();
    input.call_sid = bad;
    absl::StatusOr<CreateSubscriptionRequest> result =
        ValidateCreateRequest(input, kDefaultAccount);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(ViolatedFields(result), UnorderedElementsAre("call_sid")) << bad;
  }
}

TEST(ValidateCreateRequestTest, RejectsBadAccountSid) {
  for (const std::string& bad : {"AC" + std::string(31, '0'), "AC" + std::string(33, '0'),
                                 "CA" + std::string(32, '0'), "AC" + std::string(31, '0') + "x"}) {
    CreateSubscriptionInput input = ValidInput();
    input.account_sid = bad;
    absl::StatusOr<CreateSubscriptionRequest> result =
        ValidateCreateRequest(input, kDefaultAccount);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(ViolatedFields(result), UnorderedElementsAre("account_sid")) << bad;
  }
}

TEST(ValidateCreateRequestTest, RejectsBadCallback) {
  CreateSubscriptionInput input = ValidInput();
  input.callback = "https://bad_host.example.com/";
  absl::StatusOr<CreateSubscriptionRequest> result = ValidateCreateRequest(input, kDefaultAccount);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(result), UnorderedElementsAre("callback"));
}

TEST(ValidateCreateRequestTest, MissingCallbackRejected) {
  CreateSubscriptionInput input = ValidInput();
  input.callback = "";
  absl::StatusOr<CreateSubscriptionRequest> result = ValidateCreateRequest(input, kDefaultAccount);
  EXPECT_THAT(ViolatedFields(result), UnorderedElementsAre("callback"));
}

TEST(ValidateCreateRequestTest, MethodUnspecifiedAndPostMeanPost) {
  for (int method : {0, 1}) {
    CreateSubscriptionInput input = ValidInput();
    input.method = method;
    absl::StatusOr<CreateSubscriptionRequest> result =
        ValidateCreateRequest(input, kDefaultAccount);
    ASSERT_TRUE(result.ok()) << method;
    EXPECT_EQ(result->method, CallbackMethod::kPost) << method;
  }
}

TEST(ValidateCreateRequestTest, MethodGet) {
  CreateSubscriptionInput input = ValidInput();
  input.method = 2;
  absl::StatusOr<CreateSubscriptionRequest> result = ValidateCreateRequest(input, kDefaultAccount);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->method, CallbackMethod::kGet);
}

TEST(ValidateCreateRequestTest, RejectsUnknownMethod) {
  for (int method : {3, -1, 1000}) {
    CreateSubscriptionInput input = ValidInput();
    input.method = method;
    absl::StatusOr<CreateSubscriptionRequest> result =
        ValidateCreateRequest(input, kDefaultAccount);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << method;
    EXPECT_THAT(ViolatedFields(result), UnorderedElementsAre("method")) << method;
  }
}

TEST(ValidateCreateRequestTest, EmptyIdempotencyKeyLeftEmpty) {
  CreateSubscriptionInput input = ValidInput();
  input.idempotency_key = "";
  absl::StatusOr<CreateSubscriptionRequest> result = ValidateCreateRequest(input, kDefaultAccount);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->idempotency_key, "");
}

TEST(ValidateCreateRequestTest, IdempotencyKeyLengthLimitIs255) {
  CreateSubscriptionInput input = ValidInput();
  input.idempotency_key = std::string(255, 'k');
  EXPECT_TRUE(ValidateCreateRequest(input, kDefaultAccount).ok());
  input.idempotency_key = std::string(256, 'k');
  absl::StatusOr<CreateSubscriptionRequest> result = ValidateCreateRequest(input, kDefaultAccount);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(result), UnorderedElementsAre("idempotency_key"));
}

TEST(ValidateCreateRequestTest, IdempotencyKeyAllowsPrintableAscii) {
  CreateSubscriptionInput input = ValidInput();
  input.idempotency_key = "!~azAZ09-_.:/{}";
  EXPECT_TRUE(ValidateCreateRequest(input, kDefaultAccount).ok());
}

TEST(ValidateCreateRequestTest, IdempotencyKeyRejectsSpaceControlAndNonAscii) {
  for (const std::string& bad :
       {std::string("a b"), std::string("a\tb"), std::string("a\nb"), std::string("a\x7f"),
        std::string("a\0b", 3), std::string("caf\xC3\xA9")}) {
    CreateSubscriptionInput input = ValidInput();
    input.idempotency_key = bad;
    absl::StatusOr<CreateSubscriptionRequest> result =
        ValidateCreateRequest(input, kDefaultAccount);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ViolatedFields(result), UnorderedElementsAre("idempotency_key"));
  }
}

TEST(ValidateCreateRequestTest, ReportsEveryBadFieldInOneError) {
  CreateSubscriptionInput input;
  input.account_sid = "ACnope";
  input.call_sid = "CA123";
  input.callback = "ftp://example.com/";
  input.method = 3;
  input.idempotency_key = "has space";
  absl::StatusOr<CreateSubscriptionRequest> result = ValidateCreateRequest(input, kDefaultAccount);
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(result), UnorderedElementsAre("call_sid", "callback", "method",
                                                           "idempotency_key", "account_sid"));
  for (const FieldViolation& v : GetFieldViolations(result.status())) {
    EXPECT_THAT(v.description, Not(IsEmpty())) << v.field;
    EXPECT_THAT(result.status().message(), HasSubstr(v.field));
  }
  EXPECT_EQ(GetErrorReason(result.status()), "INVALID_REQUEST");
}

TEST(ValidateCreateRequestTest, ViolationDescriptionsExplainTheProblem) {
  CreateSubscriptionInput input = ValidInput();
  input.callback = "https://example.com:0/";
  absl::StatusOr<CreateSubscriptionRequest> result = ValidateCreateRequest(input, kDefaultAccount);
  EXPECT_THAT(GetFieldViolations(result.status()),
              UnorderedElementsAre(AllOf(Field(&FieldViolation::field, "callback"),
                                         Field(&FieldViolation::description, HasSubstr("port")))));
}

}  // namespace
}  // namespace gateway
