// Timer backed by one thread and a deadline-ordered queue: enough for retry backoff, where
// thousands of short waits may be pending and none needs a thread of its own.
//
// Thread-safety: all methods may be called from any thread, including from a callback.
#ifndef GATEWAY_COMMON_TIMER_THREAD_H_
#define GATEWAY_COMMON_TIMER_THREAD_H_

#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace gateway {

class TimerThread final : public Timer {
 public:
  TimerThread();
  // Shutdown().
  ~TimerThread() override;

  // Stops the thread once a callback running now returns; callbacks still pending, and any
  // scheduled later, are dropped without running. Call it before the objects the callbacks use
  // go away; never from a callback.
  void Shutdown();

  TimerId Schedule(absl::Time when, absl::AnyInvocable<void() &&> callback) override;
  bool Cancel(TimerId id) override;

 private:
  void Run();

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Ordered by (due time, id) so equal deadlines run in scheduling order.
  std::map<std::pair<absl::Time, TimerId>, absl::AnyInvocable<void() &&>> queue_
      ABSL_GUARDED_BY(mu_);
  std::map<TimerId, absl::Time> due_by_id_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace gateway

#endif  // GATEWAY_COMMON_TIMER_THREAD_H_
