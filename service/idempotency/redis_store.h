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
//   options.redis.host = "redis.internal";
//   options.redis.password = secret;  // Sent with AUTH; never logged or put in a status.
//   RedisIdempotencyStore store(std::move(options), random);  // random: claim tokens
//   store.Claim(key, fingerprint, absl::Seconds(2), absl::Hours(24),
//               [](absl::StatusOr<ClaimResult> r) { ... });
//
// The store is the four scripts and the reading of their replies; the connection, its worker
// thread, pipelining, timeouts, reconnects and health logs are RedisClient's (redis/).
// It fails closed: when Redis is unreachable, slow, refuses AUTH or the queue is full,
// callbacks get UNAVAILABLE (the caller must not go ahead without a record), and it recovers by
// itself when Redis returns.
//
// A call that timed out may still take effect in Redis: a claim whose token nobody got then holds
// the key (kInFlight) until its lease ends, and is then taken over, which is the safe side.
//
// Replicas (redis.replica_acks > 0, the default with Sentinel): every operation is a write, and
// counts only once that many replicas acknowledged it (WAIT, one per pipelined batch), so that
// what the store acknowledged survives a failover. When they do not acknowledge in time:
//   - Claim fails UNAVAILABLE, and the caller does not call Twilio. The claim may exist on the
//     master (and on a replica, later): the caller's retry then finds the key in flight and,
//     after the lease, takes it over with the first claim's age, so it treats the request as
//     possibly sent (the same Twilio key goes out, or the outcome is resolved). That is the
//     safe side. A claim lost with the old master leaves no trace, and nothing was sent for it.
//     An acknowledged claim is on a replica, so no replica can grant it again after a failover:
//     this is what keeps one subscription per key across failovers.
//   - Complete fails UNAVAILABLE; the guard still answers the caller with the outcome (it logs
//     "idempotency record not stored"). If the old master is lost with it, the record is in
//     flight on the new one (its claim was acknowledged), and a retry takes it over after the
//     lease and resolves the outcome instead of replaying it: one subscription still, at the
//     cost of a resolution.
//   - Renew fails UNAVAILABLE (the guard ignores it: its lease stands on the master); Release
//     fails UNAVAILABLE (the record may come back in flight and is then taken over).
// A claim answered kInFlight, kDone or kConflict wrote nothing but fails too when its batch's
// WAIT falls short: the store cannot tell the client which scripts wrote.
// WAIT covers a crashed master, not a master that lives on beside a promoted replica (a manual
// SENTINEL FAILOVER, a partition): see "Limits" at RedisClientOptions::replica_acks.
//
// Thread-safety: Claim(), Renew(), Complete() and Release() are safe from any thread. Callbacks run
// on the client's worker thread, in call order, except when a call is refused at once (queue
// full, store shutting down): then the callback runs inline. Callbacks may call the store again
// but must not block, since they delay every other call, and must not destroy the store.
#ifndef GATEWAY_IDEMPOTENCY_REDIS_STORE_H_
#define GATEWAY_IDEMPOTENCY_REDIS_STORE_H_

#include <string>

#include "absl/time/time.h"
#include "common/random.h"
#include "idempotency/idempotency_store.h"
#include "redis/redis_client.h"

namespace gateway {

struct RedisStoreOptions {
  // Where Redis is, how to authenticate and the timeouts. The store names its client
  // "idempotency store" (redis.name is not used).
  RedisClientOptions redis;
  // Namespaces the records so one Redis can serve other data (or other deployments).
  std::string key_prefix = "twgw:idem:";
};

class RedisIdempotencyStore final : public IdempotencyStore {
 public:
  // Does not connect: the client connects on the first call. `random` makes the claim tokens
  // (HexId128(), on the thread that calls Claim()) and must outlive the store.
  RedisIdempotencyStore(RedisStoreOptions options, Random& random);
  // Finishes the batch in progress (bounded by the timeouts), fails the queued calls with
  // UNAVAILABLE ("shutting down") on the worker thread, then returns.
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
  const std::string key_prefix_;
  Random& random_;
  RedisClient client_;
  // Handles of the scripts in client_.
  const int claim_script_;
  const int renew_script_;
  const int complete_script_;
  const int release_script_;
};

}  // namespace gateway

#endif  // GATEWAY_IDEMPOTENCY_REDIS_STORE_H_
