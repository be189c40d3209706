// The adaptive account limit: AIMD arithmetic, the fleet lease share, the limiter's adaptive and
// leased modes, and FleetLeases against a fake store. No Redis, no sleeps: FakeClock/FakeTimer.
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_fleet_limit_store.h"
#include "fakes/fake_http_transport.h"
#include "fakes/fake_random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "limits/aimd_limit.h"
#include "limits/concurrency_limiter.h"
#include "limits/fleet_leases.h"
#include "limits/fleet_limit.h"
#include "twilio/twilio_api.h"
#include "upstream/upstream_engine.h"

namespace gateway {
namespace {

using ::gateway::testing::FakeClock;
using ::gateway::testing::FakeFleetLimitStore;
using ::gateway::testing::FakeHttpTransport;
using ::gateway::testing::FakeRandom;
using ::gateway::testing::FakeTimer;
using ::gateway::testing::HttpResponseResult;
using ::testing::DoubleNear;
using ::testing::SizeIs;

constexpr char kAccountA[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kAccountB[] = "AC0123456789abcdef0123456789abcdee";
const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

AimdOptions Aimd() {
  return {.initial_limit = 10,
          .max_limit = 40,
          .backoff_ratio = 0.5,
          .backoff_interval = absl::Seconds(1)};
}

TEST(AimdLimitTest, GrowsOnePermitPerFullWindowOfAcceptedAttempts) {
  AimdLimit limit(Aimd(), 10, 40);
  for (int i = 0; i < 10; ++i) limit.OnAccepted(10);
  // 1/10 per answer while at 10, a little less once past it: eleven after one window.
  EXPECT_EQ(limit.limit(), 10);
  limit.OnAccepted(10);
  EXPECT_EQ(limit.limit(), 11);
  EXPECT_THAT(limit.value(), DoubleNear(11.0, 0.1));
}

TEST(AimdLimitTest, DoesNotGrowWhileLessThanHalfUsed) {
  AimdLimit limit(Aimd(), 10, 40);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(limit.OnAccepted(4), 0);
  EXPECT_EQ(limit.limit(), 10);
  EXPECT_GT(limit.OnAccepted(5), 0);
}

TEST(AimdLimitTest, StopsAtTheCeiling) {
  AimdLimit limit(Aimd(), 39.5, 40);
  for (int i = 0; i < 100; ++i) limit.OnAccepted(40);
  EXPECT_EQ(limit.limit(), 40);
  EXPECT_EQ(limit.OnAccepted(40), 0);
}

TEST(AimdLimitTest, ABurstOf429sToAttemptsSentBeforeTheCutHalvesOnce) {
  AimdLimit limit(Aimd(), 20, 40);
  const absl::Time sent = kT0 - absl::Milliseconds(150);
  EXPECT_TRUE(limit.OnThrottled(kT0, sent));
  EXPECT_EQ(limit.limit(), 10);
  // The rest of the burst: attempts sent under the old limit.
  for (int i = 0; i < 19; ++i) {
    EXPECT_FALSE(limit.OnThrottled(kT0 + absl::Milliseconds(i), sent + absl::Milliseconds(i)));
  }
  EXPECT_EQ(limit.limit(), 10);
  // An attempt sent after the cut and still refused: still over, cut again.
  EXPECT_TRUE(limit.OnThrottled(kT0 + absl::Milliseconds(30), kT0 + absl::Milliseconds(29)));
  EXPECT_EQ(limit.limit(), 5);
}

TEST(AimdLimitTest, UnderALeaseItGrowsAtTheFleetsPace) {
  AimdLimit limit(Aimd(), 10, 40);
  // A tenth of the fleet's window of 100 accepted here: a tenth of a permit.
  for (int i = 0; i < 10; ++i) EXPECT_THAT(limit.OnAccepted(10, 100), DoubleNear(0.01, 1e-12));
  EXPECT_THAT(limit.value(), DoubleNear(10.1, 1e-9));
}

TEST(AimdLimitTest, NeverBelowOne) {
  AimdLimit limit(Aimd(), 1, 40);
  EXPECT_TRUE(limit.OnThrottled(kT0, kT0));
  EXPECT_EQ(limit.limit(), 1);
  EXPECT_EQ(limit.value(), 1);
}

TEST(AimdLimitTest, NeverBelowTheFloor) {
  AimdOptions options = Aimd();
  options.min_limit = 4;
  AimdLimit limit(options, 6, 40);
  EXPECT_TRUE(limit.OnThrottled(kT0, kT0));
  EXPECT_EQ(limit.limit(), 4);
  limit.Reset(10, 12, 2);  // A lease's floor: a share of the fleet's.
  EXPECT_TRUE(limit.OnThrottled(kT0 + absl::Seconds(1), kT0 + absl::Seconds(1)));
  EXPECT_TRUE(limit.OnThrottled(kT0 + absl::Seconds(2), kT0 + absl::Seconds(2)));
  EXPECT_TRUE(limit.OnThrottled(kT0 + absl::Seconds(3), kT0 + absl::Seconds(3)));
  EXPECT_EQ(limit.limit(), 2);
}

TEST(AimdLimitTest, ResetClampsToTheNewCeiling) {
  AimdLimit limit(Aimd(), 30, 40);
  limit.Reset(30, 12);
  EXPECT_EQ(limit.limit(), 12);
  EXPECT_EQ(limit.ceiling(), 12);
  limit.Reset(0, 12);
  EXPECT_EQ(limit.limit(), 1);
}

TEST(LeaseShareTest, SharesAddUpToTheFleetLimit) {
  for (int replicas = 1; replicas <= 12; ++replicas) {
    for (double fleet = replicas; fleet <= 100; fleet += 0.75) {
      int total = 0;
      int low = 1 << 30;
      int high = 0;
      for (int index = 0; index < replicas; ++index) {
        const int share = LeaseShare(fleet, replicas, index, kAccountA);
        total += share;
        low = std::min(low, share);
        high = std::max(high, share);
      }
      EXPECT_EQ(total, static_cast<int>(fleet)) << fleet << " over " << replicas;
      EXPECT_LE(high - low, 1) << fleet << " over " << replicas;
    }
  }
}

TEST(LeaseShareTest, EveryReplicaHoldsAtLeastOnePermit) {
  for (int index = 0; index < 5; ++index) EXPECT_EQ(LeaseShare(2, 5, index, kAccountA), 1);
  EXPECT_EQ(LeaseShare(0, 1, 0, kAccountA), 1);
}

TEST(LeaseShareTest, TheRemainderGoesToDifferentReplicasForDifferentAccounts) {
  // 10 over 3: one replica holds 4. Which one depends on the account, the same on every replica.
  std::vector<int> holders;
  for (int account = 0; account < 12; ++account) {
    const std::string sid = absl::StrCat("AC0123456789abcdef0123456789abcd", 10 + account);
    for (int index = 0; index < 3; ++index) {
      if (LeaseShare(10, 3, index, sid) == 4) holders.push_back(index);
    }
  }
  ASSERT_THAT(holders, SizeIs(12));
  EXPECT_NE(std::count(holders.begin(), holders.end(), holders.front()), 12);
}

class AdaptiveLimiterTest : public ::testing::Test {
 protected:
  ConcurrencyLimiter& Limiter() {
    if (limiter_ == nullptr)
      limiter_ = std::make_unique<ConcurrencyLimiter>(options_, timer_, clock_);
    return *limiter_;
  }
  void Enqueue(const std::string& account, std::string name) {
    Limiter().Enqueue(
        account, clock_.Now() + absl::Seconds(10),
        [this, name = std::move(name)](absl::Status status) {
          calls_.push_back(absl::StrCat(name, ":", absl::StatusCodeToString(status.code())));
        });
  }
  void AcquireAll(const std::string& account, int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(Limiter().TryAcquire(account)) << i;
  }

  ConcurrencyLimiterOptions options_{.max_in_flight_per_account = 25,
                                     .max_queued_per_account = 100,
                                     .adaptive = true,
                                     .aimd = {.initial_limit = 2,
                                              .max_limit = 8,
                                              .backoff_ratio = 0.5,
                                              .backoff_interval = absl::Seconds(1)}};
  FakeClock clock_{kT0};
  FakeTimer timer_{clock_};
  std::unique_ptr<ConcurrencyLimiter> limiter_;
  std::vector<std::string> calls_;
};

TEST_F(AdaptiveLimiterTest, AcceptedAttemptsRaiseTheLimitAndGrantAWaiter) {
  AcquireAll(kAccountA, 2);
  EXPECT_FALSE(Limiter().TryAcquire(kAccountA));
  Enqueue(kAccountA, "w");
  // 2 + 1/2 + 1/2.5 + 1/2.9: past 3 at the third.
  for (int i = 0; i < 3; ++i)
    Limiter().Feedback(kAccountA, UpstreamFeedback::kAccepted, clock_.Now());
  EXPECT_EQ(Limiter().limit(kAccountA), 3);
  EXPECT_TRUE(calls_.empty());  // Never inline: from the timer thread.
  timer_.FireDue();
  EXPECT_THAT(calls_, ::testing::ElementsAre("w:OK"));
  EXPECT_EQ(Limiter().in_flight(kAccountA), 3);
}

TEST_F(AdaptiveLimiterTest, A429HalvesTheLimitAndPermitsHeldDrainFirst) {
  options_.aimd.initial_limit = 8;
  AcquireAll(kAccountA, 8);
  Enqueue(kAccountA, "w");
  // All eight were sent before the first 429 came back: one overload, one cut.
  const absl::Time sent = clock_.Now() - absl::Milliseconds(150);
  for (int i = 0; i < 8; ++i) Limiter().Feedback(kAccountA, UpstreamFeedback::kThrottled, sent);
  EXPECT_EQ(Limiter().limit(kAccountA), 4);
  // Eight held, four allowed: the first four releases are not handed to the waiter.
  for (int i = 0; i < 4; ++i) Limiter().Release(kAccountA);
  EXPECT_TRUE(calls_.empty());
  EXPECT_EQ(Limiter().in_flight(kAccountA), 4);
  Limiter().Release(kAccountA);
  EXPECT_THAT(calls_, ::testing::ElementsAre("w:OK"));
  EXPECT_EQ(Limiter().in_flight(kAccountA), 4);
}

TEST_F(AdaptiveLimiterTest, OtherOutcomesAndOtherAccountsLeaveTheLimit) {
  AcquireAll(kAccountA, 2);
  for (int i = 0; i < 10; ++i)
    Limiter().Feedback(kAccountA, UpstreamFeedback::kOther, clock_.Now());
  Limiter().Feedback(kAccountB, UpstreamFeedback::kThrottled,
                     clock_.Now());  // Unknown account: ignored.
  EXPECT_EQ(Limiter().limit(kAccountA), 2);
}

TEST_F(AdaptiveLimiterTest, AFixedLimitIgnoresFeedback) {
  options_.adaptive = false;
  options_.max_in_flight_per_account = 3;
  AcquireAll(kAccountA, 3);
  for (int i = 0; i < 10; ++i)
    Limiter().Feedback(kAccountA, UpstreamFeedback::kThrottled, clock_.Now());
  EXPECT_EQ(Limiter().limit(kAccountA), 3);
}

TEST_F(AdaptiveLimiterTest, AnIdleAccountIsForgottenAndStartsAgain) {
  AcquireAll(kAccountA, 2);
  // 2 + 1/2 + 1/2.5 + 1/2.9: past 3 at the third.
  for (int i = 0; i < 3; ++i)
    Limiter().Feedback(kAccountA, UpstreamFeedback::kAccepted, clock_.Now());
  Limiter().Release(kAccountA);
  Limiter().Release(kAccountA);
  EXPECT_EQ(Limiter().limit(kAccountA), 3);
  clock_.Advance(absl::Minutes(2));
  EXPECT_TRUE(Limiter().TryAcquire(kAccountB));  // Sweeps.
  EXPECT_THAT(Limiter().limits(), SizeIs(1));
  EXPECT_EQ(Limiter().limit(kAccountA), 2);
}

// The limiter under leases of the fleet's limit, driven by FleetLeases and a fake store.
class FleetLeasesTest : public AdaptiveLimiterTest {
 protected:
  FleetLeasesTest() {
    options_.leased = true;
    options_.aimd = {.initial_limit = 25,
                     .max_limit = 100,
                     .backoff_ratio = 0.5,
                     .backoff_interval = absl::Seconds(1)};
    leases_ = std::make_unique<FleetLeases>(FleetLeaseOptions{.period = absl::Seconds(1)},
                                            Limiter(), store_, timer_, clock_);
    Limiter().SetOnNewAccount([this] { leases_->ExchangeSoon(); });
    leases_->Start();
    timer_.FireDue();  // The first tick: no account yet, a heartbeat only.
    EXPECT_THAT(store_.exchange(0), ::testing::IsEmpty());
    store_.Answer(0, std::vector<FleetLease>());
  }
  ~FleetLeasesTest() override { leases_->Stop(); }

  static FleetLease Lease(double fleet_limit, int replicas, int index) {
    return {.account = kAccountA, .fleet_limit = fleet_limit, .replicas = replicas, .index = index};
  }

  FakeFleetLimitStore store_;
  std::unique_ptr<FleetLeases> leases_;
};

TEST_F(FleetLeasesTest, ANewAccountHoldsOnePermitUntilItsLeaseArrives) {
  EXPECT_EQ(store_.exchange_count(), 1u);
  EXPECT_TRUE(Limiter().TryAcquire(kAccountA));
  EXPECT_FALSE(Limiter().TryAcquire(kAccountA));
  Enqueue(kAccountA, "w1");
  Enqueue(kAccountA, "w2");
  timer_.FireDue();  // Exchanged at once, not at the next period.
  ASSERT_EQ(store_.exchange_count(), 2u);
  ASSERT_THAT(store_.exchange(1), SizeIs(1));
  EXPECT_EQ(store_.exchange(1)[0].account, kAccountA);
  store_.Answer(1, std::vector<FleetLease>{Lease(30, 3, 0)});
  EXPECT_EQ(Limiter().limit(kAccountA), LeaseShare(30, 3, 0, kAccountA));
  timer_.FireDue();
  EXPECT_THAT(calls_, ::testing::ElementsAre("w1:OK", "w2:OK"));
}

TEST_F(FleetLeasesTest, ReportsCarryTheGrowthInFleetWindowsAndTheCut) {
  Limiter().TryAcquire(kAccountA);
  timer_.FireDue();
  store_.Answer(1, std::vector<FleetLease>{Lease(30, 3, 1)});
  const int permits = Limiter().limit(kAccountA);
  ASSERT_EQ(permits, 10);
  AcquireAll(kAccountA, permits - 1);
  for (int i = 0; i < 15; ++i)
    Limiter().Feedback(kAccountA, UpstreamFeedback::kAccepted, clock_.Now());
  clock_.Advance(absl::Seconds(1));
  timer_.FireDue();
  ASSERT_EQ(store_.exchange_count(), 3u);
  // Fifteen accepted of a fleet window of 30: half a permit for the fleet.
  EXPECT_THAT(store_.exchange(2)[0].increase, DoubleNear(0.5, 1e-9));
  EXPECT_FALSE(store_.exchange(2)[0].throttled);
  store_.Answer(2, std::vector<FleetLease>{Lease(30.5, 3, 1)});

  Limiter().Feedback(kAccountA, UpstreamFeedback::kThrottled, clock_.Now());
  EXPECT_EQ(Limiter().limit(kAccountA), 5);
  clock_.Advance(absl::Seconds(1));
  timer_.FireDue();
  ASSERT_EQ(store_.exchange_count(), 4u);
  EXPECT_TRUE(store_.exchange(3)[0].throttled);
  EXPECT_EQ(store_.exchange(3)[0].increase, 0);
}

TEST_F(FleetLeasesTest, ACutSinceTheReportOutlivesALeaseThatDoesNotHaveItYet) {
  Limiter().TryAcquire(kAccountA);
  timer_.FireDue();
  store_.Answer(1, std::vector<FleetLease>{Lease(30, 1, 0)});
  clock_.Advance(absl::Seconds(1));
  timer_.FireDue();  // Report taken: nothing cut yet.
  Limiter().Feedback(kAccountA, UpstreamFeedback::kThrottled, clock_.Now());
  ASSERT_EQ(Limiter().limit(kAccountA), 15);
  store_.Answer(2, std::vector<FleetLease>{Lease(30, 1, 0)});
  EXPECT_EQ(Limiter().limit(kAccountA), 15);
}

TEST_F(FleetLeasesTest, WithoutTheStoreAReplicaKeepsItsLastLease) {
  Limiter().TryAcquire(kAccountA);
  timer_.FireDue();
  store_.Answer(1, std::vector<FleetLease>{Lease(30, 3, 0)});
  const int leased = Limiter().limit(kAccountA);
  clock_.Advance(absl::Seconds(1));
  timer_.FireDue();
  store_.Answer(2, absl::UnavailableError("account limits (redis at 127.0.0.1:1) unavailable"));
  EXPECT_EQ(Limiter().limit(kAccountA), leased);
  // And tries again a period later.
  clock_.Advance(absl::Seconds(1));
  timer_.FireDue();
  EXPECT_EQ(store_.exchange_count(), 4u);
}

TEST_F(FleetLeasesTest, WithoutTheStoreANewAccountGetsMaxOverTheReplicasLastSeen) {
  Limiter().TryAcquire(kAccountB);
  timer_.FireDue();
  store_.Answer(1, std::vector<FleetLease>{
                       {.account = kAccountB, .fleet_limit = 50, .replicas = 4, .index = 0}});
  Limiter().TryAcquire(kAccountA);
  timer_.FireDue();
  ASSERT_EQ(store_.exchange_count(), 3u);
  store_.Answer(2, absl::UnavailableError("down"));
  // 100 / 4 replicas = 25, starting at the initial 25.
  EXPECT_EQ(Limiter().limit(kAccountA), 25);
}

TEST_F(FleetLeasesTest, WithoutTheStoreEverAReplicaStartsAsALoneOneWould) {
  Limiter().TryAcquire(kAccountA);
  timer_.FireDue();
  store_.Answer(1, absl::UnavailableError("down"));
  EXPECT_EQ(Limiter().limit(kAccountA), 25);
}

// The engine reports each attempt's answer to the limiter.
TEST(UpstreamEngineFeedbackTest, A429FromTwilioHalvesTheAccountsLimit) {
  FakeClock clock(kT0);
  FakeTimer timer(clock);
  FakeHttpTransport transport;
  FakeRandom random(0.5);
  ConcurrencyLimiter limiter({.max_in_flight_per_account = 25,
                              .max_queued_per_account = 10,
                              .adaptive = true,
                              .aimd = {.initial_limit = 4,
                                       .max_limit = 8,
                                       .backoff_ratio = 0.5,
                                       .backoff_interval = absl::Seconds(1)}},
                             timer, clock);
  UpstreamOptions options;
  options.base_url = "https://api.twilio.test";
  UpstreamEngine engine(options, transport, timer, clock, random, {.limiter = &limiter});
  std::vector<UpstreamOutcome> outcomes;
  for (int i = 0; i < 4; ++i) {
    CreateSubscriptionRequest request;
    request.account_sid = kAccountA;
    request.call_sid = "CAfedcba9876543210fedcba9876543210";
    request.callback = "https://example.com/hook";
    request.idempotency_key = absl::StrCat("k-", i);
    engine.Start(std::make_shared<const TwilioAccount>(
                     TwilioAccount{.account_sid = kAccountA, .credentials = {"ACuser", "token"}}),
                 std::make_shared<const TwilioCall>(CreateSubscriptionCall(request)),
                 {.deadline = clock.Now() + absl::Seconds(10), .window_start = clock.Now()},
                 [&](UpstreamOutcome outcome) { outcomes.push_back(std::move(outcome)); });
  }
  ASSERT_EQ(transport.sent_count(), 4u);
  transport.CompleteNth(
      0, HttpResponseResult(429, R"({"code":20429,"message":"Too Many Requests","status":429})"));
  EXPECT_EQ(limiter.limit(kAccountA), 2);
  transport.CompleteNth(1, HttpResponseResult(404, R"({"code":20404,"status":404})"));
  // A 4xx was accepted for processing: half a permit more (1/2), not yet a whole one.
  EXPECT_EQ(limiter.limit(kAccountA), 2);
  transport.CompleteNth(2, HttpResponseResult(404, R"({"code":20404,"status":404})"));
  EXPECT_EQ(limiter.limit(kAccountA), 2);  // 2.5 + 1/2.5 = 2.9
  transport.CompleteNth(3, HttpResponseResult(404, R"({"code":20404,"status":404})"));
  EXPECT_EQ(limiter.limit(kAccountA), 3);
}

}  // namespace
}  // namespace gateway
