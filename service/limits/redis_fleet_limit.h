// FleetLimitStore kept in Redis: replicas sharing one Redis share each Twilio account's limit.
//
// Keys under key_prefix:
//   <prefix>replicas    sorted set: replica id -> Redis ms its heartbeat expires
//   <prefix><account>   hash: limit (F, a decimal), cut (Redis ms of the last halving)
// One Lua script per Exchange() (one round trip for every account the replica serves, every
// lease period) refreshes this replica's heartbeat, drops expired ones, folds its reports into
// F (+increase, or x backoff_ratio on a 429 unless F was cut less than backoff_interval ago,
// within [1, max_limit], starting at initial_limit) and answers F, the live replicas and this
// replica's place among them. Time is Redis' own (TIME), so replicas' clocks need not agree.
// Keys nobody refreshes expire after `idle_ttl`.
//
// Usage:
//   RedisFleetLimitOptions options;
//   options.redis = RedisOptions(config);  // the shared connection settings
//   options.replica_id = random.HexId128();
//   RedisFleetLimitStore store(std::move(options));
//
// Thread-safety: as FleetLimitStore; callbacks run on the client's worker thread.
#ifndef GATEWAY_LIMITS_REDIS_FLEET_LIMIT_H_
#define GATEWAY_LIMITS_REDIS_FLEET_LIMIT_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "limits/aimd_limit.h"
#include "limits/fleet_limit.h"
#include "redis/redis_client.h"

namespace gateway {

struct RedisFleetLimitOptions {
  // The client is named "account limits" (redis.name is not used).
  RedisClientOptions redis;
  std::string key_prefix = "twgw:limit:";
  // Unique per process: a restarted replica is a new one, the old heartbeat expires.
  std::string replica_id;
  // initial_limit, max_limit, backoff_ratio and backoff_interval apply to F.
  AimdOptions aimd;
  // A replica that stopped exchanging stops counting after this (three lease periods).
  absl::Duration heartbeat_ttl = absl::Seconds(3);
  absl::Duration idle_ttl = absl::Hours(1);
};

class RedisFleetLimitStore final : public FleetLimitStore {
 public:
  explicit RedisFleetLimitStore(RedisFleetLimitOptions options);
  ~RedisFleetLimitStore() override;

  void Exchange(std::vector<FleetReport> reports, Done done) override;
  void Shutdown() override;

 private:
  const RedisFleetLimitOptions options_;
  RedisClient client_;
  const int exchange_script_;
};

}  // namespace gateway

#endif  // GATEWAY_LIMITS_REDIS_FLEET_LIMIT_H_
