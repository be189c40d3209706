// What the Redis idempotency store costs per operation, and what WAIT adds: a closed loop of
// `in_flight` callers, each claiming a fresh key and completing it, against a Redis at PORT.
// bench/redis_wait.sh starts a master and a replica and runs it with and without WAIT.
//
// Usage: redis-store-bench PORT REPLICA_ACKS IN_FLIGHT SECONDS
// Prints one line: operations per second (a Claim and its Complete are two), and the p50 and
// p99 latency of a Claim+Complete pair.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/random.h"
#include "idempotency/redis_store.h"

namespace gateway {
namespace {

class Loop {
 public:
  Loop(RedisIdempotencyStore& store, std::string run, std::chrono::steady_clock::time_point end)
      : store_(store), run_(std::move(run)), end_(end) {}

  void Start(int caller) { Next(caller); }

  void WaitDone(int callers) {
    absl::MutexLock lock(&mu_);
    callers_ = callers;
    mu_.Await(absl::Condition(this, &Loop::AllFinished));
  }

  std::vector<double> LatenciesMs() {
    absl::MutexLock lock(&mu_);
    return latencies_ms_;
  }
  int errors() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  bool AllFinished() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ == callers_; }

  void Next(int caller) {
    const auto start = std::chrono::steady_clock::now();
    if (start >= end_) {
      absl::MutexLock lock(&mu_);
      ++finished_;
      return;
    }
    // Fresh keys every run: a key from an earlier run would answer kDone.
    const std::string key = run_ + "-" + std::to_string(caller) + "-" + std::to_string(++keys_);
    store_.Claim(key, "fp", absl::Seconds(30), absl::Minutes(5),
                 [this, caller, key, start](absl::StatusOr<ClaimResult> claim) {
                   if (!claim.ok() || claim->state != ClaimResult::State::kClaimed) {
                     Done(caller, start, false);
                     return;
                   }
                   store_.Complete(key, claim->token, "outcome", absl::Minutes(5),
                                   [this, caller, start](absl::Status stored) {
                                     Done(caller, start, stored.ok());
                                   });
                 });
  }

  void Done(int caller, std::chrono::steady_clock::time_point start, bool ok) {
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    {
      absl::MutexLock lock(&mu_);
      if (ok) {
        latencies_ms_.push_back(ms);
      } else {
        ++errors_;
      }
    }
    Next(caller);
  }

  RedisIdempotencyStore& store_;
  const std::string run_;
  const std::chrono::steady_clock::time_point end_;
  std::atomic<long> keys_{0};
  absl::Mutex mu_;
  std::vector<double> latencies_ms_ ABSL_GUARDED_BY(mu_);
  int errors_ ABSL_GUARDED_BY(mu_) = 0;
  int finished_ ABSL_GUARDED_BY(mu_) = 0;
  int callers_ ABSL_GUARDED_BY(mu_) = 0;
};

int Main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s PORT REPLICA_ACKS IN_FLIGHT SECONDS\n", argv[0]);
    return 2;
  }
  RedisStoreOptions options;
  options.redis.port = std::atoi(argv[1]);
  options.redis.replica_acks = std::atoi(argv[2]);
  const int in_flight = std::atoi(argv[3]);
  const int seconds = std::atoi(argv[4]);
  SystemRandom random;
  RedisIdempotencyStore store(std::move(options), random);
  Loop loop(store, "bench-" + random.HexId128(),
            std::chrono::steady_clock::now() + std::chrono::seconds(seconds));
  for (int i = 0; i < in_flight; ++i) loop.Start(i);
  loop.WaitDone(in_flight);
  std::vector<double> latencies = loop.LatenciesMs();
  std::sort(latencies.begin(), latencies.end());
  auto quantile = [&](double q) {
    return latencies.empty() ? 0.0 : latencies[static_cast<size_t>(q * (latencies.size() - 1))];
  };
  std::printf(
      "replica_acks=%s in_flight=%d: %.0f store operations/s, Claim+Complete p50 %.2f ms, "
      "p99 %.2f ms, %d errors\n",
      argv[2], in_flight, 2.0 * static_cast<double>(latencies.size()) / seconds, quantile(0.5),
      quantile(0.99), loop.errors());
  store.Shutdown();
  return 0;
}

}  // namespace
}  // namespace gateway

int main(int argc, char** argv) { return gateway::Main(argc, argv); }
