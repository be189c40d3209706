// MessageLog in this process: a bounded deque, for the memory store's single replica. Messages
// do not survive a restart; a cursor issued before this process started is refused as expired,
// so a subscriber learns of the loss instead of missing messages silently.
#ifndef GATEWAY_MESSAGES_MEMORY_MESSAGE_LOG_H_
#define GATEWAY_MESSAGES_MEMORY_MESSAGE_LOG_H_

#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "messages/message_log.h"

namespace gateway {

class MemoryMessageLog final : public MessageLog {
 public:
  // `clock` must outlive the log.
  MemoryMessageLog(MessageRetention retention, const Clock& clock);

  void Append(CallMessage message, AppendDone done) override;
  void Read(const std::string& cursor, size_t max, ReadDone done) override;
  void Tail(TailDone done) override;

  size_t size() const;

 private:
  struct Entry {
    LogPosition position;
    absl::Time stored;
    size_t bytes;
    CallMessage message;
  };

  // Drops what the retention no longer covers.
  void TrimLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const MessageRetention retention_;
  const Clock& clock_;
  mutable absl::Mutex mu_;
  std::deque<Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, LogPosition> position_by_sid_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  LogPosition last_ ABSL_GUARDED_BY(mu_);
  // A cursor before this has lost messages after it: the newest position dropped, or this
  // process' start (everything an earlier process held is gone).
  LogPosition dropped_through_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway

#endif  // GATEWAY_MESSAGES_MEMORY_MESSAGE_LOG_H_
