// One account limit across the fleet: three replicas sharing one Redis, against a simulator that
// enforces Twilio's per-account concurrency limit (30, each request held 150 ms), under load well
// above it (300 Creates in flight across the replicas). The same load runs with the shipped
// defaults (adaptive, shared through Redis) and with the old fixed limit of 25 per replica
// (--account-limit-adaptive=false). Prints the 429s Twilio answered and the throughput of each,
// and writes them to fleet-limit-report.txt. Every Create must succeed exactly once in both:
// a caller re-sends the same key until it does.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "subscription_client.h"

namespace gateway::testing {
namespace {

namespace pb = twilio_gateway::v1;
using twilio_gateway::client::CreateResult;
using twilio_gateway::client::SubscriptionClient;

constexpr char kCallSid[] = "CAcccccccccccccccccccccccccccccccc";
constexpr int kReplicas = 3;
constexpr int kClientsPerReplica = 100;  // 300 Creates in flight.
constexpr int kCreatesPerClient = 5;     // 1,500 Creates per run.
constexpr int kTwilioLimit = 30;
constexpr int kTwilioDelayMs = 150;

struct Figures {
  int creates = 0;
  double seconds = 0;
  int upstream_requests = 0;
  int throttled = 0;  // 429s the simulator answered for its concurrency limit.
  int max_account_in_flight = 0;
  int resends = 0;      // Creates the caller had to send again (not OK the first time).
  int not_created = 0;  // Keys without a subscription at the end.
  int duplicated = 0;   // Keys with more than one.
  double throttled_share() const {
    return upstream_requests == 0 ? 0 : static_cast<double>(throttled) / upstream_requests;
  }
};

Figures RunLoad(const std::string& name, bool adaptive) {
  RedisServer redis;
  Simulator sim(LogDir());
  sim.SetConfig({{"max_concurrent_requests", kTwilioLimit}, {"delay_ms", kTwilioDelayMs}});
  std::vector<std::string> flags = {
      "--idempotency-store", "redis",
      "--redis-address",     "127.0.0.1:" + std::to_string(redis.port()),
      "--log-level",         "warning"};
  if (!adaptive) flags.push_back("--account-limit-adaptive=false");
  std::vector<std::unique_ptr<Gateway>> replicas;
  std::vector<std::unique_ptr<SubscriptionClient>> clients;
  for (int r = 0; r < kReplicas; ++r) {
    replicas.push_back(std::make_unique<Gateway>(
        sim.base_url(), flags, std::map<std::string, std::string>{},
        LogDir() + "/gateway-fleet-limit-" + name + "-" + std::to_string(r) + ".log"));
    clients.push_back(std::make_unique<SubscriptionClient>(
        grpc::CreateChannel(replicas.back()->target(), grpc::InsecureChannelCredentials())));
  }

  std::atomic<int> resends{0};
  std::atomic<int> gave_up{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int r = 0; r < kReplicas; ++r) {
    for (int c = 0; c < kClientsPerReplica; ++c) {
      threads.emplace_back([&, r, c] {
        for (int i = 0; i < kCreatesPerClient; ++i) {
          pb::CreateSubscriptionRequest request;
          request.set_call_sid(kCallSid);
          request.set_callback("https://example.com/fleet");
          request.set_idempotency_key(name + "-" + std::to_string(r) + "-" + std::to_string(c) +
                                      "-" + std::to_string(i));
          // A caller re-sends the same key until it succeeds, as the gateway's errors advise.
          const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(90);
          for (int send = 0;; ++send) {
            const CreateResult result = clients[r]->Create(request, std::chrono::seconds(30));
            if (result.status.ok()) break;
            if (std::chrono::steady_clock::now() > give_up) {
              ++gave_up;
              break;
            }
            ++resends;
            std::this_thread::sleep_for(std::chrono::milliseconds(100 + 50 * std::min(send, 10)));
          }
        }
      });
    }
  }
  for (std::thread& t : threads) t.join();
  Figures figures;
  figures.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  figures.creates = kReplicas * kClientsPerReplica * kCreatesPerClient;
  figures.resends = resends;
  const nlohmann::json stats = sim.Stats();
  figures.upstream_requests = stats["requests"].get<int>();
  figures.throttled = stats["concurrency_throttled"].get<int>();
  figures.max_account_in_flight = stats["max_account_in_flight"].get<int>();
  {
    // Timeline: answers per 250 ms (2xx, 429), for the report.
    std::map<long, std::pair<int, int>> buckets;
    double first = -1;
    for (const nlohmann::json& r : sim.Requests()) {
      const double t = r["time"].get<double>();
      if (first < 0) first = t;
      auto& b = buckets[static_cast<long>((t - first) * 4)];
      (r["response_status"] == 429 ? b.second : b.first)++;
    }
    std::ofstream out(LogDir() + "/fleet-limit-timeline-" + name + ".txt");
    for (const auto& [k, v] : buckets) out << k / 4.0 << " " << v.first << " " << v.second << "\n";
  }
  const nlohmann::json& by_key = stats["by_key"];
  for (int r = 0; r < kReplicas; ++r) {
    for (int c = 0; c < kClientsPerReplica; ++c) {
      for (int i = 0; i < kCreatesPerClient; ++i) {
        const std::string id = std::string(kSimAccountSid) + "/" + kCallSid + "/" + name + "-" +
                               std::to_string(r) + "-" + std::to_string(c) + "-" +
                               std::to_string(i);
        const int subscriptions = by_key.contains(id) ? by_key[id]["subscriptions"].get<int>() : 0;
        if (subscriptions == 0) ++figures.not_created;
        if (subscriptions > 1) ++figures.duplicated;
      }
    }
  }
  EXPECT_EQ(gave_up.load(), 0) << name;
  return figures;
}

std::string Line(const std::string& name, const Figures& f) {
  char line[512];
  std::snprintf(line, sizeof line,
                "%-34s %5d Creates in %5.1f s = %6.1f/s; upstream requests %5d, 429s %5d "
                "(%5.1f%%); most in flight at Twilio %3d; caller re-sends %4d; missing %d, "
                "duplicated %d",
                name.c_str(), f.creates, f.seconds, f.creates / f.seconds, f.upstream_requests,
                f.throttled, 100 * f.throttled_share(), f.max_account_in_flight, f.resends,
                f.not_created, f.duplicated);
  return line;
}

TEST(FleetLimitTest, ThreeReplicasShareOneAdaptiveLimitAndMeetFarFewer429s) {
  const Figures fixed = RunLoad("fixed", false);
  const Figures fleet = RunLoad("adaptive", true);
  const std::string report = "Twilio limit " + std::to_string(kTwilioLimit) + " concurrent, " +
                             std::to_string(kTwilioDelayMs) +
                             " ms per request; 3 replicas, one Redis; " +
                             std::to_string(kReplicas * kClientsPerReplica) +
                             " Creates in flight\n" + Line("fixed 25 per replica (old)", fixed) +
                             "\n" + Line("adaptive, shared (defaults)", fleet) + "\n";
  std::printf("%s", report.c_str());
  std::ofstream(LogDir() + "/fleet-limit-report.txt") << report;

  for (const Figures* f : {&fixed, &fleet}) {
    EXPECT_EQ(f->not_created, 0);
    EXPECT_EQ(f->duplicated, 0);
  }
  // The fixed limits send 75 at once to a limit of 30: most attempts are refused (measured
  // 70-73%).
  EXPECT_GT(fixed.throttled_share(), 0.3);
  // The fleet converges on Twilio's limit and only probes past it now and then (measured
  // 0.3-0.7%: a few 429s each time F crosses 30; the bound leaves a margin of seven times).
  EXPECT_LT(fleet.throttled_share(), 0.05);
  EXPECT_LT(fleet.throttled_share(), fixed.throttled_share() / 10);
}

}  // namespace
}  // namespace gateway::testing
