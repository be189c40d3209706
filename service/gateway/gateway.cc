#include "gateway/gateway.h"

#include <curl/curl.h>
#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/host_port.h"
#include "common/log.h"
#include "idempotency/memory_store.h"
#include "idempotency/redis_store.h"
#include "limits/redis_fleet_limit.h"
#include "messages/memory_message_log.h"
#include "messages/redis_message_log.h"

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

// Where Redis is, how to log in, and how many replicas must hold a write before it counts: the
// same for every part that keeps data there (the idempotency records, the received messages).
RedisClientOptions RedisOptions(const GatewayConfig& config) {
  RedisClientOptions options;
  options.host = config.redis_host;
  options.port = config.redis_port;
  if (!config.redis_username.empty()) options.username = config.redis_username;
  if (!config.redis_password.empty()) options.password = config.redis_password;
  options.password_file = config.redis_password_file;
  options.sentinels = config.redis_sentinels;
  options.master_name = config.redis_master_name;
  options.sentinel_password_file = config.redis_sentinel_password_file;
  options.replica_acks = config.redis_wait_replicas;
  options.replica_ack_timeout = config.redis_wait_timeout;
  return options;
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
    case GatewayConfig::IdempotencyStoreKind::kRedis: {
      RedisStoreOptions options;
      options.redis = RedisOptions(config);
      return std::make_unique<RedisIdempotencyStore>(std::move(options), random);
    }
  }
  return nullptr;
}

// The account limits' AIMD, the same for each replica's limits and the fleet's.
AimdOptions AccountLimitOptions(const GatewayConfig& config) {
  return {.initial_limit = static_cast<int>(config.account_limit_initial),
          .max_limit = static_cast<int>(config.account_limit_max),
          .backoff_ratio = 0.5,
          // Half the start: random 429s cannot drive the fleet below it.
          .min_limit = std::max(1, static_cast<int>(config.account_limit_initial) / 2),
          .backoff_interval = config.account_limit_lease};
}

bool FleetLimited(const GatewayConfig& config) {
  return config.account_limit_adaptive &&
         config.idempotency_store == GatewayConfig::IdempotencyStoreKind::kRedis;
}

// With Redis, the replicas share each account's limit; otherwise each adapts its own.
std::unique_ptr<FleetLimitStore> MakeFleetLimitStore(const GatewayConfig& config, Random& random) {
  if (!FleetLimited(config)) return nullptr;
  RedisFleetLimitOptions options;
  options.redis = RedisOptions(config);
  options.replica_id = random.HexId128();
  options.aimd = AccountLimitOptions(config);
  options.heartbeat_ttl = 3 * config.account_limit_lease;
  return std::make_unique<RedisFleetLimitStore>(std::move(options));
}

// The log the webhook receiver feeds and Watch reads; null when the receiver is off.
std::unique_ptr<MessageLog> MakeMessageLog(const GatewayConfig& config, const Clock& clock) {
  if (config.webhook_listen_address.empty()) return nullptr;
  const MessageRetention retention = {
      .max_messages = static_cast<size_t>(config.message_retention_count),
      .max_age = config.message_retention,
      .max_bytes = static_cast<size_t>(config.message_retention_mb) << 20};
  // With Redis, replicas share the messages as they share the idempotency records.
  if (config.idempotency_store == GatewayConfig::IdempotencyStoreKind::kRedis) {
    return std::make_unique<RedisMessageLog>(
        RedisMessageLogOptions{.redis = RedisOptions(config), .retention = retention});
  }
  return std::make_unique<MemoryMessageLog>(retention, clock);
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
}  // namespace

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

namespace {

std::unique_ptr<grpc::Server> StartServer(const std::string& address,
                                          std::shared_ptr<grpc::ServerCredentials> credentials,
                                          std::vector<grpc::Service*> services, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, std::move(credentials), port);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) return nullptr;
  return server;
}

std::string BoundAddress(const std::string& address, int port) {
  absl::StatusOr<HostPort> split = SplitHostPort(address);  // Checked by ParseConfig.
  return split.ok() ? JoinHostPort(split->host, port) : address;
}

// grpc::Server::Shutdown() closes the listeners, sends the GOAWAYs and waits, in one call. The
// drain does the first two before it closes the connections left, or one accepted in between
// would sit idle and hold Shutdown() up; Shutdown() then joins the core server's shutdown begun
// here. Destroy only after Shutdown() has returned.
class GoAway {
 public:
  explicit GoAway(grpc_server* server) : cq_(grpc_completion_queue_create_for_pluck(nullptr)) {
    grpc_server_shutdown_and_notify(server, cq_, this);
  }
  ~GoAway() {
    const gpr_timespec forever = gpr_inf_future(GPR_CLOCK_REALTIME);
    grpc_completion_queue_pluck(cq_, this, forever, nullptr);
    grpc_completion_queue_shutdown(cq_);
    grpc_completion_queue_destroy(cq_);
  }
  GoAway(const GoAway&) = delete;
  GoAway& operator=(const GoAway&) = delete;

 private:
  grpc_completion_queue* const cq_;
};

}  // namespace

Gateway::Gateway(const GatewayConfig& config)
    : config_(config),
      metrics_(registry_),
      reloader_(config.reload_interval,
                [this](absl::string_view what, ReloadResult result, const std::string& error) {
                  metrics_.Reload(what, ReloadResultName(result));
                  if (result == ReloadResult::kLoaded) {
                    Log(LogLevel::kInfo, "reloaded", {{"what", std::string(what)}});
                    if (what == "credentials") {
                      credentials_changed_ns_ = absl::ToUnixNanos(clock_.Now());
                    }
                  } else {
                    Log(LogLevel::kError, "reload rejected, previous value kept",
                        {{"what", std::string(what)}, {"error", error}});
                  }
                }),
      transport_({.user_agent = UserAgent(),
                  .connect_timeout = config.connect_timeout,
                  .max_host_connections = config.max_upstream_connections,
                  .ca_file = config.ca_file}),
      store_(MakeIdempotencyStore(config, clock_, random_)),
      guard_(store_ == nullptr ? nullptr
                               : std::make_unique<IdempotencyGuard>(
                                     IdempotencyOptions{.retention = config.idempotency_retention},
                                     *store_, timer_, clock_, &metrics_)),
      message_log_(MakeMessageLog(config, clock_)),
      fleet_store_(MakeFleetLimitStore(config, random_)),
      limiter_({.max_in_flight_per_account = static_cast<int>(config.max_upstream_in_flight),
                .max_queued_per_account = static_cast<int>(config.max_upstream_queue),
                .adaptive = config.account_limit_adaptive,
                .aimd = AccountLimitOptions(config),
                .leased = fleet_store_ != nullptr},
               timer_, clock_),
      fleet_leases_(fleet_store_ == nullptr
                        ? nullptr
                        : std::make_unique<FleetLeases>(
                              FleetLeaseOptions{.period = config.account_limit_lease}, limiter_,
                              *fleet_store_, timer_, clock_)),
      retry_budget_(config.retry_budget_tokens, config.retry_budget_ratio),
      resolution_budget_(config.retry_budget_tokens, config.resolution_budget_ratio),
      engine_({.base_url = config.twilio_base_url,
               .attempt_timeout = config.attempt_timeout,
               .key_window = config.twilio_key_window,
               .retry = config.retry,
               .resolution_max_attempts = config.resolution_max_attempts},
              transport_, timer_, clock_, random_,
              {.limiter = &limiter_,
               .retry_budget = &retry_budget_,
               .resolution_budget = &resolution_budget_,
               .metrics = &metrics_}),
      operations_({.default_deadline = config.default_deadline,
                   .default_callback =
                       config.webhook_listen_address.empty() ? "" : config.public_webhook_url},
                  account_, engine_, clock_, random_,
                  {.policy = config.caller_policy_file.empty() ? nullptr : &policy_,
                   .idempotency = guard_.get()}),
      authenticator_({.tokens = config.caller_tokens_file.empty() ? nullptr : &tokens_,
                      .required = !config.caller_policy_file.empty()}),
      api_(operations_, random_, &authenticator_, &metrics_),
      subscriptions_(api_),
      watch_(api_, message_log_.get(),
             {.max_streams = static_cast<size_t>(config.max_watch_streams)}),
      messages_(api_, watch_) {
  metrics_.SetUpstreamGauges([this] { return limiter_.total_in_flight(); },
                             [this] { return limiter_.total_queued(); });
  metrics_.SetAccountLimits([this] { return limiter_.limits(); });
  metrics_.SetCredentialsLoaded([this] { return account_.Get() != nullptr ? 1.0 : 0.0; });
  if (fleet_leases_ != nullptr) {
    limiter_.SetOnNewAccount([this] { fleet_leases_->ExchangeSoon(); });
    fleet_leases_->Start();
  }
  metrics_.SetLogLinesDropped([] { return static_cast<double>(LogLinesDropped()); });
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(const GatewayConfig& config) {
  std::unique_ptr<Gateway> gateway(new Gateway(config));
  if (absl::Status loaded = gateway->LoadFiles(); !loaded.ok()) return loaded;
  if (absl::Status serving = gateway->StartServing(); !serving.ok()) return serving;
  gateway->LogStarted();
  return gateway;
}

// Credentials, tokens and policy: loaded now, then re-read by the reloader.
absl::Status Gateway::LoadFiles() {
  if (config_.credentials_dir.empty()) {
    account_.Set(std::make_shared<const TwilioAccount>(config_.account));
  } else {
    credential_directory_.emplace(config_.credentials_dir, account_);
    reloader_.Add("credentials",
                  [this](std::string* error) { return credential_directory_->Check(error); });
  }
  if (!config_.caller_tokens_file.empty()) {
    token_file_.emplace(config_.caller_tokens_file, &CallerTokens::Parse, tokens_);
    reloader_.Add("caller_tokens",
                  [this](std::string* error) { return token_file_->Check(error); });
  }
  if (!config_.caller_policy_file.empty()) {
    policy_file_.emplace(config_.caller_policy_file, &CallerPolicy::Parse, policy_);
    reloader_.Add("caller_policy",
                  [this](std::string* error) { return policy_file_->Check(error); });
  }
  reloader_.CheckAll();
  // Tokens and policy are ours to get right, so a bad file stops the start. Missing Twilio
  // credentials do not: the Secret may arrive later, and health says NOT_SERVING until then.
  if ((token_file_.has_value() && tokens_.Get() == nullptr) ||
      (policy_file_.has_value() && policy_.Get() == nullptr)) {
    return absl::InvalidArgumentError("the caller token or policy file is invalid (see the log)");
  }
  reloader_.Start();
  return absl::OkStatus();
}

absl::Status Gateway::StartServing() {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> caller_credentials =
      CallerCredentials(config_);
  if (!caller_credentials.ok()) return caller_credentials.status();
  if (!config_.metrics_listen_address.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> started =
        MetricsHttpServer::Start(config_.metrics_listen_address, registry_);
    if (!started.ok()) {
      return absl::UnavailableError(absl::StrCat("--metrics-listen: ", started.status().message()));
    }
    metrics_server_ = *std::move(started);
    metrics_address_ = BoundAddress(config_.metrics_listen_address, metrics_server_->port());
  }
  if (absl::Status webhook = StartWebhook(); !webhook.ok()) return webhook;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  int port = 0;
  server_ = StartServer(config_.listen_address, *caller_credentials, {&subscriptions_, &messages_},
                        &port);
  if (server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("--listen ", config_.listen_address, " could not be bound"));
  }
  listen_address_ = BoundAddress(config_.listen_address, port);
  // Kubelet's gRPC probes speak plaintext only; this port has nothing but health on it.
  if (!config_.health_listen_address.empty()) {
    int health_port = 0;
    health_server_ = StartServer(config_.health_listen_address, grpc::InsecureServerCredentials(),
                                 {}, &health_port);
    if (health_server_ == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("--health-listen ", config_.health_listen_address, " could not be bound"));
    }
    health_address_ = BoundAddress(config_.health_listen_address, health_port);
  }
  std::vector<grpc::Server*> servers = {server_.get()};
  if (health_server_ != nullptr) servers.push_back(health_server_.get());
  health_ = std::make_unique<HealthReporter>(
      servers, [this] { return account_.Get() != nullptr && transport_.Running(); });
  return absl::OkStatus();
}

// The receiver verifies with the Auth Token of the account the credentials name, read at each
// delivery, so a rotated Secret is used as soon as the reloader installs it.
absl::Status Gateway::StartWebhook() {
  if (message_log_ == nullptr) return absl::OkStatus();
  std::shared_ptr<const TwilioAccount> account = account_.Get();
  if (account != nullptr && account->auth_token.empty()) {
    return absl::InvalidArgumentError(
        "--webhook-listen needs TWILIO_AUTH_TOKEN to verify Twilio's signatures: with API key "
        "credentials, provide it beside TWILIO_API_KEY and TWILIO_API_SECRET");
  }
  absl::StatusOr<std::unique_ptr<WebhookReceiver>> receiver = WebhookReceiver::Create(
      {.public_url = config_.public_webhook_url, .token_overlap = config_.webhook_token_overlap},
      [this] {
        std::shared_ptr<const TwilioAccount> now = account_.Get();
        if (now == nullptr) return WebhookAccount{};
        return WebhookAccount{.account_sid = now->account_sid,
                              .auth_token = now->auth_token,
                              .since = absl::FromUnixNanos(credentials_changed_ns_.load())};
      },
      *message_log_, clock_,
      [this](absl::string_view result) { metrics_.WebhookDelivery(result); });
  if (!receiver.ok()) return receiver.status();
  receiver_ = *std::move(receiver);
  HttpServer::Options options;
  options.max_body_bytes = static_cast<size_t>(config_.webhook_max_body_bytes);
  options.threads = static_cast<int>(config_.webhook_threads);
  absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::StartAsync(
      config_.webhook_listen_address,
      [this](const HttpServer::Request& request, HttpServer::Respond respond) {
        receiver_->Handle(request, std::move(respond));
      },
      options);
  if (!server.ok()) {
    return absl::UnavailableError(absl::StrCat("--webhook-listen: ", server.status().message()));
  }
  webhook_server_ = *std::move(server);
  webhook_address_ = BoundAddress(config_.webhook_listen_address, webhook_server_->port());
  return absl::OkStatus();
}

void Gateway::LogStarted() {
  std::shared_ptr<const TwilioAccount> account = account_.Get();
  Log(LogLevel::kInfo, "started",
      {{"listen", listen_address_},
       {"caller_transport", config_.tls_cert_file.empty()        ? "plaintext"
                            : config_.tls_client_ca_file.empty() ? "tls"
                                                                 : "mutual_tls"},
       {"caller_policy", policy_file_.has_value() ? config_.caller_policy_file : "none"},
       {"twilio_base_url", config_.twilio_base_url},
       {"account_sid", account == nullptr ? "not loaded" : account->account_sid},
       {"auth", account == nullptr ? "none"
                : account->api_key ? "api_key"
                                   : "auth_token"},
       {"credentials_source",
        config_.credentials_dir.empty() ? "environment" : config_.credentials_dir},
       {"idempotency_store",
        store_ == nullptr                                                          ? "none"
        : config_.idempotency_store == GatewayConfig::IdempotencyStoreKind::kRedis ? "redis"
                                                                                   : "memory"},
       {"account_limit", !config_.account_limit_adaptive ? "fixed per replica"
                         : fleet_store_ != nullptr       ? "adaptive, fleet (redis)"
                                                         : "adaptive, this replica"},
       {"webhook", webhook_address_.empty() ? "off" : webhook_address_},
       {"public_webhook_url", config_.public_webhook_url}});
}

void Gateway::Stop() {
  if (stopped_) return;
  stopped_ = true;
  const absl::Time drain_deadline = absl::Now() + config_.drain_grace;
  // 1. Load balancers and probes see NOT_SERVING and stop sending.
  if (health_ != nullptr) health_->Drain();
  // Twilio redelivers what this port no longer takes; deliveries being stored finish first.
  if (webhook_server_ != nullptr) webhook_server_->Stop();
  // 2. Watch streams never end by themselves: end them now, each with the cursor to resume
  // from on another replica.
  watch_.EndAll();
  if (server_ != nullptr) {
    // 2. GOAWAY, listeners closed: no new RPCs.
    GoAway go_away(server_->c_server());
    // 3. Once no RPC is in flight (the Watch streams ended above included), none can begin
    // (Api::CloseWhenIdle): what is left is idle connections and health or reflection streams.
    // An idle connection closes only when its client acknowledges the GOAWAY, which a gRPC
    // C-core client that is not polling does at its backup poll, up to 5 s later: close them
    // all now. At the deadline, Shutdown() cancels the RPCs still running and waits for them.
    if (api_.CloseWhenIdle(drain_deadline)) grpc_server_cancel_all_calls(server_->c_server());
    server_->Shutdown(absl::ToChronoTime(drain_deadline));
    server_->Wait();
  }
  // 4. Resolutions of ambiguous outcomes get the rest of the grace period; the unfinished are
  // handed over to the next claimant (another replica, with the Redis store).
  if (guard_ != nullptr) guard_->Drain(drain_deadline);
  // 5. Transfers still in libcurl (of calls cancelled at the deadline) call back into the
  // limiter, store and timer: end them while those exist.
  transport_.Shutdown();
  // 6. The timer and the store's worker call back into the guard and the engine (a lease tick,
  // a claim answered after its RPC was cancelled, a resolution's last write): they end while
  // those exist. Dropped timers belong to calls already answered.
  if (fleet_leases_ != nullptr) fleet_leases_->Stop();
  timer_.Shutdown();
  if (store_ != nullptr) store_->Shutdown();
  if (fleet_store_ != nullptr) fleet_store_->Shutdown();
  if (message_log_ != nullptr) message_log_->Shutdown();
  // 7. Health checks are instant; whatever is left there is an idle probe connection.
  if (health_server_ != nullptr) health_server_->Shutdown(std::chrono::system_clock::now());
  health_.reset();
}

Gateway::~Gateway() { Stop(); }

}  // namespace gateway
