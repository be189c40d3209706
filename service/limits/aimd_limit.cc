#include "limits/aimd_limit.h"

#include <algorithm>
#include <cmath>

namespace gateway {

AimdLimit::AimdLimit(const AimdOptions& options, double start, int ceiling)
    : options_(options), value_(1), ceiling_(1), floor_(1) {
  Reset(start, ceiling);
}

int AimdLimit::limit() const { return std::max(1, static_cast<int>(std::floor(value_))); }

double AimdLimit::OnAccepted(int in_flight, std::optional<double> window) {
  if (value_ >= ceiling_ || !Saturated(in_flight)) return 0;
  const double before = value_;
  value_ = std::min<double>(ceiling_, value_ + 1 / std::max(1.0, window.value_or(value_)));
  return value_ - before;
}

bool AimdLimit::OnThrottled(absl::Time now, absl::Time sent) {
  if (sent < last_cut_) return false;
  last_cut_ = now;
  value_ = std::max<double>(floor_, value_ * options_.backoff_ratio);
  return true;
}

void AimdLimit::Reset(double value, int ceiling, std::optional<int> floor) {
  ceiling_ = std::max(1, ceiling);
  floor_ = std::clamp(floor.value_or(options_.min_limit), 1, ceiling_);
  value_ = std::clamp(value, static_cast<double>(floor_), static_cast<double>(ceiling_));
}

}  // namespace gateway
