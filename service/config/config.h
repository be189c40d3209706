// Gateway settings from command-line flags with environment fallbacks. Parsing is a pure
// function of (arguments, environment) so it is unit-tested without touching the process.
//
// Secrets (auth token, API secret) come from the environment or a credentials directory, never
// flags: command lines are readable by every user through /proc/<pid>/cmdline.
#ifndef GATEWAY_CONFIG_CONFIG_H_
#define GATEWAY_CONFIG_CONFIG_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/host_port.h"
#include "common/log.h"
#include "credentials/credential_loader.h"
#include "retry/retry_policy.h"
#include "twilio/twilio_api.h"

namespace gateway {

struct GatewayConfig {
  std::string listen_address = "127.0.0.1:50051";
  std::string twilio_base_url = "https://api.twilio.com";
  // From the environment when credentials_dir is empty; otherwise main() loads the directory.
  TwilioAccount account;
  std::string credentials_dir;
  absl::Duration reload_interval = absl::Seconds(5);

  // Caller-facing transport and identity; see README "Callers".
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;  // Set: client certificates verified and used as identity.
  bool allow_plaintext = false;    // Plaintext on a non-loopback address (mesh sidecar).
  std::string caller_tokens_file;
  std::string caller_policy_file;  // Empty: no authorization (loopback listeners only).
  std::string health_listen_address;
  std::string metrics_listen_address;
  absl::Duration default_deadline = absl::Seconds(10);
  absl::Duration attempt_timeout = absl::Seconds(5);
  // How long Twilio is assumed to recognize an IdempotencyKey (it documents no window).
  absl::Duration twilio_key_window = absl::Seconds(10);
  int resolution_max_attempts = 10;
  absl::Duration connect_timeout = absl::Seconds(3);
  absl::Duration drain_grace = absl::Seconds(5);
  RetryOptions retry;
  long max_upstream_connections = 0;  // Per host; 0 = no limit.
  std::string ca_file;
  LogLevel log_level = LogLevel::kInfo;

  enum class IdempotencyStoreKind { kNone, kMemory, kRedis };
  IdempotencyStoreKind idempotency_store = IdempotencyStoreKind::kMemory;
  absl::Duration idempotency_retention = absl::Hours(24);
  long idempotency_max_entries = 100000;
  long idempotency_max_mb = 64;
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
  std::string redis_username;       // An ACL user; empty for the default user.
  std::string redis_password;       // Secret: environment only.
  std::string redis_password_file;  // Or a file (re-read at each reconnect).
  // Sentinel: the master is asked for by name; redis_host/port are then unused.
  std::vector<HostPort> redis_sentinels;
  std::string redis_master_name;
  std::string redis_sentinel_password_file;
  // WAIT for this many replicas after a batch of writes. Unset (-1), ParseConfig makes it 1 with
  // Sentinel and 0 without.
  int redis_wait_replicas = -1;
  absl::Duration redis_wait_timeout = absl::Milliseconds(100);

  // The Twilio webhook receiver and the message log it feeds (MessageService.Watch). Off
  // unless webhook_listen is set, which needs public_webhook_url.
  std::string webhook_listen_address;
  std::string public_webhook_url;
  long webhook_max_body_bytes = 64 * 1024;
  long webhook_threads = 4;
  absl::Duration webhook_token_overlap = absl::Hours(24);
  absl::Duration message_retention = absl::Hours(24);
  long message_retention_count = 100000;
  long message_retention_mb = 64;  // Memory store only.
  long max_watch_streams = 1000;

  // Per account, per replica: the fixed limit when account_limit_adaptive is false.
  long max_upstream_in_flight = 25;
  long max_upstream_queue = 1000;  // Per account.
  double retry_budget_tokens = 100;
  // Above the 30% of failed attempts an upstream can have on a bad day (1/(1+0.5) = 1/3 is the
  // failure rate at which the budget stops draining), far below an outage.
  double retry_budget_ratio = 0.5;
  // Resolution attempts per RPC that reaches Twilio, once the resolution budget is drained: in
  // a total outage an RPC then costs 1.4 attempts (the promise is at most 1.5).
  double resolution_budget_ratio = 0.4;

  // One adaptive concurrency limit per Twilio account (README "One account limit across the
  // fleet"): AIMD on Twilio's 429s, shared by the replicas through Redis with the redis store.
  bool account_limit_adaptive = true;
  long account_limit_max = 100;     // Twilio's cited per-account figure; for the whole fleet.
  long account_limit_initial = 25;  // Where an account's limit starts.
  absl::Duration account_limit_lease = absl::Seconds(1);
};

// Environment lookup through getenv(); a ValueLookup (credentials/credential_loader.h), the
// same type the credentials are read through.
std::optional<std::string> ProcessEnvironment(const std::string& name);

// Parses `args` (without the program name). A missing or malformed setting yields
// INVALID_ARGUMENT whose message names the flag or variable; "--help" yields NOT_FOUND (the
// caller prints Usage()).
absl::StatusOr<GatewayConfig> ParseConfig(const std::vector<std::string>& args,
                                          const ValueLookup& env);

std::string Usage();

}  // namespace gateway

#endif  // GATEWAY_CONFIG_CONFIG_H_
