// A latency histogram in the style of HdrHistogram: log-linear buckets over microseconds.
//
// Values below 2^kSubBucketBits are counted exactly; above that every power-of-two range is split
// into 2^(kSubBucketBits-1) equal buckets, so any recorded value is reported within 0.2% of itself
// (percentiles give the bucket's highest value, never below the true value). Memory is fixed
// (about 135 KiB) however many values are recorded, unlike a vector of every sample. Values above
// kMaxValue (about 12 days) are clamped to it.
//
// Usage: Record() each latency, then Percentile(99.0) etc. Add() merges two histograms.
// Thread-safety: none; callers serialize access (the load generator holds a mutex).
#ifndef GATEWAY_BENCH_LOADGEN_HISTOGRAM_H_
#define GATEWAY_BENCH_LOADGEN_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace loadgen {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 10;
  static constexpr uint64_t kMaxValue = (uint64_t{1} << 40) - 1;

  LatencyHistogram();

  void Record(uint64_t micros);
  void Add(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The smallest value v (to the bucket's precision) such that at least `percentile` percent of
  // recorded values are <= v. 0 when empty; 100 gives the exact maximum.
  uint64_t Percentile(double percentile) const;

  // Exposed for tests: the bucket a value falls in and the highest value that bucket holds.
  static size_t BucketOf(uint64_t micros);
  static uint64_t HighestInBucket(size_t bucket);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace loadgen

#endif  // GATEWAY_BENCH_LOADGEN_HISTOGRAM_H_
