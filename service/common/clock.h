// Time as an injected dependency: production code asks a Clock for "now" and a Timer to run work
// later, so unit tests drive both by hand and never sleep.
//
// Thread-safety: implementations must be safe to call from any thread.
#ifndef GATEWAY_COMMON_CLOCK_H_
#define GATEWAY_COMMON_CLOCK_H_

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gateway {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

// Runs callbacks at a point in time. Callbacks run on the timer's own thread, never inline from
// Schedule(), so callers may hold their own locks while scheduling.
class Timer {
 public:
  using TimerId = std::uint64_t;
  virtual ~Timer() = default;
  virtual TimerId Schedule(absl::Time when, absl::AnyInvocable<void() &&> callback) = 0;
  // Drops a pending callback. Returns false if it already ran (or is running) or never existed.
  virtual bool Cancel(TimerId id) = 0;
};

}  // namespace gateway

#endif  // GATEWAY_COMMON_CLOCK_H_
