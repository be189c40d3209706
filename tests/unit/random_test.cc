#include "common/random.h"

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/random_ids.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "subscription_client.h"

namespace gateway {
namespace {

using ::testing::MatchesRegex;
using ::testing::Not;

// Canonical lowercase 8-4-4-4-12 form, version nibble 4, RFC 4122 variant (8, 9, a or b).
constexpr char kUuidV4Pattern[] =
    "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

// A URBG that always yields the same bits.
class ConstantBits {
 public:
  using result_type = uint64_t;
  explicit ConstantBits(uint64_t bits) : bits_(bits) {}
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~uint64_t{0}; }
  result_type operator()() { return bits_; }

 private:
  uint64_t bits_;
};

TEST(UuidV4FromTest, PatternRejectsOtherShapes) {
  // Guards the pattern the other tests rely on.
  EXPECT_THAT("00000000-0000-4000-8000-000000000000", MatchesRegex(kUuidV4Pattern));
  EXPECT_THAT("00000000-0000-5000-8000-000000000000", Not(MatchesRegex(kUuidV4Pattern)));
  EXPECT_THAT("00000000-0000-4000-c000-000000000000", Not(MatchesRegex(kUuidV4Pattern)));
  EXPECT_THAT("00000000-0000-4000-8000-00000000000A", Not(MatchesRegex(kUuidV4Pattern)));
  EXPECT_THAT("00000000000040008000000000000000", Not(MatchesRegex(kUuidV4Pattern)));
  EXPECT_THAT("00000000-0000-4000-8000-0000000000000", Not(MatchesRegex(kUuidV4Pattern)));
}

TEST(UuidV4FromTest, AllZeroBitsGetVersionAndVariant) {
  ConstantBits zeros(0);
  EXPECT_EQ(UuidV4From(zeros), "00000000-0000-4000-8000-000000000000");
}

TEST(UuidV4FromTest, AllOneBitsGetVersionAndVariant) {
  ConstantBits ones(~uint64_t{0});
  EXPECT_EQ(UuidV4From(ones), "ffffffff-ffff-4fff-bfff-ffffffffffff");
}

TEST(UuidV4FromTest, FormatIsCanonicalLowercase) {
  std::mt19937_64 gen(12345);
  std::set<char> variants;
  for (int i = 0; i < 1000; ++i) {
    const std::string uuid = UuidV4From(gen);
    ASSERT_EQ(uuid.size(), 36u) << uuid;
    EXPECT_THAT(uuid, MatchesRegex(kUuidV4Pattern));
    EXPECT_EQ(uuid[14], '4') << uuid;
    variants.insert(uuid[19]);
  }
  EXPECT_EQ(variants, (std::set<char>{'8', '9', 'a', 'b'}));
}

TEST(UuidV4FromTest, DeterministicForTheSameGenerator) {
  std::mt19937_64 a(7);
  std::mt19937_64 b(7);
  std::mt19937_64 c(8);
  const std::string from_a = UuidV4From(a);
  EXPECT_EQ(from_a, UuidV4From(b));
  EXPECT_NE(from_a, UuidV4From(c));
}

TEST(HexId128FromTest, AllZeroAndAllOneBits) {
  ConstantBits zeros(0);
  EXPECT_EQ(HexId128From(zeros), std::string(32, '0'));
  ConstantBits ones(~uint64_t{0});
  EXPECT_EQ(HexId128From(ones), std::string(32, 'f'));
}

TEST(HexId128FromTest, ThirtyTwoLowercaseHexDigitsUsingEveryDigit) {
  std::mt19937_64 gen(12345);
  std::set<char> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = HexId128From(gen);
    ASSERT_THAT(id, MatchesRegex("[0-9a-f]{32}"));
    seen.insert(id.begin(), id.end());
  }
  EXPECT_EQ(seen.size(), 16u);  // No fixed nibble (unlike a UUID's version and variant).
}

TEST(HexId128FromTest, DeterministicForTheSameGenerator) {
  std::mt19937_64 a(7);
  std::mt19937_64 b(7);
  EXPECT_EQ(HexId128From(a), HexId128From(b));
}

TEST(SystemRandomTest, HexIdsAreDistinct) {
  SystemRandom random;
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(random.HexId128());
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_THAT(*ids.begin(), MatchesRegex("[0-9a-f]{32}"));
}

// Each thread's generator is seeded on its own: threads started together must not repeat each
// other (they would with a seed taken from, say, the clock).
TEST(NewUuidV4Test, ThreadsDrawDifferentIds) {
  constexpr int kThreads = 8;
  std::vector<std::string> first(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&first, i] { first[i] = NewUuidV4(); });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(first.begin(), first.end()).size(), size_t{kThreads});
  for (const std::string& uuid : first) EXPECT_THAT(uuid, MatchesRegex(kUuidV4Pattern));
}

TEST(NewIdempotencyKeyTest, ClientKeysAreV4AndDistinct) {
  std::set<std::string> keys;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = twilio_gateway::client::NewIdempotencyKey();
    ASSERT_THAT(key, MatchesRegex(kUuidV4Pattern));
    keys.insert(key);
  }
  EXPECT_EQ(keys.size(), 1000u);
}

TEST(SystemRandomTest, UuidsAreV4AndDistinct) {
  SystemRandom random;
  const std::string first = random.UuidV4();
  const std::string second = random.UuidV4();
  EXPECT_THAT(first, MatchesRegex(kUuidV4Pattern));
  EXPECT_THAT(second, MatchesRegex(kUuidV4Pattern));
  EXPECT_NE(first, second);
}

TEST(SystemRandomTest, Uniform01IsInHalfOpenUnitInterval) {
  SystemRandom random;
  for (int i = 0; i < 1000; ++i) {
    const double u = random.Uniform01();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace gateway
