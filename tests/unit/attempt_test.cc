#include "twilio/attempt.h"

#include <optional>
#include <string>
#include <variant>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/error_details.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;

using Kind = TwilioCall::Kind;

// A fixed "now" far from the wall clock: Wed, 21 Oct 2015 07:28:00 GMT.
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2015, 10, 21, 7, 28, 0), absl::UTCTimeZone());

constexpr char kSubscriptionBody[] =
    R"({"account_sid":"AC0123456789abcdef0123456789abcdef",)"
    R"("call_sid":"CAfedcba9876543210fedcba9876543210",)"
    R"("sid":"ZY00112233445566778899aabbccddeeff","uri":"/x.json"})";

HttpResult Failed(TransportFailure failure, bool request_sent) {
  HttpResult r;
  r.failure = failure;
  r.request_sent = request_sent;
  r.error = "fake failure";
  return r;
}

HttpResult Answered(int status, std::string body = kSubscriptionBody,
                    std::optional<std::string> retry_after = std::nullopt) {
  HttpResult r;
  r.request_sent = true;
  r.response.status = status;
  r.response.body = std::move(body);
  r.response.retry_after = std::move(retry_after);
  return r;
}

AttemptOutcome Classify(const HttpResult& http, Kind kind = Kind::kCreateSubscription) {
  return ClassifyAttempt(kind, http, kNow).outcome;
}

// ---- What an attempt says about the operation's effect ------------------------------------------

TEST(ClassifyAttemptTest, ConnectFailureWasNeverApplied) {
  EXPECT_EQ(Classify(Failed(TransportFailure::kConnect, false)), AttemptOutcome::kNeverApplied);
}

// libcurl sent on a reused connection that died unanswered, and its own resend could not
// connect: the first send may have been acted on.
TEST(ClassifyAttemptTest, ConnectFailureAfterASendIsAmbiguous) {
  EXPECT_EQ(Classify(Failed(TransportFailure::kConnect, true)), AttemptOutcome::kAmbiguous);
  EXPECT_TRUE(
      ClassifyAttempt(Kind::kDeleteSubscription, Failed(TransportFailure::kConnect, true), kNow)
          .may_have_acted);
}

// libcurl resent the request on a fresh connection: whatever the last answer says, the first
// send may have been acted on (a Delete's 404 then means it was).
TEST(ClassifyAttemptTest, ATransportResendMayHaveActed) {
  HttpResult not_found = Answered(404, R"({"code":20404})");
  EXPECT_FALSE(ClassifyAttempt(Kind::kDeleteSubscription, not_found, kNow).may_have_acted);
  not_found.sends = 2;
  EXPECT_TRUE(ClassifyAttempt(Kind::kDeleteSubscription, not_found, kNow).may_have_acted);
}

TEST(ClassifyAttemptTest, TimeoutBeforeSendingWasNeverApplied) {
  EXPECT_EQ(Classify(Failed(TransportFailure::kTimeout, false)), AttemptOutcome::kNeverApplied);
}

TEST(ClassifyAttemptTest, TimeoutAfterSendingIsAmbiguous) {
  EXPECT_EQ(Classify(Failed(TransportFailure::kTimeout, true)), AttemptOutcome::kAmbiguous);
}

TEST(ClassifyAttemptTest, IoFailureBeforeSendingWasNeverApplied) {
  EXPECT_EQ(Classify(Failed(TransportFailure::kIo, false)), AttemptOutcome::kNeverApplied);
}

TEST(ClassifyAttemptTest, IoFailureAfterSendingIsAmbiguous) {
  EXPECT_EQ(Classify(Failed(TransportFailure::kIo, true)), AttemptOutcome::kAmbiguous);
}

// The transport cancels a transfer only when it stops (the caller's cancel ends the run first).
TEST(ClassifyAttemptTest, CancelledByTheTransportIsStoppedNotACallerCancel) {
  for (bool sent : {false, true}) {
    AttemptResult attempt = ClassifyAttempt(Kind::kCreateSubscription,
                                            Failed(TransportFailure::kCancelled, sent), kNow);
    EXPECT_EQ(attempt.outcome, AttemptOutcome::kStopped);
    EXPECT_EQ(attempt.may_have_acted, sent);
    EXPECT_EQ(attempt.result.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(GetErrorReason(attempt.result.status()), "GATEWAY_STOPPING");
  }
}

TEST(ClassifyAttemptTest, ReadableSuccessSucceeded) {
  EXPECT_EQ(Classify(Answered(201)), AttemptOutcome::kSucceeded);
  EXPECT_EQ(Classify(Answered(200)), AttemptOutcome::kSucceeded);
}

TEST(ClassifyAttemptTest, SuccessCarriesTheResourceOfTheOperation) {
  AttemptResult created = ClassifyAttempt(Kind::kCreateSubscription, Answered(201), kNow);
  ASSERT_TRUE(created.result.ok()) << created.result.status();
  ASSERT_TRUE(std::holds_alternative<Subscription>(*created.result));
  EXPECT_EQ(std::get<Subscription>(*created.result).sid, "ZY00112233445566778899aabbccddeeff");

  AttemptResult sent = ClassifyAttempt(
      Kind::kSendMessage, Answered(201, R"({"sid":"KX00112233445566778899aabbccddeeff"})"), kNow);
  ASSERT_TRUE(sent.result.ok()) << sent.result.status();
  ASSERT_TRUE(std::holds_alternative<Message>(*sent.result));
  EXPECT_EQ(std::get<Message>(*sent.result).sid, "KX00112233445566778899aabbccddeeff");
}

// Twilio answers a Delete with 204 and no body: nothing to read, nothing unreadable.
TEST(ClassifyAttemptTest, DeleteAnswered204Succeeded) {
  AttemptResult attempt = ClassifyAttempt(Kind::kDeleteSubscription, Answered(204, ""), kNow);
  EXPECT_EQ(attempt.outcome, AttemptOutcome::kSucceeded);
  ASSERT_TRUE(attempt.result.ok()) << attempt.result.status();
  EXPECT_TRUE(std::holds_alternative<Deletion>(*attempt.result));
  EXPECT_FALSE(attempt.may_have_acted);
  EXPECT_EQ(attempt.http_status, 204);
}

TEST(ClassifyAttemptTest, UnreadableSuccessIsAmbiguousAndInternal) {
  for (const char* body : {"", "{\"sid\": ", "[]", R"({"sid":5})"}) {
    AttemptResult attempt = ClassifyAttempt(Kind::kCreateSubscription, Answered(201, body), kNow);
    EXPECT_EQ(attempt.outcome, AttemptOutcome::kAmbiguous) << body;
    EXPECT_TRUE(attempt.may_have_acted) << body;
    EXPECT_EQ(attempt.result.status().code(), absl::StatusCode::kInternal) << body;
    EXPECT_EQ(GetErrorReason(attempt.result.status()), "UNREADABLE_TWILIO_RESPONSE") << body;
  }
  EXPECT_EQ(Classify(Answered(201, "{"), Kind::kSendMessage), AttemptOutcome::kAmbiguous);
}

TEST(ClassifyAttemptTest, TooManyRequestsWasNeverApplied) {
  EXPECT_EQ(Classify(Answered(429, "")), AttemptOutcome::kNeverApplied);
}

TEST(ClassifyAttemptTest, ServerErrorsAreAmbiguous) {
  EXPECT_EQ(Classify(Answered(500, "")), AttemptOutcome::kAmbiguous);
  EXPECT_EQ(Classify(Answered(503, "")), AttemptOutcome::kAmbiguous);
  EXPECT_EQ(Classify(Answered(503, ""), Kind::kDeleteSubscription), AttemptOutcome::kAmbiguous);
}

TEST(ClassifyAttemptTest, ClientErrorsAreRejected) {
  EXPECT_EQ(Classify(Answered(400, "")), AttemptOutcome::kRejected);
  EXPECT_EQ(Classify(Answered(404, "")), AttemptOutcome::kRejected);
  EXPECT_EQ(Classify(Answered(401, "")), AttemptOutcome::kRejected);
  EXPECT_EQ(Classify(Answered(403, "")), AttemptOutcome::kRejected);
}

// Settled: the same request would get the same answer, so the guard records it for replay.
TEST(ClassifyAttemptTest, OnlySuccessAndRejectionsOfTheRequestSettleIt) {
  auto settled = [](const HttpResult& http, Kind kind = Kind::kSendMessage) {
    return ClassifyAttempt(kind, http, kNow).settled;
  };
  EXPECT_TRUE(settled(Answered(201), Kind::kCreateSubscription));
  EXPECT_TRUE(settled(Answered(204, ""), Kind::kDeleteSubscription));
  EXPECT_TRUE(settled(Answered(400, "")));
  EXPECT_TRUE(settled(Answered(404, "")));
  EXPECT_TRUE(settled(Answered(413, "")));
  EXPECT_TRUE(settled(Answered(422, "")));
  EXPECT_TRUE(settled(Answered(400, R"({"code":31212})")));
  // The call may become active, credentials may be fixed, an outage may end.
  EXPECT_FALSE(settled(Answered(400, R"({"code":31211})")));
  EXPECT_FALSE(settled(Answered(401, "")));
  EXPECT_FALSE(settled(Answered(403, "")));
  EXPECT_FALSE(settled(Answered(409, "")));
  EXPECT_FALSE(settled(Answered(429, "")));
  EXPECT_FALSE(settled(Answered(503, "")));
  EXPECT_FALSE(settled(Answered(201, "{")));
  EXPECT_FALSE(settled(Failed(TransportFailure::kTimeout, true)));
  EXPECT_FALSE(settled(Failed(TransportFailure::kConnect, false)));
}

// What the account's adaptive limit learns: any answer under 500 but 429 was taken for
// processing.
TEST(ClassifyAttemptTest, AcceptedIsAnyAnswerBelow500But429) {
  auto accepted = [](const HttpResult& http) {
    return ClassifyAttempt(Kind::kCreateSubscription, http, kNow).accepted;
  };
  EXPECT_TRUE(accepted(Answered(201)));
  EXPECT_TRUE(accepted(Answered(201, "{")));
  EXPECT_TRUE(accepted(Answered(400, "")));
  EXPECT_TRUE(accepted(Answered(404, "")));
  EXPECT_FALSE(accepted(Answered(429, "")));
  EXPECT_FALSE(accepted(Answered(500, "")));
  EXPECT_FALSE(accepted(Failed(TransportFailure::kIo, true)));
}

TEST(ClassifyAttemptTest, BodyReadabilityIgnoredForErrors) {
  EXPECT_EQ(Classify(Answered(503, "{")), AttemptOutcome::kAmbiguous);
  EXPECT_EQ(Classify(Answered(400, "{")), AttemptOutcome::kRejected);
  EXPECT_EQ(Classify(Answered(429, "{")), AttemptOutcome::kNeverApplied);
}

TEST(ClassifyAttemptTest, MayHaveActedOnlyWhenAmbiguous) {
  EXPECT_TRUE(ClassifyAttempt(Kind::kCreateSubscription, Answered(503, ""), kNow).may_have_acted);
  EXPECT_TRUE(ClassifyAttempt(Kind::kCreateSubscription, Failed(TransportFailure::kIo, true), kNow)
                  .may_have_acted);
  EXPECT_FALSE(ClassifyAttempt(Kind::kCreateSubscription, Answered(429, ""), kNow).may_have_acted);
  EXPECT_FALSE(ClassifyAttempt(Kind::kCreateSubscription, Answered(400, ""), kNow).may_have_acted);
  EXPECT_FALSE(
      ClassifyAttempt(Kind::kCreateSubscription, Failed(TransportFailure::kConnect, false), kNow)
          .may_have_acted);
  EXPECT_FALSE(ClassifyAttempt(Kind::kCreateSubscription, Answered(201), kNow).may_have_acted);
}

TEST(ClassifyAttemptTest, ErrorsAreTheStatusTheCallerGets) {
  AttemptResult rejected =
      ClassifyAttempt(Kind::kCreateSubscription,
                      Answered(400, R"({"code":21220,"message":"not in progress"})"), kNow);
  EXPECT_EQ(rejected.result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetErrorReason(rejected.result.status()), "CALL_NOT_ACTIVE");
  AttemptResult timeout =
      ClassifyAttempt(Kind::kCreateSubscription, Failed(TransportFailure::kTimeout, true), kNow);
  EXPECT_EQ(timeout.result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(timeout.timed_out);
  EXPECT_FALSE(ClassifyAttempt(Kind::kCreateSubscription, Failed(TransportFailure::kIo, true), kNow)
                   .timed_out);
}

TEST(ClassifyAttemptTest, ExplainsWhy) {
  AttemptResult server_error = ClassifyAttempt(Kind::kCreateSubscription, Answered(503, ""), kNow);
  EXPECT_THAT(server_error.summary, HasSubstr("5xx"));
  EXPECT_THAT(server_error.summary, HasSubstr("503"));
  AttemptResult timeout =
      ClassifyAttempt(Kind::kCreateSubscription, Failed(TransportFailure::kTimeout, true), kNow);
  EXPECT_THAT(timeout.summary, HasSubstr("timed out after sending"));
  EXPECT_THAT(timeout.summary, HasSubstr("fake failure"));
}

// ---- Metric labels ------------------------------------------------------------------------------

TEST(ClassifyAttemptTest, ResponsesAreLabelledByTheirHttpStatus) {
  for (int status : {200, 201, 204, 400, 404, 429, 500, 503}) {
    AttemptResult attempt = ClassifyAttempt(Kind::kCreateSubscription, Answered(status, ""), kNow);
    EXPECT_EQ(attempt.http_status, status);
    EXPECT_EQ(attempt.failure, "") << status;
  }
}

TEST(ClassifyAttemptTest, FailuresAreLabelledByKindWithoutAStatus) {
  struct Case {
    TransportFailure failure;
    bool sent;
    absl::string_view label;
    absl::string_view retry_reason;
  };
  for (const Case& c : {Case{TransportFailure::kConnect, false, "connect", "connect_failed"},
                        Case{TransportFailure::kTimeout, true, "timeout", "timeout"},
                        Case{TransportFailure::kTimeout, false, "timeout", "timeout"},
                        Case{TransportFailure::kIo, true, "io", "connection_lost"},
                        Case{TransportFailure::kIo, false, "io", "connect_failed"},
                        Case{TransportFailure::kCancelled, true, "cancelled", "connection_lost"}}) {
    AttemptResult attempt =
        ClassifyAttempt(Kind::kCreateSubscription, Failed(c.failure, c.sent), kNow);
    EXPECT_EQ(attempt.http_status, 0) << c.label;
    EXPECT_EQ(attempt.failure, c.label);
    EXPECT_EQ(attempt.retry_reason, c.retry_reason) << c.label << " sent=" << c.sent;
  }
}

TEST(ClassifyAttemptTest, RetriedResponsesAreCountedUnderTheirReason) {
  EXPECT_EQ(ClassifyAttempt(Kind::kCreateSubscription, Answered(429, ""), kNow).retry_reason,
            "throttled");
  EXPECT_EQ(ClassifyAttempt(Kind::kCreateSubscription, Answered(502, ""), kNow).retry_reason,
            "server_error");
  EXPECT_EQ(ClassifyAttempt(Kind::kCreateSubscription, Answered(201, "{"), kNow).retry_reason,
            "unreadable_response");
}

// ---- Retry-After, read against the engine's clock ----------------------------------------------

TEST(ClassifyAttemptTest, RetryAfterSecondsBecomesTheRetryDelay) {
  AttemptResult attempt = ClassifyAttempt(Kind::kCreateSubscription, Answered(429, "", "3"), kNow);
  EXPECT_EQ(attempt.retry_after, absl::Seconds(3));
  EXPECT_EQ(GetRetryDelay(attempt.result.status()), absl::Seconds(3));
}

// An HTTP date is measured from the `now` given (the engine's clock), never the wall clock: from
// the wall clock a date in 2015 would be long past, a zero delay.
TEST(ClassifyAttemptTest, RetryAfterHttpDateIsReadAgainstTheGivenNow) {
  const HttpResult throttled = Answered(429, "", "Wed, 21 Oct 2015 07:29:30 GMT");
  AttemptResult attempt = ClassifyAttempt(Kind::kCreateSubscription, throttled, kNow);
  EXPECT_EQ(attempt.retry_after, absl::Seconds(90));
  EXPECT_EQ(GetRetryDelay(attempt.result.status()), absl::Seconds(90));
  AttemptResult later =
      ClassifyAttempt(Kind::kCreateSubscription, throttled, kNow + absl::Seconds(60));
  EXPECT_EQ(later.retry_after, absl::Seconds(30));
  AttemptResult after =
      ClassifyAttempt(Kind::kCreateSubscription, throttled, kNow + absl::Hours(1));
  EXPECT_EQ(after.retry_after, absl::ZeroDuration());
}

TEST(ClassifyAttemptTest, NoRetryDelayWithoutAReadableRetryAfter) {
  AttemptResult none = ClassifyAttempt(Kind::kCreateSubscription, Answered(429, ""), kNow);
  EXPECT_EQ(none.retry_after, std::nullopt);
  EXPECT_EQ(GetRetryDelay(none.result.status()), std::nullopt);
  AttemptResult garbage =
      ClassifyAttempt(Kind::kCreateSubscription, Answered(503, "", "soon"), kNow);
  EXPECT_EQ(garbage.retry_after, std::nullopt);
  EXPECT_EQ(GetRetryDelay(garbage.result.status()), std::nullopt);
}

}  // namespace
}  // namespace gateway
