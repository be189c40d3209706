#include "idempotency/redis_store.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

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

// PEXPIRE deletes a key at once for a TTL <= 0 and rejects one that overflows Redis' clock.
std::string TtlMillis(absl::Duration ttl) {
  constexpr int64_t kMaxMillis = int64_t{100} * 365 * 24 * 3600 * 1000;
  return absl::StrCat(std::clamp<int64_t>(absl::ToInt64Milliseconds(ttl), 1, kMaxMillis));
}

absl::StatusOr<ClaimResult> ReadClaim(absl::StatusOr<RedisReply> reply, const std::string& token) {
  if (!reply.ok()) return reply.status();
  const redisReply& r = **reply;
  const absl::string_view verdict =
      r.type == REDIS_REPLY_ARRAY && r.elements >= 1 && r.element[0]->type == REDIS_REPLY_STRING
          ? RedisReplyText(*r.element[0])
          : absl::string_view();
  ClaimResult result;
  int64_t age_ms = 0;
  if (verdict == "claimed") {
    result.state = ClaimResult::State::kClaimed;
    result.token = token;
  } else if (verdict == "takeover" && r.elements >= 2 && r.element[1]->type == REDIS_REPLY_STRING &&
             absl::SimpleAtoi(RedisReplyText(*r.element[1]), &age_ms)) {
    result.state = ClaimResult::State::kClaimed;
    result.token = token;
    result.taken_over_age = absl::Milliseconds(std::max<int64_t>(age_ms, 0));
  } else if (verdict == "inflight") {
    result.state = ClaimResult::State::kInFlight;
  } else if (verdict == "conflict") {
    result.state = ClaimResult::State::kConflict;
  } else if (verdict == "done" && r.elements >= 2 && r.element[1]->type == REDIS_REPLY_STRING) {
    result.state = ClaimResult::State::kDone;
    result.outcome = std::string(RedisReplyText(*r.element[1]));
  } else {
    return absl::InternalError("idempotency store: unexpected reply to the claim script");
  }
  return result;
}

// Renew and Complete answer 1 when the claim was still held.
absl::Status ReadHeld(absl::StatusOr<RedisReply> reply) {
  if (!reply.ok()) return reply.status();
  if ((*reply)->type == REDIS_REPLY_INTEGER && (*reply)->integer == 1) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "idempotency claim lost: the record no longer holds this claim (its lease expired)");
}

RedisClientOptions NamedClientOptions(RedisClientOptions options) {
  options.name = "idempotency store";
  return options;
}

}  // namespace

RedisIdempotencyStore::RedisIdempotencyStore(RedisStoreOptions options, Random& random)
    : key_prefix_(std::move(options.key_prefix)),
      random_(random),
      client_(NamedClientOptions(std::move(options.redis))),
      claim_script_(client_.AddScript(absl::StrCat(kNowMillis, kClaimBody))),
      renew_script_(client_.AddScript(absl::StrCat(kNowMillis, kRenewBody))),
      complete_script_(client_.AddScript(kCompleteScript)),
      release_script_(client_.AddScript(kReleaseScript)) {}

RedisIdempotencyStore::~RedisIdempotencyStore() = default;

void RedisIdempotencyStore::Shutdown() { client_.Shutdown(); }

void RedisIdempotencyStore::Claim(const std::string& key, const std::string& fingerprint,
                                  absl::Duration lease, absl::Duration retention,
                                  ClaimCallback done) {
  // 128 random bits: unguessable, so only the claim's holder can complete or release it. Drawn
  // here, not on the worker: Random is safe from any thread, and the worker's time is the
  // pipeline's.
  std::string token = random_.HexId128();
  std::vector<std::string> args = {fingerprint, token, TtlMillis(lease), TtlMillis(retention)};
  client_.Eval(
      claim_script_, {key_prefix_ + key}, std::move(args),
      [token = std::move(token), done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        std::move(done)(ReadClaim(std::move(reply), token));
      });
}

void RedisIdempotencyStore::Renew(const std::string& key, const std::string& token,
                                  absl::Duration lease, DoneCallback done) {
  client_.Eval(renew_script_, {key_prefix_ + key},
               {token, absl::StrCat(absl::ToInt64Milliseconds(lease))},
               [done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
                 std::move(done)(ReadHeld(std::move(reply)));
               });
}

void RedisIdempotencyStore::Complete(const std::string& key, const std::string& token,
                                     const std::string& outcome, absl::Duration retention,
                                     DoneCallback done) {
  client_.Eval(complete_script_, {key_prefix_ + key}, {token, outcome, TtlMillis(retention)},
               [done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
                 std::move(done)(ReadHeld(std::move(reply)));
               });
}

void RedisIdempotencyStore::Release(const std::string& key, const std::string& token,
                                    DoneCallback done) {
  client_.Eval(release_script_, {key_prefix_ + key}, {token},
               [done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
                 std::move(done)(reply.ok() ? absl::OkStatus() : reply.status());
               });
}

}  // namespace gateway
