#include "messages/redis_message_log.h"

#include <future>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace gateway {
namespace {

// KEYS[1] stream, KEYS[2] the SID's key; ARGV max_len, max_age_ms, then the entry's fields and
// values. Redis' clock (TIME) dates the age trim, as it dates the entry IDs. Length is trimmed
// approximately (whole nodes, cheap); age exactly, so that nothing older than the retention is
// ever served.
constexpr char kAppendScript[] = R"lua(
local existing = redis.call('GET', KEYS[2])
if existing then return {'duplicate', existing} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
local t = redis.call('TIME')
local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[2])
if oldest > 0 then
  redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f', oldest))
end
redis.call('SET', KEYS[2], id, 'PX', ARGV[2])
return {'stored', id}
)lua";

// KEYS[1] stream; ARGV start ('-' or '(<cursor>'), count. Returns the oldest entry's ID, the
// entries, the newest entry's ID, and (for an empty stream only) the last ID it ever generated,
// all from one moment.
constexpr char kReadScript[] = R"lua(
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local generated = ''
if not first[1] and redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then generated = info[i + 1] end
  end
end
return {first[1] and first[1][1] or '', entries, newest[1] and newest[1][1] or '', generated}
)lua";

absl::Status Unexpected(absl::string_view what) {
  return absl::InternalError(absl::StrCat("message log: unexpected Redis reply to ", what));
}

bool IsString(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

// One stream entry: [id, [field, value, ...]].
std::optional<LoggedMessage> ParseEntry(const redisReply& entry) {
  if (entry.type != REDIS_REPLY_ARRAY || entry.elements != 2 || !IsString(entry.element[0]) ||
      entry.element[1]->type != REDIS_REPLY_ARRAY) {
    return std::nullopt;
  }
  LoggedMessage logged;
  logged.cursor = std::string(RedisReplyText(*entry.element[0]));
  const redisReply& fields = *entry.element[1];
  CallMessage& m = logged.message;
  for (size_t i = 0; i + 1 < fields.elements; i += 2) {
    if (!IsString(fields.element[i]) || !IsString(fields.element[i + 1])) return std::nullopt;
    const absl::string_view name = RedisReplyText(*fields.element[i]);
    std::string value(RedisReplyText(*fields.element[i + 1]));
    if (name == "s") {
      m.sid = std::move(value);
    } else if (name == "a") {
      m.account_sid = std::move(value);
    } else if (name == "c") {
      m.call_sid = std::move(value);
    } else if (name == "n") {
      if (!absl::SimpleAtoi(value, &m.sequence_number)) return std::nullopt;
    } else if (name == "t") {
      m.content = std::move(value);
    } else if (name == "y") {
      m.content_type = std::move(value);
    } else if (name == "ts" && !value.empty()) {
      int64_t millis = 0;
      if (!absl::SimpleAtoi(value, &millis)) return std::nullopt;
      m.timestamp = absl::FromUnixMillis(millis);
    }
  }
  return logged;
}

// The cursor's message has left the retention, as far as the stream can tell (see the header).
bool Expired(const std::string& cursor, absl::string_view first, absl::string_view generated) {
  if (cursor.empty()) return false;
  const std::optional<LogPosition> at = LogPosition::Parse(cursor);
  const std::optional<LogPosition> oldest = LogPosition::Parse(first.empty() ? generated : first);
  if (!at.has_value() || !oldest.has_value()) return false;
  // With entries, one older than the oldest may have had successors trimmed; with none, any
  // cursor before the last ID generated had successors, all trimmed.
  return *at < *oldest;
}

}  // namespace

RedisMessageLog::RedisMessageLog(RedisMessageLogOptions options)
    : options_(std::move(options)),
      stream_key_(options_.key_prefix + "log"),
      client_([this] {
        RedisClientOptions redis = options_.redis;
        redis.name = "message log";
        return redis;
      }()),
      tail_client_([this] {
        RedisClientOptions redis = options_.redis;
        redis.name = "message log reader";
        redis.command_timeout = options_.tail_block + redis.command_timeout;
        return redis;
      }()),
      append_script_(client_.AddScript(kAppendScript)),
      read_script_(client_.AddScript(kReadScript, RedisAccess::kRead)),
      tailer_([this] { RunTailer(); }) {}

RedisMessageLog::~RedisMessageLog() { Shutdown(); }

void RedisMessageLog::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  tail_client_.Shutdown();
  if (tailer_.joinable()) tailer_.join();
  client_.Shutdown();
}

void RedisMessageLog::Append(CallMessage message, AppendDone done) {
  const MessageRetention& retention = options_.retention;
  std::vector<std::string> args = {
      absl::StrCat(retention.max_messages),
      absl::StrCat(std::max<int64_t>(absl::ToInt64Milliseconds(retention.max_age), 1)),
      "s",
      message.sid,
      "a",
      std::move(message.account_sid),
      "c",
      std::move(message.call_sid),
      "n",
      absl::StrCat(message.sequence_number),
      "t",
      std::move(message.content),
      "y",
      std::move(message.content_type),
      "ts",
      message.timestamp.has_value() ? absl::StrCat(absl::ToUnixMillis(*message.timestamp)) : ""};
  client_.Eval(
      append_script_, {stream_key_, absl::StrCat(options_.key_prefix, "sid:", message.sid)},
      std::move(args), [this, done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok()) {
          std::move(done)(reply.status());
          return;
        }
        const redisReply& r = **reply;
        if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 || !IsString(r.element[0]) ||
            !IsString(r.element[1])) {
          std::move(done)(Unexpected("the append script"));
          return;
        }
        const bool duplicate = RedisReplyText(*r.element[0]) == "duplicate";
        std::move(done)(Appended{std::string(RedisReplyText(*r.element[1])), duplicate});
        if (!duplicate) NotifyAppended();
      });
}

void RedisMessageLog::Read(const std::string& cursor, size_t max, ReadDone done) {
  if (!cursor.empty() && !LogPosition::Parse(cursor).has_value()) {
    std::move(done)(absl::InvalidArgumentError("cursor is not one the gateway issued"));
    return;
  }
  client_.Eval(
      read_script_, {stream_key_},
      {cursor.empty() ? "-" : absl::StrCat("(", cursor), absl::StrCat(max)},
      [cursor, done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok()) {
          std::move(done)(reply.status());
          return;
        }
        const redisReply& r = **reply;
        if (r.type != REDIS_REPLY_ARRAY || r.elements != 4 || !IsString(r.element[0]) ||
            r.element[1]->type != REDIS_REPLY_ARRAY || !IsString(r.element[2]) ||
            !IsString(r.element[3])) {
          std::move(done)(Unexpected("the read script"));
          return;
        }
        if (Expired(cursor, RedisReplyText(*r.element[0]), RedisReplyText(*r.element[3]))) {
          std::move(done)(CursorExpired(cursor));
          return;
        }
        Batch batch;
        const redisReply& entries = *r.element[1];
        batch.messages.reserve(entries.elements);
        for (size_t i = 0; i < entries.elements; ++i) {
          std::optional<LoggedMessage> logged = ParseEntry(*entries.element[i]);
          if (!logged.has_value()) {
            std::move(done)(Unexpected("XRANGE (an entry the gateway did not write)"));
            return;
          }
          batch.messages.push_back(*std::move(logged));
        }
        const absl::string_view newest = RedisReplyText(*r.element[2]);
        batch.at_end = batch.messages.empty() || batch.messages.back().cursor == newest;
        batch.next_cursor = batch.messages.empty() ? cursor : batch.messages.back().cursor;
        std::move(done)(std::move(batch));
      });
}

void RedisMessageLog::Tail(TailDone done) {
  client_.Command(
      {"XREVRANGE", stream_key_, "+", "-", "COUNT", "1"},
      [done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok()) {
          std::move(done)(reply.status());
          return;
        }
        const redisReply& r = **reply;
        if (r.type != REDIS_REPLY_ARRAY) {
          std::move(done)(Unexpected("XREVRANGE"));
          return;
        }
        if (r.elements == 0) {
          std::move(done)(std::string());
          return;
        }
        std::optional<LoggedMessage> newest = ParseEntry(*r.element[0]);
        if (!newest.has_value()) {
          std::move(done)(Unexpected("XREVRANGE"));
          return;
        }
        std::move(done)(std::move(newest->cursor));
      },
      RedisAccess::kRead);
}

// Follows the stream and wakes the listeners for every replica's appends. "$" only on the first
// read: after that the last ID seen, so that nothing added between two reads goes unnoticed.
void RedisMessageLog::RunTailer() {
  std::string after = "$";
  const std::string block = absl::StrCat(absl::ToInt64Milliseconds(options_.tail_block));
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    std::promise<absl::StatusOr<RedisReply>> answered;
    std::future<absl::StatusOr<RedisReply>> reply = answered.get_future();
    tail_client_.Command(
        {"XREAD", "COUNT", "100", "BLOCK", block, "STREAMS", stream_key_, after},
        [&answered](absl::StatusOr<RedisReply> r) { answered.set_value(std::move(r)); },
        RedisAccess::kRead);
    absl::StatusOr<RedisReply> r = reply.get();
    bool appended = false;
    if (r.ok() && (*r)->type == REDIS_REPLY_ARRAY && (*r)->elements == 1) {
      // [[stream, [[id, fields], ...]]]
      const redisReply& stream = *(*r)->element[0];
      if (stream.type == REDIS_REPLY_ARRAY && stream.elements == 2 &&
          stream.element[1]->type == REDIS_REPLY_ARRAY && stream.element[1]->elements > 0) {
        const redisReply& entries = *stream.element[1];
        const redisReply& last = *entries.element[entries.elements - 1];
        if (last.type == REDIS_REPLY_ARRAY && last.elements >= 1 && IsString(last.element[0])) {
          after = std::string(RedisReplyText(*last.element[0]));
          appended = true;
        }
      }
    }
    if (appended) {
      NotifyAppended();
      continue;
    }
    if (!r.ok() || (*r)->type != REDIS_REPLY_NIL) {
      // Down, or an answer not understood: wait a little rather than spin on a failing Redis,
      // and wake the listeners, whose own reads will report the outage or find what came.
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Milliseconds(500));
      if (stopping_) return;
      if (!r.ok()) continue;
    }
  }
}

}  // namespace gateway
