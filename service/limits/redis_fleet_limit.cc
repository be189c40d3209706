#include "limits/redis_fleet_limit.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gateway {
namespace {

// KEYS[1] the replica set, then each account's hash. ARGV[1] replica id, [2] heartbeat ttl ms,
// [3] idle ttl ms, [4] max, [5] initial, [6] backoff ratio, [7] backoff interval ms, [8] min; then
// per account its increase and throttled (0 or 1). Returns per account {F, replicas, index}.
// Numbers are formatted by hand: redis.call() would print a large Lua number as 1.7e+12, and a
// Lua number returned to Redis is truncated to an integer.
constexpr char kExchangeScript[] = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, ttl, idle = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max, initial = tonumber(ARGV[4]), tonumber(ARGV[5])
local ratio, interval, min = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local set = KEYS[1]
redis.call('ZADD', set, string.format('%.0f', now + ttl), id)
redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. string.format('%.0f', now))
redis.call('PEXPIRE', set, idle)
local ids = redis.call('ZRANGE', set, 0, -1)
table.sort(ids)
local index = 0
for j, other in ipairs(ids) do
  if other == id then index = j - 1 end
end
local out = {}
for i = 1, #KEYS - 1 do
  local hash = KEYS[i + 1]
  local increase, throttled = tonumber(ARGV[7 + 2 * i]), ARGV[8 + 2 * i] == '1'
  local h = redis.call('HMGET', hash, 'limit', 'cut')
  local f = tonumber(h[1]) or initial
  local cut = tonumber(h[2]) or 0
  if throttled then
    -- Every replica reports the same overload: F is halved once per interval.
    if now - cut >= interval then
      f = f * ratio
      cut = now
    end
  else
    f = f + increase
  end
  f = math.max(min, math.min(max, f))
  redis.call('HSET', hash, 'limit', string.format('%.4f', f), 'cut', string.format('%.0f', cut))
  redis.call('PEXPIRE', hash, idle)
  out[#out + 1] = {string.format('%.4f', f), #ids, index}
end
return out
)lua";

std::string Millis(absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d)); }

RedisClientOptions NamedClientOptions(RedisClientOptions options) {
  options.name = "account limits";
  return options;
}

absl::StatusOr<std::vector<FleetLease>> ReadLeases(absl::StatusOr<RedisReply> reply,
                                                   const std::vector<FleetReport>& reports) {
  if (!reply.ok()) return reply.status();
  const redisReply& r = **reply;
  const absl::Status unexpected =
      absl::InternalError("account limits: unexpected reply to the exchange script");
  if (r.type != REDIS_REPLY_ARRAY || r.elements != reports.size()) return unexpected;
  std::vector<FleetLease> leases;
  leases.reserve(reports.size());
  for (size_t i = 0; i < r.elements; ++i) {
    const redisReply& e = *r.element[i];
    FleetLease lease{.account = reports[i].account};
    if (e.type != REDIS_REPLY_ARRAY || e.elements != 3 ||
        e.element[0]->type != REDIS_REPLY_STRING ||
        !absl::SimpleAtod(RedisReplyText(*e.element[0]), &lease.fleet_limit) ||
        e.element[1]->type != REDIS_REPLY_INTEGER || e.element[2]->type != REDIS_REPLY_INTEGER) {
      return unexpected;
    }
    lease.replicas = static_cast<int>(e.element[1]->integer);
    lease.index = static_cast<int>(e.element[2]->integer);
    leases.push_back(std::move(lease));
  }
  return leases;
}

}  // namespace

RedisFleetLimitStore::RedisFleetLimitStore(RedisFleetLimitOptions options)
    : options_(std::move(options)),
      client_(NamedClientOptions(options_.redis)),
      exchange_script_(client_.AddScript(kExchangeScript)) {}

RedisFleetLimitStore::~RedisFleetLimitStore() = default;

void RedisFleetLimitStore::Shutdown() { client_.Shutdown(); }

void RedisFleetLimitStore::Exchange(std::vector<FleetReport> reports, Done done) {
  std::vector<std::string> keys = {options_.key_prefix + "replicas"};
  std::vector<std::string> args = {options_.replica_id,
                                   Millis(options_.heartbeat_ttl),
                                   Millis(options_.idle_ttl),
                                   absl::StrCat(options_.aimd.max_limit),
                                   absl::StrCat(options_.aimd.initial_limit),
                                   absl::StrFormat("%.4f", options_.aimd.backoff_ratio),
                                   Millis(options_.aimd.backoff_interval),
                                   absl::StrCat(options_.aimd.min_limit)};
  keys.reserve(1 + reports.size());
  args.reserve(args.size() + 2 * reports.size());
  for (const FleetReport& report : reports) {
    keys.push_back(options_.key_prefix + report.account);
    args.push_back(absl::StrFormat("%.6f", report.increase));
    args.push_back(report.throttled ? "1" : "0");
  }
  client_.Eval(exchange_script_, std::move(keys), std::move(args),
               [reports = std::move(reports),
                done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
                 std::move(done)(ReadLeases(std::move(reply), reports));
               });
}

}  // namespace gateway
