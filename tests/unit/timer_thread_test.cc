// TimerThread runs on real time, so these are smoke tests: every wait is bounded on an
// absl::Notification with a generous timeout, due times are in the past (run as soon as the
// thread gets to them) or far in the future (never run), and nothing asserts on durations.
#include "common/timer_thread.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::ElementsAre;

constexpr absl::Duration kGenerousTimeout = absl::Seconds(30);

// Records callback labels in the order they ran.
class RunLog {
 public:
  void Add(int label) {
    absl::MutexLock lock(&mu_);
    labels_.push_back(label);
  }
  std::vector<int> labels() {
    absl::MutexLock lock(&mu_);
    return labels_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int> labels_;
};

// Holds the timer thread inside a callback until released, so that a test can queue several
// callbacks before any of them can run. Releases on destruction, so a failed ASSERT cannot leave
// the timer thread blocked; the state is shared with the callback, which may outlive the Gate.
class Gate {
 public:
  explicit Gate(TimerThread& timer) : state_(std::make_shared<State>()) {
    timer.Schedule(absl::InfinitePast(), [state = state_] {
      state->entered.Notify();
      state->release.WaitForNotification();
    });
  }
  ~Gate() { Release(); }
  bool WaitEntered() { return state_->entered.WaitForNotificationWithTimeout(kGenerousTimeout); }
  void Release() {
    if (!state_->release.HasBeenNotified()) {
      state_->release.Notify();
    }
  }

 private:
  struct State {
    absl::Notification entered;
    absl::Notification release;
  };
  std::shared_ptr<State> state_;
};

const absl::Time kPast = absl::UnixEpoch();  // Long due: runs as soon as the thread is free.

TEST(TimerThreadTest, RunsCallbacksInDueTimeOrder) {
  RunLog log;
  absl::Notification last_ran;
  TimerThread timer;
  Gate gate(timer);
  ASSERT_TRUE(gate.WaitEntered());
  timer.Schedule(kPast + absl::Seconds(3), [&] {
    log.Add(3);
    last_ran.Notify();
  });
  timer.Schedule(kPast + absl::Seconds(2), [&] { log.Add(2); });
  timer.Schedule(kPast + absl::Seconds(1), [&] { log.Add(1); });
  gate.Release();
  ASSERT_TRUE(last_ran.WaitForNotificationWithTimeout(kGenerousTimeout));
  EXPECT_THAT(log.labels(), ElementsAre(1, 2, 3));
}

TEST(TimerThreadTest, EqualDueTimesRunInSchedulingOrder) {
  RunLog log;
  absl::Notification last_ran;
  TimerThread timer;
  Gate gate(timer);
  ASSERT_TRUE(gate.WaitEntered());
  for (int i = 1; i <= 3; ++i) {
    timer.Schedule(kPast, [&log, i] { log.Add(i); });
  }
  timer.Schedule(kPast, [&] { last_ran.Notify(); });
  gate.Release();
  ASSERT_TRUE(last_ran.WaitForNotificationWithTimeout(kGenerousTimeout));
  EXPECT_THAT(log.labels(), ElementsAre(1, 2, 3));
}

TEST(TimerThreadTest, RunsACallbackScheduledWhileIdle) {
  absl::Notification ran;
  TimerThread timer;
  timer.Schedule(absl::Now(), [&] { ran.Notify(); });
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(kGenerousTimeout));
}

TEST(TimerThreadTest, CancelPreventsACallback) {
  RunLog log;
  absl::Notification last_ran;
  TimerThread timer;
  Gate gate(timer);
  ASSERT_TRUE(gate.WaitEntered());
  // Due before the last one: if Cancel failed it would have run by the time the last one does.
  const Timer::TimerId cancelled = timer.Schedule(kPast + absl::Seconds(1), [&] { log.Add(1); });
  timer.Schedule(kPast + absl::Seconds(2), [&] {
    log.Add(2);
    last_ran.Notify();
  });
  EXPECT_TRUE(timer.Cancel(cancelled));
  EXPECT_FALSE(timer.Cancel(cancelled));  // Already gone.
  gate.Release();
  ASSERT_TRUE(last_ran.WaitForNotificationWithTimeout(kGenerousTimeout));
  EXPECT_THAT(log.labels(), ElementsAre(2));
}

TEST(TimerThreadTest, CancelAfterRunOrForUnknownIdReturnsFalse) {
  absl::Notification ran;
  TimerThread timer;
  const Timer::TimerId id = timer.Schedule(kPast, [&] { ran.Notify(); });
  ASSERT_TRUE(ran.WaitForNotificationWithTimeout(kGenerousTimeout));
  EXPECT_FALSE(timer.Cancel(id));
  EXPECT_FALSE(timer.Cancel(987654321));
}

TEST(TimerThreadTest, CallbackMayScheduleAnother) {
  absl::Notification second_ran;
  TimerThread timer;
  timer.Schedule(kPast, [&] { timer.Schedule(kPast, [&] { second_ran.Notify(); }); });
  EXPECT_TRUE(second_ran.WaitForNotificationWithTimeout(kGenerousTimeout));
}

TEST(TimerThreadTest, DestructorDropsPendingTimers) {
  struct SetOnDestroy {
    std::shared_ptr<bool> flag;
    ~SetOnDestroy() { *flag = true; }
  };
  auto ran = std::make_shared<bool>(false);
  auto released = std::make_shared<bool>(false);
  {
    TimerThread timer;
    auto marker = std::make_shared<SetOnDestroy>();
    marker->flag = released;
    timer.Schedule(absl::InfiniteFuture(), [ran, marker = std::move(marker)] { *ran = true; });
    timer.Schedule(absl::Now() + absl::Hours(1), [ran] { *ran = true; });
    EXPECT_FALSE(*released);  // The timer still holds the callback.
  }
  EXPECT_FALSE(*ran);
  EXPECT_TRUE(*released);  // The dropped callback, and what it captured, was destroyed.
}

// The gateway stops its timer before the objects the callbacks use go away.
TEST(TimerThreadTest, ShutdownDropsPendingAndLaterTimers) {
  auto ran = std::make_shared<std::atomic<int>>(0);
  TimerThread timer;
  timer.Schedule(absl::Now() + absl::Hours(1), [ran] { ++*ran; });
  timer.Shutdown();
  timer.Schedule(absl::Now(), [ran] { ++*ran; });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(*ran, 0);
  EXPECT_FALSE(timer.Cancel(1));  // Already dropped.
  timer.Shutdown();               // Again, and the destructor after it, are harmless.
}

}  // namespace
}  // namespace gateway
