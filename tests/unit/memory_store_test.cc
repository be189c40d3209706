#include "idempotency/memory_store.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_random.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::gateway::testing::FakeClock;
using ::gateway::testing::FakeRandom;
using State = ClaimResult::State;

constexpr char kFingerprint[] = "fp-a";
constexpr char kOtherFingerprint[] = "fp-b";
constexpr absl::Duration kLease = absl::Seconds(10);
constexpr absl::Duration kRetention = absl::Hours(1);

class MemoryIdempotencyStoreTest : public ::testing::Test {
 protected:
  // Builds the store from options_ (call after adjusting them).
  MemoryIdempotencyStore& Store() {
    if (store_ == nullptr) {
      store_ = std::make_unique<MemoryIdempotencyStore>(options_, clock_, random_);
    }
    return *store_;
  }

  // The memory store answers inline; these return what the callback received.
  absl::StatusOr<ClaimResult> Claim(const std::string& key,
                                    const std::string& fingerprint = kFingerprint,
                                    absl::Duration lease = kLease,
                                    absl::Duration retention = kRetention) {
    std::optional<absl::StatusOr<ClaimResult>> out;
    Store().Claim(key, fingerprint, lease, retention,
                  [&out](absl::StatusOr<ClaimResult> result) { out = std::move(result); });
    EXPECT_TRUE(out.has_value()) << "Claim() did not answer inline";
    return out.value_or(absl::UnknownError("no answer"));
  }

  absl::Status Complete(const std::string& key, const std::string& token,
                        const std::string& outcome, absl::Duration retention = kRetention) {
    std::optional<absl::Status> out;
    Store().Complete(key, token, outcome, retention,
                     [&out](absl::Status status) { out = std::move(status); });
    EXPECT_TRUE(out.has_value()) << "Complete() did not answer inline";
    return out.value_or(absl::UnknownError("no answer"));
  }

  absl::Status Release(const std::string& key, const std::string& token) {
    std::optional<absl::Status> out;
    Store().Release(key, token, [&out](absl::Status status) { out = std::move(status); });
    EXPECT_TRUE(out.has_value()) << "Release() did not answer inline";
    return out.value_or(absl::UnknownError("no answer"));
  }

  // Claims `key` and returns the token; fails the test unless the claim was won.
  std::string MustClaim(const std::string& key, absl::Duration lease = kLease,
                        absl::Duration retention = kRetention) {
    absl::StatusOr<ClaimResult> result = Claim(key, kFingerprint, lease, retention);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return "";
    EXPECT_EQ(result->state, State::kClaimed) << key;
    return result->token;
  }

  // The state a Claim() of an existing `key` reports (kClaimed if the key was free).
  State StateOf(const std::string& key) {
    absl::StatusOr<ClaimResult> result = Claim(key);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->state : State::kConflict;
  }

  MemoryStoreOptions options_;
  FakeClock clock_;
  FakeRandom random_;
  std::unique_ptr<MemoryIdempotencyStore> store_;
};

TEST_F(MemoryIdempotencyStoreTest, ClaimOfANewKeyReturnsAFreshToken) {
  absl::StatusOr<ClaimResult> result = Claim("k");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state, State::kClaimed);
  EXPECT_EQ(result->token, FakeRandom::NthUuid(1));
  EXPECT_EQ(result->outcome, "");
  EXPECT_EQ(Store().size(), 1u);
  EXPECT_GT(Store().bytes(), 0u);
}

TEST_F(MemoryIdempotencyStoreTest, SecondClaimWithTheSameFingerprintIsInFlight) {
  MustClaim("k");
  absl::StatusOr<ClaimResult> result = Claim("k");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state, State::kInFlight);
  EXPECT_EQ(result->token, "");  // The holder's token is never handed out.
  EXPECT_EQ(Store().size(), 1u);
}

TEST_F(MemoryIdempotencyStoreTest, DifferentFingerprintConflictsWhileInFlight) {
  MustClaim("k");
  absl::StatusOr<ClaimResult> result = Claim("k", kOtherFingerprint);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state, State::kConflict);
  EXPECT_EQ(StateOf("k"), State::kInFlight);  // The claim itself is untouched.
}

TEST_F(MemoryIdempotencyStoreTest, DifferentFingerprintConflictsWhenDone) {
  const std::string token = MustClaim("k");
  ASSERT_TRUE(Complete("k", token, "outcome").ok());
  absl::StatusOr<ClaimResult> result = Claim("k", kOtherFingerprint);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state, State::kConflict);
  EXPECT_EQ(result->outcome, "");  // Another request never sees this one's outcome.
}

TEST_F(MemoryIdempotencyStoreTest, CompleteStoresTheExactOutcomeForReplay) {
  const std::string outcome("{\"v\":1}\0binary\xff", 15);
  const std::string token = MustClaim("k");
  ASSERT_TRUE(Complete("k", token, outcome).ok());

  absl::StatusOr<ClaimResult> result = Claim("k");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state, State::kDone);
  EXPECT_EQ(result->outcome, outcome);
  EXPECT_EQ(result->token, "");
  EXPECT_EQ(Store().size(), 1u);
}

TEST_F(MemoryIdempotencyStoreTest, CompleteWithAWrongTokenChangesNothing) {
  const std::string token = MustClaim("k");
  const size_t bytes = Store().bytes();
  EXPECT_EQ(Complete("k", "not-the-token", "outcome").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Store().bytes(), bytes);
  EXPECT_EQ(StateOf("k"), State::kInFlight);
  // The rightful holder can still complete.
  EXPECT_TRUE(Complete("k", token, "outcome").ok());
  EXPECT_EQ(StateOf("k"), State::kDone);
}

TEST_F(MemoryIdempotencyStoreTest, CompleteOfAnUnknownKeyFails) {
  EXPECT_EQ(Complete("never-claimed", "token", "outcome").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Store().size(), 0u);
  EXPECT_EQ(Store().bytes(), 0u);
}

TEST_F(MemoryIdempotencyStoreTest, CompleteAfterReleaseFailsAndLeavesNoRecord) {
  const std::string token = MustClaim("k");
  ASSERT_TRUE(Release("k", token).ok());
  EXPECT_EQ(Complete("k", token, "outcome").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Store().size(), 0u);
  EXPECT_EQ(Store().bytes(), 0u);
}

TEST_F(MemoryIdempotencyStoreTest, SecondCompleteFailsAndKeepsTheFirstOutcome) {
  const std::string token = MustClaim("k");
  ASSERT_TRUE(Complete("k", token, "first").ok());
  const size_t bytes = Store().bytes();
  EXPECT_EQ(Complete("k", token, "second, longer").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Store().bytes(), bytes);
  absl::StatusOr<ClaimResult> result = Claim("k");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outcome, "first");
}

TEST_F(MemoryIdempotencyStoreTest, ReleaseFreesTheKeyForANewClaim) {
  const std::string token = MustClaim("k");
  ASSERT_TRUE(Release("k", token).ok());
  EXPECT_EQ(Store().size(), 0u);
  EXPECT_EQ(Store().bytes(), 0u);
  absl::StatusOr<ClaimResult> result = Claim("k");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state, State::kClaimed);
  EXPECT_NE(result->token, token);
}

TEST_F(MemoryIdempotencyStoreTest, ReleaseWithAWrongTokenKeepsTheClaim) {
  const std::string token = MustClaim("k");
  Release("k", "not-the-token").IgnoreError();
  EXPECT_EQ(Store().size(), 1u);
  EXPECT_EQ(StateOf("k"), State::kInFlight);
  EXPECT_TRUE(Complete("k", token, "outcome").ok());
}

TEST_F(MemoryIdempotencyStoreTest, ReleaseNeverDropsADoneRecord) {
  const std::string token = MustClaim("k");
  ASSERT_TRUE(Complete("k", token, "outcome").ok());
  Release("k", token).IgnoreError();
  EXPECT_EQ(StateOf("k"), State::kDone);
}

TEST_F(MemoryIdempotencyStoreTest, ClaimIsInFlightUntilItsLeaseEnds) {
  MustClaim("k", absl::Seconds(10));
  clock_.Advance(absl::Seconds(10) - absl::Nanoseconds(1));
  EXPECT_EQ(StateOf("k"), State::kInFlight);
}

TEST_F(MemoryIdempotencyStoreTest, ExpiredLeaseIsTakenOverWithTheAgeOfTheFirstClaim) {
  const std::string old_token = MustClaim("k", absl::Seconds(10));
  clock_.Advance(absl::Seconds(10));

  absl::StatusOr<ClaimResult> result = Claim("k");
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->state, State::kClaimed);
  // The first owner may have sent: its successor learns when the record began.
  EXPECT_EQ(result->taken_over_age, absl::Seconds(10));
  const std::string new_token = result->token;
  EXPECT_NE(new_token, old_token);
  EXPECT_EQ(Store().size(), 1u);

  // The first holder comes back late: it must not overwrite or drop its successor's claim.
  EXPECT_EQ(Complete("k", old_token, "stale").code(), absl::StatusCode::kFailedPrecondition);
  Release("k", old_token).IgnoreError();
  EXPECT_EQ(StateOf("k"), State::kInFlight);
  EXPECT_TRUE(Complete("k", new_token, "fresh").ok());
  absl::StatusOr<ClaimResult> replay = Claim("k");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->outcome, "fresh");
}

TEST_F(MemoryIdempotencyStoreTest, DoneRecordIsReplayedUntilItsRetentionEnds) {
  const std::string token = MustClaim("k");
  clock_.Advance(absl::Seconds(5));  // Retention counts from Complete(), not from Claim().
  ASSERT_TRUE(Complete("k", token, "outcome", absl::Hours(1)).ok());

  clock_.Advance(absl::Hours(1) - absl::Nanoseconds(1));
  EXPECT_EQ(StateOf("k"), State::kDone);
  clock_.Advance(absl::Nanoseconds(1));
  absl::StatusOr<ClaimResult> result = Claim("k");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state, State::kClaimed);
  EXPECT_EQ(Store().size(), 1u);
}

TEST_F(MemoryIdempotencyStoreTest, MaxEntriesEvictsTheOldestDoneRecord) {
  options_.max_entries = 3;
  const std::string a = MustClaim("a");
  const std::string b = MustClaim("b");
  MustClaim("c");
  ASSERT_TRUE(Complete("a", a, "outcome-a").ok());
  ASSERT_TRUE(Complete("b", b, "outcome-b").ok());

  absl::StatusOr<ClaimResult> d = Claim("d");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state, State::kClaimed);
  EXPECT_EQ(Store().size(), 3u);
  // Claim() of an existing key makes no room, so these look without evicting.
  EXPECT_EQ(StateOf("b"), State::kDone);
  EXPECT_EQ(StateOf("c"), State::kInFlight);
  EXPECT_EQ(StateOf("d"), State::kInFlight);
  EXPECT_EQ(StateOf("a"), State::kClaimed);  // Its record was the one evicted.
}

TEST_F(MemoryIdempotencyStoreTest, FullOfLiveClaimsRefusesAndEvictsNoClaim) {
  options_.max_entries = 2;
  const std::string a = MustClaim("a");
  MustClaim("b");
  const size_t bytes = Store().bytes();

  absl::StatusOr<ClaimResult> c = Claim("c");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Store().size(), 2u);
  EXPECT_EQ(Store().bytes(), bytes);
  EXPECT_EQ(StateOf("a"), State::kInFlight);
  EXPECT_EQ(StateOf("b"), State::kInFlight);

  // Room again once a claim ends.
  ASSERT_TRUE(Release("a", a).ok());
  EXPECT_EQ(StateOf("c"), State::kClaimed);
}

TEST_F(MemoryIdempotencyStoreTest, ClaimWhoseLeaseEndedIsKeptNotEvicted) {
  // Its owner may have sent to Twilio: forgetting it could let a retry create a second one.
  options_.max_entries = 2;
  MustClaim("a", absl::Seconds(1));
  MustClaim("b", absl::Seconds(1));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Claim("c").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Store().size(), 2u);
}

TEST_F(MemoryIdempotencyStoreTest, ClaimsAreDroppedToMakeRoomOnceTheirRetentionEnds) {
  options_.max_entries = 2;
  MustClaim("long", absl::Seconds(1), absl::Seconds(60));
  MustClaim("short", absl::Seconds(1), absl::Seconds(1));
  clock_.Advance(absl::Seconds(2));  // "short" is gone; "long" is kept for its owner's successor.

  absl::StatusOr<ClaimResult> result = Claim("new");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->state, State::kClaimed);
  EXPECT_EQ(Store().size(), 2u);
}

TEST_F(MemoryIdempotencyStoreTest, RenewExtendsTheLeaseAndZeroHandsTheRecordOver) {
  const std::string token = MustClaim("k", absl::Seconds(2));
  clock_.Advance(absl::Seconds(1));
  std::optional<absl::Status> renewed;
  Store().Renew("k", token, absl::Seconds(2), [&](absl::Status s) { renewed = s; });
  ASSERT_TRUE(renewed.has_value() && renewed->ok());
  clock_.Advance(absl::Seconds(1) + absl::Milliseconds(500));
  EXPECT_EQ(StateOf("k"), State::kInFlight);  // Would have expired without the renewal.

  Store().Renew("k", token, absl::ZeroDuration(), [&](absl::Status s) { renewed = s; });
  ASSERT_TRUE(renewed->ok());
  absl::StatusOr<ClaimResult> next = Claim("k");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->state, State::kClaimed);
  EXPECT_EQ(next->taken_over_age, absl::Milliseconds(2500));

  Store().Renew("k", token, absl::Seconds(2), [&](absl::Status s) { renewed = s; });
  EXPECT_EQ(renewed->code(), absl::StatusCode::kFailedPrecondition);  // The old owner lost it.
}

TEST_F(MemoryIdempotencyStoreTest, MaxBytesEvictsTheOldestDoneRecord) {
  // Measure one claim's cost rather than repeat the store's accounting formula.
  size_t claim_cost = 0;
  {
    MemoryIdempotencyStore probe(MemoryStoreOptions{}, clock_, random_);
    probe.Claim("a", kFingerprint, kLease, kRetention, [](absl::StatusOr<ClaimResult>) {});
    claim_cost = probe.bytes();
  }
  ASSERT_GT(claim_cost, 0u);
  options_.max_entries = 1000;
  options_.max_bytes = 3 * claim_cost + 100;  // Three claims, plus a few outcome bytes.

  const std::string a = MustClaim("a");
  const std::string b = MustClaim("b");
  ASSERT_TRUE(Complete("a", a, "outcome-a").ok());
  ASSERT_TRUE(Complete("b", b, "outcome-b").ok());
  MustClaim("c");
  EXPECT_LE(Store().bytes(), options_.max_bytes);

  // A fourth claim does not fit: the oldest done record ("a") makes room.
  EXPECT_EQ(StateOf("d"), State::kClaimed);
  EXPECT_LE(Store().bytes(), options_.max_bytes);
  EXPECT_EQ(Store().size(), 3u);
  EXPECT_EQ(StateOf("b"), State::kDone);
  EXPECT_EQ(StateOf("c"), State::kInFlight);
}

TEST_F(MemoryIdempotencyStoreTest, MaxBytesFullOfLiveClaimsRefuses) {
  size_t claim_cost = 0;
  {
    MemoryIdempotencyStore probe(MemoryStoreOptions{}, clock_, random_);
    probe.Claim("a", kFingerprint, kLease, kRetention, [](absl::StatusOr<ClaimResult>) {});
    claim_cost = probe.bytes();
  }
  options_.max_entries = 1000;
  options_.max_bytes = 2 * claim_cost + claim_cost / 2;
  MustClaim("a");
  MustClaim("b");

  EXPECT_EQ(Claim("c").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Store().size(), 2u);
  EXPECT_EQ(StateOf("a"), State::kInFlight);
  EXPECT_EQ(StateOf("b"), State::kInFlight);
}

TEST_F(MemoryIdempotencyStoreTest, SizeAndBytesReturnToZero) {
  const std::string a = MustClaim("a", absl::Seconds(10));
  const std::string b = MustClaim("b", absl::Seconds(10));
  MustClaim("c", absl::Seconds(10), absl::Seconds(30));
  ASSERT_TRUE(Release("a", a).ok());
  ASSERT_TRUE(Complete("b", b, "outcome", absl::Seconds(30)).ok());
  EXPECT_EQ(Store().size(), 2u);

  // Expiry is lazy: the next new claim sweeps the retention of "c" and "b".
  clock_.Advance(absl::Seconds(30));
  const std::string d = MustClaim("d");
  EXPECT_EQ(Store().size(), 1u);
  ASSERT_TRUE(Release("d", d).ok());
  EXPECT_EQ(Store().size(), 0u);
  EXPECT_EQ(Store().bytes(), 0u);
}

}  // namespace
}  // namespace gateway
