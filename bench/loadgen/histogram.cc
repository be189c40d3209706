#include "histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace loadgen {
namespace {

constexpr uint64_t kExact = uint64_t{1} << LatencyHistogram::kSubBucketBits;
constexpr uint64_t kHalf = kExact / 2;
// Values of bit width w > kSubBucketBits use `shift = w - kSubBucketBits`; each shift owns kHalf
// buckets after the kExact exact ones.
constexpr int kMaxShift = 40 - LatencyHistogram::kSubBucketBits;
constexpr size_t kBuckets = kExact + static_cast<size_t>(kMaxShift) * kHalf;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

size_t LatencyHistogram::BucketOf(uint64_t micros) {
  micros = std::min(micros, kMaxValue);
  if (micros < kExact) return static_cast<size_t>(micros);
  const int shift = std::bit_width(micros) - kSubBucketBits;  // >= 1
  const uint64_t sub = micros >> shift;                       // in [kHalf, kExact)
  return static_cast<size_t>(kExact + (shift - 1) * kHalf + (sub - kHalf));
}

uint64_t LatencyHistogram::HighestInBucket(size_t bucket) {
  if (bucket < kExact) return bucket;
  const uint64_t j = bucket - kExact;
  const int shift = static_cast<int>(j / kHalf) + 1;
  const uint64_t sub = j % kHalf + kHalf;
  return ((sub + 1) << shift) - 1;
}

void LatencyHistogram::Record(uint64_t micros) {
  micros = std::min(micros, kMaxValue);
  ++counts_[BucketOf(micros)];
  ++count_;
  sum_ += micros;
  min_ = std::min(min_, micros);
  max_ = std::max(max_, micros);
}

void LatencyHistogram::Add(const LatencyHistogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

uint64_t LatencyHistogram::Percentile(double percentile) const {
  if (count_ == 0) return 0;
  if (percentile >= 100.0) return max_;
  const double wanted = std::ceil(std::max(percentile, 0.0) / 100.0 * static_cast<double>(count_));
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(wanted));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(HighestInBucket(i), max_);
  }
  return max_;
}

}  // namespace loadgen
