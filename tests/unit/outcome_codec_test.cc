#include "idempotency/outcome_codec.h"

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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
  return s;
}

Message FullMessage() {
  Message m;
  m.account_sid = kAccount;
  m.call_sid = kCall;
  m.sid = "KX00112233445566778899aabbccddeeff";
  m.date_created = absl::FromUnixNanos(1576699321123456789);
  return m;
}

// Decodes what EncodeOutcome() wrote, failing the test if it is unreadable.
StoredOutcome RoundTrip(const absl::StatusOr<Resource>& outcome, bool may_exist = false) {
  absl::StatusOr<StoredOutcome> decoded = DecodeOutcome(EncodeOutcome(outcome, may_exist));
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  if (!decoded.ok()) return {.result = absl::UnknownError("unreadable"), .may_exist = false};
  return *std::move(decoded);
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
  StoredOutcome decoded = RoundTrip(original);
  ASSERT_TRUE(decoded.result.ok()) << decoded.result.status();
  ASSERT_TRUE(std::holds_alternative<Subscription>(*decoded.result));
  const Subscription& s = std::get<Subscription>(*decoded.result);
  EXPECT_EQ(s.account_sid, original.account_sid);
  EXPECT_EQ(s.call_sid, original.call_sid);
  EXPECT_EQ(s.sid, original.sid);
  EXPECT_EQ(s.uri, original.uri);
  ASSERT_TRUE(s.date_created.has_value());
  EXPECT_EQ(absl::ToUnixNanos(*s.date_created), 1576699321123456789);
  EXPECT_EQ(s, original);
  EXPECT_FALSE(decoded.may_exist);
}

TEST(OutcomeCodecTest, RoundTripsASubscriptionWithoutDateCreated) {
  Subscription original = FullSubscription();
  original.date_created.reset();
  StoredOutcome decoded = RoundTrip(original);
  ASSERT_TRUE(decoded.result.ok()) << decoded.result.status();
  ASSERT_TRUE(std::holds_alternative<Subscription>(*decoded.result));
  EXPECT_FALSE(std::get<Subscription>(*decoded.result).date_created.has_value());
  EXPECT_EQ(std::get<Subscription>(*decoded.result), original);
}

TEST(OutcomeCodecTest, RoundTripsAMessage) {
  const Message original = FullMessage();
  StoredOutcome decoded = RoundTrip(original);
  ASSERT_TRUE(decoded.result.ok()) << decoded.result.status();
  ASSERT_TRUE(std::holds_alternative<Message>(*decoded.result));
  const Message& m = std::get<Message>(*decoded.result);
  EXPECT_EQ(m.sid, "KX00112233445566778899aabbccddeeff");
  EXPECT_EQ(absl::ToUnixNanos(*m.date_created), 1576699321123456789);
  EXPECT_EQ(m, original);

  Message undated = FullMessage();
  undated.date_created.reset();
  StoredOutcome again = RoundTrip(undated);
  ASSERT_TRUE(again.result.ok()) << again.result.status();
  ASSERT_TRUE(std::holds_alternative<Message>(*again.result));
  EXPECT_EQ(std::get<Message>(*again.result), undated);
}

TEST(OutcomeCodecTest, RoundTripsADeletion) {
  StoredOutcome decoded = RoundTrip(Deletion{});
  ASSERT_TRUE(decoded.result.ok()) << decoded.result.status();
  EXPECT_TRUE(std::holds_alternative<Deletion>(*decoded.result));
}

TEST(OutcomeCodecTest, ResourcesKeepTheirKind) {
  // A message record never reads back as a subscription, nor the other way round.
  EXPECT_TRUE(std::holds_alternative<Message>(*RoundTrip(FullMessage()).result));
  EXPECT_TRUE(std::holds_alternative<Subscription>(*RoundTrip(FullSubscription()).result));
  EXPECT_TRUE(std::holds_alternative<Subscription>(*RoundTrip(Subscription{}).result));
  EXPECT_TRUE(std::holds_alternative<Message>(*RoundTrip(Message{}).result));
}

TEST(OutcomeCodecTest, RoundTripsAnErrorWithItsDetails) {
  absl::Status original = InvalidArgument({{"callback", "must be https"}, {"call_sid", "bad"}});
  SetTwilioError(original, {21201, "Invalid Callback", "https://www.twilio.com/docs/21201", 400});
  SetRetryDelay(original, absl::Milliseconds(1500));
  SetErrorInfo(original, "", {{"attempts", "2"}, {"subscription_may_exist", "false"}});
  // A payload that is not text, to show bytes survive as they are.
  original.SetPayload("type.googleapis.com/test.Binary", absl::Cord(std::string("\0\xff\x80", 3)));

  StoredOutcome decoded = RoundTrip(original);
  ASSERT_FALSE(decoded.result.ok());
  const absl::Status& status = decoded.result.status();
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
  EXPECT_FALSE(decoded.may_exist);
}

TEST(OutcomeCodecTest, RoundTripsAnErrorWithoutPayloads) {
  StoredOutcome decoded = RoundTrip(absl::NotFoundError("no such call"));
  EXPECT_EQ(decoded.result.status(), absl::NotFoundError("no such call"));
}

TEST(OutcomeCodecTest, RoundTripsMayExistOfAnError) {
  const absl::Status unknown = absl::UnknownError("may or may not exist");
  EXPECT_TRUE(RoundTrip(unknown, /*may_exist=*/true).may_exist);
  EXPECT_FALSE(RoundTrip(unknown, /*may_exist=*/false).may_exist);
  // may_exist is the record's, not a payload of the status.
  EXPECT_EQ(RoundTrip(unknown, /*may_exist=*/true).result.status(), unknown);
}

// ---- Records written by earlier versions (Redis holds them for the retention) ----------------

// Before Outcome, a stored subscription carried its idempotency key.
TEST(OutcomeCodecTest, ReadsAnEarlierVersionsSubscriptionWithItsIdempotencyKey) {
  const std::string old_record = absl::StrCat(
      R"({"subscription":{"account_sid":")", kAccount, R"(","call_sid":")", kCall,
      R"(","date_created_unix_ns":1576699321123456789,"idempotency_key":"caller-key",)",
      R"("sid":"ZY00112233445566778899aabbccddeeff","uri":"/2010-04-01/Accounts/x.json"},"v":1})");
  absl::StatusOr<StoredOutcome> decoded = DecodeOutcome(old_record);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_TRUE(decoded->result.ok()) << decoded->result.status();
  ASSERT_TRUE(std::holds_alternative<Subscription>(*decoded->result));
  EXPECT_EQ(std::get<Subscription>(*decoded->result), FullSubscription());
  EXPECT_FALSE(decoded->may_exist);
}

// Before Outcome, an error record kept may_exist in its ErrorInfo metadata, and had no
// may_exist property of its own.
std::string EarlierVersionErrorRecord(absl::string_view may_exist) {
  absl::Status status = absl::UnknownError("the operation may or may not have taken effect");
  SetErrorInfo(status, "OUTCOME_UNKNOWN",
               {{"attempts", "3"},
                {"idempotency_key", "caller-key"},
                {"subscription_may_exist", std::string(may_exist)}});
  nlohmann::json payloads = nlohmann::json::object();
  status.ForEachPayload([&payloads](absl::string_view url, const absl::Cord& value) {
    payloads[std::string(url)] = absl::Base64Escape(std::string(value));
  });
  nlohmann::json json = {{"v", 1}};
  json["error"] = {{"code", static_cast<int>(status.code())},
                   {"message", std::string(status.message())},
                   {"payloads", payloads}};
  return json.dump();
}

TEST(OutcomeCodecTest, ReadsMayExistOfAnEarlierVersionsErrorFromItsMetadata) {
  const std::string may_exist = EarlierVersionErrorRecord("true");
  ASSERT_EQ(may_exist.find("\"may_exist\""), std::string::npos);
  absl::StatusOr<StoredOutcome> decoded = DecodeOutcome(may_exist);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->result.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(GetErrorReason(decoded->result.status()), "OUTCOME_UNKNOWN");
  EXPECT_TRUE(decoded->may_exist);

  absl::StatusOr<StoredOutcome> not_exist = DecodeOutcome(EarlierVersionErrorRecord("false"));
  ASSERT_TRUE(not_exist.ok()) << not_exist.status();
  EXPECT_FALSE(not_exist->may_exist);

  absl::StatusOr<StoredOutcome> bare = DecodeOutcome(R"({"error":{"code":5,"message":"x"},"v":1})");
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_FALSE(bare->may_exist);
}

// The encoder before it was written by hand, kept to show records are unchanged byte for byte
// (Redis holds records from earlier versions, and replicas may run either version): nlohmann
// writes keys in sorted order.
std::string NlohmannEncode(const absl::StatusOr<Resource>& outcome, bool may_exist) {
  nlohmann::json json = {{"v", 1}};
  if (outcome.ok()) {
    if (const auto* s = std::get_if<Subscription>(&*outcome)) {
      json["subscription"] = {{"account_sid", s->account_sid},
                              {"call_sid", s->call_sid},
                              {"sid", s->sid},
                              {"uri", s->uri}};
      if (s->date_created.has_value()) {
        json["subscription"]["date_created_unix_ns"] = absl::ToUnixNanos(*s->date_created);
      }
    } else if (const auto* m = std::get_if<Message>(&*outcome)) {
      json["message"] = {
          {"account_sid", m->account_sid}, {"call_sid", m->call_sid}, {"sid", m->sid}};
      if (m->date_created.has_value()) {
        json["message"]["date_created_unix_ns"] = absl::ToUnixNanos(*m->date_created);
      }
    } else {
      json["deletion"] = nlohmann::json::object();
    }
  } else {
    nlohmann::json payloads = nlohmann::json::object();
    outcome.status().ForEachPayload([&payloads](absl::string_view url, const absl::Cord& value) {
      payloads[std::string(url)] = absl::Base64Escape(std::string(value));
    });
    json["error"] = {{"code", static_cast<int>(outcome.status().code())},
                     {"may_exist", may_exist},
                     {"message", std::string(outcome.status().message())},
                     {"payloads", payloads}};
  }
  return json.dump();
}

TEST(OutcomeCodecTest, RecordsAreByteForByteWhatTheNlohmannEncoderWrote) {
  Subscription escaped = FullSubscription();
  escaped.uri = "/uri \"quoted\" \\ caf\xC3\xA9\n";
  Message escaped_message = FullMessage();
  escaped_message.sid = "KX \"quoted\" \\ caf\xC3\xA9\t";
  escaped_message.date_created.reset();
  absl::Status error = InvalidArgument({{"callback", "must be https"}});
  SetTwilioError(error, {21201, "Invalid \"Callback\"", "https://www.twilio.com/docs/21201", 400});
  SetRetryDelay(error, absl::Milliseconds(1500));
  const std::vector<absl::StatusOr<Resource>> outcomes = {FullSubscription(),
                                                          escaped,
                                                          Subscription{},
                                                          FullMessage(),
                                                          escaped_message,
                                                          Message{},
                                                          Deletion{},
                                                          error,
                                                          absl::NotFoundError("no such call"),
                                                          absl::InternalError("")};
  for (const absl::StatusOr<Resource>& outcome : outcomes) {
    for (bool may_exist : {false, true}) {
      EXPECT_EQ(EncodeOutcome(outcome, may_exist), NlohmannEncode(outcome, may_exist))
          << outcome.status();
    }
  }
}

// A Twilio message cut in the middle of a character used to make the encoder throw.
TEST(OutcomeCodecTest, InvalidUtf8InAMessageIsReplacedNotFatal) {
  const absl::Status original = absl::NotFoundError("cut in a character: \xE2\x82");
  EXPECT_THROW(NlohmannEncode(original, false), nlohmann::json::exception);
  StoredOutcome decoded = RoundTrip(original);
  EXPECT_EQ(decoded.result.status().message(), "cut in a character: \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(OutcomeCodecTest, UnreadableRecordsAreInternal) {
  const std::string good_error = EncodeOutcome(absl::NotFoundError("x"), false);
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
    absl::StatusOr<StoredOutcome> decoded = DecodeOutcome(encoded);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInternal) << encoded;
  }
}

TEST(OutcomeCodecTest, RecordOfAnotherVersionIsInternal) {
  const std::string v1 = EncodeOutcome(FullSubscription(), false);
  const std::string v2 = absl::StrReplaceAll(v1, {{R"("v":1)", R"("v":2)"}});
  ASSERT_NE(v1, v2);
  ASSERT_TRUE(DecodeOutcome(v1).ok());
  EXPECT_EQ(DecodeOutcome(v2).status().code(), absl::StatusCode::kInternal);
}

TEST(OutcomeCodecTest, RecordWithFieldsOfTheWrongTypeIsInternal) {
  const std::vector<std::string> wrong_types = {
      R"({"v":"1","subscription":{"sid":"ZY1"}})",
      R"({"v":1,"subscription":{"sid":5}})",
      R"({"v":1,"message":{"sid":5}})",
      R"({"v":1,"message":{"sid":"KX1","date_created_unix_ns":"soon"}})",
      R"({"v":1,"error":{"code":5,"message":"x","may_exist":"yes"}})",
      R"({"v":1,"error":{"code":"5","message":"x"}})",
      R"({"v":1,"error":{"code":5,"message":7}})",
  };
  for (const std::string& encoded : wrong_types) {
    absl::StatusOr<StoredOutcome> decoded = absl::UnknownError("threw");
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

SendMessageRequest BaseSend() {
  SendMessageRequest request;
  request.account_sid = kAccount;
  request.call_sid = kCall;
  request.content = R"({"greeting":"hi"})";
  request.idempotency_key = "caller-key";
  return request;
}

TEST(RequestFingerprintTest, SendIsSha256HexAndStableAcrossBuilds) {
  const std::string fingerprint = RequestFingerprint(BaseSend());
  EXPECT_THAT(fingerprint, MatchesRegex("[0-9a-f]{64}"));
  // Pinned: SHA-256 of "message/34:AC...34:CA...17:{"greeting":"hi"}".
  EXPECT_EQ(fingerprint, "15a6df35c985f1fcd29d085c780c6fedb774078097d37e37ea3f5e672c3ecb08");
}

TEST(RequestFingerprintTest, SendDiffersWhenAnyDefiningFieldDiffers) {
  const std::string base = RequestFingerprint(BaseSend());
  SendMessageRequest account = BaseSend();
  account.account_sid = "AC0123456789abcdef0123456789abcdee";
  SendMessageRequest call = BaseSend();
  call.call_sid = "CAfedcba9876543210fedcba9876543211";
  SendMessageRequest content = BaseSend();
  content.content = R"({"greeting":"ho"})";
  SendMessageRequest other_key = BaseSend();
  other_key.idempotency_key = "another-key";
  EXPECT_NE(RequestFingerprint(account), base);
  EXPECT_NE(RequestFingerprint(call), base);
  EXPECT_NE(RequestFingerprint(content), base);
  EXPECT_EQ(RequestFingerprint(other_key), base);
}

TEST(RequestFingerprintTest, SendNeverMatchesACreate) {
  // Even a Create whose fields spell the same text.
  SendMessageRequest send = BaseSend();
  CreateSubscriptionRequest create = BaseRequest();
  create.callback = send.content;
  EXPECT_NE(RequestFingerprint(send), RequestFingerprint(create));
}

}  // namespace
}  // namespace gateway
