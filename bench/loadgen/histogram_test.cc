#include "histogram.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace loadgen {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(100), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogramTest, LargeValuesStayWithinRelativeError) {
  for (uint64_t v : {1023ull, 1024ull, 1025ull, 4097ull, 123'456ull, 200'000ull, 9'999'999ull,
                     (1ull << 39) + 12345}) {
    const uint64_t high = LatencyHistogram::HighestInBucket(LatencyHistogram::BucketOf(v));
    EXPECT_GE(high, v);
    EXPECT_LE(static_cast<double>(high - v), static_cast<double>(v) / 500) << v;
  }
}

TEST(LatencyHistogramTest, BucketsAreContiguousAndOrdered) {
  uint64_t previous_high = 0;
  for (size_t b = 1; b < LatencyHistogram::BucketOf(LatencyHistogram::kMaxValue); ++b) {
    const uint64_t high = LatencyHistogram::HighestInBucket(b);
    ASSERT_GT(high, previous_high);
    ASSERT_EQ(LatencyHistogram::BucketOf(high), b);
    ASSERT_EQ(LatencyHistogram::BucketOf(previous_high + 1), b);
    previous_high = high;
  }
}

TEST(LatencyHistogramTest, PercentilesOfASkewedDistribution) {
  LatencyHistogram h;
  for (int i = 0; i < 990; ++i) h.Record(500);
  for (int i = 0; i < 10; ++i) h.Record(200'000);
  EXPECT_EQ(h.Percentile(50), 500u);
  EXPECT_EQ(h.Percentile(99), 500u);
  EXPECT_GE(h.Percentile(99.9), 200'000u);
  EXPECT_EQ(h.Percentile(99.9), 200'000u);  // clamped to the maximum
  EXPECT_EQ(h.max(), 200'000u);
}

TEST(LatencyHistogramTest, AddMergesCounts) {
  LatencyHistogram a;
  LatencyHistogram b;
  a.Record(10);
  b.Record(30);
  b.Record(20);
  a.Add(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.Percentile(50), 20u);
  EXPECT_EQ(a.min(), 10u);
  EXPECT_EQ(a.max(), 30u);
  a.Reset();
  EXPECT_EQ(a.count(), 0u);
}

TEST(LatencyHistogramTest, ClampsHugeValues) {
  LatencyHistogram h;
  h.Record(UINT64_MAX);
  EXPECT_EQ(h.max(), LatencyHistogram::kMaxValue);
  EXPECT_EQ(h.Percentile(50), LatencyHistogram::kMaxValue);
}

}  // namespace
}  // namespace loadgen
