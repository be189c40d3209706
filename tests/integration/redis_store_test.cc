// RedisIdempotencyStore against a real redis-server on a loopback port, including its failures:
// killed, paused (no replies), restarted, and guarded by a password.
#include "idempotency/redis_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/random.h"
#include "fakes/fake_random.h"
#include "harness.h"

namespace gateway::testing {
namespace {

using State = ClaimResult::State;

// Generous bound on any one store call: it only catches hangs, it measures nothing.
constexpr auto kCallBound = std::chrono::seconds(10);

// Waits for the callback; a call that never calls back becomes DEADLINE_EXCEEDED (a test
// failure) instead of a hung test.
template <typename T>
T Await(std::future<T> future, const char* what) {
  if (future.wait_for(kCallBound) != std::future_status::ready) {
    return absl::DeadlineExceededError(std::string("test: no callback from ") + what);
  }
  return future.get();
}

absl::StatusOr<ClaimResult> ClaimNow(IdempotencyStore& store, const std::string& key,
                                     const std::string& fingerprint,
                                     absl::Duration lease = absl::Seconds(30),
                                     absl::Duration retention = absl::Hours(24)) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<ClaimResult>>>();
  auto future = promise->get_future();
  store.Claim(key, fingerprint, lease, retention,
              [promise](absl::StatusOr<ClaimResult> r) { promise->set_value(std::move(r)); });
  return Await(std::move(future), "Claim");
}

absl::Status CompleteNow(IdempotencyStore& store, const std::string& key, const std::string& token,
                         const std::string& outcome, absl::Duration retention = absl::Hours(24)) {
  auto promise = std::make_shared<std::promise<absl::Status>>();
  auto future = promise->get_future();
  store.Complete(key, token, outcome, retention,
                 [promise](absl::Status s) { promise->set_value(std::move(s)); });
  return Await(std::move(future), "Complete");
}

absl::Status RenewNow(IdempotencyStore& store, const std::string& key, const std::string& token,
                      absl::Duration lease) {
  auto promise = std::make_shared<std::promise<absl::Status>>();
  auto future = promise->get_future();
  store.Renew(key, token, lease, [promise](absl::Status s) { promise->set_value(std::move(s)); });
  return Await(std::move(future), "Renew");
}

absl::Status ReleaseNow(IdempotencyStore& store, const std::string& key, const std::string& token) {
  auto promise = std::make_shared<std::promise<absl::Status>>();
  auto future = promise->get_future();
  store.Release(key, token, [promise](absl::Status s) { promise->set_value(std::move(s)); });
  return Await(std::move(future), "Release");
}

// Polls `condition` until it holds or `bound` passes; for behaviour that depends on real Redis
// expiry. Returns whether it held.
bool Eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds bound = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return condition();
}

bool IsClaimed(const absl::StatusOr<ClaimResult>& r) {
  return r.ok() && r->state == State::kClaimed;
}

class RedisStoreTest : public ::testing::Test {
 protected:
  RedisStoreOptions Options() const {
    RedisStoreOptions options;
    options.redis.host = "127.0.0.1";
    options.redis.port = redis_.port();
    return options;
  }

  RedisServer redis_;
  SystemRandom random_;
};

TEST_F(RedisStoreTest, NewKeyIsClaimedWithRandomToken) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> first = ClaimNow(store, "k1", "fp");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->state, State::kClaimed);
  EXPECT_EQ(first->token.size(), 32u);
  EXPECT_EQ(first->token.find_first_not_of("0123456789abcdef"), std::string::npos) << first->token;

  absl::StatusOr<ClaimResult> other = ClaimNow(store, "k2", "fp");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->state, State::kClaimed);
  EXPECT_NE(other->token, first->token);
}

// Gateway::Stop() ends the worker before the guard its callbacks reach goes away.
TEST_F(RedisStoreTest, AfterShutdownCallsFailAtOnce) {
  RedisIdempotencyStore store(Options(), random_);
  ASSERT_TRUE(ClaimNow(store, "before", "fp").ok());
  store.Shutdown();
  absl::StatusOr<ClaimResult> after = ClaimNow(store, "after", "fp");
  EXPECT_TRUE(absl::IsUnavailable(after.status())) << after.status();
  store.Shutdown();  // Again, and the destructor after it, are harmless.
}

TEST_F(RedisStoreTest, ClaimTokensComeFromTheInjectedRandom) {
  FakeRandom fixed;
  RedisIdempotencyStore store(Options(), fixed);
  absl::StatusOr<ClaimResult> first = ClaimNow(store, "k1", "fp");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->token, FakeRandom::NthHexId(1));
  absl::StatusOr<ClaimResult> second = ClaimNow(store, "k2", "fp");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->token, FakeRandom::NthHexId(2));
  EXPECT_EQ(fixed.hex_id_calls(), 2);
}

TEST_F(RedisStoreTest, SecondClaimWhileInFlightIsInFlight) {
  RedisIdempotencyStore store(Options(), random_);
  ASSERT_TRUE(IsClaimed(ClaimNow(store, "k", "fp")));
  absl::StatusOr<ClaimResult> second = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->state, State::kInFlight);
  EXPECT_TRUE(second->token.empty());
}

TEST_F(RedisStoreTest, CompletedKeyReplaysOutcome) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> claim = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(claim));
  // Outcomes are opaque bytes (an encoded proto, say): NULs and non-UTF-8 must survive.
  const std::string outcome("ok\0\xff{\"sid\":\"SB1\"}", 17);
  ASSERT_TRUE(CompleteNow(store, "k", claim->token, outcome).ok());

  absl::StatusOr<ClaimResult> replay = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->state, State::kDone);
  EXPECT_EQ(replay->outcome, outcome);
}

TEST_F(RedisStoreTest, DifferentFingerprintConflictsInFlightAndDone) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> claim = ClaimNow(store, "k", "fp-a");
  ASSERT_TRUE(IsClaimed(claim));
  absl::StatusOr<ClaimResult> in_flight = ClaimNow(store, "k", "fp-b");
  ASSERT_TRUE(in_flight.ok()) << in_flight.status();
  EXPECT_EQ(in_flight->state, State::kConflict);

  ASSERT_TRUE(CompleteNow(store, "k", claim->token, "outcome").ok());
  absl::StatusOr<ClaimResult> done = ClaimNow(store, "k", "fp-b");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, State::kConflict);
  EXPECT_TRUE(done->outcome.empty());
}

TEST_F(RedisStoreTest, ReleasedKeyCanBeClaimedAgain) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> first = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(first));
  ASSERT_TRUE(ReleaseNow(store, "k", first->token).ok());
  // Releasing again (a retried Release) is harmless.
  EXPECT_TRUE(ReleaseNow(store, "k", first->token).ok());

  absl::StatusOr<ClaimResult> second = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(second)) << second.status();
  EXPECT_NE(second->token, first->token);
}

TEST_F(RedisStoreTest, ReleaseWithWrongTokenKeepsClaim) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> claim = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(claim));
  EXPECT_TRUE(ReleaseNow(store, "k", "not-the-token").ok());
  absl::StatusOr<ClaimResult> again = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state, State::kInFlight);
}

TEST_F(RedisStoreTest, ReleaseAfterCompleteKeepsOutcome) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> claim = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(claim));
  ASSERT_TRUE(CompleteNow(store, "k", claim->token, "outcome").ok());
  EXPECT_TRUE(ReleaseNow(store, "k", claim->token).ok());
  absl::StatusOr<ClaimResult> replay = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->state, State::kDone);
  EXPECT_EQ(replay->outcome, "outcome");
}

TEST_F(RedisStoreTest, CompleteWithWrongTokenFailsAndChangesNothing) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> claim = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(claim));

  const absl::Status wrong = CompleteNow(store, "k", "0123456789abcdef0123456789abcdef", "bad");
  EXPECT_EQ(wrong.code(), absl::StatusCode::kFailedPrecondition) << wrong;
  EXPECT_TRUE(absl::StrContains(wrong.message(), "claim lost")) << wrong;
  absl::StatusOr<ClaimResult> still = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->state, State::kInFlight);

  // The rightful owner is unaffected.
  ASSERT_TRUE(CompleteNow(store, "k", claim->token, "good").ok());
  absl::StatusOr<ClaimResult> replay = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->state, State::kDone);
  EXPECT_EQ(replay->outcome, "good");
}

TEST_F(RedisStoreTest, CompleteOfUnknownKeyFails) {
  RedisIdempotencyStore store(Options(), random_);
  EXPECT_EQ(CompleteNow(store, "never-claimed", "token", "x").code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<ClaimResult> claim = ClaimNow(store, "never-claimed", "fp");
  EXPECT_TRUE(IsClaimed(claim)) << claim.status();
}

TEST_F(RedisStoreTest, ExpiredLeaseIsTakenOverByTheNextCallerWithTheFirstClaimsAge) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> crashed = ClaimNow(store, "k", "fp", absl::Milliseconds(200));
  ASSERT_TRUE(IsClaimed(crashed));
  EXPECT_FALSE(crashed->taken_over_age.has_value());

  absl::StatusOr<ClaimResult> successor;
  ASSERT_TRUE(Eventually([&] {
    successor = ClaimNow(store, "k", "fp");
    EXPECT_TRUE(successor.ok()) << successor.status();
    return IsClaimed(successor);
  })) << "the 200 ms lease never expired";
  // The record outlived the lease: the successor learns the first owner may have sent.
  ASSERT_TRUE(successor->taken_over_age.has_value());
  EXPECT_GE(*successor->taken_over_age, absl::Milliseconds(200));
  EXPECT_LT(*successor->taken_over_age, absl::Seconds(10));
  // Another fingerprint still conflicts with the taken-over record.
  absl::StatusOr<ClaimResult> other = ClaimNow(store, "k", "other-fp");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->state, ClaimResult::State::kConflict);

  // The first owner comes back too late: it must not overwrite its successor's record.
  EXPECT_EQ(CompleteNow(store, "k", crashed->token, "stale").code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(CompleteNow(store, "k", successor->token, "fresh").ok());
  absl::StatusOr<ClaimResult> replay = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->outcome, "fresh");
}

TEST_F(RedisStoreTest, RenewKeepsTheClaimAndAZeroLeaseHandsItOver) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> owner = ClaimNow(store, "k", "fp", absl::Milliseconds(300));
  ASSERT_TRUE(IsClaimed(owner));
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ASSERT_TRUE(RenewNow(store, "k", owner->token, absl::Milliseconds(300)).ok());
  }
  absl::StatusOr<ClaimResult> other = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->state, ClaimResult::State::kInFlight);  // 600 ms on, renewed: still held.

  ASSERT_TRUE(RenewNow(store, "k", owner->token, absl::ZeroDuration()).ok());
  absl::StatusOr<ClaimResult> next = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(next));
  ASSERT_TRUE(next->taken_over_age.has_value());
  EXPECT_GE(*next->taken_over_age, absl::Milliseconds(600));
  EXPECT_EQ(RenewNow(store, "k", owner->token, absl::Seconds(1)).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(RedisStoreTest, RecordOfAnOwnerThatDiedLastsForTheRetention) {
  RedisIdempotencyStore store(Options(), random_);
  ASSERT_TRUE(IsClaimed(ClaimNow(store, "k", "fp", absl::Milliseconds(50), absl::Seconds(1))));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Lease over, record kept: another request under the key still conflicts.
  absl::StatusOr<ClaimResult> other = ClaimNow(store, "k", "other-fp");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->state, ClaimResult::State::kConflict);
  EXPECT_TRUE(Eventually([&] { return IsClaimed(ClaimNow(store, "k", "other-fp")); }))
      << "the 1 s retention never expired";
}

TEST_F(RedisStoreTest, OutcomeIsForgottenAfterRetention) {
  RedisIdempotencyStore store(Options(), random_);
  absl::StatusOr<ClaimResult> claim = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(claim));
  ASSERT_TRUE(CompleteNow(store, "k", claim->token, "outcome", absl::Milliseconds(200)).ok());

  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<ClaimResult> r = ClaimNow(store, "k", "other-fp");
    EXPECT_TRUE(r.ok()) << r.status();
    // Until then the key is still taken (conflict); afterwards it is free for any request.
    return IsClaimed(r);
  })) << "the 200 ms retention never expired";
}

// Calls queued together go to Redis in one pipeline; each still gets its own answer.
TEST_F(RedisStoreTest, ManyCallsQueuedTogetherAreEachAnsweredRight) {
  RedisIdempotencyStore store(Options(), random_);
  constexpr int kCalls = 600;
  std::vector<std::future<absl::StatusOr<ClaimResult>>> claims;
  for (int i = 0; i < kCalls; ++i) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<ClaimResult>>>();
    claims.push_back(promise->get_future());
    // Every key twice in a row: the second claim must see the first.
    store.Claim("batch-" + std::to_string(i / 2), "fp", absl::Seconds(30), absl::Hours(1),
                [promise](absl::StatusOr<ClaimResult> r) { promise->set_value(std::move(r)); });
  }
  std::vector<std::future<absl::Status>> completes;
  std::map<std::string, std::string> tokens;
  int claimed = 0;
  int in_flight = 0;
  for (int i = 0; i < kCalls; ++i) {
    absl::StatusOr<ClaimResult> r = Await(std::move(claims[i]), "Claim");
    ASSERT_TRUE(r.ok()) << r.status();
    const std::string key = "batch-" + std::to_string(i / 2);
    if (r->state == ClaimResult::State::kClaimed) {
      ++claimed;
      tokens[key] = r->token;
    } else {
      EXPECT_EQ(r->state, ClaimResult::State::kInFlight) << key;
      ++in_flight;
    }
  }
  EXPECT_EQ(claimed, kCalls / 2);  // One winner per key.
  EXPECT_EQ(in_flight, kCalls / 2);
  EXPECT_EQ(tokens.size(), static_cast<size_t>(kCalls / 2));
  for (const auto& [key, token] : tokens) {
    auto promise = std::make_shared<std::promise<absl::Status>>();
    completes.push_back(promise->get_future());
    store.Complete(key, token, "outcome-of-" + key, absl::Hours(1),
                   [promise](absl::Status st) { promise->set_value(std::move(st)); });
  }
  for (auto& f : completes) EXPECT_TRUE(Await(std::move(f), "Complete").ok());
  for (const auto& [key, token] : tokens) {
    absl::StatusOr<ClaimResult> replay = ClaimNow(store, key, "fp");
    ASSERT_TRUE(replay.ok()) << replay.status();
    EXPECT_EQ(replay->outcome, "outcome-of-" + key);
  }
}

// Redis forgot its scripts (a restart with a kept data set, or SCRIPT FLUSH): calls go on.
TEST_F(RedisStoreTest, FlushedScriptsAreLoadedAgain) {
  RedisIdempotencyStore store(Options(), random_);
  ASSERT_TRUE(IsClaimed(ClaimNow(store, "before-flush", "fp")));
  const CommandResult flushed =
      RunCommand({"/usr/bin/redis-cli", "-p", std::to_string(redis_.port()), "SCRIPT", "FLUSH"});
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
  EXPECT_TRUE(IsClaimed(ClaimNow(store, "after-flush", "fp")));
  EXPECT_TRUE(IsClaimed(ClaimNow(store, "after-flush-2", "fp")));
}

// A pipelined batch whose calls all meet NOSCRIPT: each call must still get its own reply. (A
// call sent again by its source in the middle of reading the batch's replies took the next
// call's reply, and left its own for the next batch.)
TEST_F(RedisStoreTest, FlushedScriptsInTheMiddleOfABatchKeepEveryReplyWithItsCall) {
  RedisIdempotencyStore store(Options(), random_);
  constexpr int kKeys = 40;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "flushed-" + std::to_string(i);
    absl::StatusOr<ClaimResult> claim = ClaimNow(store, key, "fp");
    ASSERT_TRUE(IsClaimed(claim));
    ASSERT_TRUE(CompleteNow(store, key, claim->token, "outcome-of-" + key).ok());
  }
  const CommandResult flushed =
      RunCommand({"/usr/bin/redis-cli", "-p", std::to_string(redis_.port()), "SCRIPT", "FLUSH"});
  ASSERT_EQ(flushed.exit_code, 0) << flushed.err;
  // Submitted back to back, so the worker's first batch after the flush holds several calls.
  std::vector<std::future<absl::StatusOr<ClaimResult>>> replays;
  for (int i = 0; i < kKeys; ++i) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<ClaimResult>>>();
    replays.push_back(promise->get_future());
    store.Claim("flushed-" + std::to_string(i), "fp", absl::Seconds(30), absl::Hours(24),
                [promise](absl::StatusOr<ClaimResult> r) { promise->set_value(std::move(r)); });
  }
  for (int i = 0; i < kKeys; ++i) {
    absl::StatusOr<ClaimResult> replay = Await(std::move(replays[i]), "Claim");
    ASSERT_TRUE(replay.ok()) << replay.status();
    EXPECT_EQ(replay->state, ClaimResult::State::kDone) << i;
    EXPECT_EQ(replay->outcome, "outcome-of-flushed-" + std::to_string(i));
  }
}

TEST_F(RedisStoreTest, KeyPrefixSeparatesDeployments) {
  RedisStoreOptions a = Options();
  a.key_prefix = "deployment-a:";
  RedisStoreOptions b = Options();
  b.key_prefix = "deployment-b:";
  RedisIdempotencyStore store_a(std::move(a), random_);
  RedisIdempotencyStore store_b(std::move(b), random_);
  EXPECT_TRUE(IsClaimed(ClaimNow(store_a, "k", "fp")));
  EXPECT_TRUE(IsClaimed(ClaimNow(store_b, "k", "fp")));
}

TEST_F(RedisStoreTest, ConcurrentClaimsFromTwoReplicasHaveOneWinner) {
  // Two stores are two connections, as two gateway replicas would have.
  RedisIdempotencyStore replica_a(Options(), random_);
  RedisIdempotencyStore replica_b(Options(), random_);
  constexpr int kClaimsPerThread = 200;

  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  int claimed = 0;
  int in_flight = 0;
  std::vector<std::string> errors;
  auto record = [&](absl::StatusOr<ClaimResult> r) {
    std::lock_guard<std::mutex> lock(mu);
    if (!r.ok()) {
      errors.push_back(r.status().ToString());
    } else if (r->state == State::kClaimed) {
      ++claimed;
    } else if (r->state == State::kInFlight) {
      ++in_flight;
    } else {
      errors.emplace_back("unexpected state");
    }
    ++finished;
    cv.notify_all();
  };
  auto hammer = [&](RedisIdempotencyStore& store) {
    for (int i = 0; i < kClaimsPerThread; ++i) {
      store.Claim("contended", "fp", absl::Seconds(30), absl::Hours(1), record);
    }
  };
  std::thread a([&] { hammer(replica_a); });
  std::thread b([&] { hammer(replica_b); });
  a.join();
  b.join();

  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(
      cv.wait_for(lock, std::chrono::seconds(30), [&] { return finished == 2 * kClaimsPerThread; }))
      << finished << " callbacks";
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(claimed, 1);
  EXPECT_EQ(in_flight, 2 * kClaimsPerThread - 1);
}

TEST_F(RedisStoreTest, FailsClosedWhileRedisIsDownAndRecoversWhenItReturns) {
  RedisIdempotencyStore store(Options(), random_);
  ASSERT_TRUE(IsClaimed(ClaimNow(store, "before", "fp")));

  redis_.Kill();
  const std::string where =
      "idempotency store (redis at 127.0.0.1:" + std::to_string(redis_.port()) + ") unavailable: ";
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<ClaimResult> r = ClaimNow(store, "during", "fp");
    ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    EXPECT_TRUE(absl::StartsWith(r.status().message(), where)) << r.status();
  }
  EXPECT_EQ(CompleteNow(store, "before", "token", "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReleaseNow(store, "before", "token").code(), absl::StatusCode::kUnavailable);

  // Same port, same store object: it reconnects (and reloads its scripts) by itself.
  redis_.Start();
  absl::StatusOr<ClaimResult> after;
  EXPECT_TRUE(Eventually([&] {
    after = ClaimNow(store, "after", "fp");
    return after.ok();
  })) << after.status();
  EXPECT_TRUE(IsClaimed(after));
  ASSERT_TRUE(CompleteNow(store, "after", after->token, "outcome").ok());
}

// Redis dies with a whole pipelined batch unanswered: every call of it fails UNAVAILABLE. (The
// calls after the first unanswered one got INTERNAL "Status accessed after move".)
TEST_F(RedisStoreTest, RedisKilledUnderABatchFailsEveryCallUnavailable) {
  RedisStoreOptions options = Options();
  options.redis.command_timeout = absl::Seconds(5);
  RedisIdempotencyStore store(std::move(options), random_);
  ASSERT_TRUE(IsClaimed(ClaimNow(store, "before", "fp")));
  redis_.Pause();
  std::vector<std::future<absl::StatusOr<ClaimResult>>> results;
  for (int i = 0; i < 20; ++i) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<ClaimResult>>>();
    results.push_back(promise->get_future());
    store.Claim("k" + std::to_string(i), "fp", absl::Seconds(30), absl::Hours(1),
                [promise](absl::StatusOr<ClaimResult> r) { promise->set_value(std::move(r)); });
  }
  absl::SleepFor(absl::Milliseconds(200));  // The worker sends the batch and waits.
  redis_.Kill();
  for (auto& f : results) {
    absl::StatusOr<ClaimResult> r = Await(std::move(f), "Claim");
    EXPECT_TRUE(r.ok() || absl::IsUnavailable(r.status())) << r.status();
  }
}

TEST_F(RedisStoreTest, UnresponsiveRedisTimesOutAndRecovers) {
  RedisStoreOptions options = Options();
  options.redis.command_timeout = absl::Milliseconds(300);
  RedisIdempotencyStore store(std::move(options), random_);
  ASSERT_TRUE(IsClaimed(ClaimNow(store, "before", "fp")));

  redis_.Pause();
  absl::StatusOr<ClaimResult> r = ClaimNow(store, "during", "fp");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "no reply within 300ms")) << r.status();

  redis_.Resume();
  EXPECT_TRUE(Eventually([&] { return IsClaimed(ClaimNow(store, "after", "fp")); }));
}

TEST_F(RedisStoreTest, UnreachableRedisFailsWithUnavailable) {
  RedisStoreOptions options = Options();
  options.redis.port = FreeLoopbackPort();  // Nothing listens there.
  RedisIdempotencyStore store(std::move(options), random_);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<ClaimResult> r = ClaimNow(store, "k", "fp");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  }
}

TEST_F(RedisStoreTest, FullQueueRefusesAtOnce) {
  RedisStoreOptions options = Options();
  options.redis.max_pending = 1;
  options.redis.command_timeout = absl::Seconds(1);
  RedisIdempotencyStore store(std::move(options), random_);
  // The worker blocks on the first call; at most one more fits in the queue.
  redis_.Pause();
  std::vector<std::future<absl::StatusOr<ClaimResult>>> results;
  for (int i = 0; i < 3; ++i) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<ClaimResult>>>();
    results.push_back(promise->get_future());
    store.Claim("k", "fp", absl::Seconds(30), absl::Hours(1),
                [promise](absl::StatusOr<ClaimResult> r) { promise->set_value(std::move(r)); });
  }
  int refused = 0;
  for (auto& f : results) {
    absl::StatusOr<ClaimResult> r = Await(std::move(f), "Claim");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    if (absl::StrContains(r.status().message(), "too many pending calls")) {
      ++refused;
    }
  }
  EXPECT_GE(refused, 1);
  redis_.Resume();
}

TEST_F(RedisStoreTest, DestructionFailsQueuedCalls) {
  std::vector<std::future<absl::StatusOr<ClaimResult>>> results;
  {
    RedisStoreOptions options = Options();
    options.redis.command_timeout = absl::Seconds(1);
    RedisIdempotencyStore store(std::move(options), random_);
    redis_.Pause();
    for (int i = 0; i < 5; ++i) {
      auto promise = std::make_shared<std::promise<absl::StatusOr<ClaimResult>>>();
      results.push_back(promise->get_future());
      store.Claim("k", "fp", absl::Seconds(30), absl::Hours(1),
                  [promise](absl::StatusOr<ClaimResult> r) { promise->set_value(std::move(r)); });
      // The worker pipelines everything queued when it wakes: let it take the first call alone
      // (and block on the paused Redis), so the other four are still queued at destruction.
      if (i == 0) absl::SleepFor(absl::Milliseconds(300));
    }
  }
  int shutting_down = 0;
  for (auto& f : results) {
    // Every callback has run by the time the destructor returned.
    ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    absl::StatusOr<ClaimResult> r = f.get();
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    if (absl::StrContains(r.status().message(), "shutting down")) {
      ++shutting_down;
    }
  }
  EXPECT_GE(shutting_down, 4);
  redis_.Resume();
}

class RedisPasswordTest : public ::testing::Test {
 protected:
  RedisStoreOptions Options(std::optional<std::string> password) const {
    RedisStoreOptions options;
    options.redis.host = "127.0.0.1";
    options.redis.port = redis_.port();
    options.redis.password = std::move(password);
    return options;
  }

  static constexpr char kPassword[] = "correct-horse-battery-staple";
  static constexpr char kWrongPassword[] = "wrong-horse-battery-staple";
  RedisServer redis_{{"--requirepass", kPassword}};
  SystemRandom random_;
};

TEST_F(RedisPasswordTest, RightPasswordWorks) {
  RedisIdempotencyStore store(Options(kPassword), random_);
  absl::StatusOr<ClaimResult> claim = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(claim)) << claim.status();
  EXPECT_TRUE(CompleteNow(store, "k", claim->token, "outcome").ok());
}

TEST_F(RedisPasswordTest, WrongPasswordIsUnavailableWithoutLeakingIt) {
  RedisIdempotencyStore store(Options(kWrongPassword), random_);
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<ClaimResult> r = ClaimNow(store, "k", "fp");
    ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), "AUTH failed")) << r.status();
    EXPECT_FALSE(absl::StrContains(r.status().message(), kWrongPassword)) << r.status();
    EXPECT_FALSE(absl::StrContains(r.status().message(), kPassword)) << r.status();
  }
}

TEST_F(RedisPasswordTest, MissingPasswordIsUnavailable) {
  RedisIdempotencyStore store(Options(std::nullopt), random_);
  absl::StatusOr<ClaimResult> r = ClaimNow(store, "k", "fp");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "NOAUTH")) << r.status();
}

// Everything the process writes to stderr (the JSON log) while it lives, for checking that a
// secret never reaches the log.
class StderrCapture {
 public:
  StderrCapture() : path_(LogDir() + "/stderr-capture-" + std::to_string(getpid()) + ".log") {
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    const int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  ~StderrCapture() { Restore(); }

  // Stops capturing and returns what was written.
  std::string Text() {
    FlushLogs(absl::Seconds(2));
    Restore();
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

 private:
  void Restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    saved_ = -1;
  }

  std::string path_;
  int saved_ = -1;
};

// An ACL user (the managed-Redis way), with the default user switched off.
class RedisAclTest : public ::testing::Test {
 protected:
  RedisStoreOptions Options(std::string password) const {
    RedisStoreOptions options;
    options.redis.port = redis_.port();
    options.redis.username = kUser;
    options.redis.password = std::move(password);
    return options;
  }

  static void WriteFile(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::trunc) << text;
  }

  // Drops every client connection, as a Redis restart or a network blip would.
  void KillClients() const {
    const CommandResult killed = RunCommand(
        {"/usr/bin/redis-cli", "-p", std::to_string(redis_.port()), "--user", "admin", "--pass",
         kAdminPassword, "--no-auth-warning", "CLIENT", "KILL", "USER", kUser});
    ASSERT_EQ(killed.exit_code, 0) << killed.err;
  }

  static constexpr char kUser[] = "gateway";
  static constexpr char kPassword[] = "acl-user-password-3e9b1c";
  static constexpr char kWrongPassword[] = "acl-wrong-password-a47d20";
  static constexpr char kAdminPassword[] = "acl-admin-password-5c0e8f";
  RedisServer redis_{{"--user", "default", "off", "--user", kUser, "on",
                      std::string(">") + kPassword, "~twgw:*", "+@all", "--user", "admin", "on",
                      std::string(">") + kAdminPassword, "~*", "+@all"}};
  SystemRandom random_;
};

TEST_F(RedisAclTest, RightUserAndPasswordWork) {
  RedisIdempotencyStore store(Options(kPassword), random_);
  absl::StatusOr<ClaimResult> claim = ClaimNow(store, "k", "fp");
  ASSERT_TRUE(IsClaimed(claim)) << claim.status();
  EXPECT_TRUE(CompleteNow(store, "k", claim->token, "outcome").ok());
}

TEST_F(RedisAclTest, WrongPasswordIsUnavailableAndNeverInAStatusOrTheLog) {
  StderrCapture log;
  {
    RedisIdempotencyStore store(Options(kWrongPassword), random_);
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<ClaimResult> r = ClaimNow(store, "k", "fp");
      ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
      EXPECT_TRUE(absl::StrContains(r.status().message(), "AUTH failed: WRONGPASS")) << r.status();
      EXPECT_FALSE(absl::StrContains(r.status().message(), kWrongPassword)) << r.status();
      EXPECT_FALSE(absl::StrContains(r.status().message(), kPassword)) << r.status();
    }
  }
  const std::string text = log.Text();
  EXPECT_TRUE(absl::StrContains(text, "idempotency store unavailable")) << text;
  EXPECT_FALSE(absl::StrContains(text, kWrongPassword)) << text;
  EXPECT_FALSE(absl::StrContains(text, kPassword)) << text;
}

// The user's password comes from a mounted Secret: read at each connect, so a rotation is
// picked up at the next reconnect without a restart.
TEST_F(RedisAclTest, PasswordFileIsReadAgainAtEachReconnect) {
  const std::string file = LogDir() + "/redis-acl-password-" + std::to_string(getpid());
  WriteFile(file, std::string(kPassword) + "\n");  // As `kubectl create secret` files often are.
  RedisStoreOptions options = Options("");
  options.redis.password.reset();
  options.redis.password_file = file;
  options.redis.reconnect_interval = absl::Milliseconds(10);
  RedisIdempotencyStore store(std::move(options), random_);
  ASSERT_TRUE(IsClaimed(ClaimNow(store, "first", "fp")));

  WriteFile(file, kWrongPassword);
  KillClients();
  absl::StatusOr<ClaimResult> refused;
  EXPECT_TRUE(Eventually([&] {
    refused = ClaimNow(store, "second", "fp");
    return absl::StrContains(refused.status().message(), "WRONGPASS");
  })) << refused.status();
  EXPECT_TRUE(absl::IsUnavailable(refused.status()));

  WriteFile(file, kPassword);
  EXPECT_TRUE(Eventually([&] { return IsClaimed(ClaimNow(store, "third", "fp")); }));

  std::remove(file.c_str());
  KillClients();
  absl::StatusOr<ClaimResult> unreadable;
  EXPECT_TRUE(Eventually([&] {
    unreadable = ClaimNow(store, "fourth", "fp");
    return absl::StrContains(unreadable.status().message(), "cannot read the password file");
  })) << unreadable.status();
}

// Redis 7 delays a replica's first sync 5 s by default; these tests cannot wait that long.
const std::vector<std::string> kQuickSync = {"--repl-diskless-sync-delay", "0"};

std::vector<std::string> ReplicaOf(const RedisNode& master) {
  std::vector<std::string> args = {"--replicaof", "127.0.0.1", std::to_string(master.port())};
  args.insert(args.end(), kQuickSync.begin(), kQuickSync.end());
  return args;
}

// A claim on a fresh key (`prefix`0, `prefix`1, ...) that a replica acknowledged. Right after a
// replica comes online its first acknowledgements can miss WAIT's 100 ms on a loaded machine;
// such a claim fails UNAVAILABLE (as it must) and a fresh key is tried.
std::pair<std::string, std::string> AcknowledgedClaim(IdempotencyStore& store,
                                                      const std::string& prefix) {
  for (int i = 0; i < 50; ++i) {
    const std::string key = prefix + std::to_string(i);
    absl::StatusOr<ClaimResult> claim = ClaimNow(store, key, "fp");
    if (IsClaimed(claim)) return {key, claim->token};
    EXPECT_TRUE(absl::IsUnavailable(claim.status())) << claim.status();
    absl::SleepFor(absl::Milliseconds(100));
  }
  ADD_FAILURE() << "no claim was acknowledged";
  return {};
}

// WAIT: a batch's writes count once a replica has them.
class RedisWaitTest : public ::testing::Test {
 protected:
  RedisStoreOptions Options(int replica_acks) const {
    RedisStoreOptions options;
    options.redis.port = master_.port();
    options.redis.replica_acks = replica_acks;
    options.redis.replica_ack_timeout = absl::Milliseconds(100);
    return options;
  }

  bool ReplicaInSync() const {
    return absl::StrContains(master_.Cli({"INFO", "replication"}), "state=online");
  }

  RedisNode master_{"wait-master", kQuickSync};
  RedisNode replica_{"wait-replica", ReplicaOf(master_)};
  SystemRandom random_;
};

TEST_F(RedisWaitTest, WritesAcknowledgedByAReplicaSucceed) {
  ASSERT_TRUE(Eventually([&] { return ReplicaInSync(); }));
  RedisIdempotencyStore store(Options(1), random_);
  const auto [key, token] = AcknowledgedClaim(store, "k");
  ASSERT_FALSE(key.empty());
  ASSERT_TRUE(CompleteNow(store, key, token, "outcome").ok());
  // The replica has the record the store acknowledged.
  EXPECT_EQ(replica_.Cli({"HGET", "twgw:idem:" + key, "outcome"}), "outcome");
}

// Without the replica a claim is not durable: UNAVAILABLE, and the caller retries later.
TEST_F(RedisWaitTest, WithoutTheReplicaWritesFailUnavailableAndRecover) {
  ASSERT_TRUE(Eventually([&] { return ReplicaInSync(); }));
  RedisIdempotencyStore store(Options(1), random_);
  ASSERT_FALSE(AcknowledgedClaim(store, "before").first.empty());

  replica_.Kill();
  absl::StatusOr<ClaimResult> alone = ClaimNow(store, "alone", "fp");
  EXPECT_TRUE(absl::IsUnavailable(alone.status())) << alone.status();
  EXPECT_TRUE(absl::StrContains(alone.status().message(),
                                "acknowledged by 0 of the 1 replicas required within 100ms"))
      << alone.status();

  replica_.Start();
  absl::StatusOr<ClaimResult> after;
  EXPECT_TRUE(Eventually([&] {
    after = ClaimNow(store, "after", "fp");
    return after.ok();
  })) << after.status();
  EXPECT_TRUE(IsClaimed(after));
  // The refused claim did happen on the master: a retry finds it in flight (then, after its
  // lease, takes it over), never a second fresh claim.
  absl::StatusOr<ClaimResult> retry = ClaimNow(store, "alone", "fp");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->state, State::kInFlight);
}

TEST_F(RedisWaitTest, NoReplicaAtAllFailsClosed) {
  RedisNode alone("wait-alone", {});
  RedisStoreOptions options = Options(1);
  options.redis.port = alone.port();
  RedisIdempotencyStore store(std::move(options), random_);
  absl::StatusOr<ClaimResult> r = ClaimNow(store, "k", "fp");
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
}

// Sentinel: the store asks the sentinels for the master and follows a failover.
class RedisSentinelTest : public ::testing::Test {
 protected:
  static std::string SentinelConfig(const RedisNode& master) {
    return "sentinel monitor gw 127.0.0.1 " + std::to_string(master.port()) +
           " 1\n"
           "sentinel down-after-milliseconds gw 1000\n"
           "sentinel failover-timeout gw 5000\n";
  }

  RedisStoreOptions Options() const {
    RedisStoreOptions options;
    options.redis.sentinels = {HostPort{"127.0.0.1", FreeLoopbackPort()},  // A dead sentinel first.
                               HostPort{"127.0.0.1", sentinel_.port()}};
    options.redis.master_name = "gw";
    options.redis.replica_acks = 1;
    options.redis.reconnect_interval = absl::Milliseconds(50);
    return options;
  }

  bool ReplicasInSync() const {
    const std::string info = master_.Cli({"INFO", "replication"});
    return absl::StrContains(info, "slave0:") && absl::StrContains(info, "slave1:") &&
           !absl::StrContains(info, "state=wait_bgsave") &&
           !absl::StrContains(info, "state=send_bulk");
  }

  // Two replicas: the failover itself makes the other one replicate from the new master, so WAIT
  // 1 is met at once (with one, only once the sentinel has converted the old master, up to 10 s).
  RedisNode master_{"sentinel-master", kQuickSync};
  RedisNode replica_{"sentinel-replica", ReplicaOf(master_)};
  RedisNode replica2_{"sentinel-replica-2", ReplicaOf(master_)};
  RedisNode sentinel_{"sentinel", {}, SentinelConfig(master_)};
  SystemRandom random_;
};

TEST_F(RedisSentinelTest, FollowsAFailoverAndKeepsAcknowledgedRecords) {
  ASSERT_TRUE(Eventually([&] { return ReplicasInSync(); }));
  RedisIdempotencyStore store(Options(), random_);
  const std::pair<std::string, std::string> claim = AcknowledgedClaim(store, "k");
  const std::string& key = claim.first;
  const std::string& token = claim.second;
  ASSERT_FALSE(key.empty());

  // Sentinel's replica list fills in a moment after it starts (from the master's INFO).
  ASSERT_TRUE(Eventually(
      [&] {
        const std::string known = sentinel_.Cli({"SENTINEL", "REPLICAS", "gw"});
        return absl::StrContains(known, std::to_string(replica_.port())) &&
               absl::StrContains(known, std::to_string(replica2_.port()));
      },
      std::chrono::seconds(20)));
  // A crash, not SENTINEL FAILOVER: a master that lives on accepts writes (and a replica still
  // following it acknowledges them) until the sentinels reconfigure it, and those are lost. See
  // "Limits" in redis_client.h.
  master_.Kill();
  const RedisNode* promoted = nullptr;
  ASSERT_TRUE(Eventually(
      [&] {
        const std::string master = sentinel_.Cli({"SENTINEL", "get-master-addr-by-name", "gw"});
        for (const RedisNode* node : {&replica_, &replica2_}) {
          if (absl::StrContains(master, std::to_string(node->port()))) promoted = node;
        }
        return promoted != nullptr;
      },
      std::chrono::seconds(20)));

  // The claim made before the failover is on the new master; the owner completes it there.
  absl::Status completed;
  EXPECT_TRUE(Eventually(
      [&] {
        completed = CompleteNow(store, key, token, "outcome");
        return completed.ok();
      },
      std::chrono::seconds(30)))
      << completed;
  EXPECT_EQ(promoted->Cli({"HGET", "twgw:idem:" + key, "outcome"}), "outcome");
}

TEST_F(RedisSentinelTest, NoSentinelReachableFailsClosed) {
  RedisStoreOptions options = Options();
  options.redis.sentinels = {HostPort{"127.0.0.1", FreeLoopbackPort()}};
  RedisIdempotencyStore store(std::move(options), random_);
  absl::StatusOr<ClaimResult> r = ClaimNow(store, "k", "fp");
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "no sentinel named the master of gw"))
      << r.status();
}

}  // namespace
}  // namespace gateway::testing
