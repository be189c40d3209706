#include "validation/request_validator.h"

#include <string>

#include "absl/status/status.h"
#include "common/error_details.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/sid.h"

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

// ---- ContentProblem -------------------------------------------------------------------------

TEST(ContentProblemTest, AcceptsOneJsonDocumentOfAnyKind) {
  for (const char* content :
       {R"({"a":1})", "[1,2,3]", R"("text")", "42", "true", "null", " {\"a\" : [ ] } \n"}) {
    EXPECT_EQ(ContentProblem(content), "") << content;
  }
}

TEST(ContentProblemTest, RejectsEmpty) { EXPECT_EQ(ContentProblem(""), "is required"); }

TEST(ContentProblemTest, RejectsWhatIsNotOneJsonDocument) {
  for (const char* content : {"hello", "{", R"({"a":1} {"b":2})", "[1,]", "{'a':1}", "\xff"}) {
    EXPECT_EQ(ContentProblem(content), "must be one JSON document") << content;
  }
}

TEST(ContentProblemTest, SizeLimitIs4096Bytes) {
  const std::string at_limit = "\"" + std::string(kMaxContentBytes - 2, 'x') + "\"";
  ASSERT_EQ(at_limit.size(), 4096u);
  EXPECT_EQ(ContentProblem(at_limit), "");
  const std::string over = "\"" + std::string(kMaxContentBytes - 1, 'x') + "\"";
  EXPECT_THAT(ContentProblem(over), HasSubstr("4096"));
}

// Deep nesting must neither crash nor exhaust the stack.
TEST(ContentProblemTest, DeepNestingIsHandled) {
  EXPECT_THAT(ContentProblem(std::string(100000, '[')), HasSubstr("4096"));
  EXPECT_THAT(ContentProblem(std::string(4096, '[')), HasSubstr("levels deep"));
  EXPECT_THAT(ContentProblem(std::string(2048, '[') + std::string(2048, ']')),
              HasSubstr("levels deep"));
}

TEST(ContentProblemTest, NestingLimitIs64LevelsOfArraysAndObjects) {
  ASSERT_EQ(kMaxContentDepth, 64);
  auto nested = [](int depth) {
    std::string content;
    for (int i = 0; i < depth; ++i) content += i % 2 == 0 ? "{\"a\":" : "[";
    content += "1";
    for (int i = depth - 1; i >= 0; --i) content += i % 2 == 0 ? "}" : "]";
    return content;
  };
  EXPECT_EQ(ContentProblem(nested(64)), "");
  EXPECT_EQ(ContentProblem(nested(65)), "must nest arrays and objects at most 64 levels deep");
  // Depth, not count: many shallow values are fine.
  std::string wide = "[";
  for (int i = 0; i < 500; ++i) wide += "[1],";
  wide += "[]]";
  EXPECT_EQ(ContentProblem(wide), "");
}

// RFC 8259 forbids sending a byte order mark and lets a parser refuse one; nlohmann skips it.
TEST(ContentProblemTest, RejectsALeadingByteOrderMark) {
  EXPECT_EQ(ContentProblem("\xEF\xBB\xBF{\"a\":1}"), "must not begin with a byte order mark");
  EXPECT_EQ(ContentProblem("\xEF\xBB\xBF"), "must not begin with a byte order mark");
  EXPECT_EQ(ContentProblem("\"\xEF\xBB\xBF\""), "");  // In a string it is a character.
}

// ---- ValidateDeleteRequest ------------------------------------------------------------------

DeleteSubscriptionInput ValidDelete() {
  DeleteSubscriptionInput input;
  input.account_sid = kAccount;
  input.call_sid = kCall;
  input.sid = "ZY0123456789abcdef0123456789ABCDEF";
  return input;
}

std::vector<std::string> ViolatedFields(const absl::Status& status) {
  std::vector<std::string> out;
  for (const FieldViolation& v : GetFieldViolations(status)) out.push_back(v.field);
  return out;
}

TEST(ValidateDeleteRequestTest, ValidRequestPassesThrough) {
  absl::StatusOr<DeleteSubscriptionRequest> result =
      ValidateDeleteRequest(ValidDelete(), kDefaultAccount);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->account_sid, kAccount);
  EXPECT_EQ(result->call_sid, kCall);
  EXPECT_EQ(result->sid, "ZY0123456789abcdef0123456789ABCDEF");
}

TEST(ValidateDeleteRequestTest, AppliesDefaultAccountWhenNoneGiven) {
  DeleteSubscriptionInput input = ValidDelete();
  input.account_sid.clear();
  absl::StatusOr<DeleteSubscriptionRequest> result = ValidateDeleteRequest(input, kDefaultAccount);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->account_sid, kDefaultAccount);
}

TEST(ValidateDeleteRequestTest, SidMustBeZyAnd32HexDigits) {
  for (const std::string& sid :
       {std::string(""), "ZY" + std::string(31, '0'), "ZY" + std::string(33, '0'),
        "ZY" + std::string(31, '0') + "g", "KX" + std::string(32, '0'), "zy" + std::string(32, '0'),
        "ZY" + std::string(32, '0') + "/../x"}) {
    DeleteSubscriptionInput input = ValidDelete();
    input.sid = sid;
    absl::StatusOr<DeleteSubscriptionRequest> result =
        ValidateDeleteRequest(input, kDefaultAccount);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << sid;
    EXPECT_THAT(ViolatedFields(result.status()), UnorderedElementsAre("sid")) << sid;
  }
}

TEST(ValidateDeleteRequestTest, ReportsEveryBadFieldInOneError) {
  DeleteSubscriptionInput input;
  input.account_sid = "AC1";
  input.call_sid = "";
  input.sid = "ZY1";
  absl::StatusOr<DeleteSubscriptionRequest> result = ValidateDeleteRequest(input, kDefaultAccount);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(result.status()),
              UnorderedElementsAre("account_sid", "call_sid", "sid"));
  EXPECT_EQ(GetErrorReason(result.status()), "INVALID_REQUEST");
}

// ---- ValidateSendRequest --------------------------------------------------------------------

SendMessageInput ValidSend() {
  SendMessageInput input;
  input.account_sid = kAccount;
  input.call_sid = kCall;
  input.content = R"({"greeting":"hi"})";
  input.idempotency_key = "key-1";
  return input;
}

TEST(ValidateSendRequestTest, ValidRequestPassesThrough) {
  absl::StatusOr<SendMessageRequest> result = ValidateSendRequest(ValidSend(), kDefaultAccount);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->account_sid, kAccount);
  EXPECT_EQ(result->call_sid, kCall);
  EXPECT_EQ(result->content, R"({"greeting":"hi"})");
  EXPECT_EQ(result->idempotency_key, "key-1");
}

TEST(ValidateSendRequestTest, EmptyKeyLeftEmptyAndDefaultAccountApplied) {
  SendMessageInput input = ValidSend();
  input.account_sid.clear();
  input.idempotency_key.clear();
  absl::StatusOr<SendMessageRequest> result = ValidateSendRequest(input, kDefaultAccount);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->account_sid, kDefaultAccount);
  EXPECT_EQ(result->idempotency_key, "");
}

TEST(ValidateSendRequestTest, RejectsBadContent) {
  for (const std::string& content :
       {std::string(""), std::string("not json"), std::string(100000, '['),
        "\"" + std::string(kMaxContentBytes, 'x') + "\""}) {
    SendMessageInput input = ValidSend();
    input.content = content;
    absl::StatusOr<SendMessageRequest> result = ValidateSendRequest(input, kDefaultAccount);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << content.size();
    EXPECT_THAT(ViolatedFields(result.status()), UnorderedElementsAre("content")) << content.size();
  }
}

TEST(ValidateSendRequestTest, ReportsEveryBadFieldInOneError) {
  SendMessageInput input;
  input.account_sid = "AC1";
  input.call_sid = "CA1";
  input.content = "";
  input.idempotency_key = "has space";
  absl::StatusOr<SendMessageRequest> result = ValidateSendRequest(input, kDefaultAccount);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(result.status()),
              UnorderedElementsAre("account_sid", "call_sid", "content", "idempotency_key"));
  EXPECT_EQ(GetErrorReason(result.status()), "INVALID_REQUEST");
}

}  // namespace
}  // namespace gateway
