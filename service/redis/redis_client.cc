#include "redis/redis_client.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <deque>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/file.h"
#include "common/log.h"

namespace gateway {
namespace {

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct Script {
  std::string source;
  std::string sha;  // From SCRIPT LOAD; empty until loaded on this connection.
};

// One queued call: a script (EVALSHA sha numkeys keys... args...) or a plain command.
struct Call {
  static constexpr int kNoScript = -1;
  int script = kNoScript;
  size_t num_keys = 0;            // Scripts: the first num_keys of `argv` are KEYS.
  std::vector<std::string> argv;  // Scripts: keys then args; commands: the whole command.
  RedisCallback done;
};

// Error replies that say this server cannot serve now, whatever the command was.
bool IsServerStateError(absl::string_view error) {
  static constexpr absl::string_view kPrefixes[] = {
      "LOADING", "READONLY", "MASTERDOWN", "NOAUTH",   "WRONGPASS",  "NOPERM",
      "OOM",     "BUSY ",    "MISCONF",    "TRYAGAIN", "NOREPLICAS", "CLUSTERDOWN"};
  for (absl::string_view prefix : kPrefixes) {
    if (absl::StartsWith(error, prefix)) return true;
  }
  return absl::StartsWith(error, "ERR max number of clients");
}

}  // namespace

absl::string_view RedisReplyText(const redisReply& reply) {
  return reply.str == nullptr ? absl::string_view() : absl::string_view(reply.str, reply.len);
}

class RedisClient::Worker {
 public:
  explicit Worker(RedisClientOptions options)
      : options_(std::move(options)),
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

  int AddScript(std::string source) {
    absl::MutexLock lock(&mu_);
    script_sources_.push_back(std::move(source));
    return static_cast<int>(script_sources_.size()) - 1;
  }

  void Submit(Call call) {
    absl::Status refused;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        refused = Unavailable("shutting down");
      } else if (call.script != Call::kNoScript &&
                 (call.script < 0 || static_cast<size_t>(call.script) >= script_sources_.size())) {
        refused = absl::InvalidArgumentError(
            absl::StrCat(options_.name, ": no script ", call.script, " was added"));
      } else if (queue_.size() >= options_.max_pending) {
        refused = Unavailable(absl::StrCat("too many pending calls (", options_.max_pending, ")"));
      } else {
        queue_.push_back(std::move(call));
        return;
      }
    }
    std::move(call.done)(refused);
  }

 private:
  enum class Health { kUnknown, kUp, kDown };

  void Run() {
    // hiredis writes with write(), which raises SIGPIPE on a connection Redis reset; blocked in
    // this thread, the write fails with EPIPE instead of killing the process.
    sigset_t sigpipe;
    sigemptyset(&sigpipe);
    sigaddset(&sigpipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);

    std::deque<Call> abandoned;
    std::vector<Call> batch;
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
        while (scripts_.size() < script_sources_.size()) {
          scripts_.push_back(Script{script_sources_[scripts_.size()], {}});
        }
      }
      ExecuteBatch(batch);
      batch.clear();
      DiscardPendingSigpipe(sigpipe);
    }
    const absl::Status shutting_down = Unavailable("shutting down");
    for (Call& call : abandoned) {
      std::move(call.done)(shutting_down);
    }
    context_.reset();
  }

  // Sends every call of `batch`, reads all the replies, then answers each call in order. A reply
  // of NOSCRIPT is retried alone with EVAL; a broken connection fails the calls whose replies
  // did not come.
  void ExecuteBatch(std::vector<Call>& batch) {
    absl::Status ready = EnsureConnected();
    if (ready.ok()) ready = EnsureScriptsLoaded();
    if (!ready.ok()) {
      for (Call& call : batch) std::move(call.done)(ready);
      return;
    }
    for (const Call& call : batch) {
      if (!Append(call)) {
        const absl::Status failed = ConnectionFailed();
        for (Call& c : batch) std::move(c.done)(failed);
        return;
      }
    }
    // Every reply is read before a NOSCRIPT call goes again by its source: a command sent in
    // between would be answered after the rest of the pipeline, and each later call would take
    // its neighbour's reply.
    std::vector<absl::StatusOr<RedisReply>> replies;
    replies.reserve(batch.size());
    while (replies.size() < batch.size() && (replies.empty() || replies.back().ok())) {
      replies.push_back(ReadReply());
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      Call& call = batch[i];
      // A broken connection fails the calls whose replies did not come.
      absl::StatusOr<RedisReply> reply =
          i < replies.size() ? std::move(replies[i]) : replies.back().status();
      if (call.script != Call::kNoScript && reply.ok() && (*reply)->type == REDIS_REPLY_ERROR &&
          absl::StartsWith(RedisReplyText(**reply), "NOSCRIPT")) {
        Script& script = scripts_[call.script];
        script.sha.clear();  // Loaded again before the next batch.
        reply = context_ != nullptr ? EvalBySource(script.source, call)
                                    : absl::StatusOr<RedisReply>(MarkDown("connection lost"));
      }
      std::move(call.done)(Classify(call, std::move(reply)));
    }
  }

  // Applies the error-reply rules of the header and tracks health.
  absl::StatusOr<RedisReply> Classify(const Call& call, absl::StatusOr<RedisReply> reply) {
    if (!reply.ok()) return reply;
    if ((*reply)->type != REDIS_REPLY_ERROR) {
      MarkUp();
      return reply;
    }
    const absl::string_view error = RedisReplyText(**reply);
    const absl::string_view command =
        call.script != Call::kNoScript ? "script" : absl::string_view(call.argv.front());
    if (IsServerStateError(error)) {
      absl::Status status = ReplyError(**reply, command);
      // A demoted master answers READONLY to writes: the next call connects afresh (and, with
      // Sentinel, finds the new master).
      if (absl::StartsWith(error, "READONLY")) DropConnection();
      return status;
    }
    if (call.script != Call::kNoScript) return ReplyError(**reply, command);
    MarkUp();  // Redis answered, with an answer the caller reads.
    return reply;
  }

  // Loads the scripts Redis does not know yet (after a connect, or after NOSCRIPT), so that the
  // batch can call them by SHA and send each script's source once per Redis lifetime.
  absl::Status EnsureScriptsLoaded() {
    for (Script& script : scripts_) {
      if (!script.sha.empty()) continue;
      absl::StatusOr<RedisReply> loaded = RoundTrip({"SCRIPT", "LOAD", script.source});
      if (!loaded.ok()) return loaded.status();
      if ((*loaded)->type != REDIS_REPLY_STRING) return ReplyError(**loaded, "SCRIPT LOAD");
      script.sha = std::string(RedisReplyText(**loaded));
    }
    return absl::OkStatus();
  }

  // One script call by its source (EVAL), alone: the NOSCRIPT fallback.
  absl::StatusOr<RedisReply> EvalBySource(const std::string& source, const Call& call) {
    const std::string num_keys = absl::StrCat(call.num_keys);
    std::vector<absl::string_view> argv = {"EVAL", source, num_keys};
    argv.insert(argv.end(), call.argv.begin(), call.argv.end());
    return RoundTrip(argv);
  }

  // Queues the call in hiredis' output buffer; sent by the first read.
  bool Append(const Call& call) {
    if (call.script == Call::kNoScript) {
      return AppendArgv(std::vector<absl::string_view>(call.argv.begin(), call.argv.end()));
    }
    const std::string num_keys = absl::StrCat(call.num_keys);
    std::vector<absl::string_view> argv = {"EVALSHA", scripts_[call.script].sha, num_keys};
    argv.insert(argv.end(), call.argv.begin(), call.argv.end());
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
    absl::StatusOr<std::optional<std::string>> password = Password();
    if (!password.ok()) return password.status();
    context_ = std::move(context);
    if (password->has_value()) {
      std::vector<absl::string_view> auth = {"AUTH"};
      if (options_.username.has_value()) auth.push_back(*options_.username);
      auth.push_back(**password);
      absl::StatusOr<RedisReply> reply = RoundTrip(auth);
      if (!reply.ok()) {
        return reply.status();
      }
      if ((*reply)->type == REDIS_REPLY_ERROR) {
        // Redis' refusal ("WRONGPASS ...") never echoes the password.
        absl::Status refused = ReplyError(**reply, "AUTH");
        DropConnection();
        return refused;
      }
    }
    return absl::OkStatus();
  }

  // Read at each connect: a file mounted from a Secret changes in place when it is rotated.
  absl::StatusOr<std::optional<std::string>> Password() {
    if (options_.password_file.empty()) return options_.password;
    std::optional<std::string> read = ReadFile(options_.password_file);
    if (!read.has_value()) {
      return MarkDown(absl::StrCat("cannot read the password file ", options_.password_file));
    }
    return std::string(absl::StripTrailingAsciiWhitespace(*read));
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
  absl::StatusOr<RedisReply> ReadReply() {
    errno = 0;
    void* raw = nullptr;
    if (redisGetReply(context_.get(), &raw) == REDIS_OK && raw != nullptr) {
      return RedisReply(static_cast<redisReply*>(raw));
    }
    return ConnectionFailed();
  }

  absl::Status ConnectionFailed() {
    const bool timed_out =
        context_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    const std::string detail =
        timed_out ? absl::StrCat("no reply within ", absl::FormatDuration(options_.command_timeout))
                  : absl::StrCat("connection failed: ", context_->errstr);
    DropConnection();
    return MarkDown(detail);
  }

  void DropConnection() {
    context_.reset();
    // A new connection may reach a restarted (or another) Redis that does not know the scripts.
    for (Script& script : scripts_) script.sha.clear();
  }

  // Sends one command and waits for its reply.
  absl::StatusOr<RedisReply> RoundTrip(const std::vector<absl::string_view>& args) {
    if (!AppendArgv(args)) return ConnectionFailed();
    return ReadReply();
  }

  // An error reply: Redis is reachable but cannot serve us (NOAUTH, LOADING, OOM, ...).
  absl::Status ReplyError(const redisReply& reply, absl::string_view command) {
    return MarkDown(absl::StrCat(
        command, " failed: ",
        reply.type == REDIS_REPLY_ERROR ? RedisReplyText(reply) : "unexpected reply type"));
  }

  // Logs once per transition, not per failed call.
  absl::Status MarkDown(std::string detail) {
    if (health_ != Health::kDown) {
      Log(LogLevel::kWarning, absl::StrCat(options_.name, " unavailable"),
          {{"redis", where_}, {"error", detail}});
      health_ = Health::kDown;
    }
    last_error_ = std::move(detail);
    return Unavailable(last_error_);
  }

  void MarkUp() {
    if (health_ == Health::kDown) {
      Log(LogLevel::kWarning, absl::StrCat(options_.name, " recovered"), {{"redis", where_}});
    }
    health_ = Health::kUp;
  }

  absl::Status Unavailable(absl::string_view detail) const {
    return absl::UnavailableError(
        absl::StrCat(options_.name, " (", where_, ") unavailable: ", detail));
  }

  static void DiscardPendingSigpipe(const sigset_t& sigpipe) {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{};
      sigtimedwait(&sigpipe, nullptr, &zero);
    }
  }

  const RedisClientOptions options_;
  const std::string where_;  // "redis at host:port", for messages; never holds the password.

  absl::Mutex mu_;
  std::deque<Call> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> script_sources_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Owned by the worker thread.
  ContextPtr context_;
  std::vector<Script> scripts_;  // Copied from script_sources_ when a batch is taken.
  std::optional<std::chrono::steady_clock::time_point> last_connect_attempt_;
  std::string last_error_;
  Health health_ = Health::kUnknown;
  static constexpr size_t kMaxBatch = 256;  // Calls sent in one pipeline at most.

  std::thread thread_;  // Last: starts once everything above is constructed.
};

RedisClient::RedisClient(RedisClientOptions options)
    : worker_(std::make_unique<Worker>(std::move(options))) {}

RedisClient::~RedisClient() = default;

int RedisClient::AddScript(std::string source) { return worker_->AddScript(std::move(source)); }

void RedisClient::Eval(int script, std::vector<std::string> keys, std::vector<std::string> args,
                       RedisCallback done) {
  Call call{
      .script = script, .num_keys = keys.size(), .argv = std::move(keys), .done = std::move(done)};
  call.argv.insert(call.argv.end(), std::make_move_iterator(args.begin()),
                   std::make_move_iterator(args.end()));
  worker_->Submit(std::move(call));
}

void RedisClient::Command(std::vector<std::string> argv, RedisCallback done) {
  if (argv.empty()) {
    std::move(done)(absl::InvalidArgumentError("redis client: empty command"));
    return;
  }
  worker_->Submit(Call{
      .script = Call::kNoScript, .num_keys = 0, .argv = std::move(argv), .done = std::move(done)});
}

void RedisClient::Shutdown() { worker_->Stop(); }

}  // namespace gateway
