// Operations (Create, Delete, Send) over the real UpstreamEngine, with a fake transport, clock
// and timer: validation, the corridor (credentials, policy, deadline, idempotency guard), and
// the retry engine as each operation uses it.
#include "operations/operations.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/error_details.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_http_transport.h"
#include "fakes/fake_idempotency_store.h"
#include "fakes/fake_random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idempotency/idempotency_guard.h"
#include "idempotency/memory_store.h"
#include "retry/retry_budget.h"
#include "upstream/upstream_engine.h"
#include "validation/request_validator.h"

namespace gateway {
namespace {

using ::gateway::testing::FakeClock;
using ::gateway::testing::FakeHttpTransport;
using ::gateway::testing::FakeIdempotencyStore;
using ::gateway::testing::FakeRandom;
using ::gateway::testing::FakeTimer;
using ::gateway::testing::HttpResponseResult;
using ::gateway::testing::TransportFailureResult;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kDefaultAccount[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kCall[] = "CAfedcba9876543210fedcba9876543210";
constexpr char kBaseUrl[] = "https://api.twilio.test";
constexpr char kSubscriptionSid[] = "ZY00112233445566778899aabbccddeeff";
constexpr char kMessageSid[] = "KX00112233445566778899aabbccddeeff";

std::string SubscriptionsPath(absl::string_view account_sid, absl::string_view call_sid) {
  return absl::StrCat("/2010-04-01/Accounts/", account_sid, "/Calls/", call_sid,
                      "/UserDefinedMessageSubscriptions.json");
}

std::string SuccessBody() {
  return absl::StrCat(R"({"account_sid":")", kDefaultAccount, R"(","call_sid":")", kCall,
                      R"(","sid":"ZY00112233445566778899aabbccddeeff",)",
                      R"("date_created":"Wed, 18 Dec 2019 20:02:01 +0000",)",
                      R"("uri":"/2010-04-01/Accounts/x.json"})");
}

HttpResult Created() { return HttpResponseResult(201, SuccessBody()); }

HttpResult MessageSent() {
  return HttpResponseResult(
      201, absl::StrCat(R"({"account_sid":")", kDefaultAccount, R"(","call_sid":")", kCall,
                        R"(","sid":")", kMessageSid,
                        R"(","date_created":"Wed, 18 Dec 2019 20:02:01 +0000"})"));
}

HttpResult Deleted() { return HttpResponseResult(204, ""); }

HttpResult NotFound() {
  return HttpResponseResult(
      404, R"({"code":20404,"message":"The requested resource was not found","status":404})");
}

HttpResult ServiceUnavailable() {
  return HttpResponseResult(503, R"({"code":20503,"message":"Service unavailable","status":503})");
}

HttpResult Throttled(std::optional<std::string> retry_after = std::nullopt) {
  return HttpResponseResult(429, R"({"code":20429,"message":"Too Many Requests","status":429})",
                            std::move(retry_after));
}

// The subscription in a successful outcome; fails the test (and gives an empty one) otherwise.
const Subscription& SubscriptionOf(const Outcome& outcome) {
  static const Subscription kNone;
  if (!outcome.result.ok() || !std::holds_alternative<Subscription>(*outcome.result)) {
    ADD_FAILURE() << "not a subscription: " << outcome.result.status();
    return kNone;
  }
  return std::get<Subscription>(*outcome.result);
}

const Message& MessageOf(const Outcome& outcome) {
  static const Message kNone;
  if (!outcome.result.ok() || !std::holds_alternative<Message>(*outcome.result)) {
    ADD_FAILURE() << "not a message: " << outcome.result.status();
    return kNone;
  }
  return std::get<Message>(*outcome.result);
}

std::vector<std::string> ViolatedFields(const absl::Status& status) {
  std::vector<std::string> fields;
  for (const FieldViolation& v : GetFieldViolations(status)) fields.push_back(v.field);
  return fields;
}

// Canonical lowercase 8-4-4-4-12 form, version nibble 4, RFC 4122 variant (8, 9, a or b).
constexpr char kUuidV4Pattern[] =
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

class OperationsTest : public ::testing::Test {
 protected:
  OperationsTest() {
    engine_options_.base_url = kBaseUrl;
    engine_options_.attempt_timeout = absl::Seconds(5);
    engine_options_.retry.max_attempts = 5;
    engine_options_.retry.backoff_base = absl::Milliseconds(100);
    engine_options_.retry.backoff_cap = absl::Seconds(2);
    engine_options_.retry.retry_after_cap = absl::Seconds(5);
    engine_options_.retry.retry_ambiguous = true;
    options_.default_deadline = absl::Seconds(10);
  }

  // Builds the engine and the operations from the options (call after adjusting them).
  Operations& Ops() {
    if (operations_ == nullptr) {
      engine_ = std::make_unique<UpstreamEngine>(engine_options_, transport_, timer_, clock_,
                                                 random_, engine_controls_);
      operations_ =
          std::make_unique<Operations>(options_, account_, *engine_, clock_, random_, controls_);
    }
    return *operations_;
  }

  static CreateSubscriptionInput Input(const std::string& key = "caller-key") {
    CreateSubscriptionInput input;
    input.call_sid = kCall;
    input.callback = "https://example.com/hook";
    input.method = 1;
    input.idempotency_key = key;
    return input;
  }

  static DeleteSubscriptionInput DeleteInput(const std::string& sid = kSubscriptionSid) {
    DeleteSubscriptionInput input;
    input.call_sid = kCall;
    input.sid = sid;
    return input;
  }

  static SendMessageInput SendInput(const std::string& key = "caller-key",
                                    const std::string& content = R"({"greeting":"hi"})") {
    SendMessageInput input;
    input.call_sid = kCall;
    input.content = content;
    input.idempotency_key = key;
    return input;
  }

  Operations::Done Collect() {
    return [this](Outcome outcome) { results_.push_back(std::move(outcome)); };
  }

  std::shared_ptr<PendingCall> Create(const CreateSubscriptionInput& input,
                                      absl::Time deadline = absl::InfiniteFuture()) {
    return Ops().Create(input, deadline, Collect());
  }

  std::shared_ptr<PendingCall> Delete(const DeleteSubscriptionInput& input,
                                      absl::Time deadline = absl::InfiniteFuture()) {
    return Ops().Delete(input, deadline, Collect());
  }

  std::shared_ptr<PendingCall> Send(const SendMessageInput& input,
                                    absl::Time deadline = absl::InfiniteFuture()) {
    return Ops().Send(input, deadline, Collect());
  }

  // Fires the one pending retry timer after moving the clock to it; returns its delay.
  absl::Duration FireRetryTimer() {
    std::vector<FakeTimer::Pending> pending = timer_.pending();
    EXPECT_THAT(pending, SizeIs(1));
    if (pending.empty()) {
      return absl::ZeroDuration();
    }
    const absl::Duration delay = pending[0].when - clock_.Now();
    clock_.Set(pending[0].when);
    EXPECT_EQ(timer_.FireDue(), 1u);
    return delay;
  }

  // The one outcome `done` delivered.
  const Outcome& Result() {
    EXPECT_THAT(results_, SizeIs(1));
    static const Outcome kNone = {.result = absl::UnknownError("done never ran"), .report = {}};
    return results_.empty() ? kNone : results_.front();
  }

  std::string BodyOf(size_t attempt) const { return transport_.request(attempt).body; }

  UpstreamOptions engine_options_;
  UpstreamControls engine_controls_;
  OperationsOptions options_;
  Snapshot<TwilioAccount> account_{
      std::make_shared<const TwilioAccount>(TwilioAccount{kDefaultAccount, {"ACuser", "token"}})};
  FakeClock clock_;
  FakeTimer timer_{clock_};
  FakeHttpTransport transport_;
  FakeRandom random_{0.5};
  OperationsControls controls_;
  std::unique_ptr<UpstreamEngine> engine_;
  std::unique_ptr<Operations> operations_;
  std::vector<Outcome> results_;
};

std::string AuthorizationOf(const HttpRequest& request) {
  for (const auto& [name, value] : request.headers) {
    if (name == "Authorization") return value;
  }
  return "";
}

TEST_F(OperationsTest, NoCredentialsLoadedIsUnavailableWithoutUpstreamCall) {
  account_.Set(nullptr);
  Create(Input());
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetErrorReason(Result().result.status()), "CREDENTIALS_UNAVAILABLE");
  EXPECT_FALSE(Result().report.may_exist);
  EXPECT_EQ(transport_.sent_count(), 0u);
}

TEST_F(OperationsTest, ReloadedCredentialsReachNewCallsWhileCallsInFlightKeepOld) {
  const TwilioCredentials old_credentials{"SKold", "old-secret"};
  const TwilioCredentials new_credentials{"SKnew", "new-secret"};
  account_.Set(std::make_shared<const TwilioAccount>(
      TwilioAccount{kDefaultAccount, old_credentials, /*api_key=*/true}));
  Create(Input("first"));
  ASSERT_EQ(transport_.sent_count(), 1u);

  account_.Set(std::make_shared<const TwilioAccount>(
      TwilioAccount{kDefaultAccount, new_credentials, /*api_key=*/true}));
  Create(Input("second"));
  ASSERT_EQ(transport_.sent_count(), 2u);
  // The first call's retry still signs with the credentials it started with.
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  FireRetryTimer();
  ASSERT_EQ(transport_.sent_count(), 3u);

  EXPECT_EQ(AuthorizationOf(transport_.request(0)), BasicAuthorization(old_credentials));
  EXPECT_EQ(AuthorizationOf(transport_.request(1)), BasicAuthorization(new_credentials));
  EXPECT_EQ(AuthorizationOf(transport_.request(2)), BasicAuthorization(old_credentials));
}

TEST_F(OperationsTest, DefaultAccountFollowsReloadedCredentials) {
  constexpr char kOtherAccount[] = "AC99999999999999999999999999999999";
  account_.Set(
      std::make_shared<const TwilioAccount>(TwilioAccount{kOtherAccount, {"ACuser", "token"}}));
  Create(Input());
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(transport_.request(0).url,
            std::string(kBaseUrl) + SubscriptionsPath(kOtherAccount, kCall));
}

class OperationsPolicyTest : public OperationsTest {
 protected:
  OperationsPolicyTest() {
    absl::StatusOr<CallerPolicy> policy =
        CallerPolicy::Parse(absl::StrCat(R"({"callers": {"billing": {"accounts": ["default"]},)",
                                         R"("support": {"accounts": [")", kSubaccount, R"("]}}})"));
    EXPECT_TRUE(policy.ok()) << policy.status();
    policy_.Set(std::make_shared<const CallerPolicy>(*std::move(policy)));
    controls_.policy = &policy_;
  }

  static CreateSubscriptionInput InputFrom(const std::string& caller, const std::string& account) {
    CreateSubscriptionInput input = Input();
    input.caller = caller;
    input.account_sid = account;
    return input;
  }

  static constexpr char kSubaccount[] = "AC11111111111111111111111111111111";
  Snapshot<CallerPolicy> policy_;
};

TEST_F(OperationsPolicyTest, AllowedCallerReachesUpstream) {
  Create(InputFrom("billing", ""));  // The default account.
  Create(InputFrom("billing", kDefaultAccount));
  Create(InputFrom("support", kSubaccount));
  EXPECT_EQ(transport_.sent_count(), 3u);
  EXPECT_THAT(results_, IsEmpty());
}

TEST_F(OperationsPolicyTest, OtherAccountsAndUnknownCallersArePermissionDenied) {
  Create(InputFrom("billing", kSubaccount));
  Create(InputFrom("support", ""));
  Create(InputFrom("stranger", ""));
  Create(InputFrom("", ""));
  ASSERT_THAT(results_, SizeIs(4));
  for (const auto& result : results_) {
    EXPECT_EQ(result.result.status().code(), absl::StatusCode::kPermissionDenied)
        << result.result.status();
    EXPECT_EQ(GetErrorReason(result.result.status()), "CALLER_NOT_ALLOWED");
  }
  EXPECT_THAT(results_[0].result.status().message(), HasSubstr(kSubaccount));
  EXPECT_EQ(transport_.sent_count(), 0u);
}

TEST_F(OperationsPolicyTest, InvalidInputIsReportedBeforePermission) {
  CreateSubscriptionInput input = InputFrom("stranger", "");
  input.call_sid = "not-a-sid";
  Create(input);
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kInvalidArgument);
}

// Records are scoped by caller: the same key from two callers is two requests, from one caller
// a replay.
TEST_F(OperationsTest, IdempotencyRecordsAreScopedByCaller) {
  FakeRandom store_random{0.5};
  MemoryIdempotencyStore store(MemoryStoreOptions{}, clock_, store_random);
  IdempotencyGuard guard(IdempotencyOptions{}, store, timer_, clock_);
  controls_.idempotency = &guard;
  auto input_from = [](const std::string& caller) {
    CreateSubscriptionInput input = Input("shared-key");
    input.caller = caller;
    return input;
  };
  Create(input_from("billing"));
  ASSERT_EQ(transport_.sent_count(), 1u);
  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  Create(input_from("support"));
  ASSERT_EQ(transport_.sent_count(), 2u);
  ASSERT_TRUE(transport_.CompleteNth(1, Created()));
  Create(input_from("billing"));
  EXPECT_EQ(transport_.sent_count(), 2u);
  ASSERT_THAT(results_, SizeIs(3));
  EXPECT_FALSE(results_[0].report.replayed);
  EXPECT_FALSE(results_[1].report.replayed);
  ASSERT_TRUE(results_[2].result.ok()) << results_[2].result.status();
  EXPECT_TRUE(results_[2].report.replayed);
}

TEST_F(OperationsTest, SucceedsOnFirstAttempt) {
  Create(Input("caller-key"));
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(results_, IsEmpty());  // Nothing completes before the transport does.

  const HttpRequest request = transport_.request(0);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, std::string(kBaseUrl) + SubscriptionsPath(kDefaultAccount, kCall));
  EXPECT_THAT(request.body, HasSubstr("IdempotencyKey=caller-key"));

  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_EQ(SubscriptionOf(result).sid, "ZY00112233445566778899aabbccddeeff");
  EXPECT_EQ(SubscriptionOf(result).call_sid, kCall);
  EXPECT_EQ(result.report.idempotency_key, "caller-key");
  EXPECT_TRUE(SubscriptionOf(result).date_created.has_value());
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  EXPECT_EQ(random_.uuid_calls(), 0);
}

TEST_F(OperationsTest, UsesTheRequestedAccount) {
  CreateSubscriptionInput input = Input();
  input.account_sid = "AC" + std::string(32, 'b');
  Create(input);
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(transport_.request(0).url, HasSubstr("/Accounts/AC" + std::string(32, 'b') + "/"));
}

TEST_F(OperationsTest, GeneratesUuidV4KeyAndSendsItWithEveryRetry) {
  Create(Input(/*key=*/""));
  const std::string key = FakeRandom::NthUuid(1);
  ASSERT_THAT(key, ::testing::MatchesRegex(kUuidV4Pattern));

  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, TransportFailureResult(TransportFailure::kIo, true)));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(2, Created()));

  ASSERT_EQ(transport_.sent_count(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_THAT(BodyOf(i), HasSubstr("IdempotencyKey=" + key)) << i;
  }
  EXPECT_EQ(random_.uuid_calls(), 1);
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_EQ(result.report.idempotency_key, key);
}

TEST_F(OperationsTest, RetriesAfter503ThenSucceeds) {
  random_.set_uniform01(0.5);
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  EXPECT_THAT(results_, IsEmpty());
  EXPECT_EQ(transport_.sent_count(), 1u);  // The retry waits for the timer.

  // First retry: full jitter over [0, base) = [0, 100ms); the draw 0.5 gives 50ms.
  std::vector<FakeTimer::Pending> pending = timer_.pending();
  ASSERT_THAT(pending, SizeIs(1));
  EXPECT_EQ(pending[0].when, clock_.Now() + absl::Milliseconds(50));
  EXPECT_EQ(timer_.FireDue(), 0u);  // Not due yet.
  EXPECT_EQ(transport_.sent_count(), 1u);

  clock_.Advance(absl::Milliseconds(50));
  EXPECT_EQ(timer_.FireDue(), 1u);
  ASSERT_EQ(transport_.sent_count(), 2u);
  ASSERT_TRUE(transport_.CompleteNth(1, Created()));

  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_EQ(timer_.scheduled_count(), 1u);
  EXPECT_EQ(transport_.request(1).body, transport_.request(0).body);
}

TEST_F(OperationsTest, BackoffCeilingDoublesPerRetry) {
  random_.set_uniform01(0.5);
  Create(Input());
  std::vector<absl::Duration> delays;
  for (size_t attempt = 0; attempt < 4; ++attempt) {
    ASSERT_TRUE(transport_.CompleteNth(attempt, ServiceUnavailable()));
    delays.push_back(FireRetryTimer());
  }
  EXPECT_THAT(delays, ElementsAre(absl::Milliseconds(50), absl::Milliseconds(100),
                                  absl::Milliseconds(200), absl::Milliseconds(400)));
}

TEST_F(OperationsTest, HonoursRetryAfterOn429) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled("2")));
  EXPECT_EQ(FireRetryTimer(), absl::Seconds(2));
  ASSERT_EQ(transport_.sent_count(), 2u);
  ASSERT_TRUE(transport_.CompleteNth(1, Created()));
  EXPECT_TRUE(Result().result.ok());
}

TEST_F(OperationsTest, CapsLongRetryAfter) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled("30")));
  EXPECT_EQ(FireRetryTimer(), absl::Seconds(5));
}

TEST_F(OperationsTest, DoesNotRetryBadRequest) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(
      0, HttpResponseResult(400, R"({"code":21201,"message":"Invalid Callback","status":400})")));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kInvalidArgument);
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(result.result.status());
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 21201);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  EXPECT_FALSE(result.report.may_exist);
}

TEST_F(OperationsTest, CallNotInProgressIsFailedPrecondition) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(
      0, HttpResponseResult(400, R"({"code":21220,"message":"Call is not in-progress"})")));
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(transport_.sent_count(), 1u);
}

TEST_F(OperationsTest, GivesUpAfterMaxAttempts) {
  engine_options_.retry.max_attempts = 3;
  Create(Input("k-1"));
  for (size_t attempt = 0; attempt < 3; ++attempt) {
    ASSERT_TRUE(transport_.CompleteNth(attempt, ServiceUnavailable())) << attempt;
    if (attempt < 2) {
      FireRetryTimer();
    }
  }
  EXPECT_EQ(transport_.sent_count(), 3u);
  EXPECT_THAT(timer_.pending(), IsEmpty());
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(result.report.attempts, 3);
  EXPECT_EQ(result.report.idempotency_key, "k-1");
  EXPECT_TRUE(result.report.may_exist);
  EXPECT_EQ(GetErrorReason(result.result.status()), "TWILIO_UNAVAILABLE");
  EXPECT_THAT(result.result.status().message(), HasSubstr("3 attempts"));
  // What Twilio said on the last attempt survives the "gave up" message.
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(result.result.status());
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 20503);
  EXPECT_EQ(twilio->http_status, 503);
}

TEST_F(OperationsTest, ConnectFailuresOnlyMeanTheSubscriptionDoesNotExist) {
  engine_options_.retry.max_attempts = 2;
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kConnect, false)));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, TransportFailureResult(TransportFailure::kConnect, false)));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(result.report.may_exist);
  EXPECT_EQ(result.report.attempts, 2);
}

TEST_F(OperationsTest, ThrottledOnlyIsResourceExhaustedAndMayNotExist) {
  engine_options_.retry.max_attempts = 2;
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled()));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, Throttled("4")));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(result.report.may_exist);
  EXPECT_EQ(GetRetryDelay(result.result.status()),
            absl::Seconds(4));  // Twilio's hint reaches the caller.
}

TEST_F(OperationsTest, NoAmbiguousRetryWhenDisabled) {
  engine_options_.retry.retry_ambiguous = false;
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  EXPECT_EQ(result.report.attempts, 1);
  EXPECT_TRUE(result.report.may_exist);
}

TEST_F(OperationsTest, StillRetriesThrottlingWhenAmbiguousRetriesDisabled) {
  engine_options_.retry.retry_ambiguous = false;
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled()));
  FireRetryTimer();
  EXPECT_EQ(transport_.sent_count(), 2u);
}

TEST_F(OperationsTest, RetriesUnreadableSuccessWithTheSameKey) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, HttpResponseResult(201, "{\"sid\": ")));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, Created()));
  EXPECT_TRUE(Result().result.ok());
  EXPECT_EQ(BodyOf(0), BodyOf(1));
}

TEST_F(OperationsTest, DeadlineBeforeNextBackoffEndsWithoutAnotherRequest) {
  random_.set_uniform01(0.99);  // First retry would wait 99ms.
  Create(Input(), clock_.Now() + absl::Milliseconds(100));
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  // What Twilio said last is kept for the caller.
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(result.result.status());
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 20503);
  EXPECT_TRUE(result.report.may_exist);
  EXPECT_EQ(result.report.attempts, 1);
}

TEST_F(OperationsTest, RetryAfterBeyondTheDeadlineEndsNowWithRetryInfo) {
  Create(Input(), clock_.Now() + absl::Seconds(2));
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled("3")));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  EXPECT_EQ(GetRetryDelay(result.result.status()), absl::Seconds(3));
  EXPECT_FALSE(result.report.may_exist);
}

TEST_F(OperationsTest, RetryThatFitsBeforeDeadlineIsScheduled) {
  random_.set_uniform01(0.5);  // 50ms, well inside a 1s deadline.
  Create(Input(), clock_.Now() + absl::Seconds(1));
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  EXPECT_THAT(results_, IsEmpty());
  EXPECT_EQ(FireRetryTimer(), absl::Milliseconds(50));
  EXPECT_EQ(transport_.sent_count(), 2u);
}

TEST_F(OperationsTest, AttemptTimeoutAtTheDeadlineIsDeadlineExceeded) {
  Create(Input(), clock_.Now() + absl::Seconds(2));
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(transport_.request(0).timeout, absl::Seconds(2));
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(result.report.may_exist);
  EXPECT_EQ(transport_.sent_count(), 1u);
}

TEST_F(OperationsTest, TimeoutOfAnAttemptBoundedByTheDeadlineEndsTheCall) {
  // The transport's own timer may fire a little before this clock reaches the deadline; with a
  // zero backoff a retry would still fit, but the caller's time is what ran out.
  random_.set_uniform01(0.0);
  Create(Input(), clock_.Now() + absl::Seconds(2));
  clock_.Advance(absl::Milliseconds(1990));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  EXPECT_EQ(transport_.sent_count(), 1u);
}

TEST_F(OperationsTest, TimeoutOfAnAttemptShorterThanTheDeadlineIsRetried) {
  engine_options_.key_window = absl::Hours(1);  // An operator with Twilio's word on a long window.
  Create(Input(), clock_.Now() + absl::Seconds(20));
  EXPECT_EQ(transport_.request(0).timeout, absl::Seconds(5));
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_THAT(results_, IsEmpty());
  FireRetryTimer();
  EXPECT_EQ(transport_.sent_count(), 2u);
}

TEST_F(OperationsTest, ExpiredDeadlineSendsNothing) {
  Create(Input(), clock_.Now() - absl::Seconds(1));
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(transport_.sent_count(), 0u);
}

TEST_F(OperationsTest, InvalidInputFinishesInlineWithoutARequest) {
  CreateSubscriptionInput input = Input();
  input.call_sid = "CA-not-a-sid";
  input.method = 7;
  std::shared_ptr<PendingCall> pending = Create(input);
  // `done` has already run, before Create() returned.
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> fields;
  for (const FieldViolation& v : GetFieldViolations(result.result.status())) {
    fields.push_back(v.field);
  }
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("call_sid", "method"));
  EXPECT_EQ(transport_.sent_count(), 0u);
  EXPECT_EQ(random_.uuid_calls(), 0);
  EXPECT_EQ(GetErrorReason(result.result.status()), "INVALID_REQUEST");
  EXPECT_EQ(result.report.attempts, 0);
  EXPECT_FALSE(result.report.may_exist);
  EXPECT_EQ(result.report.idempotency_key, "caller-key");
  ASSERT_NE(pending, nullptr);
  pending->Cancel();  // Harmless.
  EXPECT_THAT(results_, SizeIs(1));
}

TEST_F(OperationsTest, CancelWhileInFlightCancelsTheTransfer) {
  std::shared_ptr<PendingCall> pending = Create(Input("k-cancel"));
  ASSERT_EQ(transport_.sent_count(), 1u);
  pending->Cancel();

  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(result.report.idempotency_key, "k-cancel");
  // The abandoned request may have reached Twilio.
  EXPECT_TRUE(result.report.may_exist);
  EXPECT_THAT(transport_.cancel_calls(), ElementsAre(transport_.id(0)));

  // The transport's cancellation (or a response that raced with it) arrives late: ignored.
  EXPECT_EQ(transport_.CompleteCancelled(), 1u);
  EXPECT_THAT(results_, SizeIs(1));
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
}

TEST_F(OperationsTest, LateSuccessAfterCancelIsIgnored) {
  std::shared_ptr<PendingCall> pending = Create(Input());
  pending->Cancel();
  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_EQ(results_[0].result.status().code(), absl::StatusCode::kCancelled);
}

// CurlTransport completes transfers with kCancelled when it stops (shutdown); the caller did not
// cancel, so CANCELLED would mislead, and a request already sent may have been applied.
TEST_F(OperationsTest, TransportAbandoningASentRequestIsNotACallerCancel) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(
      0, TransportFailureResult(TransportFailure::kCancelled, /*request_sent=*/true,
                                "transport stopped")));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(result.report.may_exist);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
}

TEST_F(OperationsTest, TransportAbandoningAnUnsentRequestMeansNoSubscription) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(
      0, TransportFailureResult(TransportFailure::kCancelled, /*request_sent=*/false,
                                "transport stopped")));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(result.report.may_exist);
}

TEST_F(OperationsTest, CancelWhileWaitingToRetryCancelsTheTimer) {
  std::shared_ptr<PendingCall> pending = Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  ASSERT_THAT(timer_.pending(), SizeIs(1));
  const Timer::TimerId timer_id = timer_.pending()[0].id;

  pending->Cancel();
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(timer_.cancel_calls(), ElementsAre(timer_id));
  EXPECT_THAT(timer_.pending(), IsEmpty());

  clock_.Advance(absl::Seconds(10));
  timer_.FireDue();
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(results_, SizeIs(1));
}

TEST_F(OperationsTest, CancelAfterCompletionIsANoOp) {
  std::shared_ptr<PendingCall> pending = Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  pending->Cancel();
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_TRUE(results_[0].result.ok());
  EXPECT_THAT(transport_.cancel_calls(), IsEmpty());
}

TEST_F(OperationsTest, DefaultDeadlineBoundsAttemptTimeout) {
  options_.default_deadline = absl::Seconds(3);
  engine_options_.attempt_timeout = absl::Seconds(5);
  Create(Input(), absl::InfiniteFuture());
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(transport_.request(0).timeout, absl::Seconds(3));
}

TEST_F(OperationsTest, DefaultDeadlineAppliesAcrossRetries) {
  engine_options_.key_window = absl::Hours(1);
  options_.default_deadline = absl::Seconds(7);
  engine_options_.attempt_timeout = absl::Seconds(5);
  random_.set_uniform01(0.5);
  Create(Input(), absl::InfiniteFuture());
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(transport_.request(0).timeout, absl::Seconds(5));  // min(5s, 7s left).

  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_EQ(FireRetryTimer(), absl::Milliseconds(50));
  ASSERT_EQ(transport_.sent_count(), 2u);
  // 7s - 5.05s elapsed.
  EXPECT_EQ(transport_.request(1).timeout, absl::Milliseconds(1950));

  clock_.Advance(absl::Milliseconds(1950));
  ASSERT_TRUE(transport_.CompleteNth(1, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(transport_.sent_count(), 2u);
}

TEST_F(OperationsTest, CallerDeadlineShorterThanAttemptTimeoutBoundsIt) {
  Create(Input(), clock_.Now() + absl::Milliseconds(1500));
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(transport_.request(0).timeout, absl::Milliseconds(1500));
}

// Twilio is assumed to recognize the key for key_window (10s) after the first claim; an attempt
// may be in Twilio's hands for attempt_timeout (5s). After an ambiguous attempt, nothing is sent
// after 5s: it could reach Twilio once the key is forgotten and create a second subscription.
TEST_F(OperationsTest, NoResendThatCouldOutliveTwiliosMemoryOfTheKey) {
  Create(Input("k-1"), clock_.Now() + absl::Seconds(20));
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(timer_.pending(), IsEmpty());
  const Outcome& result = Result();
  EXPECT_THAT(result.result.status().message(), HasSubstr("Twilio may stop recognizing"));
  EXPECT_TRUE(result.report.may_exist);
}

TEST_F(OperationsTest, ThrottlingAloneIsRetriedWhateverTheKeyWindow) {
  // Nothing can exist yet, so no window applies to a key Twilio never acted on.
  engine_options_.retry.retry_after_cap = absl::Seconds(8);
  Create(Input("k-1"), clock_.Now() + absl::Seconds(20));
  clock_.Advance(absl::Seconds(6));
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled("6")));
  FireRetryTimer();
  EXPECT_EQ(transport_.sent_count(), 2u);
}

class OperationsResolutionTest : public OperationsTest {
 protected:
  OperationsResolutionTest() {
    controls_.idempotency = &guard_;
    engine_controls_.resolution_budget = &resolution_budget_;
    engine_controls_.retry_budget = &retry_budget_;
  }

  FakeRandom store_random_{0.5};
  MemoryIdempotencyStore store_{MemoryStoreOptions{}, clock_, store_random_};
  IdempotencyGuard guard_{IdempotencyOptions{}, store_, timer_, clock_};
  RetryBudget retry_budget_{10, 0.5};
  RetryBudget resolution_budget_{4, 0.5};
};

TEST_F(OperationsResolutionTest, AmbiguousOutcomeIsResolvedWithTheSameKey) {
  engine_options_.retry.max_attempts = 1;
  Create(Input("k-1"), clock_.Now() + absl::Seconds(10));
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  // The caller's run is over; after a backoff the resolution resends the same request with the
  // same key.
  EXPECT_EQ(transport_.sent_count(), 1u);
  timer_.AdvanceToNextAndFire(clock_);
  ASSERT_EQ(transport_.sent_count(), 2u);
  EXPECT_EQ(BodyOf(1), BodyOf(0));
  EXPECT_THAT(BodyOf(1), HasSubstr("IdempotencyKey=k-1"));
  EXPECT_THAT(results_, IsEmpty());  // The caller waits for it.
  ASSERT_TRUE(transport_.CompleteNth(1, Created()));
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_EQ(result.report.idempotency_key, "k-1");

  Create(Input("k-1"));  // Recorded: replayed without Twilio.
  EXPECT_EQ(transport_.sent_count(), 2u);
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_TRUE(results_[1].report.replayed);
}

TEST_F(OperationsResolutionTest, GeneratedKeyIsRecordedSoARetryWithItReplays) {
  Create(Input(""));
  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  ASSERT_THAT(results_, SizeIs(1));
  ASSERT_TRUE(results_[0].result.ok()) << results_[0].result.status();
  const std::string key = results_[0].report.idempotency_key;
  ASSERT_THAT(key, ::testing::MatchesRegex(kUuidV4Pattern));
  Create(Input(key));
  EXPECT_EQ(transport_.sent_count(), 1u);
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_TRUE(results_[1].report.replayed);
}

TEST_F(OperationsResolutionTest, ResolutionsSpendTheirOwnBudgetNotTheCallers) {
  // A total outage: every attempt fails ambiguously. Callers get one attempt each once their
  // budget is drained; resolutions get half an attempt per caller once theirs is.
  engine_options_.retry.max_attempts = 1;
  constexpr int kCalls = 40;
  for (int i = 0; i < kCalls; ++i) {
    Create(Input(absl::StrCat("k-", i)), clock_.Now() + absl::Seconds(10));
    for (size_t n = 0; n < transport_.sent_count(); ++n) {
      transport_.CompleteNth(n, ServiceUnavailable());
    }
    while (!timer_.pending().empty() &&
           timer_.pending()[0].when < clock_.Now() + absl::Seconds(1)) {
      timer_.AdvanceToNextAndFire(clock_);
      for (size_t n = 0; n < transport_.sent_count(); ++n) {
        transport_.CompleteNth(n, ServiceUnavailable());
      }
    }
  }
  const double per_call = static_cast<double>(transport_.sent_count()) / kCalls;
  // 1 caller attempt + at most 0.5 resolution attempts + the bucket's first 2 (half of 4).
  EXPECT_LE(per_call, 1.5 + 2.0 / kCalls);
  EXPECT_GT(per_call, 1.0);
}

// ---- Record scoping ---------------------------------------------------------------------------

// Records of Create keep the bare scope earlier versions used; a caller's records are prefixed
// with the caller; Send's are namespaced apart from Create's.
TEST_F(OperationsTest, RecordKeysAreScopedByOperationCallerAndAccount) {
  FakeIdempotencyStore store;
  IdempotencyGuard guard(IdempotencyOptions{}, store, timer_, clock_);
  controls_.idempotency = &guard;
  Create(Input("shared"));
  CreateSubscriptionInput from_billing = Input("shared");
  from_billing.caller = "billing";
  Create(from_billing);
  Send(SendInput("shared"));
  ASSERT_EQ(store.claim_count(), 3u);
  EXPECT_EQ(store.claim(0).key, absl::StrCat(kDefaultAccount, "/shared"));
  EXPECT_EQ(store.claim(1).key, absl::StrCat("7:billing/", kDefaultAccount, "/shared"));
  EXPECT_EQ(store.claim(2).key, absl::StrCat("message/", kDefaultAccount, "/shared"));
  EXPECT_NE(store.claim(2).fingerprint, store.claim(0).fingerprint);
  EXPECT_EQ(transport_.sent_count(), 0u);  // Nothing goes upstream before a claim is won.
}

// ---- Delete -----------------------------------------------------------------------------------

TEST_F(OperationsTest, DeleteSendsADeleteOfTheSubscriptionWithoutBodyOrKey) {
  Delete(DeleteInput());
  ASSERT_EQ(transport_.sent_count(), 1u);
  const HttpRequest request = transport_.request(0);
  EXPECT_EQ(request.method, "DELETE");
  EXPECT_EQ(request.url,
            absl::StrCat(kBaseUrl, "/2010-04-01/Accounts/", kDefaultAccount, "/Calls/", kCall,
                         "/UserDefinedMessageSubscriptions/", kSubscriptionSid, ".json"));
  EXPECT_EQ(request.body, "");
  for (const auto& [name, value] : request.headers) {
    EXPECT_NE(name, "Content-Type");
  }
  EXPECT_THAT(results_, IsEmpty());
  EXPECT_EQ(random_.uuid_calls(), 0);  // No key is generated for Delete.
}

TEST_F(OperationsTest, DeleteRejectsASidThatIsNotZyAnd32HexDigits) {
  const std::vector<std::string> bad_sids = {
      "",
      "ZY0011223344556677889",                  // Too short.
      std::string(kSubscriptionSid) + "0",      // Too long.
      "ZY00112233445566778899aabbccddeefg",     // Not hex.
      "KX00112233445566778899aabbccddeeff",     // A message, not a subscription.
      "zy00112233445566778899aabbccddeeff",     // The prefix is case-sensitive.
      "ZY00112233445566778899aabbccddeeff/..",  // Path traversal.
  };
  for (const std::string& sid : bad_sids) {
    results_.clear();
    Delete(DeleteInput(sid));
    const Outcome& result = Result();
    EXPECT_EQ(result.result.status().code(), absl::StatusCode::kInvalidArgument) << sid;
    EXPECT_THAT(ViolatedFields(result.result.status()), ElementsAre("sid")) << sid;
    EXPECT_EQ(GetErrorReason(result.result.status()), "INVALID_REQUEST");
    EXPECT_EQ(result.report.attempts, 0);
    EXPECT_FALSE(result.report.may_exist);
  }
  EXPECT_EQ(transport_.sent_count(), 0u);
  Delete(DeleteInput("ZY00112233445566778899AABBCCDDEEFF"));  // Uppercase hex is a SID too.
  EXPECT_EQ(transport_.sent_count(), 1u);
}

TEST_F(OperationsTest, DeleteAnswered204IsOk) {
  Delete(DeleteInput());
  ASSERT_TRUE(transport_.CompleteNth(0, Deleted()));
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_TRUE(std::holds_alternative<Deletion>(*result.result));
  EXPECT_EQ(result.report.attempts, 1);
  EXPECT_EQ(result.report.idempotency_key, "");
  EXPECT_FALSE(result.report.replayed);
}

TEST_F(OperationsTest, DeleteAnswered404OnTheFirstAttemptIsNotFound) {
  Delete(DeleteInput());
  ASSERT_TRUE(transport_.CompleteNth(0, NotFound()));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetErrorReason(result.result.status()), "SUBSCRIPTION_NOT_FOUND");
  EXPECT_EQ(result.report.attempts, 1);
  EXPECT_FALSE(result.report.may_exist);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
}

// The first attempt may have deleted the subscription: a 404 afterwards is what the caller
// asked for.
TEST_F(OperationsTest, Delete404AfterAServerErrorIsOk) {
  Delete(DeleteInput());
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, NotFound()));
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_TRUE(std::holds_alternative<Deletion>(*result.result));
  EXPECT_EQ(result.report.attempts, 2);
}

TEST_F(OperationsTest, Delete404AfterALostResponseIsOk) {
  Delete(DeleteInput());
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kIo, true)));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, NotFound()));
  ASSERT_TRUE(Result().result.ok()) << Result().result.status();
  EXPECT_TRUE(std::holds_alternative<Deletion>(*Result().result));
}

// Only an attempt that may have reached Twilio can have deleted anything.
TEST_F(OperationsTest, Delete404AfterAttemptsThatNeverReachedTwilioIsNotFound) {
  Delete(DeleteInput());
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kConnect, false)));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, Throttled()));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(2, NotFound()));
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetErrorReason(Result().result.status()), "SUBSCRIPTION_NOT_FOUND");
}

TEST_F(OperationsTest, DeleteRetriesAmbiguousFailuresEvenWhenAmbiguousRetriesAreDisabled) {
  engine_options_.retry.retry_ambiguous = false;
  Delete(DeleteInput());
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  EXPECT_THAT(results_, IsEmpty());
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_THAT(results_, IsEmpty());
  FireRetryTimer();
  ASSERT_EQ(transport_.sent_count(), 3u);
  ASSERT_TRUE(transport_.CompleteNth(2, Deleted()));
  EXPECT_TRUE(Result().result.ok()) << Result().result.status();
}

// Create stops resending once an ambiguous attempt could outlive Twilio's memory of the key
// (NoResendThatCouldOutliveTwiliosMemoryOfTheKey); Delete has no key to be forgotten.
TEST_F(OperationsTest, DeleteHasNoKeyWindow) {
  Delete(DeleteInput(), clock_.Now() + absl::Seconds(60));
  for (size_t attempt = 0; attempt < 3; ++attempt) {
    clock_.Advance(absl::Seconds(5));
    ASSERT_TRUE(transport_.CompleteNth(
        attempt, TransportFailureResult(TransportFailure::kTimeout, /*request_sent=*/true)));
    EXPECT_THAT(results_, IsEmpty()) << attempt;
    FireRetryTimer();
  }
  // 15 s and more after the first send, well past the 10 s key window.
  ASSERT_EQ(transport_.sent_count(), 4u);
  ASSERT_TRUE(transport_.CompleteNth(3, Deleted()));
  const Outcome& result = Result();
  EXPECT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_EQ(result.report.attempts, 4);
}

TEST_F(OperationsTest, DeleteUsesNoIdempotencyRecord) {
  FakeIdempotencyStore store;
  IdempotencyGuard guard(IdempotencyOptions{}, store, timer_, clock_);
  controls_.idempotency = &guard;
  Delete(DeleteInput());
  EXPECT_EQ(store.claim_count(), 0u);
  ASSERT_EQ(transport_.sent_count(), 1u);  // Straight to Twilio, no claim to wait for.
  ASSERT_TRUE(transport_.CompleteNth(0, Deleted()));
  EXPECT_TRUE(Result().result.ok()) << Result().result.status();
  EXPECT_EQ(store.claim_count(), 0u);
  EXPECT_EQ(store.complete_count(), 0u);
  Create(Input());  // The guard is in place for keyed operations.
  EXPECT_EQ(store.claim_count(), 1u);
}

TEST_F(OperationsTest, DeleteIsAuthorizedLikeCreate) {
  Snapshot<CallerPolicy> policy;
  absl::StatusOr<CallerPolicy> parsed =
      CallerPolicy::Parse(R"({"callers": {"billing": {"accounts": ["default"]}}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  policy.Set(std::make_shared<const CallerPolicy>(*std::move(parsed)));
  controls_.policy = &policy;
  DeleteSubscriptionInput input = DeleteInput();
  input.caller = "stranger";
  Delete(input);
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(transport_.sent_count(), 0u);
}

// ---- Send -------------------------------------------------------------------------------------

TEST_F(OperationsTest, SendPostsTheContentWithTheKey) {
  Send(SendInput("caller-key", R"({"greeting":"hi"})"));
  ASSERT_EQ(transport_.sent_count(), 1u);
  const HttpRequest request = transport_.request(0);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, absl::StrCat(kBaseUrl, "/2010-04-01/Accounts/", kDefaultAccount, "/Calls/",
                                      kCall, "/UserDefinedMessages.json"));
  EXPECT_EQ(request.body, "Content=%7B%22greeting%22%3A%22hi%22%7D&IdempotencyKey=caller-key");
}

TEST_F(OperationsTest, SendAnsweredIsAMessage) {
  Send(SendInput("caller-key"));
  ASSERT_TRUE(transport_.CompleteNth(0, MessageSent()));
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  const Message& message = MessageOf(result);
  EXPECT_EQ(message.sid, kMessageSid);
  EXPECT_EQ(message.account_sid, kDefaultAccount);
  EXPECT_EQ(message.call_sid, kCall);
  EXPECT_EQ(message.date_created,
            absl::FromCivil(absl::CivilSecond(2019, 12, 18, 20, 2, 1), absl::UTCTimeZone()));
  EXPECT_EQ(result.report.idempotency_key, "caller-key");
  EXPECT_EQ(result.report.attempts, 1);
}

TEST_F(OperationsTest, SendGeneratesAUuidV4KeyAndSendsItWithEveryRetry) {
  Send(SendInput(""));
  const std::string key = FakeRandom::NthUuid(1);
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, MessageSent()));
  EXPECT_THAT(BodyOf(0), HasSubstr("IdempotencyKey=" + key));
  EXPECT_EQ(BodyOf(1), BodyOf(0));
  EXPECT_EQ(Result().report.idempotency_key, key);
  EXPECT_THAT(Result().report.idempotency_key, ::testing::MatchesRegex(kUuidV4Pattern));
}

TEST_F(OperationsTest, SendRejectsBadContentWithoutARequest) {
  const std::vector<std::string> bad_contents = {
      "",                                              // Empty.
      "hello",                                         // Not JSON.
      R"({"a":1} {"b":2})",                            // Two documents.
      R"({"a":")" + std::string(4096, 'x') + R"("})",  // Over 4096 bytes.
      std::string(100000, '['),                        // Deep nesting, and too long.
      std::string(4096, '['),                          // Deep nesting within the size: unbalanced.
  };
  for (const std::string& content : bad_contents) {
    results_.clear();
    Send(SendInput("caller-key", content));
    const Outcome& result = Result();
    EXPECT_EQ(result.result.status().code(), absl::StatusCode::kInvalidArgument)
        << content.substr(0, 40);
    EXPECT_THAT(ViolatedFields(result.result.status()), ElementsAre("content"))
        << content.substr(0, 40);
    EXPECT_EQ(result.report.idempotency_key, "caller-key");
    EXPECT_FALSE(result.report.may_exist);
  }
  EXPECT_EQ(transport_.sent_count(), 0u);
  EXPECT_EQ(random_.uuid_calls(), 0);
}

TEST_F(OperationsTest, SendAcceptsContentNestedUpToTheDepthLimit) {
  const std::string nested =
      std::string(kMaxContentDepth, '[') + std::string(kMaxContentDepth, ']');
  Send(SendInput("caller-key", nested));
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(results_, IsEmpty());
}

// Within the size limit, but nlohmann would take it and Python's json (the simulator's, and
// perhaps Twilio's parser) would not: refused here rather than by Twilio after a request.
TEST_F(OperationsTest, SendRejectsContentNestedPastTheDepthLimitWithoutARequest) {
  for (const std::string& content :
       {std::string(kMaxContentDepth + 1, '[') + std::string(kMaxContentDepth + 1, ']'),
        std::string(2048, '[') + std::string(2048, ']')}) {
    results_.clear();
    Send(SendInput("caller-key", content));
    const Outcome& result = Result();
    EXPECT_EQ(result.result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ViolatedFields(result.result.status()), ElementsAre("content"));
    EXPECT_FALSE(result.report.may_exist);
  }
  EXPECT_EQ(transport_.sent_count(), 0u);
}

TEST_F(OperationsTest, SendRejectsContentWithAByteOrderMarkWithoutARequest) {
  Send(SendInput("caller-key", "\xEF\xBB\xBF{\"a\":1}"));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolatedFields(result.result.status()), ElementsAre("content"));
  EXPECT_FALSE(result.report.may_exist);
  EXPECT_EQ(transport_.sent_count(), 0u);
}

TEST_F(OperationsTest, SendToACallNotActiveIsFailedPrecondition) {
  Send(SendInput());
  ASSERT_TRUE(transport_.CompleteNth(
      0, HttpResponseResult(400, R"({"code":31211,"message":"Call is not in-progress"})")));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetErrorReason(result.result.status()), "CALL_NOT_ACTIVE");
  EXPECT_FALSE(result.report.may_exist);
  EXPECT_EQ(transport_.sent_count(), 1u);
}

TEST_F(OperationsTest, SendOfAMessageTooLargeNamesTheContentField) {
  Send(SendInput());
  ASSERT_TRUE(transport_.CompleteNth(
      0, HttpResponseResult(400, R"({"code":31212,"message":"Message too large"})")));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetErrorReason(result.result.status()), "MESSAGE_TOO_LARGE");
  EXPECT_THAT(ViolatedFields(result.result.status()), ElementsAre("content"));
  ASSERT_TRUE(GetTwilioError(result.result.status()).has_value());
  EXPECT_EQ(GetTwilioError(result.result.status())->code, 31212);
  EXPECT_EQ(transport_.sent_count(), 1u);
}

TEST_F(OperationsTest, SendKeepsTheKeyWindowUnlikeDelete) {
  Send(SendInput("k-1"), clock_.Now() + absl::Seconds(20));
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(timer_.pending(), IsEmpty());
  EXPECT_THAT(Result().result.status().message(), HasSubstr("Twilio may stop recognizing"));
  EXPECT_TRUE(Result().report.may_exist);
}

TEST_F(OperationsTest, SendDoesNotRetryAmbiguousFailuresWhenDisabled) {
  engine_options_.retry.retry_ambiguous = false;
  Send(SendInput());
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(Result().report.may_exist);
}

class OperationsMemoryStoreTest : public OperationsTest {
 protected:
  OperationsMemoryStoreTest() { controls_.idempotency = &guard_; }

  FakeRandom store_random_{0.5};
  MemoryIdempotencyStore store_{MemoryStoreOptions{}, clock_, store_random_};
  IdempotencyGuard guard_{IdempotencyOptions{}, store_, timer_, clock_};
};

TEST_F(OperationsMemoryStoreTest, SendWithTheSameKeyIsReplayedNotSentAgain) {
  Send(SendInput("k-1"));
  ASSERT_TRUE(transport_.CompleteNth(0, MessageSent()));
  Send(SendInput("k-1"));
  EXPECT_EQ(transport_.sent_count(), 1u);
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_FALSE(results_[0].report.replayed);
  EXPECT_TRUE(results_[1].report.replayed);
  EXPECT_EQ(results_[1].report.idempotency_key, "k-1");
  EXPECT_EQ(MessageOf(results_[1]), MessageOf(results_[0]));
}

TEST_F(OperationsMemoryStoreTest, SendWithTheKeyOfOtherContentIsRefused) {
  Send(SendInput("k-1", R"({"n":1})"));
  ASSERT_TRUE(transport_.CompleteNth(0, MessageSent()));
  Send(SendInput("k-1", R"({"n":2})"));
  EXPECT_EQ(transport_.sent_count(), 1u);
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_EQ(results_[1].result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetErrorReason(results_[1].result.status()), "IDEMPOTENCY_KEY_REUSED");
}

// A Create key and a Send key with the same text are two requests: neither replays, nor refuses,
// the other.
TEST_F(OperationsMemoryStoreTest, CreateAndSendKeysWithTheSameTextNeverMeet) {
  Create(Input("shared"));
  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  Send(SendInput("shared"));
  ASSERT_EQ(transport_.sent_count(), 2u);
  ASSERT_TRUE(transport_.CompleteNth(1, MessageSent()));
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_FALSE(results_[1].report.replayed);
  EXPECT_EQ(MessageOf(results_[1]).sid, kMessageSid);

  Create(Input("shared"));
  Send(SendInput("shared"));
  EXPECT_EQ(transport_.sent_count(), 2u);
  ASSERT_THAT(results_, SizeIs(4));
  EXPECT_TRUE(results_[2].report.replayed);
  EXPECT_EQ(SubscriptionOf(results_[2]).sid, kSubscriptionSid);
  EXPECT_TRUE(results_[3].report.replayed);
  EXPECT_EQ(MessageOf(results_[3]).sid, kMessageSid);
}

TEST_F(OperationsResolutionTest, AmbiguousSendIsResolvedWithTheSameKeyAndRecorded) {
  engine_options_.retry.max_attempts = 1;
  Send(SendInput("k-1"), clock_.Now() + absl::Seconds(10));
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  EXPECT_EQ(transport_.sent_count(), 1u);
  timer_.AdvanceToNextAndFire(clock_);
  ASSERT_EQ(transport_.sent_count(), 2u);
  EXPECT_EQ(BodyOf(1), BodyOf(0));
  EXPECT_THAT(results_, IsEmpty());  // The caller waits for the resolution.
  ASSERT_TRUE(transport_.CompleteNth(1, MessageSent()));
  ASSERT_TRUE(Result().result.ok()) << Result().result.status();
  EXPECT_EQ(MessageOf(Result()).sid, kMessageSid);
  EXPECT_EQ(Result().report.idempotency_key, "k-1");

  Send(SendInput("k-1"));  // Recorded: replayed without Twilio.
  EXPECT_EQ(transport_.sent_count(), 2u);
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_TRUE(results_[1].report.replayed);
}

}  // namespace
}  // namespace gateway
