// The log of messages Twilio delivered to the gateway's webhook: the receiver appends, every
// Watch reads. Two implementations, one contract: MemoryMessageLog (one replica, bounded in
// process) and RedisMessageLog (a Redis Stream every replica shares).
//
// Cursors are stream IDs, "<milliseconds>-<sequence>", ordered as the log is: Redis' own IDs,
// and the same shape in memory, so a client's cursor means one thing whichever log issued it.
// A cursor whose message has left the retention is refused (OUT_OF_RANGE): the log cannot prove
// that nothing after it was dropped too.
//
// Usage:
//   log.Append(message, [](absl::StatusOr<MessageLog::Appended> r) { ... 200 only if ok ... });
//   log.Read(cursor, 64, [](absl::StatusOr<MessageLog::Batch> r) { ... });
//   AppendListener listener = log.Listen([] { /* read again */ });
//
// Thread-safety: every method may be called from any thread. Callbacks run once, on the caller's
// thread (memory) or the store's worker thread (Redis); they must not block.
#ifndef GATEWAY_MESSAGES_MESSAGE_LOG_H_
#define GATEWAY_MESSAGES_MESSAGE_LOG_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "model/call_message.h"

namespace gateway {

// What the log keeps; the oldest messages go first when any bound is passed.
struct MessageRetention {
  size_t max_messages = 100000;
  absl::Duration max_age = absl::Hours(24);
  // Content and fields together; the memory log only (Redis bounds its own memory).
  size_t max_bytes = 64 << 20;
};

class MessageLog {
 public:
  struct Appended {
    std::string cursor;      // Where the message is (the earlier copy's place for a duplicate).
    bool duplicate = false;  // A message with this sid was already retained: nothing stored.
  };
  struct Batch {
    std::vector<LoggedMessage> messages;  // Oldest first.
    // The cursor to read after next: the last message's, or the one read after when none came.
    std::string next_cursor;
    bool at_end = false;  // Nothing newer was stored when this batch was read.
  };
  using AppendDone = absl::AnyInvocable<void(absl::StatusOr<Appended>) &&>;
  using ReadDone = absl::AnyInvocable<void(absl::StatusOr<Batch>) &&>;
  using TailDone = absl::AnyInvocable<void(absl::StatusOr<std::string>) &&>;

  virtual ~MessageLog();

  // Stores `message` unless one with its sid is retained. `done` runs once the message is
  // stored where every reader will find it (or known to be there): only then may Twilio get 200.
  virtual void Append(CallMessage message, AppendDone done) = 0;

  // At most `max` messages after `cursor`, oldest first; "" reads from the oldest retained.
  // INVALID_ARGUMENT for a cursor that does not parse, OUT_OF_RANGE (ErrorInfo-ready message)
  // for one whose message has left the retention, UNAVAILABLE when the store is unreachable.
  virtual void Read(const std::string& cursor, size_t max, ReadDone done) = 0;

  // The newest message's cursor ("" when the log is empty): where a Watch of new messages
  // starts.
  virtual void Tail(TailDone done) = 0;

  // Stops the log's own threads; later calls fail with UNAVAILABLE. Listeners are not called
  // after it returns.
  virtual void Shutdown() {}

  // Calls `listener` (on any thread, never while a log lock is held) whenever messages may have
  // been appended, by this replica or another, until the returned handle is destroyed. The
  // listener must not block, and may be called concurrently from several threads. A call already
  // under way when the handle is destroyed still finishes (waiting for it could deadlock a listener
  // that ends its own watcher), so a listener holds only what outlives that: a weak_ptr, say.
  class Listener;
  std::unique_ptr<Listener> Listen(absl::AnyInvocable<void()> listener);

 protected:
  // Wakes every listener. Implementations call it after an append lands, outside their locks.
  void NotifyAppended();

 private:
  struct Listeners {
    absl::Mutex mu;
    uint64_t next_id ABSL_GUARDED_BY(mu) = 1;
    absl::flat_hash_map<uint64_t, std::shared_ptr<absl::AnyInvocable<void()>>> by_id
        ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<Listeners> listeners_ = std::make_shared<Listeners>();
};

class MessageLog::Listener {
 public:
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

 private:
  friend class MessageLog;
  Listener(std::shared_ptr<Listeners> listeners, uint64_t id)
      : listeners_(std::move(listeners)), id_(id) {}
  std::shared_ptr<Listeners> listeners_;
  uint64_t id_;
};

// The status for a cursor whose message has left the retention.
absl::Status CursorExpired(absl::string_view cursor);

}  // namespace gateway

#endif  // GATEWAY_MESSAGES_MESSAGE_LOG_H_
