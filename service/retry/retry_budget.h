// Retry throttling as in gRPC's retry design (A6): a token bucket that failures drain and
// successes refill, so that during an outage retries stop adding load instead of multiplying
// it. With `token_ratio` r, once the bucket is below half, retries resume at about r per
// successful attempt: retries add at most a share r of the request rate.
//
// Thread-safety: lock-free; safe from any thread.
#ifndef GATEWAY_RETRY_RETRY_BUDGET_H_
#define GATEWAY_RETRY_RETRY_BUDGET_H_

#include <atomic>
#include <cstdint>

namespace gateway {

class RetryBudget {
 public:
  // `max_tokens` in (0, 1000]; `token_ratio` in (0, 1].
  RetryBudget(double max_tokens, double token_ratio);

  void RecordSuccess();
  void RecordFailure();
  // True while more than half the bucket is left.
  bool AllowRetry() const;
  double tokens() const;

 private:
  // Milli-tokens, so that fractional ratios add up exactly.
  const int64_t max_;
  const int64_t ratio_;
  std::atomic<int64_t> tokens_;
};

}  // namespace gateway

#endif  // GATEWAY_RETRY_RETRY_BUDGET_H_
