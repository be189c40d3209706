#include "redis/redis_client.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <iterator>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
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
  RedisAccess access = RedisAccess::kWrite;
  std::string sha = {};  // From SCRIPT LOAD; empty until loaded on this connection.
};

// One queued call: a script (EVALSHA sha numkeys keys... args...) or a plain command.
struct Call {
  static constexpr int kNoScript = -1;
  int script = kNoScript;
  size_t num_keys = 0;            // Scripts: the first num_keys of `argv` are KEYS.
  std::vector<std::string> argv;  // Scripts: keys then args; commands: the whole command.
  RedisAccess access = RedisAccess::kWrite;  // Scripts: the script's.
  RedisCallback done;
};

// A connection's transport error, as text (the caller decides whether it marks the client down).
std::string TransportError(const redisContext& context, absl::Duration timeout) {
  const bool timed_out = context.err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
  return timed_out ? absl::StrCat("no reply within ", absl::FormatDuration(timeout))
                   : absl::StrCat("connection failed: ", context.errstr);
}

std::string SentinelList(const std::vector<HostPort>& sentinels) {
  std::string out;
  for (const HostPort& sentinel : sentinels) {
    absl::StrAppend(&out, out.empty() ? "" : ",", JoinHostPort(sentinel.host, sentinel.port));
  }
  return out;
}

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
        where_(options_.sentinels.empty()
                   ? absl::StrCat("redis at ", JoinHostPort(options_.host, options_.port))
                   : absl::StrCat("redis master ", options_.master_name, " via sentinels ",
                                  SentinelList(options_.sentinels))),
        sentinels_(options_.sentinels),
        thread_([this] { Run(); }) {}

  ~Worker() { Stop(); }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  int AddScript(std::string source, RedisAccess access) {
    absl::MutexLock lock(&mu_);
    added_scripts_.push_back(Script{.source = std::move(source), .access = access});
    return static_cast<int>(added_scripts_.size()) - 1;
  }

  void Submit(Call call) {
    absl::Status refused;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        refused = Unavailable("shutting down");
      } else if (call.script != Call::kNoScript &&
                 (call.script < 0 || static_cast<size_t>(call.script) >= added_scripts_.size())) {
        refused = absl::InvalidArgumentError(
            absl::StrCat(options_.name, ": no script ", call.script, " was added"));
      } else if (queue_.size() >= options_.max_pending) {
        refused = Unavailable(absl::StrCat("too many pending calls (", options_.max_pending, ")"));
      } else {
        if (call.script != Call::kNoScript) call.access = added_scripts_[call.script].access;
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
        while (scripts_.size() < added_scripts_.size()) {
          scripts_.push_back(added_scripts_[scripts_.size()]);
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

  // Sends every call of `batch` (and WAIT after them when the batch writes and replica_acks is
  // set), reads all the replies, then answers each call in order. A reply of NOSCRIPT is retried
  // alone with EVAL; a broken connection fails the calls whose replies did not come.
  void ExecuteBatch(std::vector<Call>& batch) {
    absl::Status ready = EnsureConnected();
    if (ready.ok()) ready = EnsureScriptsLoaded();
    if (!ready.ok()) {
      for (Call& call : batch) std::move(call.done)(ready);
      return;
    }
    const bool wait = options_.replica_acks > 0 &&
                      std::any_of(batch.begin(), batch.end(),
                                  [](const Call& c) { return c.access == RedisAccess::kWrite; });
    bool appended = true;
    for (const Call& call : batch) appended = appended && Append(call);
    if (wait) appended = appended && AppendArgv(WaitCommand());
    if (!appended) {
      const absl::Status failed = ConnectionFailed();
      for (Call& c : batch) std::move(c.done)(failed);
      return;
    }
    // Every reply is read before a NOSCRIPT call goes again by its source: a command sent in
    // between would be answered after the rest of the pipeline, and each later call would take
    // its neighbour's reply.
    const size_t expected = batch.size() + (wait ? 1 : 0);
    std::vector<absl::StatusOr<RedisReply>> replies;
    replies.reserve(expected);
    while (replies.size() < expected && (replies.empty() || replies.back().ok())) {
      replies.push_back(ReadReply());
    }
    // Whether the batch's writes reached replica_acks replicas.
    absl::Status replicated = absl::OkStatus();
    if (wait) {
      replicated = replies.size() == expected ? CheckWait(std::move(replies.back()))
                                              : replies.back().status();
      if (replies.size() == expected) replies.pop_back();
    }
    // A broken connection fails the calls whose replies did not come. Kept apart: the last
    // reply is moved out in the loop below.
    const absl::Status broken = replies.back().status();
    for (size_t i = 0; i < batch.size(); ++i) {
      Call& call = batch[i];
      absl::StatusOr<RedisReply> reply = i < replies.size() ? std::move(replies[i]) : broken;
      absl::Status durable = replicated;
      if (call.script != Call::kNoScript && reply.ok() && (*reply)->type == REDIS_REPLY_ERROR &&
          absl::StartsWith(RedisReplyText(**reply), "NOSCRIPT")) {
        Script& script = scripts_[call.script];
        script.sha.clear();  // Loaded again before the next batch.
        reply = context_ != nullptr ? EvalBySource(script.source, call)
                                    : absl::StatusOr<RedisReply>(MarkDown("connection lost"));
        // This write came after the batch's WAIT: it needs its own.
        if (options_.replica_acks > 0 && call.access == RedisAccess::kWrite && reply.ok() &&
            context_ != nullptr) {
          durable = CheckWait(RoundTrip(WaitCommand()));
        }
      }
      reply = Classify(call, std::move(reply), replicated.ok());
      if (reply.ok() && call.access == RedisAccess::kWrite && !durable.ok()) reply = durable;
      std::move(call.done)(std::move(reply));
    }
  }

  std::vector<absl::string_view> WaitCommand() {
    wait_args_[0] = absl::StrCat(options_.replica_acks);
    wait_args_[1] = absl::StrCat(absl::ToInt64Milliseconds(options_.replica_ack_timeout));
    return {"WAIT", wait_args_[0], wait_args_[1]};
  }

  // WAIT answers how many replicas acknowledged every write this connection made.
  absl::Status CheckWait(absl::StatusOr<RedisReply> reply) {
    if (!reply.ok()) return reply.status();
    if ((*reply)->type == REDIS_REPLY_INTEGER && (*reply)->integer >= options_.replica_acks) {
      return absl::OkStatus();
    }
    if ((*reply)->type != REDIS_REPLY_INTEGER) return ReplyError(**reply, "WAIT");
    return MarkDown(absl::StrCat("written, but acknowledged by ", (*reply)->integer, " of the ",
                                 options_.replica_acks, " replicas required within ",
                                 absl::FormatDuration(options_.replica_ack_timeout)));
  }

  // Applies the error-reply rules of the header and tracks health (`healthy`: false when the
  // batch is failing anyway, so that its reads do not log a recovery between two failures).
  absl::StatusOr<RedisReply> Classify(const Call& call, absl::StatusOr<RedisReply> reply,
                                      bool healthy) {
    if (!reply.ok()) return reply;
    if ((*reply)->type != REDIS_REPLY_ERROR) {
      if (healthy) MarkUp();
      return reply;
    }
    const absl::string_view error = RedisReplyText(**reply);
    const absl::string_view command =
        call.script != Call::kNoScript ? "script" : absl::string_view(call.argv.front());
    if (IsServerStateError(error)) {
      absl::Status status = ReplyError(**reply, command);
      // A demoted master answers READONLY to writes: the next call connects afresh (and, with
      // Sentinel, asks for the new master).
      if (absl::StartsWith(error, "READONLY")) DropConnection();
      return status;
    }
    if (call.script != Call::kNoScript) return ReplyError(**reply, command);
    if (healthy) MarkUp();  // Redis answered, with an answer the caller reads.
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

    absl::StatusOr<HostPort> address = MasterAddress();
    if (!address.ok()) return MarkDown(std::string(address.status().message()));
    const std::string at = JoinHostPort(address->host, address->port);
    // With Sentinel the address changes, so the messages say which one failed.
    const std::string prefix = options_.sentinels.empty() ? "" : absl::StrCat("master ", at, ": ");
    absl::StatusOr<ContextPtr> context = Connect(*address);
    if (!context.ok()) return MarkDown(absl::StrCat(prefix, context.status().message()));
    absl::StatusOr<std::optional<std::string>> password =
        Secret(options_.password, options_.password_file);
    if (!password.ok()) return MarkDown(std::string(password.status().message()));
    context_ = *std::move(context);
    if (password->has_value()) {
      std::vector<absl::string_view> auth = {"AUTH"};
      if (options_.username.has_value()) auth.emplace_back(*options_.username);
      auth.emplace_back(**password);
      absl::StatusOr<RedisReply> reply = RoundTrip(auth);
      if (!reply.ok()) {
        return reply.status();
      }
      if ((*reply)->type == REDIS_REPLY_ERROR) {
        // Redis' refusal ("WRONGPASS ...") never echoes the password.
        absl::Status refused = ReplyError(**reply, absl::StrCat(prefix, "AUTH"));
        DropConnection();
        return refused;
      }
    }
    if (!options_.sentinels.empty()) {
      absl::StatusOr<RedisReply> role = RoundTrip({"ROLE"});
      if (!role.ok()) return role.status();
      const redisReply& r = **role;
      const absl::string_view name = r.type == REDIS_REPLY_ARRAY && r.elements >= 1
                                         ? RedisReplyText(*r.element[0])
                                         : RedisReplyText(r);
      if (name != "master") {
        DropConnection();
        return MarkDown(absl::StrCat(prefix, "ROLE is ", name,
                                     ", not master (a failover in progress); asking again"));
      }
      if (at != master_) {
        if (!master_.empty()) {
          Log(LogLevel::kWarning, absl::StrCat(options_.name, " follows a new redis master"),
              {{"redis", where_}, {"master", at}, {"previous", master_}});
        }
        master_ = at;
      }
    }
    return absl::OkStatus();
  }

  // host:port, or with Sentinel, the master's address from the first sentinel that knows it.
  absl::StatusOr<HostPort> MasterAddress() {
    if (options_.sentinels.empty()) return HostPort{options_.host, options_.port};
    absl::StatusOr<std::optional<std::string>> password =
        Secret(options_.sentinel_password, options_.sentinel_password_file);
    if (!password.ok()) return password.status();
    std::string errors;
    for (size_t i = 0; i < sentinels_.size(); ++i) {
      absl::StatusOr<HostPort> master = AskSentinel(sentinels_[i], *password);
      if (master.ok()) {
        // The one that answered is asked first next time.
        std::rotate(sentinels_.begin(), sentinels_.begin() + i, sentinels_.end());
        return master;
      }
      absl::StrAppend(&errors, errors.empty() ? "" : "; ", "sentinel ",
                      JoinHostPort(sentinels_[i].host, sentinels_[i].port), ": ",
                      master.status().message());
    }
    return absl::UnavailableError(
        absl::StrCat("no sentinel named the master of ", options_.master_name, " (", errors, ")"));
  }

  absl::StatusOr<HostPort> AskSentinel(const HostPort& sentinel,
                                       const std::optional<std::string>& password) {
    absl::StatusOr<ContextPtr> context = Connect(sentinel);
    if (!context.ok()) return context.status();
    redisContext* c = context->get();
    if (password.has_value()) {
      absl::StatusOr<RedisReply> auth = RoundTripOn(*c, {"AUTH", *password});
      if (!auth.ok()) return auth.status();
      if ((*auth)->type == REDIS_REPLY_ERROR) {
        return absl::UnavailableError(absl::StrCat("AUTH failed: ", RedisReplyText(**auth)));
      }
    }
    absl::StatusOr<RedisReply> reply =
        RoundTripOn(*c, {"SENTINEL", "get-master-addr-by-name", options_.master_name});
    if (!reply.ok()) return reply.status();
    const redisReply& r = **reply;
    int port = 0;
    if (r.type == REDIS_REPLY_ARRAY && r.elements == 2 &&
        r.element[0]->type == REDIS_REPLY_STRING && r.element[1]->type == REDIS_REPLY_STRING &&
        absl::SimpleAtoi(RedisReplyText(*r.element[1]), &port)) {
      return HostPort{std::string(RedisReplyText(*r.element[0])), port};
    }
    if (r.type == REDIS_REPLY_NIL) return absl::UnavailableError("does not know that master");
    return absl::UnavailableError(absl::StrCat(
        "unexpected reply: ", r.type == REDIS_REPLY_ERROR ? RedisReplyText(r) : "not an address"));
  }

  absl::StatusOr<ContextPtr> Connect(const HostPort& address) {
    ContextPtr context(redisConnectWithTimeout(address.host.c_str(), address.port,
                                               absl::ToTimeval(options_.connect_timeout)));
    if (context == nullptr) {
      return absl::UnavailableError("cannot allocate a connection");
    }
    if (context->err != 0) {
      return absl::UnavailableError(absl::StrCat("connect failed: ", context->errstr));
    }
    if (redisSetTimeout(context.get(), absl::ToTimeval(options_.command_timeout)) != REDIS_OK) {
      return absl::UnavailableError(
          absl::StrCat("cannot set the command timeout: ", context->errstr));
    }
    return context;
  }

  // A password, read from its file at each connect when one is set: a file mounted from a
  // Secret changes in place when the Secret is rotated.
  static absl::StatusOr<std::optional<std::string>> Secret(const std::optional<std::string>& value,
                                                           const std::string& file) {
    if (file.empty()) return value;
    std::optional<std::string> read = ReadFile(file);
    if (!read.has_value()) {
      return absl::UnavailableError(absl::StrCat("cannot read the password file ", file));
    }
    return std::string(absl::StripTrailingAsciiWhitespace(*read));
  }

  static bool AppendArgvOn(redisContext& context, const std::vector<absl::string_view>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (absl::string_view arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    return redisAppendCommandArgv(&context, static_cast<int>(argv.size()), argv.data(),
                                  lengths.data()) == REDIS_OK;
  }

  // One command on a connection of its own (a sentinel's); errors are not the client's health.
  absl::StatusOr<RedisReply> RoundTripOn(redisContext& context,
                                         const std::vector<absl::string_view>& args) {
    errno = 0;
    void* raw = nullptr;
    if (AppendArgvOn(context, args) && redisGetReply(&context, &raw) == REDIS_OK &&
        raw != nullptr) {
      return RedisReply(static_cast<redisReply*>(raw));
    }
    return absl::UnavailableError(TransportError(context, options_.command_timeout));
  }

  bool AppendArgv(const std::vector<absl::string_view>& args) {
    return AppendArgvOn(*context_, args);
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
    std::string detail = TransportError(*context_, options_.command_timeout);
    DropConnection();
    return MarkDown(std::move(detail));
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
  // "redis at host:port" or "redis master NAME via sentinels ...", for messages; never holds a
  // password.
  const std::string where_;

  absl::Mutex mu_;
  std::deque<Call> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<Script> added_scripts_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Owned by the worker thread.
  ContextPtr context_;
  std::vector<Script> scripts_;      // Copied from added_scripts_ when a batch is taken.
  std::vector<HostPort> sentinels_;  // The last one that answered first.
  std::string master_;               // The master's host:port last connected to (Sentinel).
  std::optional<std::chrono::steady_clock::time_point> last_connect_attempt_;
  std::string last_error_;
  Health health_ = Health::kUnknown;
  std::string wait_args_[2];                // WAIT's arguments, as text.
  static constexpr size_t kMaxBatch = 256;  // Calls sent in one pipeline at most.

  std::thread thread_;  // Last: starts once everything above is constructed.
};

RedisClient::RedisClient(RedisClientOptions options)
    : worker_(std::make_unique<Worker>(std::move(options))) {}

RedisClient::~RedisClient() = default;

int RedisClient::AddScript(std::string source, RedisAccess access) {
  return worker_->AddScript(std::move(source), access);
}

void RedisClient::Eval(int script, std::vector<std::string> keys, std::vector<std::string> args,
                       RedisCallback done) {
  const size_t num_keys = keys.size();
  Call call{.script = script,
            .num_keys = num_keys,
            .argv = std::move(keys),
            .access = RedisAccess::kWrite,  // The script's, set when queued.
            .done = std::move(done)};
  call.argv.insert(call.argv.end(), std::make_move_iterator(args.begin()),
                   std::make_move_iterator(args.end()));
  worker_->Submit(std::move(call));
}

void RedisClient::Command(std::vector<std::string> argv, RedisCallback done, RedisAccess access) {
  if (argv.empty()) {
    std::move(done)(absl::InvalidArgumentError("redis client: empty command"));
    return;
  }
  worker_->Submit(Call{.script = Call::kNoScript,
                       .num_keys = 0,
                       .argv = std::move(argv),
                       .access = access,
                       .done = std::move(done)});
}

void RedisClient::Shutdown() { worker_->Stop(); }

}  // namespace gateway
