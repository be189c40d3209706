// FakeClock and FakeTimer: time that only moves when a test says so.
//
// Usage:
//   FakeClock clock;
//   FakeTimer timer(clock);
//   ... code under test calls timer.Schedule(clock.Now() + d, cb) ...
//   clock.Advance(d);
//   timer.FireDue();  // runs cb on the calling thread
//
// FakeTimer honours the Timer contract: a callback never runs inline from Schedule() or
// Cancel(); it runs only from FireDue() / AdvanceToNextAndFire(), once it is due by the clock.
//
// Thread-safety: every method may be called from any thread; callbacks run on the thread that
// calls FireDue(), with no internal lock held (so they may Schedule() or Cancel()).
#ifndef GATEWAY_TESTS_FAKES_FAKE_CLOCK_H_
#define GATEWAY_TESTS_FAKES_FAKE_CLOCK_H_

#include <cstddef>
#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace gateway::testing {

class FakeClock final : public Clock {
 public:
  // A fixed, arbitrary instant (2023-11-14T22:13:20Z), never the wall clock.
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000)) : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Set(absl::Time now) {
    absl::MutexLock lock(&mu_);
    now_ = now;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

class FakeTimer final : public Timer {
 public:
  struct Pending {
    TimerId id;
    absl::Time when;
  };

  explicit FakeTimer(const FakeClock& clock) : clock_(clock) {}

  TimerId Schedule(absl::Time when, absl::AnyInvocable<void() &&> callback) override {
    absl::MutexLock lock(&mu_);
    const TimerId id = next_id_++;
    queue_.emplace(std::make_pair(when, id), std::move(callback));
    ++scheduled_count_;
    return id;
  }

  bool Cancel(TimerId id) override {
    absl::MutexLock lock(&mu_);
    cancel_calls_.push_back(id);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->first.second == id) {
        queue_.erase(it);
        return true;
      }
    }
    return false;
  }

  // Callbacks not yet run or cancelled, earliest first.
  std::vector<Pending> pending() const {
    absl::MutexLock lock(&mu_);
    std::vector<Pending> out;
    for (const auto& [key, callback] : queue_) {
      out.push_back({key.second, key.first});
    }
    return out;
  }

  // Total Schedule() calls so far.
  size_t scheduled_count() const {
    absl::MutexLock lock(&mu_);
    return scheduled_count_;
  }

  // Ids passed to Cancel(), in call order.
  std::vector<TimerId> cancel_calls() const {
    absl::MutexLock lock(&mu_);
    return cancel_calls_;
  }

  // Runs every callback due at or before the clock's Now(), earliest first (including ones
  // that those callbacks schedule, if already due). Returns how many ran.
  size_t FireDue() {
    size_t fired = 0;
    while (true) {
      absl::AnyInvocable<void() &&> callback;
      {
        absl::MutexLock lock(&mu_);
        if (queue_.empty() || queue_.begin()->first.first > clock_.Now()) {
          break;
        }
        callback = std::move(queue_.begin()->second);
        queue_.erase(queue_.begin());
      }
      std::move(callback)();
      ++fired;
    }
    return fired;
  }

  // Moves `clock` (the one this timer reads) to the earliest pending due time, if that is in
  // the future, and fires what is due. Returns how many callbacks ran.
  size_t AdvanceToNextAndFire(FakeClock& clock) {
    std::vector<Pending> next = pending();
    if (next.empty()) {
      return 0;
    }
    if (next.front().when > clock.Now()) {
      clock.Set(next.front().when);
    }
    return FireDue();
  }

 private:
  const FakeClock& clock_;
  mutable absl::Mutex mu_;
  TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  size_t scheduled_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::pair<absl::Time, TimerId>, absl::AnyInvocable<void() &&>> queue_
      ABSL_GUARDED_BY(mu_);
  std::vector<TimerId> cancel_calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway::testing

#endif  // GATEWAY_TESTS_FAKES_FAKE_CLOCK_H_
