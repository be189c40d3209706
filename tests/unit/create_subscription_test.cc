#include "subscriptions/create_subscription.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/error_details.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_http_transport.h"
#include "fakes/fake_random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idempotency/idempotency_guard.h"
#include "idempotency/memory_store.h"
#include "retry/retry_budget.h"

namespace gateway {
namespace {

using ::gateway::testing::FakeClock;
using ::gateway::testing::FakeHttpTransport;
using ::gateway::testing::FakeRandom;
using ::gateway::testing::FakeTimer;
using ::gateway::testing::HttpResponseResult;
using ::gateway::testing::TransportFailureResult;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kDefaultAccount[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kCall[] = "CAfedcba9876543210fedcba9876543210";
constexpr char kBaseUrl[] = "https://api.twilio.test";

std::string SuccessBody() {
  return absl::StrCat(R"({"account_sid":")", kDefaultAccount, R"(","call_sid":")", kCall,
                      R"(","sid":"ZY00112233445566778899aabbccddeeff",)",
                      R"("date_created":"Wed, 18 Dec 2019 20:02:01 +0000",)",
                      R"("uri":"/2010-04-01/Accounts/x.json"})");
}

HttpResult Created() { return HttpResponseResult(201, SuccessBody()); }

HttpResult ServiceUnavailable() {
  return HttpResponseResult(503, R"({"code":20503,"message":"Service unavailable","status":503})");
}

HttpResult Throttled(std::optional<std::string> retry_after = std::nullopt) {
  return HttpResponseResult(429, R"({"code":20429,"message":"Too Many Requests","status":429})",
                            std::move(retry_after));
}

// Canonical lowercase 8-4-4-4-12 form, version nibble 4, RFC 4122 variant (8, 9, a or b).
constexpr char kUuidV4Pattern[] =
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

class CreateSubscriptionHandlerTest : public ::testing::Test {
 protected:
  CreateSubscriptionHandlerTest() {
    options_.base_url = kBaseUrl;
    options_.default_deadline = absl::Seconds(10);
    options_.attempt_timeout = absl::Seconds(5);
    options_.retry.max_attempts = 5;
    options_.retry.backoff_base = absl::Milliseconds(100);
    options_.retry.backoff_cap = absl::Seconds(2);
    options_.retry.retry_after_cap = absl::Seconds(5);
    options_.retry.retry_ambiguous = true;
  }

  // Builds the handler from options_ (call after adjusting them).
  CreateSubscriptionHandler& Handler() {
    if (handler_ == nullptr) {
      handler_ = std::make_unique<CreateSubscriptionHandler>(options_, account_, transport_, timer_,
                                                             clock_, random_, controls_);
    }
    return *handler_;
  }

  static CreateSubscriptionInput Input(const std::string& key = "caller-key") {
    CreateSubscriptionInput input;
    input.call_sid = kCall;
    input.callback = "https://example.com/hook";
    input.method = 1;
    input.idempotency_key = key;
    return input;
  }

  std::shared_ptr<PendingCreate> Create(const CreateSubscriptionInput& input,
                                        absl::Time deadline = absl::InfiniteFuture()) {
    return Handler().Create(input, deadline, [this](absl::StatusOr<Subscription> result) {
      results_.push_back(std::move(result));
    });
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

  // The one result `done` delivered.
  const absl::StatusOr<Subscription>& Result() {
    EXPECT_THAT(results_, SizeIs(1));
    static const absl::StatusOr<Subscription> kNone = absl::UnknownError("done never ran");
    return results_.empty() ? kNone : results_.front();
  }

  std::string BodyOf(size_t attempt) const { return transport_.request(attempt).body; }

  CreateSubscriptionOptions options_;
  Snapshot<TwilioAccount> account_{
      std::make_shared<const TwilioAccount>(TwilioAccount{kDefaultAccount, {"ACuser", "token"}})};
  FakeClock clock_;
  FakeTimer timer_{clock_};
  FakeHttpTransport transport_;
  FakeRandom random_{0.5};
  CreateSubscriptionControls controls_;
  std::unique_ptr<CreateSubscriptionHandler> handler_;
  std::vector<absl::StatusOr<Subscription>> results_;
};

std::string AuthorizationOf(const HttpRequest& request) {
  for (const auto& [name, value] : request.headers) {
    if (name == "Authorization") return value;
  }
  return "";
}

TEST_F(CreateSubscriptionHandlerTest, NoCredentialsLoadedIsUnavailableWithoutUpstreamCall) {
  account_.Set(nullptr);
  Create(Input());
  EXPECT_EQ(Result().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetErrorReason(Result().status()), "CREDENTIALS_UNAVAILABLE");
  EXPECT_EQ(GetErrorMetadata(Result().status())["subscription_may_exist"], "false");
  EXPECT_EQ(transport_.sent_count(), 0u);
}

TEST_F(CreateSubscriptionHandlerTest, ReloadedCredentialsReachNewCallsWhileCallsInFlightKeepOld) {
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

TEST_F(CreateSubscriptionHandlerTest, DefaultAccountFollowsReloadedCredentials) {
  constexpr char kOtherAccount[] = "AC99999999999999999999999999999999";
  account_.Set(
      std::make_shared<const TwilioAccount>(TwilioAccount{kOtherAccount, {"ACuser", "token"}}));
  Create(Input());
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(transport_.request(0).url,
            std::string(kBaseUrl) + SubscriptionsPath(kOtherAccount, kCall));
}

class CreateSubscriptionPolicyTest : public CreateSubscriptionHandlerTest {
 protected:
  CreateSubscriptionPolicyTest() {
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

TEST_F(CreateSubscriptionPolicyTest, AllowedCallerReachesUpstream) {
  Create(InputFrom("billing", ""));  // The default account.
  Create(InputFrom("billing", kDefaultAccount));
  Create(InputFrom("support", kSubaccount));
  EXPECT_EQ(transport_.sent_count(), 3u);
  EXPECT_THAT(results_, IsEmpty());
}

TEST_F(CreateSubscriptionPolicyTest, OtherAccountsAndUnknownCallersArePermissionDenied) {
  Create(InputFrom("billing", kSubaccount));
  Create(InputFrom("support", ""));
  Create(InputFrom("stranger", ""));
  Create(InputFrom("", ""));
  ASSERT_THAT(results_, SizeIs(4));
  for (const auto& result : results_) {
    EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied) << result.status();
    EXPECT_EQ(GetErrorReason(result.status()), "CALLER_NOT_ALLOWED");
  }
  EXPECT_THAT(results_[0].status().message(), HasSubstr(kSubaccount));
  EXPECT_EQ(transport_.sent_count(), 0u);
}

TEST_F(CreateSubscriptionPolicyTest, InvalidInputIsReportedBeforePermission) {
  CreateSubscriptionInput input = InputFrom("stranger", "");
  input.call_sid = "not-a-sid";
  Create(input);
  EXPECT_EQ(Result().status().code(), absl::StatusCode::kInvalidArgument);
}

// Records are scoped by caller: the same key from two callers is two requests, from one caller
// a replay.
TEST_F(CreateSubscriptionHandlerTest, IdempotencyRecordsAreScopedByCaller) {
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
  EXPECT_FALSE(results_[0]->replayed);
  EXPECT_FALSE(results_[1]->replayed);
  ASSERT_TRUE(results_[2].ok()) << results_[2].status();
  EXPECT_TRUE(results_[2]->replayed);
}

TEST_F(CreateSubscriptionHandlerTest, SucceedsOnFirstAttempt) {
  Create(Input("caller-key"));
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(results_, IsEmpty());  // Nothing completes before the transport does.

  const HttpRequest request = transport_.request(0);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.url, std::string(kBaseUrl) + SubscriptionsPath(kDefaultAccount, kCall));
  EXPECT_THAT(request.body, HasSubstr("IdempotencyKey=caller-key"));

  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  const absl::StatusOr<Subscription>& result = Result();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->sid, "ZY00112233445566778899aabbccddeeff");
  EXPECT_EQ(result->call_sid, kCall);
  EXPECT_EQ(result->idempotency_key, "caller-key");
  EXPECT_TRUE(result->date_created.has_value());
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  EXPECT_EQ(random_.uuid_calls(), 0);
}

TEST_F(CreateSubscriptionHandlerTest, UsesTheRequestedAccount) {
  CreateSubscriptionInput input = Input();
  input.account_sid = "AC" + std::string(32, 'b');
  Create(input);
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(transport_.request(0).url, HasSubstr("/Accounts/AC" + std::string(32, 'b') + "/"));
}

TEST_F(CreateSubscriptionHandlerTest, GeneratesUuidV4KeyAndSendsItWithEveryRetry) {
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
  const absl::StatusOr<Subscription>& result = Result();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->idempotency_key, key);
}

TEST_F(CreateSubscriptionHandlerTest, RetriesAfter503ThenSucceeds) {
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

  const absl::StatusOr<Subscription>& result = Result();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(timer_.scheduled_count(), 1u);
  EXPECT_EQ(transport_.request(1).body, transport_.request(0).body);
}

TEST_F(CreateSubscriptionHandlerTest, BackoffCeilingDoublesPerRetry) {
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

TEST_F(CreateSubscriptionHandlerTest, HonoursRetryAfterOn429) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled("2")));
  EXPECT_EQ(FireRetryTimer(), absl::Seconds(2));
  ASSERT_EQ(transport_.sent_count(), 2u);
  ASSERT_TRUE(transport_.CompleteNth(1, Created()));
  EXPECT_TRUE(Result().ok());
}

TEST_F(CreateSubscriptionHandlerTest, CapsLongRetryAfter) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled("30")));
  EXPECT_EQ(FireRetryTimer(), absl::Seconds(5));
}

TEST_F(CreateSubscriptionHandlerTest, DoesNotRetryBadRequest) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(
      0, HttpResponseResult(400, R"({"code":21201,"message":"Invalid Callback","status":400})")));
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(result.status());
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 21201);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  EXPECT_EQ(GetErrorMetadata(result.status())["subscription_may_exist"], "false");
}

TEST_F(CreateSubscriptionHandlerTest, CallNotInProgressIsFailedPrecondition) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(
      0, HttpResponseResult(400, R"({"code":21220,"message":"Call is not in-progress"})")));
  EXPECT_EQ(Result().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(transport_.sent_count(), 1u);
}

TEST_F(CreateSubscriptionHandlerTest, GivesUpAfterMaxAttempts) {
  options_.retry.max_attempts = 3;
  Create(Input("k-1"));
  for (size_t attempt = 0; attempt < 3; ++attempt) {
    ASSERT_TRUE(transport_.CompleteNth(attempt, ServiceUnavailable())) << attempt;
    if (attempt < 2) {
      FireRetryTimer();
    }
  }
  EXPECT_EQ(transport_.sent_count(), 3u);
  EXPECT_THAT(timer_.pending(), IsEmpty());
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  std::map<std::string, std::string> metadata = GetErrorMetadata(result.status());
  EXPECT_EQ(metadata["attempts"], "3");
  EXPECT_EQ(metadata["idempotency_key"], "k-1");
  EXPECT_EQ(metadata["subscription_may_exist"], "true");
  EXPECT_EQ(GetErrorReason(result.status()), "TWILIO_UNAVAILABLE");
  EXPECT_THAT(result.status().message(), HasSubstr("3 attempts"));
  // What Twilio said on the last attempt survives the "gave up" message.
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(result.status());
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 20503);
  EXPECT_EQ(twilio->http_status, 503);
}

TEST_F(CreateSubscriptionHandlerTest, ConnectFailuresOnlyMeanTheSubscriptionDoesNotExist) {
  options_.retry.max_attempts = 2;
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kConnect, false)));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, TransportFailureResult(TransportFailure::kConnect, false)));
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  std::map<std::string, std::string> metadata = GetErrorMetadata(result.status());
  EXPECT_EQ(metadata["subscription_may_exist"], "false");
  EXPECT_EQ(metadata["attempts"], "2");
}

TEST_F(CreateSubscriptionHandlerTest, ThrottledOnlyIsResourceExhaustedAndMayNotExist) {
  options_.retry.max_attempts = 2;
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled()));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, Throttled("4")));
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorMetadata(result.status())["subscription_may_exist"], "false");
  EXPECT_EQ(GetRetryDelay(result.status()), absl::Seconds(4));  // Twilio's hint reaches the caller.
}

TEST_F(CreateSubscriptionHandlerTest, NoAmbiguousRetryWhenDisabled) {
  options_.retry.retry_ambiguous = false;
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  std::map<std::string, std::string> metadata = GetErrorMetadata(result.status());
  EXPECT_EQ(metadata["attempts"], "1");
  EXPECT_EQ(metadata["subscription_may_exist"], "true");
}

TEST_F(CreateSubscriptionHandlerTest, StillRetriesThrottlingWhenAmbiguousRetriesDisabled) {
  options_.retry.retry_ambiguous = false;
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled()));
  FireRetryTimer();
  EXPECT_EQ(transport_.sent_count(), 2u);
}

TEST_F(CreateSubscriptionHandlerTest, RetriesUnreadableSuccessWithTheSameKey) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, HttpResponseResult(201, "{\"sid\": ")));
  FireRetryTimer();
  ASSERT_TRUE(transport_.CompleteNth(1, Created()));
  EXPECT_TRUE(Result().ok());
  EXPECT_EQ(BodyOf(0), BodyOf(1));
}

TEST_F(CreateSubscriptionHandlerTest, DeadlineBeforeNextBackoffEndsWithoutAnotherRequest) {
  random_.set_uniform01(0.99);  // First retry would wait 99ms.
  Create(Input(), clock_.Now() + absl::Milliseconds(100));
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  // What Twilio said last is kept for the caller.
  std::optional<TwilioErrorInfo> twilio = GetTwilioError(result.status());
  ASSERT_TRUE(twilio.has_value());
  EXPECT_EQ(twilio->code, 20503);
  std::map<std::string, std::string> metadata = GetErrorMetadata(result.status());
  EXPECT_EQ(metadata["subscription_may_exist"], "true");
  EXPECT_EQ(metadata["attempts"], "1");
}

TEST_F(CreateSubscriptionHandlerTest, RetryAfterBeyondTheDeadlineEndsNowWithRetryInfo) {
  Create(Input(), clock_.Now() + absl::Seconds(2));
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled("3")));
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  EXPECT_EQ(GetRetryDelay(result.status()), absl::Seconds(3));
  EXPECT_EQ(GetErrorMetadata(result.status())["subscription_may_exist"], "false");
}

TEST_F(CreateSubscriptionHandlerTest, RetryThatFitsBeforeDeadlineIsScheduled) {
  random_.set_uniform01(0.5);  // 50ms, well inside a 1s deadline.
  Create(Input(), clock_.Now() + absl::Seconds(1));
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  EXPECT_THAT(results_, IsEmpty());
  EXPECT_EQ(FireRetryTimer(), absl::Milliseconds(50));
  EXPECT_EQ(transport_.sent_count(), 2u);
}

TEST_F(CreateSubscriptionHandlerTest, AttemptTimeoutAtTheDeadlineIsDeadlineExceeded) {
  Create(Input(), clock_.Now() + absl::Seconds(2));
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(transport_.request(0).timeout, absl::Seconds(2));
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(GetErrorMetadata(result.status())["subscription_may_exist"], "true");
  EXPECT_EQ(transport_.sent_count(), 1u);
}

TEST_F(CreateSubscriptionHandlerTest, TimeoutOfAnAttemptBoundedByTheDeadlineEndsTheCall) {
  // The transport's own timer may fire a little before this clock reaches the deadline; with a
  // zero backoff a retry would still fit, but the caller's time is what ran out.
  random_.set_uniform01(0.0);
  Create(Input(), clock_.Now() + absl::Seconds(2));
  clock_.Advance(absl::Milliseconds(1990));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_EQ(Result().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  EXPECT_EQ(transport_.sent_count(), 1u);
}

TEST_F(CreateSubscriptionHandlerTest, TimeoutOfAnAttemptShorterThanTheDeadlineIsRetried) {
  options_.key_window = absl::Hours(1);  // An operator with Twilio's word on a long window.
  Create(Input(), clock_.Now() + absl::Seconds(20));
  EXPECT_EQ(transport_.request(0).timeout, absl::Seconds(5));
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_THAT(results_, IsEmpty());
  FireRetryTimer();
  EXPECT_EQ(transport_.sent_count(), 2u);
}

TEST_F(CreateSubscriptionHandlerTest, ExpiredDeadlineSendsNothing) {
  Create(Input(), clock_.Now() - absl::Seconds(1));
  EXPECT_EQ(Result().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(transport_.sent_count(), 0u);
}

TEST_F(CreateSubscriptionHandlerTest, InvalidInputFinishesInlineWithoutARequest) {
  CreateSubscriptionInput input = Input();
  input.call_sid = "CA-not-a-sid";
  input.method = 7;
  std::shared_ptr<PendingCreate> pending = Create(input);
  // `done` has already run, before Create() returned.
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> fields;
  for (const FieldViolation& v : GetFieldViolations(result.status())) {
    fields.push_back(v.field);
  }
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre("call_sid", "method"));
  EXPECT_EQ(transport_.sent_count(), 0u);
  EXPECT_EQ(random_.uuid_calls(), 0);
  EXPECT_EQ(GetErrorReason(result.status()), "INVALID_REQUEST");
  std::map<std::string, std::string> metadata = GetErrorMetadata(result.status());
  EXPECT_EQ(metadata["attempts"], "0");
  EXPECT_EQ(metadata["subscription_may_exist"], "false");
  EXPECT_EQ(metadata["idempotency_key"], "caller-key");
  ASSERT_NE(pending, nullptr);
  pending->Cancel();  // Harmless.
  EXPECT_THAT(results_, SizeIs(1));
}

TEST_F(CreateSubscriptionHandlerTest, CancelWhileInFlightCancelsTheTransfer) {
  std::shared_ptr<PendingCreate> pending = Create(Input("k-cancel"));
  ASSERT_EQ(transport_.sent_count(), 1u);
  pending->Cancel();

  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(GetErrorMetadata(result.status())["idempotency_key"], "k-cancel");
  // The abandoned request may have reached Twilio.
  EXPECT_EQ(GetErrorMetadata(result.status())["subscription_may_exist"], "true");
  EXPECT_THAT(transport_.cancel_calls(), ElementsAre(transport_.id(0)));

  // The transport's cancellation (or a response that raced with it) arrives late: ignored.
  EXPECT_EQ(transport_.CompleteCancelled(), 1u);
  EXPECT_THAT(results_, SizeIs(1));
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
}

TEST_F(CreateSubscriptionHandlerTest, LateSuccessAfterCancelIsIgnored) {
  std::shared_ptr<PendingCreate> pending = Create(Input());
  pending->Cancel();
  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_EQ(results_[0].status().code(), absl::StatusCode::kCancelled);
}

// CurlTransport completes transfers with kCancelled when it stops (shutdown); the caller did not
// cancel, so CANCELLED would mislead, and a request already sent may have been applied.
TEST_F(CreateSubscriptionHandlerTest, TransportAbandoningASentRequestIsNotACallerCancel) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(
      0, TransportFailureResult(TransportFailure::kCancelled, /*request_sent=*/true,
                                "transport stopped")));
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetErrorMetadata(result.status())["subscription_may_exist"], "true");
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
}

TEST_F(CreateSubscriptionHandlerTest, TransportAbandoningAnUnsentRequestMeansNoSubscription) {
  Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(
      0, TransportFailureResult(TransportFailure::kCancelled, /*request_sent=*/false,
                                "transport stopped")));
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetErrorMetadata(result.status())["subscription_may_exist"], "false");
}

TEST_F(CreateSubscriptionHandlerTest, CancelWhileWaitingToRetryCancelsTheTimer) {
  std::shared_ptr<PendingCreate> pending = Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  ASSERT_THAT(timer_.pending(), SizeIs(1));
  const Timer::TimerId timer_id = timer_.pending()[0].id;

  pending->Cancel();
  EXPECT_EQ(Result().status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(timer_.cancel_calls(), ElementsAre(timer_id));
  EXPECT_THAT(timer_.pending(), IsEmpty());

  clock_.Advance(absl::Seconds(10));
  timer_.FireDue();
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(results_, SizeIs(1));
}

TEST_F(CreateSubscriptionHandlerTest, CancelAfterCompletionIsANoOp) {
  std::shared_ptr<PendingCreate> pending = Create(Input());
  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  pending->Cancel();
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_TRUE(results_[0].ok());
  EXPECT_THAT(transport_.cancel_calls(), IsEmpty());
}

TEST_F(CreateSubscriptionHandlerTest, DefaultDeadlineBoundsAttemptTimeout) {
  options_.default_deadline = absl::Seconds(3);
  options_.attempt_timeout = absl::Seconds(5);
  Create(Input(), absl::InfiniteFuture());
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(transport_.request(0).timeout, absl::Seconds(3));
}

TEST_F(CreateSubscriptionHandlerTest, DefaultDeadlineAppliesAcrossRetries) {
  options_.key_window = absl::Hours(1);
  options_.default_deadline = absl::Seconds(7);
  options_.attempt_timeout = absl::Seconds(5);
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
  EXPECT_EQ(Result().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(transport_.sent_count(), 2u);
}

TEST_F(CreateSubscriptionHandlerTest, CallerDeadlineShorterThanAttemptTimeoutBoundsIt) {
  Create(Input(), clock_.Now() + absl::Milliseconds(1500));
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(transport_.request(0).timeout, absl::Milliseconds(1500));
}

// Twilio is assumed to recognize the key for key_window (10s) after the first claim; an attempt
// may be in Twilio's hands for attempt_timeout (5s). After an ambiguous attempt, nothing is sent
// after 5s: it could reach Twilio once the key is forgotten and create a second subscription.
TEST_F(CreateSubscriptionHandlerTest, NoResendThatCouldOutliveTwiliosMemoryOfTheKey) {
  Create(Input("k-1"), clock_.Now() + absl::Seconds(20));
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(transport_.CompleteNth(0, TransportFailureResult(TransportFailure::kTimeout, true)));
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(timer_.pending(), IsEmpty());
  const absl::StatusOr<Subscription>& result = Result();
  EXPECT_THAT(result.status().message(), HasSubstr("Twilio may stop recognizing"));
  EXPECT_EQ(GetErrorMetadata(result.status())["subscription_may_exist"], "true");
}

TEST_F(CreateSubscriptionHandlerTest, ThrottlingAloneIsRetriedWhateverTheKeyWindow) {
  // Nothing can exist yet, so no window applies to a key Twilio never acted on.
  options_.retry.retry_after_cap = absl::Seconds(8);
  Create(Input("k-1"), clock_.Now() + absl::Seconds(20));
  clock_.Advance(absl::Seconds(6));
  ASSERT_TRUE(transport_.CompleteNth(0, Throttled("6")));
  FireRetryTimer();
  EXPECT_EQ(transport_.sent_count(), 2u);
}

class CreateSubscriptionResolutionTest : public CreateSubscriptionHandlerTest {
 protected:
  CreateSubscriptionResolutionTest() {
    controls_.idempotency = &guard_;
    controls_.resolution_budget = &resolution_budget_;
    controls_.retry_budget = &retry_budget_;
  }

  FakeRandom store_random_{0.5};
  MemoryIdempotencyStore store_{MemoryStoreOptions{}, clock_, store_random_};
  IdempotencyGuard guard_{IdempotencyOptions{}, store_, timer_, clock_};
  RetryBudget retry_budget_{10, 0.5};
  RetryBudget resolution_budget_{4, 0.5};
};

TEST_F(CreateSubscriptionResolutionTest, AmbiguousOutcomeIsResolvedWithTheSameKey) {
  options_.retry.max_attempts = 1;
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
  const absl::StatusOr<Subscription>& result = Result();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->idempotency_key, "k-1");

  Create(Input("k-1"));  // Recorded: replayed without Twilio.
  EXPECT_EQ(transport_.sent_count(), 2u);
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_TRUE(results_[1]->replayed);
}

TEST_F(CreateSubscriptionResolutionTest, GeneratedKeyIsRecordedSoARetryWithItReplays) {
  Create(Input(""));
  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  ASSERT_THAT(results_, SizeIs(1));
  ASSERT_TRUE(results_[0].ok()) << results_[0].status();
  const std::string key = results_[0]->idempotency_key;
  ASSERT_THAT(key, ::testing::MatchesRegex(kUuidV4Pattern));
  Create(Input(key));
  EXPECT_EQ(transport_.sent_count(), 1u);
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_TRUE(results_[1]->replayed);
}

TEST_F(CreateSubscriptionResolutionTest, ResolutionsSpendTheirOwnBudgetNotTheCallers) {
  // A total outage: every attempt fails ambiguously. Callers get one attempt each once their
  // budget is drained; resolutions get half an attempt per caller once theirs is.
  options_.retry.max_attempts = 1;
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

}  // namespace
}  // namespace gateway
