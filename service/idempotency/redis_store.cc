#include "idempotency/redis_store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace gateway {
namespace {

// Leases are kept in Redis' own clock (TIME), so replicas with skewed clocks agree on them.
// Milliseconds are formatted by hand: redis.call() would print a large Lua number as 1.7e+12.
constexpr char kNowMillis[] = R"lua(
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(n) return string.format('%.0f', n) end
)lua";

// KEYS[1] record; ARGV fingerprint, token, lease_ms, retention_ms. The fingerprint is compared
// first so that a key reused for another request is reported as such whatever state it is in.
// The record lives for the retention, not the lease: when its owner is gone, the record stays
// in flight and the next claim takes it over, with the age of the first claim. A record
// without a lease (an older gateway's) counts as held until its TTL.
constexpr char kClaimBody[] = R"lua(
local now = now_ms()
local r = redis.call('HMGET', KEYS[1], 'state', 'fp', 'outcome', 'lease', 'since')
if not r[1] then
  redis.call('HSET', KEYS[1], 'state', 'inflight', 'fp', ARGV[1], 'token', ARGV[2],
             'lease', ms(now + tonumber(ARGV[3])), 'since', ms(now))
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {'claimed'}
end
if r[2] ~= ARGV[1] then return {'conflict'} end
if r[1] == 'done' then return {'done', r[3] or ''} end
if not r[4] or tonumber(r[4]) > now then return {'inflight'} end
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'lease', ms(now + tonumber(ARGV[3])))
return {'takeover', ms(now - tonumber(r[5] or now))}
)lua";

// KEYS[1] record; ARGV token, lease_ms. Extends a claim still held; 0 hands it over now.
constexpr char kRenewBody[] = R"lua(
local r = redis.call('HMGET', KEYS[1], 'state', 'token')
if r[1] ~= 'inflight' or r[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lease', ms(now_ms() + tonumber(ARGV[2])))
return 1
)lua";

// KEYS[1] record; ARGV token, outcome, retention_ms. Returns 0, changing nothing, when the record
// is gone or belongs to a later claim (this claim's lease ran out).
constexpr char kCompleteScript[] = R"lua(
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'outcome', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
)lua";

// KEYS[1] record; ARGV token. Only an in-flight claim is dropped: a done record holds an outcome
// that retries must replay.
constexpr char kReleaseScript[] = R"lua(
local r = redis.call('HMGET', KEYS[1], 'state', 'token')
if r[1] == 'inflight' and r[2] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

struct Script {
  std::string source;
  std::string sha;  // From SCRIPT LOAD; empty until loaded once.
};

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

absl::string_view ReplyText(const redisReply& reply) {
  return reply.str == nullptr ? absl::string_view() : absl::string_view(reply.str, reply.len);
}

// PEXPIRE deletes a key at once for a TTL <= 0 and rejects one that overflows Redis' clock.
std::string TtlMillis(absl::Duration ttl) {
  constexpr int64_t kMaxMillis = int64_t{100} * 365 * 24 * 3600 * 1000;
  return absl::StrCat(std::clamp<int64_t>(absl::ToInt64Milliseconds(ttl), 1, kMaxMillis));
}

struct ClaimOp {
  std::string key;
  std::string fingerprint;
  absl::Duration lease;
  absl::Duration retention;
  IdempotencyStore::ClaimCallback done;
  std::string token = {};  // Drawn by the worker when it sends the claim.
};
struct RenewOp {
  std::string key;
  std::string token;
  absl::Duration lease;
  IdempotencyStore::DoneCallback done;
};
struct CompleteOp {
  std::string key;
  std::string token;
  std::string outcome;
  absl::Duration retention;
  IdempotencyStore::DoneCallback done;
};
struct ReleaseOp {
  std::string key;
  std::string token;
  IdempotencyStore::DoneCallback done;
};
using Op = std::variant<ClaimOp, RenewOp, CompleteOp, ReleaseOp>;

void Fail(Op& op, const absl::Status& status) {
  std::visit([&status](auto& o) { std::move(o.done)(status); }, op);
}

}  // namespace

class RedisIdempotencyStore::Worker {
 public:
  Worker(RedisStoreOptions options, Random& random)
      : options_(std::move(options)),
        random_(random),
        where_(absl::StrCat("redis at ", options_.host, ":", options_.port)),
        thread_([this] { Run(); }) {}

  ~Worker() { Stop(); }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  void Submit(Op op) {
    absl::Status refused;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        refused = Unavailable("store shutting down");
      } else if (queue_.size() >= options_.max_pending) {
        refused = Unavailable(absl::StrCat("too many pending calls (", options_.max_pending, ")"));
      } else {
        queue_.push_back(std::move(op));
        return;
      }
    }
    Fail(op, refused);
  }

  const std::string& key_prefix() const { return options_.key_prefix; }

 private:
  enum class Health { kUnknown, kUp, kDown };

  void Run() {
    // hiredis writes with write(), which raises SIGPIPE on a connection Redis reset; blocked in
    // this thread, the write fails with EPIPE instead of killing the process.
    sigset_t sigpipe;
    sigemptyset(&sigpipe);
    sigaddset(&sigpipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);

    std::deque<Op> abandoned;
    std::vector<Op> batch;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Worker* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return self->stopping_ || !self->queue_.empty();
            },
            this));
        if (stopping_) {
          abandoned.swap(queue_);
          break;
        }
        // Everything waiting goes in one pipeline: one round trip for the batch, not per call.
        while (!queue_.empty() && batch.size() < kMaxBatch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      ExecuteBatch(batch);
      batch.clear();
      DiscardPendingSigpipe(sigpipe);
    }
    const absl::Status shutting_down = Unavailable("store shutting down");
    for (Op& op : abandoned) {
      Fail(op, shutting_down);
    }
    context_.reset();
  }

  // Sends every call of `batch` (EVALSHA each), reads all the replies, then answers each call in
  // order. A reply of NOSCRIPT (Redis restarted or flushed its script cache) is retried alone with
  // EVAL; a broken connection fails the calls whose replies did not come.
  void ExecuteBatch(std::vector<Op>& batch) {
    absl::Status ready = EnsureConnected();
    if (ready.ok()) ready = EnsureScriptsLoaded();
    if (!ready.ok()) {
      for (Op& op : batch) Fail(op, ready);
      return;
    }
    std::vector<std::vector<std::string>> args(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      args[i] = std::visit([this](auto& o) { return this->Args(o); }, batch[i]);
      if (!Append(ScriptOf(batch[i]).sha, args[i])) {
        const absl::Status failed = ConnectionFailed();
        for (Op& op : batch) Fail(op, failed);
        return;
      }
    }
    // Every reply is read before a NOSCRIPT call goes again by its source: a command sent in
    // between would be answered after the rest of the pipeline, and each later call would take
    // its neighbour's reply.
    std::vector<absl::StatusOr<ReplyPtr>> replies;
    replies.reserve(batch.size());
    while (replies.size() < batch.size() && (replies.empty() || replies.back().ok())) {
      replies.push_back(ReadReply());
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      // A broken connection fails the calls whose replies did not come.
      absl::StatusOr<ReplyPtr> reply =
          i < replies.size() ? std::move(replies[i]) : replies.back().status();
      if (reply.ok() && (*reply)->type == REDIS_REPLY_ERROR &&
          absl::StartsWith(ReplyText(**reply), "NOSCRIPT")) {
        ScriptOf(batch[i]).sha.clear();  // Loaded again before the next batch.
        reply = context_ != nullptr ? EvalBySource(ScriptOf(batch[i]), args[i])
                                    : absl::StatusOr<ReplyPtr>(MarkDown("connection lost"));
      }
      if (reply.ok() && (*reply)->type == REDIS_REPLY_ERROR) {
        reply = ReplyError(**reply, "script");
      } else if (reply.ok()) {
        MarkUp();
      }
      std::visit([&reply](auto& o) { Handle(o, std::move(reply)); }, batch[i]);
    }
  }

  Script& ScriptOf(const Op& op) { return scripts_[op.index()]; }

  // The script's KEYS[1] and ARGV, as each script's comment lists them.
  std::vector<std::string> Args(ClaimOp& op) {
    op.token = NewToken();
    return {op.key, op.fingerprint, op.token, TtlMillis(op.lease), TtlMillis(op.retention)};
  }
  static std::vector<std::string> Args(const RenewOp& op) {
    return {op.key, op.token, absl::StrCat(absl::ToInt64Milliseconds(op.lease))};
  }
  static std::vector<std::string> Args(const CompleteOp& op) {
    return {op.key, op.token, op.outcome, TtlMillis(op.retention)};
  }
  static std::vector<std::string> Args(const ReleaseOp& op) { return {op.key, op.token}; }

  static void Handle(ClaimOp& op, absl::StatusOr<ReplyPtr> reply) {
    if (!reply.ok()) {
      std::move(op.done)(reply.status());
      return;
    }
    const redisReply& r = **reply;
    const absl::string_view verdict =
        r.type == REDIS_REPLY_ARRAY && r.elements >= 1 && r.element[0]->type == REDIS_REPLY_STRING
            ? ReplyText(*r.element[0])
            : absl::string_view();
    ClaimResult result;
    int64_t age_ms = 0;
    if (verdict == "claimed") {
      result.state = ClaimResult::State::kClaimed;
      result.token = op.token;
    } else if (verdict == "takeover" && r.elements >= 2 &&
               r.element[1]->type == REDIS_REPLY_STRING &&
               absl::SimpleAtoi(ReplyText(*r.element[1]), &age_ms)) {
      result.state = ClaimResult::State::kClaimed;
      result.token = op.token;
      result.taken_over_age = absl::Milliseconds(std::max<int64_t>(age_ms, 0));
    } else if (verdict == "inflight") {
      result.state = ClaimResult::State::kInFlight;
    } else if (verdict == "conflict") {
      result.state = ClaimResult::State::kConflict;
    } else if (verdict == "done" && r.elements >= 2 && r.element[1]->type == REDIS_REPLY_STRING) {
      result.state = ClaimResult::State::kDone;
      result.outcome = std::string(ReplyText(*r.element[1]));
    } else {
      std::move(op.done)(
          absl::InternalError("idempotency store: unexpected reply to the claim script"));
      return;
    }
    std::move(op.done)(std::move(result));
  }

  // Renew and Complete answer 1 when the claim was still held.
  static void HandleHeld(IdempotencyStore::DoneCallback& done, absl::StatusOr<ReplyPtr> reply) {
    if (!reply.ok()) {
      std::move(done)(reply.status());
    } else if ((*reply)->type == REDIS_REPLY_INTEGER && (*reply)->integer == 1) {
      std::move(done)(absl::OkStatus());
    } else {
      std::move(done)(absl::FailedPreconditionError(
          "idempotency claim lost: the record no longer holds this claim (its lease expired)"));
    }
  }
  static void Handle(RenewOp& op, absl::StatusOr<ReplyPtr> reply) {
    HandleHeld(op.done, std::move(reply));
  }
  static void Handle(CompleteOp& op, absl::StatusOr<ReplyPtr> reply) {
    HandleHeld(op.done, std::move(reply));
  }
  static void Handle(ReleaseOp& op, absl::StatusOr<ReplyPtr> reply) {
    std::move(op.done)(reply.ok() ? absl::OkStatus() : reply.status());
  }

  // Loads the scripts Redis does not know yet (after a connect, or after NOSCRIPT), so that the
  // batch can call them by SHA and send each script's source once per Redis lifetime.
  absl::Status EnsureScriptsLoaded() {
    for (Script& script : scripts_) {
      if (!script.sha.empty()) continue;
      absl::StatusOr<ReplyPtr> loaded = RoundTrip({"SCRIPT", "LOAD", script.source});
      if (!loaded.ok()) return loaded.status();
      if ((*loaded)->type != REDIS_REPLY_STRING) return ReplyError(**loaded, "SCRIPT LOAD");
      script.sha = std::string(ReplyText(**loaded));
    }
    return absl::OkStatus();
  }

  // One script call by its source (EVAL), alone: the NOSCRIPT fallback. The reply is checked
  // by the caller, as a batch reply is.
  absl::StatusOr<ReplyPtr> EvalBySource(const Script& script,
                                        const std::vector<std::string>& args) {
    std::vector<absl::string_view> argv = {"EVAL", script.source, "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RoundTrip(argv);
  }

  // Queues EVALSHA sha 1 args... in hiredis' output buffer; sent by the first read.
  bool Append(const std::string& sha, const std::vector<std::string>& args) {
    std::vector<absl::string_view> argv = {"EVALSHA", sha, "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    return AppendArgv(argv);
  }

  absl::Status EnsureConnected() {
    if (context_ != nullptr) {
      return absl::OkStatus();
    }
    const auto now = std::chrono::steady_clock::now();
    if (last_connect_attempt_.has_value() &&
        now - *last_connect_attempt_ < absl::ToChronoNanoseconds(options_.reconnect_interval)) {
      // Fails fast instead of hammering a Redis that just refused us.
      return Unavailable(absl::StrCat(last_error_, " (will reconnect)"));
    }
    last_connect_attempt_ = now;

    ContextPtr context(redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                               absl::ToTimeval(options_.connect_timeout)));
    if (context == nullptr) {
      return MarkDown("cannot allocate a connection");
    }
    if (context->err != 0) {
      return MarkDown(absl::StrCat("connect failed: ", context->errstr));
    }
    if (redisSetTimeout(context.get(), absl::ToTimeval(options_.command_timeout)) != REDIS_OK) {
      return MarkDown(absl::StrCat("cannot set the command timeout: ", context->errstr));
    }
    context_ = std::move(context);
    if (options_.password.has_value()) {
      absl::StatusOr<ReplyPtr> auth = RoundTrip({"AUTH", *options_.password});
      if (!auth.ok()) {
        return auth.status();
      }
      if ((*auth)->type == REDIS_REPLY_ERROR) {
        // Redis' refusal ("WRONGPASS ...") never echoes the password.
        absl::Status refused = ReplyError(**auth, "AUTH");
        context_.reset();
        return refused;
      }
    }
    return absl::OkStatus();
  }

  bool AppendArgv(const std::vector<absl::string_view>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (absl::string_view arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    return redisAppendCommandArgv(context_.get(), static_cast<int>(argv.size()), argv.data(),
                                  lengths.data()) == REDIS_OK;
  }

  // Waits (up to command_timeout) for the next reply, flushing what was appended first. A
  // transport failure drops the connection, since a late reply would otherwise answer the next
  // command.
  absl::StatusOr<ReplyPtr> ReadReply() {
    errno = 0;
    void* raw = nullptr;
    if (redisGetReply(context_.get(), &raw) == REDIS_OK && raw != nullptr) {
      return ReplyPtr(static_cast<redisReply*>(raw));
    }
    return ConnectionFailed();
  }

  absl::Status ConnectionFailed() {
    const bool timed_out =
        context_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    const std::string detail =
        timed_out ? absl::StrCat("no reply within ", absl::FormatDuration(options_.command_timeout))
                  : absl::StrCat("connection failed: ", context_->errstr);
    context_.reset();
    // A new connection may reach a restarted Redis that has forgotten the scripts.
    for (Script& script : scripts_) script.sha.clear();
    return MarkDown(detail);
  }

  // Sends one command and waits for its reply.
  absl::StatusOr<ReplyPtr> RoundTrip(const std::vector<absl::string_view>& args) {
    if (!AppendArgv(args)) return ConnectionFailed();
    return ReadReply();
  }

  // An error reply: Redis is reachable but cannot serve us (NOAUTH, LOADING, OOM, ...).
  absl::Status ReplyError(const redisReply& reply, absl::string_view command) {
    return MarkDown(absl::StrCat(
        command,
        " failed: ", reply.type == REDIS_REPLY_ERROR ? ReplyText(reply) : "unexpected reply type"));
  }

  // Logs once per transition, not per failed call.
  absl::Status MarkDown(std::string detail) {
    if (health_ != Health::kDown) {
      Log(LogLevel::kWarning, "idempotency store unavailable",
          {{"store", where_}, {"error", detail}});
      health_ = Health::kDown;
    }
    last_error_ = std::move(detail);
    return Unavailable(last_error_);
  }

  void MarkUp() {
    if (health_ == Health::kDown) {
      Log(LogLevel::kWarning, "idempotency store recovered", {{"store", where_}});
    }
    health_ = Health::kUp;
  }

  absl::Status Unavailable(absl::string_view detail) const {
    return absl::UnavailableError(
        absl::StrCat("idempotency store (", where_, ") unavailable: ", detail));
  }

  // 128 random bits: unguessable, so only the claim's holder can complete or release it.
  std::string NewToken() { return random_.HexId128(); }

  static void DiscardPendingSigpipe(const sigset_t& sigpipe) {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{};
      sigtimedwait(&sigpipe, nullptr, &zero);
    }
  }

  const RedisStoreOptions options_;
  Random& random_;
  const std::string where_;  // "redis at host:port", for messages; never holds the password.

  absl::Mutex mu_;
  std::deque<Op> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Owned by the worker thread.
  ContextPtr context_;
  std::optional<std::chrono::steady_clock::time_point> last_connect_attempt_;
  std::string last_error_;
  Health health_ = Health::kUnknown;
  static constexpr size_t kMaxBatch = 256;  // Calls sent in one pipeline at most.
  // In Op's order: ScriptOf() indexes it by the alternative.
  std::array<Script, std::variant_size_v<Op>> scripts_ = {
      Script{absl::StrCat(kNowMillis, kClaimBody), {}},
      Script{absl::StrCat(kNowMillis, kRenewBody), {}}, Script{kCompleteScript, {}},
      Script{kReleaseScript, {}}};

  std::thread thread_;  // Last: starts once everything above is constructed.
};

RedisIdempotencyStore::RedisIdempotencyStore(RedisStoreOptions options, Random& random)
    : worker_(std::make_unique<Worker>(std::move(options), random)) {}

RedisIdempotencyStore::~RedisIdempotencyStore() = default;

void RedisIdempotencyStore::Shutdown() { worker_->Stop(); }

void RedisIdempotencyStore::Claim(const std::string& key, const std::string& fingerprint,
                                  absl::Duration lease, absl::Duration retention,
                                  ClaimCallback done) {
  worker_->Submit(
      ClaimOp{worker_->key_prefix() + key, fingerprint, lease, retention, std::move(done)});
}

void RedisIdempotencyStore::Renew(const std::string& key, const std::string& token,
                                  absl::Duration lease, DoneCallback done) {
  worker_->Submit(RenewOp{worker_->key_prefix() + key, token, lease, std::move(done)});
}

void RedisIdempotencyStore::Complete(const std::string& key, const std::string& token,
                                     const std::string& outcome, absl::Duration retention,
                                     DoneCallback done) {
  worker_->Submit(
      CompleteOp{worker_->key_prefix() + key, token, outcome, retention, std::move(done)});
}

void RedisIdempotencyStore::Release(const std::string& key, const std::string& token,
                                    DoneCallback done) {
  worker_->Submit(ReleaseOp{worker_->key_prefix() + key, token, std::move(done)});
}

}  // namespace gateway
