// One Redis connection owned by one worker thread: every part of the gateway that keeps data in
// Redis (the idempotency store, a message log) sends its commands and Lua scripts through a
// RedisClient and never touches hiredis' connection itself.
//
// Usage:
//   RedisClientOptions options;
//   options.host = "redis.internal";
//   options.password = secret;  // Sent with AUTH; never logged or put in a status.
//   options.name = "idempotency store";
//   RedisClient client(std::move(options));
//   const int claim = client.AddScript(kClaimSource);  // Before the first call.
//   client.Eval(claim, {key}, {arg1, arg2}, [](absl::StatusOr<RedisReply> reply) { ... });
//   client.Command({"XRANGE", stream, "-", "+", "COUNT", "100"}, [](auto reply) { ... });
//
// I/O never happens on the caller's thread: calls are queued for the worker thread, which owns a
// synchronous hiredis connection with connect and command timeouts and sends every call waiting
// in one pipeline (one round trip for the batch, so throughput does not fall with Redis'
// distance). Scripts go by their SHA (EVALSHA, loaded with SCRIPT LOAD after each connect); a
// NOSCRIPT reply (Redis restarted or flushed its scripts) sends that call again by its source.
//
// The client fails closed: when Redis is unreachable, slow, refuses AUTH, is shutting down or the
// queue is full, callbacks get UNAVAILABLE, whose message names the client ("<name> (redis at
// host:port) unavailable: ...") and never holds the password. After a failure the worker
// reconnects on the next call (at most one attempt per reconnect_interval; calls in between fail
// fast), so it recovers by itself when Redis returns. Health transitions (down, recovered) are
// logged once each, not per call.
//
// Error replies (REDIS_REPLY_ERROR) are never delivered as a reply to an Eval(), and only some to
// a Command():
//   - An error that says this server cannot serve now, whatever the command (LOADING, READONLY,
//     MASTERDOWN, NOAUTH, WRONGPASS, NOPERM, OOM, BUSY, MISCONF, NOREPLICAS, TRYAGAIN,
//     CLUSTERDOWN, "max number of clients") becomes UNAVAILABLE and marks the client down.
//     READONLY (the server was demoted to a replica) also drops the connection, so that the next
//     call connects afresh.
//   - Any other error reply to an Eval() becomes UNAVAILABLE too: the scripts are the caller's own,
//     so an error means Redis could not run them, and a caller that must not go ahead without
//     Redis fails closed.
//   - Any other error reply to a Command() (WRONGTYPE, BUSYGROUP, an XADD id too small) is
//     delivered as the reply, for the caller to read: it is an answer, not an outage.
//
// A blocking command (XREAD BLOCK, BLPOP, WAIT with a long timeout) must not be sent through a
// shared client: it holds the pipeline, and every other caller's call waits behind it (and
// command_timeout would cut it). A blocking reader uses its own RedisClient instance, with a
// command_timeout longer than its BLOCK.
//
// A call that timed out may still have taken effect in Redis; callers design their scripts so
// that a retry is safe.
//
// Thread-safety: every method is safe from any thread. Callbacks run on the worker thread, in
// call order, except when a call is refused at once (queue full, client shutting down): then the
// callback runs inline on the caller's thread. Callbacks may call the client again but must not
// block, since they delay every other call, must not call Shutdown() and must not destroy the
// client.
#ifndef GATEWAY_REDIS_REDIS_CLIENT_H_
#define GATEWAY_REDIS_REDIS_CLIENT_H_

#include <hiredis/hiredis.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/host_port.h"

namespace gateway {

struct RedisClientOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  // AUTH username password after each connect when a password is set (an ACL user); AUTH
  // password alone when only the password is set (the default user).
  std::optional<std::string> username;
  std::optional<std::string> password;
  // When set, the password is read from this file (trailing whitespace dropped) before each
  // connect instead of from `password`, so a rotated Secret is picked up at the next reconnect.
  // An unreadable file fails the connect (UNAVAILABLE, naming the file, not its content).
  std::string password_file;
  absl::Duration connect_timeout = absl::Milliseconds(200);
  // Bounds each round trip; a slower reply fails the calls of its batch and drops the connection.
  absl::Duration command_timeout = absl::Milliseconds(500);
  // Minimum time between two connection attempts.
  absl::Duration reconnect_interval = absl::Milliseconds(100);
  // Calls waiting for the worker beyond this many fail at once with UNAVAILABLE.
  size_t max_pending = 10000;
  // What the client serves ("idempotency store"), for logs and statuses.
  std::string name = "redis client";

  // Sentinel. When `sentinels` is not empty, `host` and `port` are not used: at each connect the
  // client asks the sentinels in turn (the last one that answered first) for the address of
  // `master_name` (SENTINEL get-master-addr-by-name), connects to it, authenticates, and checks
  // with ROLE that it is a master. A replica (a demoted master the sentinels have not caught up
  // with yet) is dropped and the batch fails UNAVAILABLE; the next connect asks again. While no
  // sentinel answers, or the master they name does not, calls fail UNAVAILABLE (fail closed).
  std::vector<HostPort> sentinels;
  std::string master_name;
  // AUTH to the sentinels (their requirepass) when set; the file, when set, wins and is read at
  // each discovery.
  std::optional<std::string> sentinel_password;
  std::string sentinel_password_file;

  // WAIT. When above 0, a batch that holds a write (RedisAccess::kWrite) ends with
  // `WAIT replica_acks replica_ack_timeout` in the same pipeline (one WAIT per batch, not per
  // call), and every write call of the batch fails UNAVAILABLE ("not acknowledged by N
  // replicas") unless that many replicas acknowledged it in time. The write did happen on the
  // master, and may survive a failover or not: callers only use writes whose retry is safe.
  // Reads in the batch are answered whatever WAIT says. With replica_acks = N, losing all but
  // N - 1 replicas stops every write: run at least N + 1 replicas to ride out the loss of one.
  // Limits: WAIT keeps an acknowledged write through the crash of its master, because Sentinel
  // promotes the replica with the most data, which holds every write any replica acknowledged.
  // It does not make Redis strongly consistent: a master that lives on after a replica was
  // promoted (a manual SENTINEL FAILOVER, or a partition that leaves the master with a replica)
  // accepts writes, and a replica still following it acknowledges them, until the sentinels
  // reconfigure both; those writes are lost. Switch over by stopping the master (SHUTDOWN waits
  // for its replicas to catch up), not with SENTINEL FAILOVER while clients write.
  int replica_acks = 0;
  // Shorter than command_timeout, or a slow WAIT would drop the connection.
  absl::Duration replica_ack_timeout = absl::Milliseconds(100);
};

// Whether a call may change data: with replica_acks, a batch holding a write ends with WAIT.
// Writes are the default, the safe side for a call someone forgot to mark.
enum class RedisAccess { kRead, kWrite };

// Owns a hiredis reply.
struct RedisReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

// Runs on the worker thread (see the thread-safety note above). Never given a null reply.
using RedisCallback = absl::AnyInvocable<void(absl::StatusOr<RedisReply>) &&>;

class RedisClient {
 public:
  // Does not connect: the worker connects on the first call.
  explicit RedisClient(RedisClientOptions options);
  // Shutdown().
  ~RedisClient();

  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Registers a Lua script and returns its handle for Eval(). Meant to be called before the first
  // call; a script added later is loaded before the next batch. `access`: whether the script
  // may write (see RedisClientOptions::replica_acks).
  int AddScript(std::string source, RedisAccess access = RedisAccess::kWrite);

  // Runs script `script` (from AddScript()) with KEYS `keys` and ARGV `args`: EVALSHA, or EVAL
  // after NOSCRIPT. An unknown handle fails with INVALID_ARGUMENT, inline.
  void Eval(int script, std::vector<std::string> keys, std::vector<std::string> args,
            RedisCallback done);

  // Sends `argv` as one command (XADD, XRANGE, HGET, ...). Not for blocking commands. Mark
  // reads (XRANGE, GET) kRead so that they never wait for replicas.
  void Command(std::vector<std::string> argv, RedisCallback done,
               RedisAccess access = RedisAccess::kWrite);

  // Finishes the batch in flight (bounded by the timeouts), fails the queued calls with
  // UNAVAILABLE ("shutting down") on the worker thread, then returns; later calls fail at once.
  // Idempotent. Not from a callback.
  void Shutdown();

 private:
  class Worker;
  std::unique_ptr<Worker> worker_;
};

// The reply's string (status, error, string and verbatim replies); empty for other types.
absl::string_view RedisReplyText(const redisReply& reply);

}  // namespace gateway

#endif  // GATEWAY_REDIS_REDIS_CLIENT_H_
