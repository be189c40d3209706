#include "twilio/twilio_api.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/error_details.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idempotency/outcome_codec.h"

namespace gateway {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kAccount[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kCall[] = "CAfedcba9876543210fedcba9876543210";
constexpr char kSid[] = "ZY00112233445566778899aabbccddeeff";

// ---- FormEncode -----------------------------------------------------------------------------

TEST(FormEncodeTest, EncodesSpaceAsPlus) { EXPECT_EQ(FormEncode({{"a b", "c d"}}), "a+b=c+d"); }

TEST(FormEncodeTest, PercentEncodesReservedCharacters) {
  EXPECT_EQ(FormEncode({{"k", "&=%/:?#+"}}), "k=%26%3D%25%2F%3A%3F%23%2B");
}

TEST(FormEncodeTest, LeavesUnreservedCharactersAlone) {
  EXPECT_EQ(FormEncode({{"k", "AZaz09-._*"}}), "k=AZaz09-._*");
}

TEST(FormEncodeTest, PercentEncodesTilde) {
  // WHATWG's application/x-www-form-urlencoded serializer encodes '~'.
  EXPECT_EQ(FormEncode({{"k", "~"}}), "k=%7E");
}

TEST(FormEncodeTest, PercentEncodesEachUtf8ByteInUppercaseHex) {
  EXPECT_EQ(FormEncode({{"k", "caf\xC3\xA9"}}), "k=caf%C3%A9");   // "café"
  EXPECT_EQ(FormEncode({{"k", "\xE2\x9C\x93"}}), "k=%E2%9C%93");  // "✓"
  EXPECT_EQ(FormEncode({{"k", std::string("\0\x01\xFF", 3)}}), "k=%00%01%FF");
}

TEST(FormEncodeTest, EncodesNamesToo) { EXPECT_EQ(FormEncode({{"a&b=", "v"}}), "a%26b%3D=v"); }

TEST(FormEncodeTest, JoinsFieldsWithAmpersandInOrder) {
  EXPECT_EQ(FormEncode({{"b", "2"}, {"a", "1"}, {"c", ""}}), "b=2&a=1&c=");
}

TEST(FormEncodeTest, EmptyFieldListIsEmpty) { EXPECT_EQ(FormEncode({}), ""); }

TEST(FormEncodeTest, EncodesCallbackUrl) {
  EXPECT_EQ(FormEncode({{"Callback", "https://example.com/hook?x=1&y=a b"}}),
            "Callback=https%3A%2F%2Fexample.com%2Fhook%3Fx%3D1%26y%3Da+b");
}

// ---- SubscriptionsPath / BasicAuthorization -------------------------------------------------

TEST(SubscriptionsPathTest, BuildsTwilioPath) {
  EXPECT_EQ(SubscriptionsPath(kAccount, kCall),
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/"
            "CAfedcba9876543210fedcba9876543210/UserDefinedMessageSubscriptions.json");
}

TEST(BasicAuthorizationTest, EncodesUserColonPasswordInBase64) {
  // RFC 7617's example.
  EXPECT_EQ(BasicAuthorization({"Aladdin", "open sesame"}), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}

TEST(BasicAuthorizationTest, EncodesApiKeyCredentials) {
  const std::string user = "SK" + std::string(32, '1');
  EXPECT_EQ(BasicAuthorization({user, "s3cr3t"}), "Basic " + absl::Base64Escape(user + ":s3cr3t"));
}

// ---- BuildCreateSubscriptionRequest ---------------------------------------------------------

TwilioEndpoint TestEndpoint() { return {"https://api.twilio.test", {"user", "pass"}}; }

CreateSubscriptionRequest TestRequest() {
  CreateSubscriptionRequest request;
  request.account_sid = kAccount;
  request.call_sid = kCall;
  request.callback = "https://example.com/hook?a=1";
  request.method = CallbackMethod::kPost;
  request.idempotency_key = "key 1";
  return request;
}

TEST(BuildCreateSubscriptionRequestTest, PostsToBaseUrlPlusPath) {
  HttpRequest http =
      BuildCreateSubscriptionRequest(TestEndpoint(), TestRequest(), absl::Seconds(3));
  EXPECT_EQ(http.method, "POST");
  EXPECT_EQ(http.url, "https://api.twilio.test" + SubscriptionsPath(kAccount, kCall));
  EXPECT_EQ(http.timeout, absl::Seconds(3));
}

TEST(BuildCreateSubscriptionRequestTest, SendsAuthAcceptAndContentTypeHeaders) {
  HttpRequest http =
      BuildCreateSubscriptionRequest(TestEndpoint(), TestRequest(), absl::Seconds(3));
  EXPECT_THAT(http.headers,
              Contains(Pair("Authorization", "Basic " + absl::Base64Escape("user:pass"))));
  EXPECT_THAT(http.headers, Contains(Pair("Accept", "application/json")));
  EXPECT_THAT(http.headers, Contains(Pair("Content-Type", "application/x-www-form-urlencoded")));
}

TEST(BuildCreateSubscriptionRequestTest, BodyCarriesCallbackMethodAndKey) {
  HttpRequest http =
      BuildCreateSubscriptionRequest(TestEndpoint(), TestRequest(), absl::Seconds(3));
  EXPECT_EQ(http.body,
            "Callback=https%3A%2F%2Fexample.com%2Fhook%3Fa%3D1&Method=POST&IdempotencyKey=key+1");
}

TEST(BuildCreateSubscriptionRequestTest, GetMethodSentAsGet) {
  CreateSubscriptionRequest request = TestRequest();
  request.method = CallbackMethod::kGet;
  HttpRequest http = BuildCreateSubscriptionRequest(TestEndpoint(), request, absl::Seconds(3));
  EXPECT_THAT(http.body, HasSubstr("&Method=GET&"));
}

TEST(BuildCreateSubscriptionRequestTest, DefaultMethodIsPost) {
  CreateSubscriptionRequest request = TestRequest();
  request.method = CreateSubscriptionRequest().method;
  HttpRequest http = BuildCreateSubscriptionRequest(TestEndpoint(), request, absl::Seconds(3));
  EXPECT_THAT(http.body, HasSubstr("&Method=POST&"));
}

// ---- ParseSubscriptionJson ------------------------------------------------------------------

constexpr char kFullBody[] = R"({
  "account_sid": "AC0123456789abcdef0123456789abcdef",
  "call_sid": "CAfedcba9876543210fedcba9876543210",
  "sid": "ZY00112233445566778899aabbccddeeff",
  "date_created": "Wed, 18 Dec 2019 20:02:01 +0000",
  "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/CAfedcba9876543210fedcba9876543210/UserDefinedMessageSubscriptions/ZY00112233445566778899aabbccddeeff.json"
})";

TEST(ParseSubscriptionJsonTest, ParsesFullBody) {
  absl::StatusOr<Subscription> parsed = ParseSubscriptionJson(kFullBody);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->account_sid, kAccount);
  EXPECT_EQ(parsed->call_sid, kCall);
  EXPECT_EQ(parsed->sid, kSid);
  EXPECT_EQ(parsed->uri, std::string("/2010-04-01/Accounts/") + kAccount + "/Calls/" + kCall +
                             "/UserDefinedMessageSubscriptions/" + kSid + ".json");
  ASSERT_TRUE(parsed->date_created.has_value());
  EXPECT_EQ(*parsed->date_created,
            absl::FromCivil(absl::CivilSecond(2019, 12, 18, 20, 2, 1), absl::UTCTimeZone()));
  EXPECT_EQ(parsed->idempotency_key, "");
}

TEST(ParseSubscriptionJsonTest, NullsBecomeEmpty) {
  absl::StatusOr<Subscription> parsed = ParseSubscriptionJson(
      R"({"account_sid":null,"call_sid":null,"sid":null,"date_created":null,"uri":null})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->account_sid, "");
  EXPECT_EQ(parsed->call_sid, "");
  EXPECT_EQ(parsed->sid, "");
  EXPECT_EQ(parsed->uri, "");
  EXPECT_FALSE(parsed->date_created.has_value());
}

TEST(ParseSubscriptionJsonTest, MissingFieldsBecomeEmpty) {
  absl::StatusOr<Subscription> parsed = ParseSubscriptionJson(R"({"sid":"ZY1"})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->sid, "ZY1");
  EXPECT_EQ(parsed->account_sid, "");
  EXPECT_FALSE(parsed->date_created.has_value());
  EXPECT_TRUE(ParseSubscriptionJson("{}").ok());
}

TEST(ParseSubscriptionJsonTest, IgnoresExtraFields) {
  absl::StatusOr<Subscription> parsed = ParseSubscriptionJson(
      R"({"sid":"ZY1","api_version":"2010-04-01","nested":{"a":[1,2,{"b":null}]},"n":3.5})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->sid, "ZY1");
}

TEST(ParseSubscriptionJsonTest, RejectsWrongTypes) {
  EXPECT_FALSE(ParseSubscriptionJson(R"({"sid":123})").ok());
  EXPECT_FALSE(ParseSubscriptionJson(R"({"account_sid":true})").ok());
  EXPECT_FALSE(ParseSubscriptionJson(R"({"call_sid":["CA"]})").ok());
  EXPECT_FALSE(ParseSubscriptionJson(R"({"uri":{}})").ok());
  EXPECT_FALSE(ParseSubscriptionJson(R"({"date_created":1576699321})").ok());
}

TEST(ParseSubscriptionJsonTest, RejectsTruncatedBody) {
  const std::string full = kFullBody;
  for (size_t len : {size_t{1}, full.size() / 2, full.size() - 1}) {
    EXPECT_FALSE(ParseSubscriptionJson(full.substr(0, len)).ok()) << len;
  }
}

TEST(ParseSubscriptionJsonTest, RejectsNonObjectJson) {
  for (const char* body : {"[]", "\"ZY1\"", "42", "null", "true", "", "<html></html>"}) {
    absl::StatusOr<Subscription> parsed = ParseSubscriptionJson(body);
    EXPECT_FALSE(parsed.ok()) << body;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInternal) << body;
  }
}

TEST(ParseSubscriptionJsonTest, RejectsBadDate) {
  absl::StatusOr<Subscription> parsed =
      ParseSubscriptionJson(R"({"sid":"ZY1","date_created":"2019-12-18T20:02:01Z"})");
  EXPECT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("date_created"));
}

TEST(ParseSubscriptionJsonTest, EmptyDateStringIsUnset) {
  absl::StatusOr<Subscription> parsed = ParseSubscriptionJson(R"({"date_created":""})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->date_created.has_value());
}

// ---- StatusFromHttpResponse -----------------------------------------------------------------

HttpResponse Response(int status, std::string body,
                      std::optional<std::string> retry_after = std::nullopt) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.retry_after = std::move(retry_after);
  return r;
}

std::string TwilioErrorBody(int code, int status) {
  return absl::StrCat(R"({"code": )", code, R"(, "message": "Twilio says no", )",
                      R"("more_info": "https://www.twilio.com/docs/errors/)", code,
                      R"(", "status": )", status, "}");
}

TEST(StatusFromHttpResponseTest, SuccessIsOk) {
  EXPECT_TRUE(StatusFromHttpResponse(Response(201, kFullBody)).ok());
  EXPECT_TRUE(StatusFromHttpResponse(Response(200, "")).ok());
  EXPECT_TRUE(StatusFromHttpResponse(Response(204, "")).ok());
}

TEST(StatusFromHttpResponseTest, CallNotInProgressIsFailedPrecondition) {
  absl::Status s = StatusFromHttpResponse(Response(400, TwilioErrorBody(21220, 400)));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetErrorReason(s), "CALL_NOT_ACTIVE");
}

TEST(StatusFromHttpResponseTest, CallNotRingingForMessagesIsFailedPrecondition) {
  absl::Status s = StatusFromHttpResponse(Response(400, TwilioErrorBody(31211, 400)));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(StatusFromHttpResponseTest, CodeOutsideInt32IsDroppedNotWrapped) {
  // 4294988516 wraps to 21220 in 32 bits: it must not turn into "call not active".
  absl::Status s = StatusFromHttpResponse(Response(409, R"({"code": 4294988516})"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(GetTwilioError(s).has_value());
  EXPECT_EQ(GetTwilioError(s)->code, 0);
  absl::Status huge = StatusFromHttpResponse(Response(409, R"({"code": 18446744073709551615})"));
  EXPECT_EQ(GetTwilioError(huge)->code, 0);
}

TEST(StatusFromHttpResponseTest, LongTwilioMessageIsBounded) {
  const std::string body = R"({"code": 20001, "message": ")" + std::string(100000, 'm') + R"("})";
  absl::Status s = StatusFromHttpResponse(Response(400, body));
  ASSERT_TRUE(GetTwilioError(s).has_value());
  EXPECT_EQ(GetTwilioError(s)->message.size(), 256u);
  EXPECT_LT(s.message().size(), 400u);
}

// Twilio 404s and 400s are replayable, so their message is stored in the idempotency record.
TEST(StatusFromHttpResponseTest, LongTwilioMessageIsCutOnACharacterBoundary) {
  // 255 ASCII bytes, then a 3-byte character that would straddle the 256-byte bound.
  const std::string text = std::string(255, 'm') + "\xE2\x82\xAC" + "tail";
  const std::string body = R"({"code": 20404, "message": ")" + text + R"("})";
  absl::Status s = StatusFromHttpResponse(Response(404, body));
  ASSERT_TRUE(GetTwilioError(s).has_value());
  EXPECT_EQ(GetTwilioError(s)->message, std::string(255, 'm'));
  absl::StatusOr<absl::StatusOr<Subscription>> stored =
      DecodeOutcome(EncodeOutcome(absl::StatusOr<Subscription>(s)));
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->status().message(), s.message());
}

TEST(StatusFromHttpResponseTest, OtherBadRequestIsInvalidArgument) {
  absl::Status s = StatusFromHttpResponse(Response(400, TwilioErrorBody(21201, 400)));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetErrorReason(s), "TWILIO_REJECTED_REQUEST");
}

TEST(StatusFromHttpResponseTest, UnauthorizedIsInternal) {
  // The gateway's own credentials were rejected: not the caller's problem to fix.
  absl::Status s = StatusFromHttpResponse(Response(401, TwilioErrorBody(20003, 401)));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(GetErrorReason(s), "GATEWAY_CREDENTIALS_REJECTED");
}

TEST(StatusFromHttpResponseTest, ForbiddenIsPermissionDenied) {
  EXPECT_EQ(StatusFromHttpResponse(Response(403, TwilioErrorBody(20403, 403))).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(StatusFromHttpResponseTest, NotFoundIsNotFound) {
  EXPECT_EQ(StatusFromHttpResponse(Response(404, TwilioErrorBody(20404, 404))).code(),
            absl::StatusCode::kNotFound);
}

TEST(StatusFromHttpResponseTest, TooManyRequestsIsResourceExhausted) {
  absl::Status s = StatusFromHttpResponse(Response(429, TwilioErrorBody(20429, 429)));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorReason(s), "TWILIO_THROTTLED");
}

TEST(StatusFromHttpResponseTest, ServerErrorsAreUnavailable) {
  for (int status : {500, 502, 503, 504}) {
    absl::Status s = StatusFromHttpResponse(Response(status, TwilioErrorBody(20500, status)));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_EQ(GetErrorReason(s), "TWILIO_UNAVAILABLE") << status;
  }
}

TEST(StatusFromHttpResponseTest, NonJsonErrorBodyMapsByHttpStatus) {
  const std::string html = "<html><body>502 Bad Gateway</body></html>";
  absl::Status s = StatusFromHttpResponse(Response(502, html));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(s);
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 0);
  EXPECT_EQ(twilio->http_status, 502);
  EXPECT_EQ(StatusFromHttpResponse(Response(404, "Not Found")).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusFromHttpResponse(Response(429, "")).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusFromHttpResponse(Response(400, "[1,2]")).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StatusFromHttpResponseTest, TwilioErrorDetailCarriesTwilioFields) {
  absl::Status s = StatusFromHttpResponse(Response(404, TwilioErrorBody(20404, 404)));
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(s);
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 20404);
  EXPECT_EQ(twilio->message, "Twilio says no");
  EXPECT_EQ(twilio->more_info, "https://www.twilio.com/docs/errors/20404");
  EXPECT_EQ(twilio->http_status, 404);
  EXPECT_THAT(s.message(), HasSubstr("404"));
  EXPECT_THAT(s.message(), HasSubstr("20404"));
  EXPECT_THAT(s.message(), HasSubstr("Twilio says no"));
}

TEST(StatusFromHttpResponseTest, ErrorBodyWithoutCodeOrMoreInfo) {
  absl::Status s = StatusFromHttpResponse(Response(400, R"({"message":"bad","status":400})"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(s);
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 0);
  EXPECT_EQ(twilio->message, "bad");
  EXPECT_EQ(twilio->more_info, "");
}

TEST(StatusFromHttpResponseTest, RetryAfterSecondsBecomesRetryDelay) {
  absl::Status s = StatusFromHttpResponse(Response(429, TwilioErrorBody(20429, 429), "3"));
  EXPECT_EQ(GetRetryDelay(s), absl::Seconds(3));
}

TEST(StatusFromHttpResponseTest, NoRetryDelayWithoutRetryAfter) {
  EXPECT_EQ(GetRetryDelay(StatusFromHttpResponse(Response(429, ""))), std::nullopt);
  EXPECT_EQ(GetRetryDelay(StatusFromHttpResponse(Response(503, "", "soon"))), std::nullopt);
}

// ---- StatusFromTransportFailure -------------------------------------------------------------

HttpResult Failure(TransportFailure failure) {
  HttpResult r;
  r.failure = failure;
  r.error = "Connection refused";
  return r;
}

TEST(StatusFromTransportFailureTest, NoneIsOk) {
  EXPECT_TRUE(StatusFromTransportFailure(Failure(TransportFailure::kNone)).ok());
}

TEST(StatusFromTransportFailureTest, ConnectIsUnavailable) {
  absl::Status s = StatusFromTransportFailure(Failure(TransportFailure::kConnect));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("Connection refused"));
  EXPECT_EQ(GetErrorReason(s), "TWILIO_UNREACHABLE");
}

TEST(StatusFromTransportFailureTest, TimeoutIsDeadlineExceeded) {
  absl::Status s = StatusFromTransportFailure(Failure(TransportFailure::kTimeout));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(GetErrorReason(s), "TWILIO_TIMEOUT");
}

TEST(StatusFromTransportFailureTest, IoIsUnavailable) {
  absl::Status s = StatusFromTransportFailure(Failure(TransportFailure::kIo));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetErrorReason(s), "TWILIO_CONNECTION_FAILED");
}

TEST(StatusFromTransportFailureTest, CancelledIsCancelled) {
  EXPECT_EQ(StatusFromTransportFailure(Failure(TransportFailure::kCancelled)).code(),
            absl::StatusCode::kCancelled);
}

// ---- ParseRetryAfter ------------------------------------------------------------------------

// Fixed "now": Wed, 21 Oct 2015 07:28:00 GMT.
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2015, 10, 21, 7, 28, 0), absl::UTCTimeZone());

TEST(ParseRetryAfterTest, ParsesDeltaSeconds) {
  EXPECT_EQ(ParseRetryAfter("3", kNow), absl::Seconds(3));
  EXPECT_EQ(ParseRetryAfter("0", kNow), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("120", kNow), absl::Seconds(120));
}

TEST(ParseRetryAfterTest, IgnoresSurroundingWhitespace) {
  EXPECT_EQ(ParseRetryAfter(" 10 ", kNow), absl::Seconds(10));
}

TEST(ParseRetryAfterTest, RejectsNegativeAndGarbage) {
  EXPECT_EQ(ParseRetryAfter("-1", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("abc", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("1.5", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("3s", kNow), std::nullopt);
}

TEST(ParseRetryAfterTest, RejectsOverlongNumbers) {
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", kNow), std::nullopt);
}

TEST(ParseRetryAfterTest, FutureHttpDateIsTimeUntilThen) {
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:29:30 GMT", kNow), absl::Seconds(90));
}

TEST(ParseRetryAfterTest, PastHttpDateIsZero) {
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", kNow), absl::ZeroDuration());
}

TEST(ParseRetryAfterTest, RejectsMalformedHttpDate) {
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:29:30", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("2015-10-21T07:29:30Z", kNow), std::nullopt);
}

}  // namespace
}  // namespace gateway
