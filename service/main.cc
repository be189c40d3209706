// Wires configuration to objects and runs the gRPC server until SIGTERM or SIGINT.
#include <curl/curl.h>
#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "api/caller_authenticator.h"
#include "api/subscription_service.h"
#include "auth/caller_policy.h"
#include "auth/caller_tokens.h"
#include "common/host_port.h"
#include "common/log.h"
#include "common/snapshot.h"
#include "common/timer_thread.h"
#include "config/config.h"
#include "credentials/credential_loader.h"
#include "http/curl_transport.h"
#include "idempotency/idempotency_guard.h"
#include "idempotency/memory_store.h"
#include "idempotency/redis_store.h"
#include "limits/concurrency_limiter.h"
#include "metrics/gateway_metrics.h"
#include "metrics/metrics.h"
#include "metrics/metrics_http_server.h"
#include "reload/reloadable_file.h"
#include "reload/reloader.h"
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
                                            : std::optional<std::string>(config.redis_password)},
          random);
  }
  return nullptr;
}

// Plaintext, TLS, or mutual TLS from files that gRPC re-reads every `reload_interval`.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> CallerCredentials(
    const GatewayConfig& config) {
  if (config.tls_cert_file.empty()) return grpc::InsecureServerCredentials();
  // gRPC's watcher only logs unreadable files and then fails every handshake: check up front.
  for (const std::string& path :
       {config.tls_cert_file, config.tls_key_file, config.tls_client_ca_file}) {
    if (!path.empty() && access(path.c_str(), R_OK) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, " cannot be read"));
    }
  }
  const auto refresh =
      static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(config.reload_interval)));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      config.tls_key_file, config.tls_cert_file, config.tls_client_ca_file, refresh);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (config.tls_client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    // Verified when presented, not required at the handshake: a caller without a certificate
    // then gets a clear UNAUTHENTICATED (or uses a bearer token) instead of a failed handshake.
    options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

// SERVING only while the gateway can do its job: credentials loaded, upstream loop running,
// not draining. Checked twice a second and pushed to every gRPC server's health service.
class HealthReporter {
 public:
  HealthReporter(std::vector<grpc::Server*> servers, std::function<bool()> ready)
      : servers_(std::move(servers)), ready_(std::move(ready)), thread_([this] { Run(); }) {}

  ~HealthReporter() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  void Drain() {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    SetLocked(false);
  }

 private:
  void Run() {
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      if (!draining_) SetLocked(ready_());
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Milliseconds(500));
    }
  }

  void SetLocked(bool serving) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (serving == serving_) return;
    serving_ = serving;
    for (grpc::Server* server : servers_) {
      server->GetHealthCheckService()->SetServingStatus(serving);
    }
    Log(serving ? LogLevel::kInfo : LogLevel::kWarning, "health",
        {{"status", serving ? "SERVING" : "NOT_SERVING"}});
  }

  const std::vector<grpc::Server*> servers_;
  const std::function<bool()> ready_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<bool> serving_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

std::unique_ptr<grpc::Server> StartServer(const std::string& address,
                                          std::shared_ptr<grpc::ServerCredentials> credentials,
                                          grpc::Service* service, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, std::move(credentials), port);
  if (service != nullptr) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) return nullptr;
  return server;
}

std::string BoundAddress(const std::string& address, int port) {
  absl::StatusOr<HostPort> split = SplitHostPort(address);  // Checked by ParseConfig.
  return split.ok() ? JoinHostPort(split->host, port) : address;
}

int Run(int argc, char** argv) {
  // Blocked before any thread starts, so only sigwait() below sees these signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // No core dumps and no ptrace by other users' processes: memory holds the Twilio secret.
  prctl(PR_SET_DUMPABLE, 0);
  // Debian's Abseil keeps a lock graph for deadlock detection on every Mutex acquisition: 2-4%
  // of the CPU of a Create in profiles. The tests (and -fsanitize=thread) catch lock-order bugs.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

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

  // Credentials, tokens and policy: loaded now, then re-read by the reloader.
  Snapshot<TwilioAccount> account;
  Snapshot<CallerTokens> tokens;
  Snapshot<CallerPolicy> policy;
  MetricsRegistry registry;
  GatewayMetrics metrics(registry);
  // Declared before the reloader, so its thread has stopped before these go away.
  std::optional<CredentialDirectory> credential_directory;
  std::optional<ReloadableFile<CallerTokens>> token_file;
  std::optional<ReloadableFile<CallerPolicy>> policy_file;
  Reloader reloader(config->reload_interval, [&metrics](absl::string_view what, ReloadResult result,
                                                        const std::string& error) {
    metrics.Reload(what, ReloadResultName(result));
    if (result == ReloadResult::kLoaded) {
      Log(LogLevel::kInfo, "reloaded", {{"what", std::string(what)}});
    } else {
      Log(LogLevel::kError, "reload rejected, previous value kept",
          {{"what", std::string(what)}, {"error", error}});
    }
  });
  if (config->credentials_dir.empty()) {
    account.Set(std::make_shared<const TwilioAccount>(config->account));
  } else {
    credential_directory.emplace(config->credentials_dir, account);
    reloader.Add("credentials",
                 [&](std::string* error) { return credential_directory->Check(error); });
  }
  if (!config->caller_tokens_file.empty()) {
    token_file.emplace(config->caller_tokens_file, &CallerTokens::Parse, tokens);
    reloader.Add("caller_tokens", [&](std::string* error) { return token_file->Check(error); });
  }
  if (!config->caller_policy_file.empty()) {
    policy_file.emplace(config->caller_policy_file, &CallerPolicy::Parse, policy);
    reloader.Add("caller_policy", [&](std::string* error) { return policy_file->Check(error); });
  }
  reloader.CheckAll();
  // Tokens and policy are ours to get right, so a bad file stops the start. Missing Twilio
  // credentials do not: the Secret may arrive later, and health says NOT_SERVING until then.
  if ((token_file.has_value() && tokens.Get() == nullptr) ||
      (policy_file.has_value() && policy.Get() == nullptr)) {
    std::cerr << "twilio-gateway: the caller token or policy file is invalid (see the log)\n";
    return 2;
  }
  reloader.Start();

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> caller_credentials =
      CallerCredentials(*config);
  if (!caller_credentials.ok()) {
    std::cerr << "twilio-gateway: " << caller_credentials.status().message() << "\n";
    return 2;
  }

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
        IdempotencyOptions{.retention = config->idempotency_retention}, *store, timer, clock,
        &metrics);
  }
  ConcurrencyLimiter limiter(
      {.max_in_flight_per_account = static_cast<int>(config->max_upstream_in_flight),
       .max_queued_per_account = static_cast<int>(config->max_upstream_queue)},
      timer);
  RetryBudget budget(config->retry_budget_tokens, config->retry_budget_ratio);
  RetryBudget resolution_budget(config->retry_budget_tokens, config->resolution_budget_ratio);
  CreateSubscriptionHandler handler({.base_url = config->twilio_base_url,
                                     .default_deadline = config->default_deadline,
                                     .attempt_timeout = config->attempt_timeout,
                                     .key_window = config->twilio_key_window,
                                     .retry = config->retry,
                                     .resolution_max_attempts = config->resolution_max_attempts},
                                    account, transport, timer, clock, random,
                                    {.policy = policy_file.has_value() ? &policy : nullptr,
                                     .idempotency = guard.get(),
                                     .limiter = &limiter,
                                     .retry_budget = &budget,
                                     .resolution_budget = &resolution_budget,
                                     .metrics = &metrics});
  CallerAuthenticator authenticator(
      {.tokens = token_file.has_value() ? &tokens : nullptr, .required = policy_file.has_value()});
  SubscriptionService service(handler, &authenticator, &metrics);
  metrics.SetUpstreamGauges([&limiter] { return limiter.total_in_flight(); },
                            [&limiter] { return limiter.total_queued(); });
  metrics.SetCredentialsLoaded([&account] { return account.Get() != nullptr ? 1.0 : 0.0; });
  std::unique_ptr<MetricsHttpServer> metrics_server;
  if (!config->metrics_listen_address.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> started =
        MetricsHttpServer::Start(config->metrics_listen_address, registry);
    if (!started.ok()) {
      std::cerr << "twilio-gateway: --metrics-listen: " << started.status().message() << "\n";
      return 1;
    }
    metrics_server = *std::move(started);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  int port = 0;
  std::unique_ptr<grpc::Server> server =
      StartServer(config->listen_address, *caller_credentials, &service, &port);
  if (server == nullptr) {
    std::cerr << "twilio-gateway: --listen " << config->listen_address << " could not be bound\n";
    return 1;
  }
  // Kubelet's gRPC probes speak plaintext only; this port has nothing but health on it.
  std::unique_ptr<grpc::Server> health_server;
  int health_port = 0;
  if (!config->health_listen_address.empty()) {
    health_server = StartServer(config->health_listen_address, grpc::InsecureServerCredentials(),
                                nullptr, &health_port);
    if (health_server == nullptr) {
      std::cerr << "twilio-gateway: --health-listen " << config->health_listen_address
                << " could not be bound\n";
      return 1;
    }
  }
  std::vector<grpc::Server*> servers = {server.get()};
  if (health_server != nullptr) servers.push_back(health_server.get());
  HealthReporter health(servers, [&] { return account.Get() != nullptr && transport.Running(); });

  // Tests and scripts read the bound ports from these lines.
  const std::string listen = BoundAddress(config->listen_address, port);
  std::printf("twilio-gateway listening on %s\n", listen.c_str());
  if (health_server != nullptr) {
    std::printf("twilio-gateway health on %s\n",
                BoundAddress(config->health_listen_address, health_port).c_str());
  }
  if (metrics_server != nullptr) {
    std::printf("twilio-gateway metrics on %s\n",
                BoundAddress(config->metrics_listen_address, metrics_server->port()).c_str());
  }
  std::fflush(stdout);
  std::shared_ptr<const TwilioAccount> initial = account.Get();
  Log(LogLevel::kInfo, "started",
      {{"listen", listen},
       {"caller_transport", config->tls_cert_file.empty()        ? "plaintext"
                            : config->tls_client_ca_file.empty() ? "tls"
                                                                 : "mutual_tls"},
       {"caller_policy", policy_file.has_value() ? config->caller_policy_file : "none"},
       {"twilio_base_url", config->twilio_base_url},
       {"account_sid", initial == nullptr ? "not loaded" : initial->account_sid},
       {"auth", initial == nullptr ? "none"
                : initial->api_key ? "api_key"
                                   : "auth_token"},
       {"credentials_source",
        config->credentials_dir.empty() ? "environment" : config->credentials_dir},
       {"idempotency_store",
        store == nullptr                                                           ? "none"
        : config->idempotency_store == GatewayConfig::IdempotencyStoreKind::kRedis ? "redis"
                                                                                   : "memory"}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(LogLevel::kInfo, "stopping", {{"signal", strsignal(signal_number)}});
  // Drain: report NOT_SERVING, refuse new RPCs, let those in flight finish within the grace
  // period (then they are cancelled), and exit 0.
  health.Drain();
  const absl::Time drain_deadline = absl::Now() + config->drain_grace;
  // Shutdown() sends GOAWAY and refuses new RPCs at once, but then also waits for every client
  // to close its idle connection, which most never do before the deadline. So wait for our
  // own RPCs instead, and close what is left once they are done.
  std::thread shutdown([&] { server->Shutdown(absl::ToChronoTime(drain_deadline)); });
  if (service.WaitIdle(drain_deadline)) {
    // An RPC accepted just before the GOAWAY may not have reached Create() yet.
    absl::SleepFor(absl::Milliseconds(50));
    if (service.WaitIdle(drain_deadline)) grpc_server_cancel_all_calls(server->c_server());
  }
  shutdown.join();
  server->Wait();
  // Resolutions of ambiguous outcomes get the rest of the grace period; the unfinished are
  // handed over to the next claimant (another replica, with the redis store).
  if (guard != nullptr) guard->Drain(drain_deadline);
  // Calls cancelled at the drain deadline may still have transfers in libcurl; their callbacks
  // use the limiter, store and timer, so end them while those still exist.
  transport.Shutdown();
  // Health checks are instant; whatever is left there is an idle probe connection.
  if (health_server != nullptr) health_server->Shutdown(std::chrono::system_clock::now());
  Log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace
}  // namespace gateway

int main(int argc, char** argv) { return gateway::Run(argc, argv); }
