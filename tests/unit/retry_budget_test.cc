#include "retry/retry_budget.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
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
using ::testing::DoubleEq;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(RetryBudgetTest, StartsFull) {
  RetryBudget budget(10, 0.1);
  EXPECT_THAT(budget.tokens(), DoubleEq(10.0));
  EXPECT_TRUE(budget.AllowRetry());
}

TEST(RetryBudgetTest, EachFailureDrainsOneTokenUntilHalfIsLeft) {
  RetryBudget budget(10, 0.1);
  for (int i = 1; i <= 4; ++i) {
    budget.RecordFailure();
    EXPECT_THAT(budget.tokens(), DoubleEq(10.0 - i));
    EXPECT_TRUE(budget.AllowRetry()) << "after " << i << " failures";
  }
  budget.RecordFailure();  // Exactly half left: not more than half, so no retry.
  EXPECT_THAT(budget.tokens(), DoubleEq(5.0));
  EXPECT_FALSE(budget.AllowRetry());
}

TEST(RetryBudgetTest, SuccessesRefillByTheRatio) {
  RetryBudget budget(10, 0.1);
  for (int i = 0; i < 5; ++i) budget.RecordFailure();
  ASSERT_FALSE(budget.AllowRetry());
  budget.RecordSuccess();
  EXPECT_THAT(budget.tokens(), DoubleEq(5.1));
  EXPECT_TRUE(budget.AllowRetry());
}

TEST(RetryBudgetTest, FractionalRatiosAddUpExactly) {
  RetryBudget budget(10, 0.1);
  for (int i = 0; i < 10; ++i) budget.RecordFailure();
  ASSERT_THAT(budget.tokens(), DoubleEq(0.0));
  for (int i = 0; i < 30; ++i) budget.RecordSuccess();
  EXPECT_EQ(budget.tokens(), 3.0);  // Thirty tenths, with no rounding drift.
}

TEST(RetryBudgetTest, NeverDropsBelowZero) {
  RetryBudget budget(3, 0.5);
  for (int i = 0; i < 10; ++i) budget.RecordFailure();
  EXPECT_THAT(budget.tokens(), DoubleEq(0.0));
  EXPECT_FALSE(budget.AllowRetry());
  budget.RecordSuccess();
  EXPECT_THAT(budget.tokens(), DoubleEq(0.5));
}

TEST(RetryBudgetTest, PartialTokenFailureStopsAtZero) {
  RetryBudget budget(2.5, 1);
  budget.RecordFailure();
  budget.RecordFailure();
  EXPECT_THAT(budget.tokens(), DoubleEq(0.5));
  budget.RecordFailure();
  EXPECT_THAT(budget.tokens(), DoubleEq(0.0));
}

TEST(RetryBudgetTest, NeverRisesAboveMax) {
  RetryBudget budget(10, 0.6);
  for (int i = 0; i < 100; ++i) budget.RecordSuccess();
  EXPECT_THAT(budget.tokens(), DoubleEq(10.0));
  budget.RecordFailure();
  budget.RecordSuccess();
  budget.RecordSuccess();  // 9 + 0.6 + 0.6 would be 10.2.
  EXPECT_THAT(budget.tokens(), DoubleEq(10.0));
}

TEST(RetryBudgetTest, ConcurrentFailuresAreNotLost) {
  RetryBudget budget(1000, 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&budget] {
      for (int i = 0; i < 100; ++i) budget.RecordFailure();
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(budget.tokens(), DoubleEq(600.0));
}

TEST(RetryBudgetTest, ConcurrentUpdatesStayWithinBounds) {
  RetryBudget budget(5, 0.7);
  std::atomic<bool> out_of_bounds{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&budget, &out_of_bounds, t] {
      for (int i = 0; i < 20000; ++i) {
        if (t % 2 == 0) {
          budget.RecordFailure();
        } else {
          budget.RecordSuccess();
        }
        const double tokens = budget.tokens();
        if (tokens < 0.0 || tokens > 5.0) out_of_bounds = true;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_FALSE(out_of_bounds.load());
  EXPECT_GE(budget.tokens(), 0.0);
  EXPECT_LE(budget.tokens(), 5.0);
}

// The budget in the upstream engine: a retryable failure spends a token before a retry.
class UpstreamEngineRetryBudgetTest : public ::testing::Test {
 protected:
  UpstreamEngineRetryBudgetTest() {
    options_.base_url = "https://api.twilio.test";
    options_.retry.max_attempts = 5;
    options_.retry.backoff_base = absl::Milliseconds(100);
    options_.retry.backoff_cap = absl::Seconds(2);
    options_.retry.retry_ambiguous = true;
    engine_ = std::make_unique<UpstreamEngine>(options_, transport_, timer_, clock_, random_,
                                               UpstreamControls{.retry_budget = &budget_});
  }

  void Create() {
    CreateSubscriptionRequest request;
    request.account_sid = "AC0123456789abcdef0123456789abcdef";
    request.call_sid = "CAfedcba9876543210fedcba9876543210";
    request.callback = "https://example.com/hook";
    request.idempotency_key = "caller-key";
    engine_->Start(
        std::make_shared<const TwilioAccount>(
            TwilioAccount{.account_sid = "AC0123456789abcdef0123456789abcdef",
                          .credentials = {"ACuser", "token"}}),
        std::make_shared<const TwilioCall>(CreateSubscriptionCall(request)),
        {.deadline = clock_.Now() + absl::Seconds(10), .window_start = clock_.Now()},
        [this](UpstreamOutcome outcome) { results_.push_back(std::move(outcome.result)); });
  }

  static HttpResult ServiceUnavailable() {
    return HttpResponseResult(503,
                              R"({"code":20503,"message":"Service unavailable","status":503})");
  }

  UpstreamOptions options_;
  FakeClock clock_;
  FakeTimer timer_{clock_};
  FakeHttpTransport transport_;
  FakeRandom random_{0.5};
  RetryBudget budget_{10, 0.1};
  std::unique_ptr<UpstreamEngine> engine_;
  std::vector<absl::StatusOr<Resource>> results_;
};

TEST_F(UpstreamEngineRetryBudgetTest, NearlyDrainedBudgetStopsTheRetry) {
  for (int i = 0; i < 4; ++i) budget_.RecordFailure();  // 6 of 10 left: one failure from half.
  ASSERT_TRUE(budget_.AllowRetry());
  Create();
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));

  EXPECT_EQ(transport_.sent_count(), 1u);
  EXPECT_EQ(timer_.scheduled_count(), 0u);
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_EQ(results_[0].status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(results_[0].status().message(), HasSubstr("retry budget exhausted"));
  EXPECT_THAT(budget_.tokens(), DoubleEq(5.0));
}

TEST_F(UpstreamEngineRetryBudgetTest, FullBudgetAllowsTheRetryAndSuccessRefills) {
  Create();
  ASSERT_TRUE(transport_.CompleteNth(0, ServiceUnavailable()));
  EXPECT_THAT(results_, IsEmpty());
  EXPECT_THAT(budget_.tokens(), DoubleEq(9.0));
  ASSERT_THAT(timer_.pending(), SizeIs(1));
  clock_.Set(timer_.pending()[0].when);
  ASSERT_EQ(timer_.FireDue(), 1u);
  ASSERT_EQ(transport_.sent_count(), 2u);

  ASSERT_TRUE(transport_.CompleteNth(
      1, HttpResponseResult(201, R"({"account_sid":"AC0123456789abcdef0123456789abcdef",)"
                                 R"("call_sid":"CAfedcba9876543210fedcba9876543210",)"
                                 R"("sid":"ZY00112233445566778899aabbccddeeff",)"
                                 R"("uri":"/2010-04-01/Accounts/x.json"})")));
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_TRUE(results_[0].ok()) << results_[0].status();
  EXPECT_THAT(budget_.tokens(), DoubleEq(9.1));
}

}  // namespace
}  // namespace gateway
