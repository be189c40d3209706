#include "idempotency/outcome_codec.h"

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/error_details.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::MatchesRegex;

constexpr char kAccount[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kCall[] = "CAfedcba9876543210fedcba9876543210";

Subscription FullSubscription() {
  Subscription s;
  s.account_sid = kAccount;
  s.call_sid = kCall;
  s.sid = "ZY00112233445566778899aabbccddeeff";
  s.date_created = absl::FromUnixNanos(1576699321123456789);
  s.uri = "/2010-04-01/Accounts/x.json";
  s.idempotency_key = "caller-key";
  return s;
}

// Decodes what EncodeOutcome() wrote, failing the test if it is unreadable.
absl::StatusOr<Subscription> RoundTrip(const absl::StatusOr<Subscription>& outcome) {
  absl::StatusOr<absl::StatusOr<Subscription>> decoded = DecodeOutcome(EncodeOutcome(outcome));
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  if (!decoded.ok()) return absl::UnknownError("unreadable");
  return *decoded;
}

std::map<std::string, std::string> Payloads(const absl::Status& status) {
  std::map<std::string, std::string> out;
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& value) {
    out[std::string(url)] = std::string(value);
  });
  return out;
}

TEST(OutcomeCodecTest, RoundTripsASubscriptionKeepingNanoseconds) {
  const Subscription original = FullSubscription();
  absl::StatusOr<Subscription> decoded = RoundTrip(original);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->account_sid, original.account_sid);
  EXPECT_EQ(decoded->call_sid, original.call_sid);
  EXPECT_EQ(decoded->sid, original.sid);
  EXPECT_EQ(decoded->uri, original.uri);
  EXPECT_EQ(decoded->idempotency_key, original.idempotency_key);
  ASSERT_TRUE(decoded->date_created.has_value());
  EXPECT_EQ(absl::ToUnixNanos(*decoded->date_created), 1576699321123456789);
  EXPECT_FALSE(decoded->replayed);
}

TEST(OutcomeCodecTest, RoundTripsASubscriptionWithoutDateCreated) {
  Subscription original = FullSubscription();
  original.date_created.reset();
  absl::StatusOr<Subscription> decoded = RoundTrip(original);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_FALSE(decoded->date_created.has_value());
  EXPECT_EQ(decoded->sid, original.sid);
}

TEST(OutcomeCodecTest, RoundTripsAnErrorWithItsDetails) {
  absl::Status original = InvalidArgument({{"callback", "must be https"}, {"call_sid", "bad"}});
  SetTwilioError(original, {21201, "Invalid Callback", "https://www.twilio.com/docs/21201", 400});
  SetRetryDelay(original, absl::Milliseconds(1500));
  SetErrorInfo(original, "", {{"attempts", "2"}, {"subscription_may_exist", "false"}});
  // A payload that is not text, to show bytes survive as they are.
  original.SetPayload("type.googleapis.com/test.Binary", absl::Cord(std::string("\0\xff\x80", 3)));

  absl::StatusOr<Subscription> decoded = RoundTrip(original);
  ASSERT_FALSE(decoded.ok());
  const absl::Status& status = decoded.status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), original.message());
  EXPECT_EQ(Payloads(status), Payloads(original));
  EXPECT_EQ(status, original);
  EXPECT_THAT(GetFieldViolations(status), ElementsAre(FieldViolation{"callback", "must be https"},
                                                      FieldViolation{"call_sid", "bad"}));
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(status);
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 21201);
  EXPECT_EQ(twilio->more_info, "https://www.twilio.com/docs/21201");
  EXPECT_EQ(GetRetryDelay(status), absl::Milliseconds(1500));
  EXPECT_EQ(GetErrorReason(status), "INVALID_REQUEST");
  EXPECT_EQ(GetErrorMetadata(status)["attempts"], "2");
}

TEST(OutcomeCodecTest, RoundTripsAnErrorWithoutPayloads) {
  absl::StatusOr<Subscription> decoded = RoundTrip(absl::NotFoundError("no such call"));
  EXPECT_EQ(decoded.status(), absl::NotFoundError("no such call"));
}

// The encoder before it was written by hand, kept to show records are unchanged byte for byte
// (Redis holds records from earlier versions, and replicas may run either version).
std::string NlohmannEncode(const absl::StatusOr<Subscription>& outcome) {
  nlohmann::json json = {{"v", 1}};
  if (outcome.ok()) {
    const Subscription& s = *outcome;
    json["subscription"] = {{"account_sid", s.account_sid},
                            {"call_sid", s.call_sid},
                            {"sid", s.sid},
                            {"uri", s.uri},
                            {"idempotency_key", s.idempotency_key}};
    if (s.date_created.has_value()) {
      json["subscription"]["date_created_unix_ns"] = absl::ToUnixNanos(*s.date_created);
    }
  } else {
    nlohmann::json payloads = nlohmann::json::object();
    outcome.status().ForEachPayload([&payloads](absl::string_view url, const absl::Cord& value) {
      payloads[std::string(url)] = absl::Base64Escape(std::string(value));
    });
    json["error"] = {{"code", static_cast<int>(outcome.status().code())},
                     {"message", std::string(outcome.status().message())},
                     {"payloads", payloads}};
  }
  return json.dump();
}

TEST(OutcomeCodecTest, RecordsAreByteForByteWhatTheNlohmannEncoderWrote) {
  Subscription escaped = FullSubscription();
  escaped.idempotency_key = "key \"quoted\" \\ caf\xC3\xA9\n";
  absl::Status error = InvalidArgument({{"callback", "must be https"}});
  SetTwilioError(error, {21201, "Invalid \"Callback\"", "https://www.twilio.com/docs/21201", 400});
  SetRetryDelay(error, absl::Milliseconds(1500));
  const std::vector<absl::StatusOr<Subscription>> outcomes = {
      FullSubscription(),     escaped, Subscription{}, error, absl::NotFoundError("no such call"),
      absl::InternalError("")};
  for (const absl::StatusOr<Subscription>& outcome : outcomes) {
    EXPECT_EQ(EncodeOutcome(outcome), NlohmannEncode(outcome)) << outcome.status();
  }
}

// A Twilio message cut in the middle of a character used to make the encoder throw.
TEST(OutcomeCodecTest, InvalidUtf8InAMessageIsReplacedNotFatal) {
  const absl::Status original = absl::NotFoundError("cut in a character: \xE2\x82");
  EXPECT_THROW(NlohmannEncode(original), nlohmann::json::exception);
  absl::StatusOr<Subscription> decoded = RoundTrip(original);
  EXPECT_EQ(decoded.status().message(), "cut in a character: \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(OutcomeCodecTest, UnreadableRecordsAreInternal) {
  const std::string good_error = EncodeOutcome(absl::NotFoundError("x"));
  const std::vector<std::string> unreadable = {
      "",
      "not json",
      "[1, 2]",
      "{}",
      R"({"v":1})",
      R"({"v":2,"subscription":{"sid":"ZY1"}})",
      R"({"subscription":{"sid":"ZY1"}})",
      R"({"v":1,"error":{"code":0,"message":"ok is no error"}})",
      R"({"v":1,"error":{"code":17,"message":"no such code"}})",
      R"({"v":1,"error":{"code":-1}})",
      R"({"v":1,"error":"flat"})",
      R"({"v":1,"error":{"code":5,"payloads":{"type.googleapis.com/x":"***not base64***"}}})",
      R"({"v":1,"error":{"code":5,"payloads":{"type.googleapis.com/x":42}}})",
      good_error.substr(0, good_error.size() / 2),
  };
  for (const std::string& encoded : unreadable) {
    absl::StatusOr<absl::StatusOr<Subscription>> decoded = DecodeOutcome(encoded);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInternal) << encoded;
  }
}

TEST(OutcomeCodecTest, RecordOfAnotherVersionIsInternal) {
  const std::string v1 = EncodeOutcome(FullSubscription());
  const std::string v2 = absl::StrReplaceAll(v1, {{R"("v":1)", R"("v":2)"}});
  ASSERT_NE(v1, v2);
  ASSERT_TRUE(DecodeOutcome(v1).ok());
  EXPECT_EQ(DecodeOutcome(v2).status().code(), absl::StatusCode::kInternal);
}

TEST(OutcomeCodecTest, RecordWithFieldsOfTheWrongTypeIsInternal) {
  const std::vector<std::string> wrong_types = {
      R"({"v":"1","subscription":{"sid":"ZY1"}})",
      R"({"v":1,"subscription":{"sid":5}})",
      R"({"v":1,"error":{"code":"5","message":"x"}})",
      R"({"v":1,"error":{"code":5,"message":7}})",
  };
  for (const std::string& encoded : wrong_types) {
    absl::StatusOr<absl::StatusOr<Subscription>> decoded = absl::UnknownError("threw");
    EXPECT_NO_THROW(decoded = DecodeOutcome(encoded)) << encoded;
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInternal) << encoded;
  }
}

CreateSubscriptionRequest BaseRequest() {
  CreateSubscriptionRequest request;
  request.account_sid = kAccount;
  request.call_sid = kCall;
  request.callback = "https://example.com/hook";
  request.method = CallbackMethod::kPost;
  request.idempotency_key = "caller-key";
  return request;
}

TEST(RequestFingerprintTest, IsSha256HexAndStableAcrossBuilds) {
  const std::string fingerprint = RequestFingerprint(BaseRequest());
  EXPECT_THAT(fingerprint, MatchesRegex("[0-9a-f]{64}"));
  EXPECT_EQ(fingerprint, RequestFingerprint(BaseRequest()));
  // Pinned: records in a shared store must keep matching after an upgrade. This is SHA-256 of
  // the length-prefixed fields "34:AC...34:CA...24:https://example.com/hookPOST".
  EXPECT_EQ(fingerprint, "781f41ec86284de24265c2d5487e2d3a84fb9442aee14b3caa091b89b56568ed");
}

TEST(RequestFingerprintTest, DiffersWhenAnyDefiningFieldDiffers) {
  const std::string base = RequestFingerprint(BaseRequest());
  CreateSubscriptionRequest account = BaseRequest();
  account.account_sid = "AC0123456789abcdef0123456789abcdee";
  CreateSubscriptionRequest call = BaseRequest();
  call.call_sid = "CAfedcba9876543210fedcba9876543211";
  CreateSubscriptionRequest callback = BaseRequest();
  callback.callback = "https://example.com/hook2";
  CreateSubscriptionRequest method = BaseRequest();
  method.method = CallbackMethod::kGet;

  EXPECT_NE(RequestFingerprint(account), base);
  EXPECT_NE(RequestFingerprint(call), base);
  EXPECT_NE(RequestFingerprint(callback), base);
  EXPECT_NE(RequestFingerprint(method), base);
}

TEST(RequestFingerprintTest, IgnoresTheIdempotencyKey) {
  CreateSubscriptionRequest other_key = BaseRequest();
  other_key.idempotency_key = "another-key";
  EXPECT_EQ(RequestFingerprint(other_key), RequestFingerprint(BaseRequest()));
}

TEST(RequestFingerprintTest, FieldBoundariesCannotShift) {
  CreateSubscriptionRequest a = BaseRequest();
  a.account_sid = "ACx";
  a.call_sid = "yCA";
  CreateSubscriptionRequest b = BaseRequest();
  b.account_sid = "ACxy";
  b.call_sid = "CA";
  EXPECT_NE(RequestFingerprint(a), RequestFingerprint(b));

  CreateSubscriptionRequest c = BaseRequest();
  c.call_sid = "CA1";
  c.callback = "2https://example.com/hook";
  CreateSubscriptionRequest d = BaseRequest();
  d.call_sid = "CA12";
  d.callback = "https://example.com/hook";
  EXPECT_NE(RequestFingerprint(c), RequestFingerprint(d));
}

TEST(IsReplayableOutcomeTest, OnlyFinalAnswersAreReplayable) {
  EXPECT_TRUE(IsReplayableOutcome(FullSubscription()));
  const std::map<absl::StatusCode, bool> replayable = {
      {absl::StatusCode::kCancelled, false},
      {absl::StatusCode::kUnknown, false},
      {absl::StatusCode::kInvalidArgument, true},
      {absl::StatusCode::kDeadlineExceeded, false},
      {absl::StatusCode::kNotFound, true},
      {absl::StatusCode::kAlreadyExists, false},
      {absl::StatusCode::kPermissionDenied, false},
      {absl::StatusCode::kResourceExhausted, false},
      {absl::StatusCode::kFailedPrecondition, false},
      {absl::StatusCode::kAborted, false},
      {absl::StatusCode::kOutOfRange, false},
      {absl::StatusCode::kUnimplemented, false},
      {absl::StatusCode::kInternal, false},
      {absl::StatusCode::kUnavailable, false},
      {absl::StatusCode::kDataLoss, false},
      {absl::StatusCode::kUnauthenticated, false},
  };
  for (const auto& [code, expected] : replayable) {
    EXPECT_EQ(IsReplayableOutcome(absl::Status(code, "x")), expected)
        << absl::StatusCodeToString(code);
  }
}

}  // namespace
}  // namespace gateway
