#include "messages/memory_message_log.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace gateway {
namespace {

uint64_t Millis(absl::Time time) {
  return static_cast<uint64_t>(std::max<int64_t>(absl::ToUnixMillis(time), 0));
}

size_t Bytes(const CallMessage& m) {
  return sizeof(CallMessage) + m.sid.size() + m.account_sid.size() + m.call_sid.size() +
         m.content.size() + m.content_type.size();
}

}  // namespace

MemoryMessageLog::MemoryMessageLog(MessageRetention retention, const Clock& clock)
    : retention_(retention), clock_(clock) {
  const LogPosition start{Millis(clock_.Now()), 0};
  last_ = start;
  dropped_through_ = start;
}

void MemoryMessageLog::Append(CallMessage message, AppendDone done) {
  Appended appended;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    TrimLocked(now);
    if (auto it = position_by_sid_.find(message.sid); it != position_by_sid_.end()) {
      appended = {it->second.ToString(), true};
    } else {
      // Strictly increasing, as Redis makes its IDs, even if the wall clock steps back.
      const uint64_t millis = Millis(now);
      last_ = millis > last_.millis ? LogPosition{millis, 0}
                                    : LogPosition{last_.millis, last_.sequence + 1};
      const size_t bytes = Bytes(message);
      position_by_sid_.emplace(message.sid, last_);
      entries_.push_back(Entry{last_, now, bytes, std::move(message)});
      bytes_ += bytes;
      TrimLocked(now);
      appended = {last_.ToString(), false};
    }
  }
  const bool stored = !appended.duplicate;
  std::move(done)(std::move(appended));
  if (stored) NotifyAppended();
}

void MemoryMessageLog::TrimLocked(absl::Time now) {
  while (!entries_.empty() &&
         (entries_.size() > retention_.max_messages || bytes_ > retention_.max_bytes ||
          now - entries_.front().stored > retention_.max_age)) {
    const Entry& oldest = entries_.front();
    dropped_through_ = oldest.position;
    position_by_sid_.erase(oldest.message.sid);
    bytes_ -= oldest.bytes;
    entries_.pop_front();
  }
}

void MemoryMessageLog::Read(const std::string& cursor, size_t max, ReadDone done) {
  std::optional<LogPosition> after;
  if (!cursor.empty()) {
    after = LogPosition::Parse(cursor);
    if (!after.has_value()) {
      std::move(done)(absl::InvalidArgumentError("cursor is not one the gateway issued"));
      return;
    }
  }
  Batch batch;
  bool expired = false;
  {
    absl::MutexLock lock(&mu_);
    TrimLocked(clock_.Now());
    // Past the newest position: not a cursor of this process but of one before a restart whose
    // clock was ahead. Reading after it would skip what is stored here until the clock caught up.
    expired = after.has_value() && (*after < dropped_through_ || last_ < *after);
  }
  if (expired) {
    std::move(done)(CursorExpired(cursor));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    // Positions only grow along the deque: find the first one past the cursor.
    auto it =
        after.has_value()
            ? std::upper_bound(entries_.begin(), entries_.end(), *after,
                               [](const LogPosition& p, const Entry& e) { return p < e.position; })
            : entries_.begin();
    for (; it != entries_.end() && batch.messages.size() < max; ++it) {
      batch.messages.push_back(LoggedMessage{it->position.ToString(), it->message});
    }
    batch.at_end = it == entries_.end();
  }
  batch.next_cursor = batch.messages.empty() ? cursor : batch.messages.back().cursor;
  std::move(done)(std::move(batch));
}

void MemoryMessageLog::Tail(TailDone done) {
  std::string tail;
  {
    absl::MutexLock lock(&mu_);
    if (!entries_.empty()) tail = entries_.back().position.ToString();
  }
  std::move(done)(std::move(tail));
}

size_t MemoryMessageLog::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace gateway
