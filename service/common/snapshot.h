// A value that is replaced as a whole while readers keep the version they started with: a
// reloaded credential, token table or policy. Readers hold a shared_ptr, so a request in
// flight finishes with the value it read even after a reload.
//
// Thread-safety: Get() and Set() are safe from any thread.
#ifndef GATEWAY_COMMON_SNAPSHOT_H_
#define GATEWAY_COMMON_SNAPSHOT_H_

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace gateway {

template <typename T>
class Snapshot {
 public:
  Snapshot() = default;
  explicit Snapshot(std::shared_ptr<const T> value) : value_(std::move(value)) {}

  // Null until a value is set.
  std::shared_ptr<const T> Get() const {
    absl::MutexLock lock(&mu_);
    return value_;
  }

  void Set(std::shared_ptr<const T> value) {
    absl::MutexLock lock(&mu_);
    // The old value is released outside no lock of its readers; they hold their own reference.
    value_.swap(value);
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const T> value_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway

#endif  // GATEWAY_COMMON_SNAPSHOT_H_
