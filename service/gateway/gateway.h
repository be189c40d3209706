// The whole gateway as one object: builds every part from the configuration in dependency
// order, starts serving, and stops in one visible order (Stop()). main() only parses flags and
// waits for a signal.
//
// Stop order, each step's reason beside it in gateway.cc:
//   1. health NOT_SERVING          load balancers stop sending
//      webhook port closed         Twilio redelivers elsewhere; deliveries in hand are stored
//   2. Watch streams ended         with their cursors; gRPC intake closed (GOAWAY); unary RPCs
//                                  in flight finish within the grace period
//   3. connections closed          once no RPC is in flight: idle ones, health and reflection
//                                  streams; at the deadline, RPCs past the grace are cancelled
//   4. resolutions                 finish within the grace, or are handed over
//   5. upstream transport          transfers still in libcurl end while their users exist
//   6. timer, store worker         their callbacks reach the guard, the engine and the limiter
//   7. health port, then every part in reverse order of construction (the destructor)
//
// Thread-safety: Start() and Stop() from one thread (main); the parts are thread-safe.
#ifndef GATEWAY_GATEWAY_GATEWAY_H_
#define GATEWAY_GATEWAY_GATEWAY_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "api/caller_authenticator.h"
#include "api/message_service.h"
#include "api/message_watch.h"
#include "api/subscription_service.h"
#include "api/unary_call.h"
#include "auth/caller_policy.h"
#include "auth/caller_tokens.h"
#include "common/clock.h"
#include "common/random.h"
#include "common/snapshot.h"
#include "common/timer_thread.h"
#include "config/config.h"
#include "credentials/credential_loader.h"
#include "http/curl_transport.h"
#include "http/http_server.h"
#include "idempotency/idempotency_guard.h"
#include "idempotency/idempotency_store.h"
#include "limits/concurrency_limiter.h"
#include "limits/fleet_leases.h"
#include "limits/fleet_limit.h"
#include "messages/message_log.h"
#include "metrics/gateway_metrics.h"
#include "metrics/metrics.h"
#include "metrics/metrics_http_server.h"
#include "operations/operations.h"
#include "reload/reloadable_file.h"
#include "reload/reloader.h"
#include "retry/retry_budget.h"
#include "upstream/upstream_engine.h"
#include "webhook/receiver.h"

namespace gateway {

class HealthReporter;

class Gateway {
 public:
  // Builds and starts everything; the error names the flag or file at fault.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(const GatewayConfig& config);
  // Stop()s if that has not happened yet.
  ~Gateway();

  // The bound addresses, also when port 0 was asked for; "" for a port not configured.
  const std::string& listen_address() const { return listen_address_; }
  const std::string& health_address() const { return health_address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  const std::string& webhook_address() const { return webhook_address_; }

  // Drains and stops, in the order the header comment gives, within config.drain_grace.
  void Stop();

 private:
  explicit Gateway(const GatewayConfig& config);
  absl::Status LoadFiles();
  absl::Status StartServing();
  absl::Status StartWebhook();
  void LogStarted();

  const GatewayConfig config_;

  // The parts, in the order they are built; the destructor takes them down in reverse.
  Snapshot<TwilioAccount> account_;
  Snapshot<CallerTokens> tokens_;
  Snapshot<CallerPolicy> policy_;
  MetricsRegistry registry_;
  GatewayMetrics metrics_;
  std::optional<CredentialDirectory> credential_directory_;
  std::optional<ReloadableFile<CallerTokens>> token_file_;
  std::optional<ReloadableFile<CallerPolicy>> policy_file_;
  // When the credentials last changed (Unix ns), written by the reloader's thread: a new Auth
  // Token's predecessor verifies for the overlap from then.
  std::atomic<int64_t> credentials_changed_ns_{0};
  Reloader reloader_;  // After the files it re-reads: its thread stops before they go.
  CurlTransport transport_;
  TimerThread timer_;
  SystemClock clock_;
  SystemRandom random_;
  std::unique_ptr<IdempotencyStore> store_;
  std::unique_ptr<IdempotencyGuard> guard_;
  std::unique_ptr<MessageLog> message_log_;       // Null without the webhook receiver.
  std::unique_ptr<FleetLimitStore> fleet_store_;  // Null unless adaptive with Redis.
  ConcurrencyLimiter limiter_;
  std::unique_ptr<FleetLeases> fleet_leases_;
  RetryBudget retry_budget_;
  RetryBudget resolution_budget_;
  UpstreamEngine engine_;
  Operations operations_;
  CallerAuthenticator authenticator_;
  Api api_;
  SubscriptionService subscriptions_;
  MessageWatch watch_;
  MessageService messages_;
  std::unique_ptr<WebhookReceiver> receiver_;
  std::unique_ptr<MetricsHttpServer> metrics_server_;
  std::unique_ptr<HttpServer> webhook_server_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> health_server_;
  std::unique_ptr<HealthReporter> health_;

  std::string listen_address_;
  std::string health_address_;
  std::string metrics_address_;
  std::string webhook_address_;
  bool stopped_ = false;
};

}  // namespace gateway

#endif  // GATEWAY_GATEWAY_GATEWAY_H_
