#include "common/timer_thread.h"

namespace gateway {

TimerThread::TimerThread() : thread_([this] { Run(); }) {}

TimerThread::~TimerThread() { Shutdown(); }

void TimerThread::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  decltype(queue_) dropped;
  {
    absl::MutexLock lock(&mu_);
    dropped.swap(queue_);
    due_by_id_.clear();
  }
  // Destroyed outside mu_: a dropped callback may hold the last reference to an object whose
  // destructor cancels a timer.
}

Timer::TimerId TimerThread::Schedule(absl::Time when, absl::AnyInvocable<void() &&> callback) {
  absl::MutexLock lock(&mu_);
  const TimerId id = next_id_++;
  if (stopping_) return id;  // Dropped: the thread is gone or going.
  queue_.emplace(std::make_pair(when, id), std::move(callback));
  due_by_id_.emplace(id, when);
  return id;
}

bool TimerThread::Cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  auto it = due_by_id_.find(id);
  if (it == due_by_id_.end()) return false;
  queue_.erase(std::make_pair(it->second, id));
  due_by_id_.erase(it);
  return true;
}

void TimerThread::Run() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    if (queue_.empty()) {
      mu_.Await(absl::Condition(
          +[](TimerThread* self)
               ABSL_NO_THREAD_SAFETY_ANALYSIS { return self->stopping_ || !self->queue_.empty(); },
          this));
      continue;
    }
    auto first = queue_.begin();
    const absl::Time due = first->first.first;
    if (absl::Now() < due) {
      // Wakes early when an earlier timer is scheduled or the thread is stopped.
      struct Wait {
        TimerThread* self;
        std::pair<absl::Time, TimerId> earliest;
      } wait{this, first->first};
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](Wait* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                  return w->self->stopping_ || w->self->queue_.empty() ||
                                         w->self->queue_.begin()->first < w->earliest;
                                },
                                &wait),
                            due);
      continue;
    }
    auto callback = std::move(first->second);
    due_by_id_.erase(first->first.second);
    queue_.erase(first);
    mu_.Unlock();
    std::move(callback)();
    mu_.Lock();
  }
}

}  // namespace gateway
