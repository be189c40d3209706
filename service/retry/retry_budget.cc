#include "retry/retry_budget.h"

#include <algorithm>
#include <cmath>

namespace gateway {

RetryBudget::RetryBudget(double max_tokens, double token_ratio)
    : max_(static_cast<int64_t>(std::llround(max_tokens * 1000))),
      ratio_(static_cast<int64_t>(std::llround(token_ratio * 1000))),
      tokens_(max_) {}

void RetryBudget::RecordSuccess() {
  int64_t current = tokens_.load(std::memory_order_relaxed);
  while (current < max_ && !tokens_.compare_exchange_weak(current, std::min(max_, current + ratio_),
                                                          std::memory_order_relaxed)) {
  }
}

void RetryBudget::RecordFailure() {
  int64_t current = tokens_.load(std::memory_order_relaxed);
  while (current > 0 &&
         !tokens_.compare_exchange_weak(current, std::max<int64_t>(0, current - 1000),
                                        std::memory_order_relaxed)) {
  }
}

bool RetryBudget::AllowRetry() const { return tokens_.load(std::memory_order_relaxed) * 2 > max_; }

double RetryBudget::tokens() const {
  return static_cast<double>(tokens_.load(std::memory_order_relaxed)) / 1000.0;
}

}  // namespace gateway
