// Wires configuration to objects and runs the gRPC server until SIGTERM or SIGINT.
#include <curl/curl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <sys/utsname.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "api/subscription_service.h"
#include "common/log.h"
#include "common/timer_thread.h"
#include "config/config.h"
#include "http/curl_transport.h"
#include "idempotency/idempotency_guard.h"
#include "idempotency/memory_store.h"
#include "idempotency/redis_store.h"
#include "limits/concurrency_limiter.h"
#include "retry/retry_budget.h"
#include "subscriptions/create_subscription.h"

#ifndef GATEWAY_VERSION
#define GATEWAY_VERSION "0.0.0"
#endif

namespace gateway {
namespace {

std::string UserAgent() {
  utsname uts{};
  uname(&uts);
  return absl::StrCat("twilio-subscription-gateway/", GATEWAY_VERSION, " (",
                      absl::AsciiStrToLower(uts.sysname), " ", uts.machine, ") libcurl/",
                      curl_version_info(CURLVERSION_NOW)->version);
}

std::unique_ptr<IdempotencyStore> MakeIdempotencyStore(const GatewayConfig& config,
                                                       const Clock& clock, Random& random) {
  switch (config.idempotency_store) {
    case GatewayConfig::IdempotencyStoreKind::kNone:
      return nullptr;
    case GatewayConfig::IdempotencyStoreKind::kMemory:
      return std::make_unique<MemoryIdempotencyStore>(
          MemoryStoreOptions{.max_entries = static_cast<size_t>(config.idempotency_max_entries),
                             .max_bytes = static_cast<size_t>(config.idempotency_max_mb) << 20},
          clock, random);
    case GatewayConfig::IdempotencyStoreKind::kRedis:
      return std::make_unique<RedisIdempotencyStore>(
          RedisStoreOptions{.host = config.redis_host,
                            .port = config.redis_port,
                            .password = config.redis_password.empty()
                                            ? std::nullopt
                                            : std::optional<std::string>(config.redis_password)});
  }
  return nullptr;
}

int Run(int argc, char** argv) {
  // Blocked before any thread starts, so only sigwait() below sees these signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<GatewayConfig> config =
      ParseConfig(std::vector<std::string>(argv + 1, argv + argc), &ProcessEnvironment);
  if (!config.ok()) {
    if (absl::IsNotFound(config.status())) {
      std::cout << Usage();
      return 0;
    }
    std::cerr << "twilio-gateway: " << config.status().message() << "\n";
    return 2;
  }
  SetLogLevel(config->log_level);

  CurlTransport transport({.user_agent = UserAgent(),
                           .connect_timeout = config->connect_timeout,
                           .max_host_connections = config->max_upstream_connections,
                           .ca_file = config->ca_file});
  TimerThread timer;
  SystemClock clock;
  SystemRandom random;

  std::unique_ptr<IdempotencyStore> store = MakeIdempotencyStore(*config, clock, random);
  std::unique_ptr<IdempotencyGuard> guard;
  if (store != nullptr) {
    guard = std::make_unique<IdempotencyGuard>(
        IdempotencyOptions{.retention = config->idempotency_retention}, *store, timer, clock);
  }
  ConcurrencyLimiter limiter(
      {.max_in_flight_per_account = static_cast<int>(config->max_upstream_in_flight),
       .max_queued_per_account = static_cast<int>(config->max_upstream_queue)},
      timer);
  RetryBudget budget(config->retry_budget_tokens, config->retry_budget_ratio);
  CreateSubscriptionHandler handler(
      {.default_account_sid = config->account_sid,
       .default_deadline = config->default_deadline,
       .attempt_timeout = config->attempt_timeout,
       .retry = config->retry},
      TwilioEndpoint{config->twilio_base_url, config->credentials}, transport, timer, clock, random,
      {.idempotency = guard.get(), .limiter = &limiter, .retry_budget = &budget});
  SubscriptionService service(handler);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  // Plaintext gRPC: TLS for callers arrives with caller authentication; until then run it
  // behind a mesh or on a private network (see README).
  builder.AddListeningPort(config->listen_address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "twilio-gateway: --listen " << config->listen_address << " could not be bound\n";
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  const std::string host = config->listen_address.substr(0, config->listen_address.rfind(':'));
  // Tests and scripts read the bound port from this line.
  std::printf("twilio-gateway listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  Log(LogLevel::kInfo, "started",
      {{"listen", absl::StrCat(host, ":", port)},
       {"twilio_base_url", config->twilio_base_url},
       {"account_sid", config->account_sid},
       {"auth", config->using_api_key ? "api_key" : "auth_token"},
       {"idempotency_store",
        store == nullptr                                                           ? "none"
        : config->idempotency_store == GatewayConfig::IdempotencyStoreKind::kRedis ? "redis"
                                                                                   : "memory"}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(LogLevel::kInfo, "stopping", {{"signal", strsignal(signal_number)}});
  // Drain: report NOT_SERVING, refuse new RPCs, let those in flight finish within the grace
  // period (then they are cancelled), and exit 0.
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(absl::ToChronoTime(absl::Now() + config->drain_grace));
  server->Wait();
  Log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace
}  // namespace gateway

int main(int argc, char** argv) { return gateway::Run(argc, argv); }
