// IdempotencyStore kept in Redis, so every gateway replica sharing one Redis sees the same
// records: exactly one replica wins a Claim() for a key.
//
// Each operation is one Lua script run atomically by Redis on a hash at key_prefix + key (fields
// state = "inflight" | "done", fp, token, outcome, and for a claim its lease and first-claim
// time in Redis' clock). The hash's TTL is the retention: a crashed owner's record stays, in
// flight, and the next claim after its lease takes it over.
//
// Usage:
//   RedisStoreOptions options;
//   options.host = "redis.internal";
//   options.password = secret;  // Sent with AUTH; never logged or put in a status.
//   RedisIdempotencyStore store(std::move(options), random);  // random: claim tokens
//   store.Claim(key, fingerprint, absl::Seconds(2), absl::Hours(24),
//               [](absl::StatusOr<ClaimResult> r) { ... });
//
// I/O never happens on the caller's thread: calls are queued for one worker thread that owns a
// synchronous hiredis connection with connect and command timeouts, and sends every call waiting
// in one pipeline (one round trip for the batch, so throughput does not fall with Redis' distance).
// The store fails closed: when Redis is unreachable, slow, refuses AUTH or the queue is full,
// callbacks get UNAVAILABLE (the caller must not go ahead without a record). After a failure the
// worker reconnects on the next call (at most one attempt per reconnect_interval; calls in between
// fail fast), so the gateway recovers by itself when Redis returns.
//
// A call that timed out may still take effect in Redis: a claim whose token nobody got then holds
// the key (kInFlight) until its lease ends, and is then taken over, which is the safe side.
//
// Thread-safety: Claim(), Renew(), Complete() and Release() are safe from any thread. Callbacks run
// on the worker thread, in call order, except when a call is refused at once (queue full, store
// shutting down): then the callback runs inline. Callbacks may call the store again but must not
// block, since they delay every other call, and must not destroy the store.
#ifndef GATEWAY_IDEMPOTENCY_REDIS_STORE_H_
#define GATEWAY_IDEMPOTENCY_REDIS_STORE_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/random.h"
#include "idempotency/idempotency_store.h"

namespace gateway {

struct RedisStoreOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  // Sent with AUTH after each connect when set.
  std::optional<std::string> password;
  // Namespaces the records so one Redis can serve other data (or other deployments).
  std::string key_prefix = "twgw:idem:";
  absl::Duration connect_timeout = absl::Milliseconds(200);
  // Bounds each round trip; a slower reply fails the call and drops the connection.
  absl::Duration command_timeout = absl::Milliseconds(500);
  // Minimum time between two connection attempts.
  absl::Duration reconnect_interval = absl::Milliseconds(100);
  // Calls waiting for the worker beyond this many fail at once with UNAVAILABLE.
  size_t max_pending = 10000;
};

class RedisIdempotencyStore final : public IdempotencyStore {
 public:
  // Does not connect: the worker connects on the first call. `random` makes the claim tokens
  // (HexId128(), on the worker thread) and must outlive the store.
  RedisIdempotencyStore(RedisStoreOptions options, Random& random);
  // Finishes the call in progress (bounded by the timeouts), fails the queued ones with
  // UNAVAILABLE ("store shutting down") on the worker thread, then returns.
  ~RedisIdempotencyStore() override;

  RedisIdempotencyStore(const RedisIdempotencyStore&) = delete;
  RedisIdempotencyStore& operator=(const RedisIdempotencyStore&) = delete;

  void Claim(const std::string& key, const std::string& fingerprint, absl::Duration lease,
             absl::Duration retention, ClaimCallback done) override;
  void Renew(const std::string& key, const std::string& token, absl::Duration lease,
             DoneCallback done) override;
  void Complete(const std::string& key, const std::string& token, const std::string& outcome,
                absl::Duration retention, DoneCallback done) override;
  void Release(const std::string& key, const std::string& token, DoneCallback done) override;
  // What the destructor does, earlier: the worker ends; later calls fail with UNAVAILABLE.
  void Shutdown() override;

 private:
  class Worker;
  std::unique_ptr<Worker> worker_;
};

}  // namespace gateway

#endif  // GATEWAY_IDEMPOTENCY_REDIS_STORE_H_
