// MessageLog in a Redis Stream that every replica shares: Twilio's POST may reach any replica and
// a subscriber may watch on any other.
//
// Keys (under key_prefix): "log", the stream, one entry per message (fields s, a, c, n, t, y, ts:
// sid, account, call, sequence number, content, content type, Twilio's timestamp in ms); and
// "sid:<KX...>", the entry ID a message SID was stored at, kept as long as the retention age, so
// a redelivery is recognized. One Lua script checks the SID, adds the entry and trims the stream
// by length (approximately, as XADD MAXLEN ~ does, in whole nodes) and by age (exactly, XTRIM
// MINID), atomically.
//
// A cursor is the entry's stream ID. A cursor older than the oldest entry retained is refused as
// expired: the stream keeps no record of what trimming removed, so the log cannot prove that
// nothing after the cursor went with it (the memory log can, and is exact).
//
// With replicas and WAIT (RedisClientOptions::replica_acks), an append counts only once the
// replicas hold it: otherwise UNAVAILABLE, the receiver answers 503, and Twilio's redelivery
// finds the message (or stores it again if a failover lost it).
//
// Each replica runs one tailing reader (XREAD BLOCK on its own connection) that wakes the
// listeners when any replica appends; reads and appends share another connection, pipelined.
//
// Thread-safety: as MessageLog. Callbacks run on the Redis client's worker thread.
#ifndef GATEWAY_MESSAGES_REDIS_MESSAGE_LOG_H_
#define GATEWAY_MESSAGES_REDIS_MESSAGE_LOG_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "messages/message_log.h"
#include "redis/redis_client.h"

namespace gateway {

struct RedisMessageLogOptions {
  RedisClientOptions redis;
  std::string key_prefix = "twgw:msg:";
  MessageRetention retention;
  // How long one XREAD of the tailing reader waits for new entries before asking again.
  absl::Duration tail_block = absl::Seconds(1);
};

class RedisMessageLog final : public MessageLog {
 public:
  explicit RedisMessageLog(RedisMessageLogOptions options);
  ~RedisMessageLog() override;

  void Append(CallMessage message, AppendDone done) override;
  void Read(const std::string& cursor, size_t max, ReadDone done) override;
  void Tail(TailDone done) override;
  void Shutdown() override;

 private:
  void RunTailer();

  const RedisMessageLogOptions options_;
  const std::string stream_key_;
  RedisClient client_;
  RedisClient tail_client_;  // XREAD BLOCK holds its connection.
  int append_script_;
  int read_script_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread tailer_;  // Last: starts once the rest is built.
};

}  // namespace gateway

#endif  // GATEWAY_MESSAGES_REDIS_MESSAGE_LOG_H_
