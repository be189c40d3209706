#include "limits/concurrency_limiter.h"

#include <memory>
#include <string>
#include <utility>
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
#include "twilio/twilio_api.h"
#include "upstream/upstream_engine.h"

namespace gateway {
namespace {

using ::gateway::testing::FakeClock;
using ::gateway::testing::FakeHttpTransport;
using ::gateway::testing::FakeRandom;
using ::gateway::testing::FakeTimer;
using ::gateway::testing::HttpResponseResult;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kAccountA[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kAccountB[] = "AC0123456789abcdef0123456789abcdee";

class ConcurrencyLimiterTest : public ::testing::Test {
 protected:
  ConcurrencyLimiter& Limiter() {
    if (limiter_ == nullptr)
      limiter_ = std::make_unique<ConcurrencyLimiter>(options_, timer_, clock_);
    return *limiter_;
  }

  // Queues a waiter whose callback records into `calls` under `name`.
  ConcurrencyLimiter::Ticket Enqueue(const std::string& account, std::string name,
                                     absl::Duration timeout = absl::Seconds(10)) {
    return Limiter().Enqueue(
        account, clock_.Now() + timeout, [this, name = std::move(name)](absl::Status status) {
          calls_.push_back(absl::StrCat(name, ":", absl::StatusCodeToString(status.code())));
        });
  }

  ConcurrencyLimiterOptions options_{.max_in_flight_per_account = 2, .max_queued_per_account = 10};
  FakeClock clock_;
  FakeTimer timer_{clock_};
  std::unique_ptr<ConcurrencyLimiter> limiter_;
  std::vector<std::string> calls_;  // "name:CODE" per callback, in call order.
};

TEST_F(ConcurrencyLimiterTest, TryAcquireGrantsUpToTheLimit) {
  EXPECT_TRUE(Limiter().TryAcquire(kAccountA));
  EXPECT_TRUE(Limiter().TryAcquire(kAccountA));
  EXPECT_FALSE(Limiter().TryAcquire(kAccountA));
  EXPECT_EQ(Limiter().in_flight(kAccountA), 2);
  EXPECT_EQ(Limiter().queued(kAccountA), 0);
}

TEST_F(ConcurrencyLimiterTest, ReleaseLetsTryAcquireSucceedAgain) {
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  Limiter().Release(kAccountA);
  EXPECT_EQ(Limiter().in_flight(kAccountA), 1);
  EXPECT_TRUE(Limiter().TryAcquire(kAccountA));
}

TEST_F(ConcurrencyLimiterTest, EnqueueNeverCallsBackInline) {
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  const ConcurrencyLimiter::Ticket ticket = Enqueue(kAccountA, "w1");
  EXPECT_NE(ticket, 0u);
  EXPECT_THAT(calls_, IsEmpty());
  EXPECT_EQ(Limiter().queued(kAccountA), 1);
}

TEST_F(ConcurrencyLimiterTest, ReleaseHandsThePermitToTheOldestWaiter) {
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  Enqueue(kAccountA, "w1");
  Enqueue(kAccountA, "w2");
  Enqueue(kAccountA, "w3");

  Limiter().Release(kAccountA);
  EXPECT_THAT(calls_, ElementsAre("w1:OK"));
  EXPECT_EQ(Limiter().in_flight(kAccountA), 2);  // Handed over, not returned.
  EXPECT_EQ(Limiter().queued(kAccountA), 2);
  EXPECT_FALSE(Limiter().TryAcquire(kAccountA));

  Limiter().Release(kAccountA);
  Limiter().Release(kAccountA);
  EXPECT_THAT(calls_, ElementsAre("w1:OK", "w2:OK", "w3:OK"));
  EXPECT_EQ(Limiter().queued(kAccountA), 0);
  EXPECT_EQ(Limiter().in_flight(kAccountA), 2);
}

TEST_F(ConcurrencyLimiterTest, HandedOverWaiterLosesItsDeadlineTimer) {
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  Enqueue(kAccountA, "w1", absl::Seconds(1));
  ASSERT_THAT(timer_.pending(), SizeIs(1));
  Limiter().Release(kAccountA);
  EXPECT_THAT(timer_.pending(), IsEmpty());
  clock_.Advance(absl::Seconds(5));
  timer_.FireDue();
  EXPECT_THAT(calls_, ElementsAre("w1:OK"));
}

TEST_F(ConcurrencyLimiterTest, TryAcquireDoesNotOvertakeAQueue) {
  options_.max_in_flight_per_account = 1;
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  Enqueue(kAccountA, "w1");
  EXPECT_FALSE(Limiter().TryAcquire(kAccountA));
  Limiter().Release(kAccountA);  // The permit goes to w1, not to the next TryAcquire.
  EXPECT_FALSE(Limiter().TryAcquire(kAccountA));
  EXPECT_THAT(calls_, ElementsAre("w1:OK"));
  Limiter().Release(kAccountA);  // w1 finishes.
  EXPECT_EQ(Limiter().in_flight(kAccountA), 0);
  EXPECT_TRUE(Limiter().TryAcquire(kAccountA));
}

TEST_F(ConcurrencyLimiterTest, WaiterQueuedAfterThePermitFreedIsNotStranded) {
  options_.max_in_flight_per_account = 1;
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  EXPECT_FALSE(Limiter().TryAcquire(kAccountA));  // Request 2 finds the account busy...
  Limiter().Release(kAccountA);                   // ...request 1 finishes meanwhile...
  Enqueue(kAccountA, "w2", absl::Seconds(10));    // ...and request 2 queues.
  timer_.FireDue();                               // Whatever is due now, without time passing.
  EXPECT_THAT(calls_, ElementsAre("w2:OK"));
  EXPECT_EQ(Limiter().in_flight(kAccountA), 1);
}

TEST_F(ConcurrencyLimiterTest, FullQueueRefusesWithoutCallingBack) {
  options_.max_in_flight_per_account = 1;
  options_.max_queued_per_account = 2;
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  const ConcurrencyLimiter::Ticket t1 = Enqueue(kAccountA, "w1");
  const ConcurrencyLimiter::Ticket t2 = Enqueue(kAccountA, "w2");
  EXPECT_NE(t1, 0u);
  EXPECT_NE(t2, 0u);
  EXPECT_NE(t1, t2);
  EXPECT_EQ(Enqueue(kAccountA, "refused"), 0u);
  EXPECT_EQ(Limiter().queued(kAccountA), 2);
  EXPECT_EQ(timer_.scheduled_count(), 2u);  // No deadline timer for the refused one.

  Limiter().Release(kAccountA);
  Limiter().Release(kAccountA);
  Limiter().Release(kAccountA);
  clock_.Advance(absl::Minutes(1));
  timer_.FireDue();
  EXPECT_THAT(calls_, ElementsAre("w1:OK", "w2:OK"));
}

TEST_F(ConcurrencyLimiterTest, DeadlineExpiresOnlyThatWaiter) {
  options_.max_in_flight_per_account = 1;
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  Enqueue(kAccountA, "w1", absl::Seconds(1));
  Enqueue(kAccountA, "w2", absl::Seconds(2));

  clock_.Advance(absl::Seconds(1) - absl::Nanoseconds(1));
  EXPECT_EQ(timer_.FireDue(), 0u);
  EXPECT_THAT(calls_, IsEmpty());
  clock_.Advance(absl::Nanoseconds(1));
  EXPECT_EQ(timer_.FireDue(), 1u);
  EXPECT_THAT(calls_, ElementsAre("w1:DEADLINE_EXCEEDED"));
  EXPECT_EQ(Limiter().queued(kAccountA), 1);
  EXPECT_EQ(Limiter().in_flight(kAccountA), 1);

  Limiter().Release(kAccountA);
  EXPECT_THAT(calls_, ElementsAre("w1:DEADLINE_EXCEEDED", "w2:OK"));
}

TEST_F(ConcurrencyLimiterTest, CancelCallsBackOnceAndDropsTheWaiter) {
  options_.max_in_flight_per_account = 1;
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  const ConcurrencyLimiter::Ticket t1 = Enqueue(kAccountA, "w1");
  ASSERT_THAT(timer_.pending(), SizeIs(1));
  const Timer::TimerId deadline_timer = timer_.pending()[0].id;

  Limiter().Cancel(t1);
  EXPECT_THAT(calls_, ElementsAre("w1:CANCELLED"));
  EXPECT_THAT(timer_.cancel_calls(), ElementsAre(deadline_timer));
  EXPECT_EQ(Limiter().queued(kAccountA), 0);

  Limiter().Cancel(t1);
  Limiter().Release(kAccountA);
  clock_.Advance(absl::Minutes(1));
  timer_.FireDue();
  EXPECT_THAT(calls_, ElementsAre("w1:CANCELLED"));
  EXPECT_EQ(Limiter().in_flight(kAccountA), 0);
}

TEST_F(ConcurrencyLimiterTest, CancelOfAGrantedOrUnknownTicketDoesNothing) {
  options_.max_in_flight_per_account = 1;
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  const ConcurrencyLimiter::Ticket t1 = Enqueue(kAccountA, "w1");
  Limiter().Release(kAccountA);
  Limiter().Cancel(t1);
  Limiter().Cancel(12345);
  EXPECT_THAT(calls_, ElementsAre("w1:OK"));
  EXPECT_EQ(Limiter().in_flight(kAccountA), 1);
}

TEST_F(ConcurrencyLimiterTest, AccountsAreIndependent) {
  options_.max_in_flight_per_account = 1;
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  EXPECT_TRUE(Limiter().TryAcquire(kAccountB));
  Enqueue(kAccountA, "a1");

  Limiter().Release(kAccountB);
  EXPECT_THAT(calls_, IsEmpty());
  EXPECT_EQ(Limiter().in_flight(kAccountB), 0);
  EXPECT_EQ(Limiter().in_flight(kAccountA), 1);
  EXPECT_TRUE(Limiter().TryAcquire(kAccountB));

  Limiter().Release(kAccountA);
  EXPECT_THAT(calls_, ElementsAre("a1:OK"));
}

TEST_F(ConcurrencyLimiterTest, InFlightReturnsToZero) {
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  ASSERT_TRUE(Limiter().TryAcquire(kAccountA));
  Enqueue(kAccountA, "w1");
  const ConcurrencyLimiter::Ticket t2 = Enqueue(kAccountA, "w2");
  Enqueue(kAccountA, "w3", absl::Seconds(1));
  Limiter().Cancel(t2);
  clock_.Advance(absl::Seconds(1));
  timer_.FireDue();
  Limiter().Release(kAccountA);  // To w1.
  Limiter().Release(kAccountA);
  Limiter().Release(kAccountA);
  EXPECT_THAT(calls_, ElementsAre("w2:CANCELLED", "w3:DEADLINE_EXCEEDED", "w1:OK"));
  EXPECT_EQ(Limiter().in_flight(kAccountA), 0);
  EXPECT_EQ(Limiter().queued(kAccountA), 0);
  Limiter().Release(kAccountA);  // One too many: stays at zero.
  EXPECT_EQ(Limiter().in_flight(kAccountA), 0);
}

// The limiter in the upstream engine: each upstream attempt holds one permit.
class UpstreamEngineLimiterTest : public ::testing::Test {
 protected:
  UpstreamEngineLimiterTest() {
    options_.base_url = "https://api.twilio.test";
    options_.retry.max_attempts = 3;
    options_.retry.backoff_base = absl::Milliseconds(100);
    options_.retry.backoff_cap = absl::Seconds(2);
    engine_ = std::make_unique<UpstreamEngine>(options_, transport_, timer_, clock_, random_,
                                               UpstreamControls{.limiter = &limiter_});
  }

  static CreateSubscriptionRequest Request(std::string key) {
    CreateSubscriptionRequest request;
    request.account_sid = kAccountA;
    request.call_sid = "CAfedcba9876543210fedcba9876543210";
    request.callback = "https://example.com/hook";
    request.idempotency_key = std::move(key);
    return request;
  }

  std::shared_ptr<PendingCall> Create(std::string key, absl::Duration timeout) {
    return engine_->Start(
        std::make_shared<const TwilioAccount>(
            TwilioAccount{.account_sid = "AC0123456789abcdef0123456789abcdef",
                          .credentials = {"ACuser", "token"}}),
        std::make_shared<const TwilioCall>(CreateSubscriptionCall(Request(key))),
        {.deadline = clock_.Now() + timeout, .window_start = clock_.Now()},
        [this, key](UpstreamOutcome outcome) { results_.emplace_back(key, std::move(outcome)); });
  }

  static HttpResult Created() {
    return HttpResponseResult(201,
                              absl::StrCat(R"({"account_sid":")", kAccountA,
                                           R"(","call_sid":"CAfedcba9876543210fedcba9876543210",)",
                                           R"("sid":"ZY00112233445566778899aabbccddeeff",)",
                                           R"("uri":"/2010-04-01/Accounts/x.json"})"));
  }

  UpstreamOptions options_;
  FakeClock clock_;
  FakeTimer timer_{clock_};
  FakeHttpTransport transport_;
  FakeRandom random_{0.5};
  ConcurrencyLimiter limiter_{
      {.max_in_flight_per_account = 1, .max_queued_per_account = 10}, timer_, clock_};
  std::unique_ptr<UpstreamEngine> engine_;
  std::vector<std::pair<std::string, UpstreamOutcome>> results_;
};

TEST_F(UpstreamEngineLimiterTest, SecondCreateWaitsForTheFirstToComplete) {
  Create("k-1", absl::Seconds(10));
  Create("k-2", absl::Seconds(10));
  ASSERT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(limiter_.in_flight(kAccountA), 1);
  EXPECT_EQ(limiter_.queued(kAccountA), 1);

  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_EQ(results_[0].first, "k-1");
  EXPECT_TRUE(results_[0].second.result.ok()) << results_[0].second.result.status();
  ASSERT_EQ(transport_.sent_count(), 2u);  // The permit went to the second Create.
  EXPECT_EQ(limiter_.in_flight(kAccountA), 1);

  ASSERT_TRUE(transport_.CompleteNth(1, Created()));
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_EQ(results_[1].first, "k-2");
  EXPECT_TRUE(results_[1].second.result.ok()) << results_[1].second.result.status();
  EXPECT_EQ(limiter_.in_flight(kAccountA), 0);
}

TEST_F(UpstreamEngineLimiterTest, QueuedCreateEndsAtItsDeadlineWithoutARequest) {
  Create("k-1", absl::Seconds(10));
  Create("k-2", absl::Seconds(1));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(timer_.FireDue(), 1u);
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_EQ(results_[0].first, "k-2");
  EXPECT_EQ(results_[0].second.result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(results_[0].second.attempts, 0);
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(limiter_.queued(kAccountA), 0);

  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(limiter_.in_flight(kAccountA), 0);
}

TEST_F(UpstreamEngineLimiterTest, CancelWhileQueuedLeavesTheQueue) {
  Create("k-1", absl::Seconds(10));
  std::shared_ptr<PendingCall> second = Create("k-2", absl::Seconds(10));
  second->Cancel();
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_EQ(results_[0].second.result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(limiter_.queued(kAccountA), 0);

  ASSERT_TRUE(transport_.CompleteNth(0, Created()));
  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_THAT(results_, SizeIs(2));
  EXPECT_EQ(limiter_.in_flight(kAccountA), 0);
}

}  // namespace
}  // namespace gateway
