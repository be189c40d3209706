#include "twilio/twilio_api.h"

#include <string>
#include <utility>
#include <variant>
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

absl::Status StatusFromHttpError(TwilioCall::Kind kind, const HttpResponse& response) {
  return ReadHttpError(kind, response).status;
}

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

// ---- TwilioCall descriptions / BasicAuthorization ---------------------------------------------

std::string SubscriptionsPath(absl::string_view account_sid, absl::string_view call_sid) {
  return absl::StrCat("/2010-04-01/Accounts/", account_sid, "/Calls/", call_sid,
                      "/UserDefinedMessageSubscriptions.json");
}

TEST(CreateSubscriptionCallTest, PostsToTheSubscriptionsOfTheCall) {
  CreateSubscriptionRequest request;
  request.account_sid = kAccount;
  request.call_sid = kCall;
  request.callback = "https://example.com/hook";
  request.idempotency_key = "key-1";
  const TwilioCall call = CreateSubscriptionCall(request);
  EXPECT_EQ(call.kind, TwilioCall::Kind::kCreateSubscription);
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.path,
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/"
            "CAfedcba9876543210fedcba9876543210/UserDefinedMessageSubscriptions.json");
  EXPECT_EQ(call.account_sid, kAccount);
  EXPECT_EQ(call.call_sid, kCall);
  EXPECT_EQ(call.idempotency_key, "key-1");
  EXPECT_FALSE(call.naturally_idempotent);
  EXPECT_FALSE(call.not_found_after_effect_is_success);
  EXPECT_EQ(OperationName(call.kind), "Create");
}

TEST(DeleteSubscriptionCallTest, DeletesTheSubscriptionWithoutBodyOrKey) {
  DeleteSubscriptionRequest request;
  request.account_sid = kAccount;
  request.call_sid = kCall;
  request.sid = kSid;
  const TwilioCall call = DeleteSubscriptionCall(request);
  EXPECT_EQ(call.kind, TwilioCall::Kind::kDeleteSubscription);
  EXPECT_EQ(call.method, "DELETE");
  EXPECT_EQ(call.path,
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/"
            "CAfedcba9876543210fedcba9876543210/UserDefinedMessageSubscriptions/"
            "ZY00112233445566778899aabbccddeeff.json");
  EXPECT_TRUE(call.form.empty());
  EXPECT_EQ(call.idempotency_key, "");
  EXPECT_TRUE(call.naturally_idempotent);
  EXPECT_TRUE(call.not_found_after_effect_is_success);
  EXPECT_EQ(OperationName(call.kind), "Delete");

  HttpRequest http =
      BuildHttpRequest("https://api.twilio.test", {"u", "p"}, call, absl::Seconds(2));
  EXPECT_EQ(http.method, "DELETE");
  EXPECT_EQ(http.url, "https://api.twilio.test" + call.path);
  EXPECT_EQ(http.body, "");
  for (const auto& [name, value] : http.headers) EXPECT_NE(name, "Content-Type");
  EXPECT_THAT(http.headers, Contains(Pair("Authorization", "Basic " + absl::Base64Escape("u:p"))));
}

TEST(SendMessageCallTest, PostsTheContentAndKeyToTheMessagesOfTheCall) {
  SendMessageRequest request;
  request.account_sid = kAccount;
  request.call_sid = kCall;
  request.content = R"({"a":"b c"})";
  request.idempotency_key = "key-1";
  const TwilioCall call = SendMessageCall(request);
  EXPECT_EQ(call.kind, TwilioCall::Kind::kSendMessage);
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.path,
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/"
            "CAfedcba9876543210fedcba9876543210/UserDefinedMessages.json");
  EXPECT_EQ(call.idempotency_key, "key-1");
  EXPECT_FALSE(call.naturally_idempotent);
  EXPECT_FALSE(call.not_found_after_effect_is_success);
  EXPECT_EQ(OperationName(call.kind), "Send");

  HttpRequest http =
      BuildHttpRequest("https://api.twilio.test", {"u", "p"}, call, absl::Seconds(2));
  EXPECT_EQ(http.method, "POST");
  EXPECT_EQ(http.body, "Content=%7B%22a%22%3A%22b+c%22%7D&IdempotencyKey=key-1");
  EXPECT_THAT(http.headers, Contains(Pair("Content-Type", "application/x-www-form-urlencoded")));
  EXPECT_EQ(http.timeout, absl::Seconds(2));
}

TEST(BasicAuthorizationTest, EncodesUserColonPasswordInBase64) {
  // RFC 7617's example.
  EXPECT_EQ(BasicAuthorization({"Aladdin", "open sesame"}), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}

TEST(BasicAuthorizationTest, EncodesApiKeyCredentials) {
  const std::string user = "SK" + std::string(32, '1');
  EXPECT_EQ(BasicAuthorization({user, "s3cr3t"}), "Basic " + absl::Base64Escape(user + ":s3cr3t"));
}

// ---- BuildHttpRequest (Create) ---------------------------------------------------------

constexpr char kBaseUrl[] = "https://api.twilio.test";
const TwilioCredentials kCredentials = {"user", "pass"};

CreateSubscriptionRequest TestRequest() {
  CreateSubscriptionRequest request;
  request.account_sid = kAccount;
  request.call_sid = kCall;
  request.callback = "https://example.com/hook?a=1";
  request.method = CallbackMethod::kPost;
  request.idempotency_key = "key 1";
  return request;
}

TEST(BuildHttpRequestTest, PostsToBaseUrlPlusPath) {
  HttpRequest http = BuildHttpRequest(kBaseUrl, kCredentials, CreateSubscriptionCall(TestRequest()),
                                      absl::Seconds(3));
  EXPECT_EQ(http.method, "POST");
  EXPECT_EQ(http.url, "https://api.twilio.test" + SubscriptionsPath(kAccount, kCall));
  EXPECT_EQ(http.timeout, absl::Seconds(3));
}

TEST(BuildHttpRequestTest, SendsAuthAcceptAndContentTypeHeaders) {
  HttpRequest http = BuildHttpRequest(kBaseUrl, kCredentials, CreateSubscriptionCall(TestRequest()),
                                      absl::Seconds(3));
  EXPECT_THAT(http.headers,
              Contains(Pair("Authorization", "Basic " + absl::Base64Escape("user:pass"))));
  EXPECT_THAT(http.headers, Contains(Pair("Accept", "application/json")));
  EXPECT_THAT(http.headers, Contains(Pair("Content-Type", "application/x-www-form-urlencoded")));
}

TEST(BuildHttpRequestTest, BodyCarriesCallbackMethodAndKey) {
  HttpRequest http = BuildHttpRequest(kBaseUrl, kCredentials, CreateSubscriptionCall(TestRequest()),
                                      absl::Seconds(3));
  EXPECT_EQ(http.body,
            "Callback=https%3A%2F%2Fexample.com%2Fhook%3Fa%3D1&Method=POST&IdempotencyKey=key+1");
}

TEST(BuildHttpRequestTest, GetMethodSentAsGet) {
  CreateSubscriptionRequest request = TestRequest();
  request.method = CallbackMethod::kGet;
  HttpRequest http =
      BuildHttpRequest(kBaseUrl, kCredentials, CreateSubscriptionCall(request), absl::Seconds(3));
  EXPECT_THAT(http.body, HasSubstr("&Method=GET&"));
}

TEST(BuildHttpRequestTest, DefaultMethodIsPost) {
  CreateSubscriptionRequest request = TestRequest();
  request.method = CreateSubscriptionRequest().method;
  HttpRequest http =
      BuildHttpRequest(kBaseUrl, kCredentials, CreateSubscriptionCall(request), absl::Seconds(3));
  EXPECT_THAT(http.body, HasSubstr("&Method=POST&"));
}

// ---- ParseResource ------------------------------------------------------------------

constexpr char kFullBody[] = R"({
  "account_sid": "AC0123456789abcdef0123456789abcdef",
  "call_sid": "CAfedcba9876543210fedcba9876543210",
  "sid": "ZY00112233445566778899aabbccddeeff",
  "date_created": "Wed, 18 Dec 2019 20:02:01 +0000",
  "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls/CAfedcba9876543210fedcba9876543210/UserDefinedMessageSubscriptions/ZY00112233445566778899aabbccddeeff.json"
})";

// The Create's resource as a subscription (or the parse error).
absl::StatusOr<Subscription> ParseSubscriptionJson(absl::string_view body) {
  absl::StatusOr<Resource> parsed = ParseResource(TwilioCall::Kind::kCreateSubscription, body);
  if (!parsed.ok()) return parsed.status();
  if (!std::holds_alternative<Subscription>(*parsed))
    return absl::UnknownError("not a subscription");
  return std::get<Subscription>(*std::move(parsed));
}

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

TEST(ParseResourceTest, SendYieldsAMessage) {
  absl::StatusOr<Resource> parsed =
      ParseResource(TwilioCall::Kind::kSendMessage,
                    R"({"account_sid":"AC0123456789abcdef0123456789abcdef",)"
                    R"("call_sid":"CAfedcba9876543210fedcba9876543210",)"
                    R"("sid":"KX00112233445566778899aabbccddeeff",)"
                    R"("date_created":"Wed, 18 Dec 2019 20:02:01 +0000","extra":{"x":[1]}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(std::holds_alternative<Message>(*parsed));
  const Message& message = std::get<Message>(*parsed);
  EXPECT_EQ(message.account_sid, kAccount);
  EXPECT_EQ(message.call_sid, kCall);
  EXPECT_EQ(message.sid, "KX00112233445566778899aabbccddeeff");
  EXPECT_EQ(message.date_created,
            absl::FromCivil(absl::CivilSecond(2019, 12, 18, 20, 2, 1), absl::UTCTimeZone()));
}

TEST(ParseResourceTest, SendRejectsWhatCreateRejects) {
  for (const char* body : {"", "[]", R"({"sid":5})", R"({"date_created":"yesterday"})", "{"}) {
    absl::StatusOr<Resource> parsed = ParseResource(TwilioCall::Kind::kSendMessage, body);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInternal) << body;
  }
}

TEST(ParseResourceTest, DeleteYieldsADeletionWhateverTheBody) {
  for (const char* body : {"", "not json"}) {
    absl::StatusOr<Resource> parsed = ParseResource(TwilioCall::Kind::kDeleteSubscription, body);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_TRUE(std::holds_alternative<Deletion>(*parsed));
  }
}

// ---- StatusFromHttpError -----------------------------------------------------------------

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

TEST(StatusFromHttpErrorTest, CallNotInProgressIsFailedPrecondition) {
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                       Response(400, TwilioErrorBody(21220, 400)));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetErrorReason(s), "CALL_NOT_ACTIVE");
}

TEST(StatusFromHttpErrorTest, CallNotRingingForMessagesIsFailedPrecondition) {
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                       Response(400, TwilioErrorBody(31211, 400)));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(StatusFromHttpErrorTest, CodeOutsideInt32IsDroppedNotWrapped) {
  // 4294988516 wraps to 21220 in 32 bits: it must not turn into "call not active".
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                       Response(409, R"({"code": 4294988516})"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(GetTwilioError(s).has_value());
  EXPECT_EQ(GetTwilioError(s)->code, 0);
  absl::Status huge = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                          Response(409, R"({"code": 18446744073709551615})"));
  EXPECT_EQ(GetTwilioError(huge)->code, 0);
}

TEST(StatusFromHttpErrorTest, LongTwilioMessageIsBounded) {
  const std::string body = R"({"code": 20001, "message": ")" + std::string(100000, 'm') + R"("})";
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription, Response(400, body));
  ASSERT_TRUE(GetTwilioError(s).has_value());
  EXPECT_EQ(GetTwilioError(s)->message.size(), 256u);
  EXPECT_LT(s.message().size(), 400u);
}

// Twilio 404s and 400s are replayable, so their message is stored in the idempotency record.
TEST(StatusFromHttpErrorTest, LongTwilioMessageIsCutOnACharacterBoundary) {
  // 255 ASCII bytes, then a 3-byte character that would straddle the 256-byte bound.
  const std::string text = std::string(255, 'm') + "\xE2\x82\xAC" + "tail";
  const std::string body = R"({"code": 20404, "message": ")" + text + R"("})";
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription, Response(404, body));
  ASSERT_TRUE(GetTwilioError(s).has_value());
  EXPECT_EQ(GetTwilioError(s)->message, std::string(255, 'm'));
  absl::StatusOr<StoredOutcome> stored = DecodeOutcome(EncodeOutcome(s, /*may_exist=*/false));
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->result.status().message(), s.message());
}

TEST(StatusFromHttpErrorTest, OtherBadRequestIsInvalidArgument) {
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                       Response(400, TwilioErrorBody(21201, 400)));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetErrorReason(s), "TWILIO_REJECTED_REQUEST");
}

TEST(StatusFromHttpErrorTest, UnauthorizedIsInternal) {
  // The gateway's own credentials were rejected: not the caller's problem to fix.
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                       Response(401, TwilioErrorBody(20003, 401)));
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(GetErrorReason(s), "GATEWAY_CREDENTIALS_REJECTED");
}

TEST(StatusFromHttpErrorTest, ForbiddenIsPermissionDenied) {
  EXPECT_EQ(StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                Response(403, TwilioErrorBody(20403, 403)))
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(StatusFromHttpErrorTest, NotFoundIsNotFound) {
  EXPECT_EQ(StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                Response(404, TwilioErrorBody(20404, 404)))
                .code(),
            absl::StatusCode::kNotFound);
}

// Twilio's 20404 does not say which segment it did not find; the operation does.
TEST(StatusFromHttpErrorTest, NotFoundNamesWhatTheOperationLookedFor) {
  const HttpResponse not_found = Response(404, TwilioErrorBody(20404, 404));
  EXPECT_EQ(GetErrorReason(StatusFromHttpError(TwilioCall::Kind::kCreateSubscription, not_found)),
            "CALL_NOT_FOUND");
  EXPECT_EQ(GetErrorReason(StatusFromHttpError(TwilioCall::Kind::kSendMessage, not_found)),
            "CALL_NOT_FOUND");
  absl::Status deleted = StatusFromHttpError(TwilioCall::Kind::kDeleteSubscription, not_found);
  EXPECT_EQ(deleted.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetErrorReason(deleted), "SUBSCRIPTION_NOT_FOUND");
}

TEST(StatusFromHttpErrorTest, MessageToCallNotActiveIsFailedPrecondition) {
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kSendMessage,
                                       Response(400, TwilioErrorBody(31211, 400)));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetErrorReason(s), "CALL_NOT_ACTIVE");
}

TEST(StatusFromHttpErrorTest, MessageTooLargeIsInvalidArgumentOnTheContent) {
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kSendMessage,
                                       Response(400, TwilioErrorBody(31212, 400)));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetErrorReason(s), "MESSAGE_TOO_LARGE");
  std::vector<FieldViolation> violations = GetFieldViolations(s);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].field, "content");
  ASSERT_TRUE(GetTwilioError(s).has_value());
  EXPECT_EQ(GetTwilioError(s)->code, 31212);
  // Other rejections name no field.
  EXPECT_TRUE(GetFieldViolations(StatusFromHttpError(TwilioCall::Kind::kSendMessage,
                                                     Response(400, TwilioErrorBody(21201, 400))))
                  .empty());
}

TEST(StatusFromHttpErrorTest, TooManyRequestsIsResourceExhausted) {
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                       Response(429, TwilioErrorBody(20429, 429)));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorReason(s), "TWILIO_THROTTLED");
}

TEST(StatusFromHttpErrorTest, ServerErrorsAreUnavailable) {
  for (int status : {500, 502, 503, 504}) {
    absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                         Response(status, TwilioErrorBody(20500, status)));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_EQ(GetErrorReason(s), "TWILIO_UNAVAILABLE") << status;
  }
}

TEST(StatusFromHttpErrorTest, NonJsonErrorBodyMapsByHttpStatus) {
  const std::string html = "<html><body>502 Bad Gateway</body></html>";
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription, Response(502, html));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(s);
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 0);
  EXPECT_EQ(twilio->http_status, 502);
  EXPECT_EQ(
      StatusFromHttpError(TwilioCall::Kind::kCreateSubscription, Response(404, "Not Found")).code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusFromHttpError(TwilioCall::Kind::kCreateSubscription, Response(429, "")).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(
      StatusFromHttpError(TwilioCall::Kind::kCreateSubscription, Response(400, "[1,2]")).code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(StatusFromHttpErrorTest, TwilioErrorDetailCarriesTwilioFields) {
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                       Response(404, TwilioErrorBody(20404, 404)));
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

TEST(StatusFromHttpErrorTest, ErrorBodyWithoutCodeOrMoreInfo) {
  absl::Status s = StatusFromHttpError(TwilioCall::Kind::kCreateSubscription,
                                       Response(400, R"({"message":"bad","status":400})"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(s);
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 0);
  EXPECT_EQ(twilio->message, "bad");
  EXPECT_EQ(twilio->more_info, "");
}

TEST(StatusFromHttpErrorTest, RetryInfoIsLeftToClassifyAttempt) {
  // Retry-After is read once, against the engine's clock, by ClassifyAttempt (attempt_test.cc).
  EXPECT_EQ(GetRetryDelay(
                StatusFromHttpError(TwilioCall::Kind::kCreateSubscription, Response(429, "", "3"))),
            std::nullopt);
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
