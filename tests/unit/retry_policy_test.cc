#include "retry/retry_policy.h"

#include <climits>
#include <cmath>
#include <string>

#include "gtest/gtest.h"

namespace gateway {
namespace {

// ---- ShouldRetry ----------------------------------------------------------------------------

TEST(RetryPolicyTest, RetriesNeverAppliedAlways) {
  RetryOptions options;
  for (bool naturally_idempotent : {false, true}) {
    options.retry_ambiguous = true;
    EXPECT_TRUE(ShouldRetry(AttemptOutcome::kNeverApplied, options, naturally_idempotent));
    options.retry_ambiguous = false;
    EXPECT_TRUE(ShouldRetry(AttemptOutcome::kNeverApplied, options, naturally_idempotent));
  }
}

TEST(RetryPolicyTest, RetriesAmbiguousOnlyWhenAllowed) {
  RetryOptions options;
  options.retry_ambiguous = true;
  EXPECT_TRUE(ShouldRetry(AttemptOutcome::kAmbiguous, options, /*naturally_idempotent=*/false));
  options.retry_ambiguous = false;
  EXPECT_FALSE(ShouldRetry(AttemptOutcome::kAmbiguous, options, /*naturally_idempotent=*/false));
}

// Repeating a Delete is harmless, so the operator's switch for keyed operations does not apply.
TEST(RetryPolicyTest, NaturallyIdempotentRetriesAmbiguousWhateverTheOption) {
  RetryOptions options;
  options.retry_ambiguous = true;
  EXPECT_TRUE(ShouldRetry(AttemptOutcome::kAmbiguous, options, /*naturally_idempotent=*/true));
  options.retry_ambiguous = false;
  EXPECT_TRUE(ShouldRetry(AttemptOutcome::kAmbiguous, options, /*naturally_idempotent=*/true));
}

TEST(RetryPolicyTest, StopsOnNonRetryableStatus) {
  for (bool retry_ambiguous : {true, false}) {
    for (bool naturally_idempotent : {false, true}) {
      RetryOptions options;
      options.retry_ambiguous = retry_ambiguous;
      EXPECT_FALSE(ShouldRetry(AttemptOutcome::kSucceeded, options, naturally_idempotent));
      EXPECT_FALSE(ShouldRetry(AttemptOutcome::kRejected, options, naturally_idempotent));
      EXPECT_FALSE(ShouldRetry(AttemptOutcome::kStopped, options, naturally_idempotent));
    }
  }
}

TEST(RetryPolicyTest, DefaultsRetryAmbiguous) { EXPECT_TRUE(RetryOptions().retry_ambiguous); }

// ---- FullJitterBackoff ----------------------------------------------------------------------

constexpr absl::Duration kBase = absl::Milliseconds(100);
constexpr absl::Duration kCap = absl::Seconds(2);

// min(cap, base * 2^retry) for base 100ms and cap 2s.
absl::Duration Ceiling(int retry) {
  static constexpr int64_t kMillis[] = {100, 200, 400, 800, 1600};
  return retry < 5 ? absl::Milliseconds(kMillis[retry]) : kCap;
}

TEST(FullJitterBackoffTest, ZeroDrawGivesZero) {
  for (int retry = 0; retry <= 10; ++retry) {
    EXPECT_EQ(FullJitterBackoff(retry, kBase, kCap, 0.0), absl::ZeroDuration()) << retry;
  }
}

TEST(FullJitterBackoffTest, HalfDrawGivesHalfTheDoublingCeiling) {
  for (int retry = 0; retry <= 10; ++retry) {
    EXPECT_EQ(FullJitterBackoff(retry, kBase, kCap, 0.5), Ceiling(retry) / 2) << retry;
  }
}

TEST(FullJitterBackoffTest, HighDrawStaysJustBelowTheCeiling) {
  for (int retry = 0; retry <= 10; ++retry) {
    const absl::Duration got = FullJitterBackoff(retry, kBase, kCap, 0.999);
    EXPECT_LT(got, Ceiling(retry)) << retry;
    EXPECT_LE(absl::AbsDuration(got - Ceiling(retry) * 0.999), absl::Nanoseconds(1)) << retry;
  }
}

TEST(FullJitterBackoffTest, CeilingStopsAtCap) {
  EXPECT_EQ(FullJitterBackoff(4, kBase, kCap, 0.5), absl::Milliseconds(800));
  EXPECT_EQ(FullJitterBackoff(5, kBase, kCap, 0.5), absl::Seconds(1));
  EXPECT_EQ(FullJitterBackoff(6, kBase, kCap, 0.5), absl::Seconds(1));
}

TEST(FullJitterBackoffTest, HugeRetryNumbersDoNotOverflow) {
  for (int retry : {31, 63, 64, 1000, INT_MAX}) {
    const absl::Duration got = FullJitterBackoff(retry, kBase, kCap, 0.5);
    EXPECT_EQ(got, absl::Seconds(1)) << retry;
  }
  EXPECT_EQ(FullJitterBackoff(INT_MAX, absl::Milliseconds(1), absl::Hours(1), 0.5),
            absl::Minutes(30));
}

TEST(FullJitterBackoffTest, NeverNegative) {
  for (int retry = 0; retry <= 10; ++retry) {
    for (double u : {0.0, 0.25, 0.75, 0.999999}) {
      EXPECT_GE(FullJitterBackoff(retry, kBase, kCap, u), absl::ZeroDuration());
    }
  }
}

TEST(FullJitterBackoffTest, HugeCapDoesNotOverflow) {
  const absl::Duration cap = absl::Hours(10000000);
  const absl::Duration got = FullJitterBackoff(100, absl::Seconds(1), cap, 0.5);
  EXPECT_GT(got, absl::ZeroDuration());
  EXPECT_LE(got, cap);
}

// ---- RetryDelay -----------------------------------------------------------------------------

RetryOptions Options() {
  RetryOptions options;
  options.backoff_base = kBase;
  options.backoff_cap = kCap;
  options.retry_after_cap = absl::Seconds(5);
  return options;
}

TEST(RetryDelayTest, WithoutRetryAfterIsTheBackoff) {
  EXPECT_EQ(RetryDelay(0, Options(), 0.5, std::nullopt), absl::Milliseconds(50));
  EXPECT_EQ(RetryDelay(3, Options(), 0.5, std::nullopt), absl::Milliseconds(400));
}

TEST(RetryDelayTest, HonoursRetryAfter) {
  EXPECT_EQ(RetryDelay(0, Options(), 0.5, absl::Seconds(3)), absl::Seconds(3));
}

TEST(RetryDelayTest, CapsRetryAfter) {
  EXPECT_EQ(RetryDelay(0, Options(), 0.5, absl::Seconds(30)), absl::Seconds(5));
  EXPECT_EQ(RetryDelay(0, Options(), 0.5, absl::Hours(24)), absl::Seconds(5));
}

TEST(RetryDelayTest, NeverBelowBackoff) {
  // Backoff for retry 4 at 0.5 is 800ms; a shorter Retry-After does not shorten the wait.
  EXPECT_EQ(RetryDelay(4, Options(), 0.5, absl::Milliseconds(10)), absl::Milliseconds(800));
  EXPECT_EQ(RetryDelay(4, Options(), 0.5, absl::ZeroDuration()), absl::Milliseconds(800));
}

TEST(RetryDelayTest, BackoffAboveCappedRetryAfterWins) {
  RetryOptions options = Options();
  options.backoff_cap = absl::Seconds(20);
  options.retry_after_cap = absl::Seconds(1);
  // Backoff for retry 6 at 0.5: min(20s, 6.4s) / 2 = 3.2s, above the 1s-capped Retry-After.
  EXPECT_EQ(RetryDelay(6, options, 0.5, absl::Seconds(30)), absl::Milliseconds(3200));
}

}  // namespace
}  // namespace gateway
