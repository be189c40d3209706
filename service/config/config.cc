#include "config/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/host_port.h"

namespace gateway {
namespace {

struct Setting {
  const char* flag;  // Without the leading "--".
  const char* env;
  const char* help;
  // Applies a value; returns an explanation of what is wrong with it, or "".
  std::string (*apply)(absl::string_view value, GatewayConfig& config);
};

std::string ApplyDuration(absl::string_view value, absl::Duration* out) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return "must be a positive duration such as 250ms, 5s or 1m";
  }
  *out = d;
  return "";
}

std::string ApplyInt(absl::string_view value, long min, long max, long* out) {
  long v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < min || v > max) {
    return absl::StrCat("must be an integer from ", min, " to ", max);
  }
  *out = v;
  return "";
}

std::string ApplyBool(absl::string_view value, bool* out) {
  if (value == "true") {
    *out = true;
  } else if (value == "false") {
    *out = false;
  } else {
    return "must be true or false";
  }
  return "";
}

std::string ApplyPath(absl::string_view value, std::string* out) {
  if (value.empty()) return "must be a file or directory path";
  *out = std::string(value);
  return "";
}

// Checked here with the splitter the servers use, so a bad address stops start-up with the
// flag's name instead of failing later in a server.
std::string ApplyAddress(absl::string_view value, std::string* out) {
  if (absl::StatusOr<HostPort> split = SplitHostPort(value); !split.ok()) {
    return absl::StrCat("must be host:port, [ipv6]:port or :port (", split.status().message(), ")");
  }
  *out = std::string(value);
  return "";
}

// Literal loopback addresses only: a DNS name such as 127.0.0.1.nip.io may resolve anywhere.
// `host` without brackets ("::1"), as SplitHostPort and SplitUrlAuthority give it.
bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr address{};
  return inet_pton(AF_INET, std::string(host).c_str(), &address) == 1 &&
         (ntohl(address.s_addr) >> 24) == 127;
}

// https anywhere; plain http only to this machine (the simulator), so credentials never cross a
// network in the clear.
std::string ApplyBaseUrl(absl::string_view value, GatewayConfig& config) {
  std::string url(absl::StripSuffix(value, "/"));
  absl::string_view rest = url;
  const bool https = absl::ConsumePrefix(&rest, "https://");
  if (!https && !absl::ConsumePrefix(&rest, "http://")) {
    return "must start with https:// (or http:// for a loopback simulator)";
  }
  if (rest.empty() || rest.find_first_of("/?#@ ") != absl::string_view::npos) {
    return "must be a scheme and host[:port] with no path, query or user name";
  }
  absl::StatusOr<UrlAuthority> authority = SplitUrlAuthority(rest);
  if (!authority.ok()) {
    return absl::StrCat("must be a scheme and host[:port]: ", authority.status().message());
  }
  if (!https && !IsLoopbackHost(authority->host)) {
    return "plain http is allowed only for loopback hosts; use https";
  }
  config.twilio_base_url = std::move(url);
  return "";
}

const Setting kSettings[] = {
    {"listen", "GATEWAY_LISTEN", "gRPC listen address, host:port (default 127.0.0.1:50051)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyAddress(v, &c.listen_address); }},
    {"twilio-base-url", "TWILIO_BASE_URL",
     "Twilio REST base URL (default https://api.twilio.com, or built from TWILIO_EDGE and "
     "TWILIO_REGION)",
     &ApplyBaseUrl},
    {"default-deadline", "GATEWAY_DEFAULT_DEADLINE",
     "deadline for RPCs that arrive without one (default 10s)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyDuration(v, &c.default_deadline); }},
    {"attempt-timeout", "GATEWAY_ATTEMPT_TIMEOUT", "longest single upstream attempt (default 5s)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyDuration(v, &c.attempt_timeout); }},
    {"twilio-key-window", "GATEWAY_TWILIO_KEY_WINDOW",
     "how long Twilio is assumed to recognize an IdempotencyKey after it first acted on it; "
     "Twilio documents no window. At least --attempt-timeout; ambiguous outcomes are resolved "
     "by resending only while a resend ends inside it (default 10s)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyDuration(v, &c.twilio_key_window); }},
    {"resolution-max-attempts", "GATEWAY_RESOLUTION_MAX_ATTEMPTS",
     "attempts of one background resolution of an ambiguous outcome, 1 to 50 (default 10)",
     [](absl::string_view v, GatewayConfig& c) {
       long n = 0;
       std::string problem = ApplyInt(v, 1, 50, &n);
       if (problem.empty()) c.resolution_max_attempts = static_cast<int>(n);
       return problem;
     }},
    {"resolution-budget-ratio", "GATEWAY_RESOLUTION_BUDGET_RATIO",
     "background resolution attempts allowed per RPC that reaches Twilio, once their budget "
     "(--retry-budget-tokens) is drained, 0.01 to 1 (default 0.4)",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       double ratio = 0;
       if (!absl::SimpleAtod(v, &ratio) || ratio < 0.01 || ratio > 1) {
         return "must be a number from 0.01 to 1";
       }
       c.resolution_budget_ratio = ratio;
       return "";
     }},
    {"connect-timeout", "GATEWAY_CONNECT_TIMEOUT",
     "TCP and TLS connect timeout to Twilio (default 3s)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyDuration(v, &c.connect_timeout); }},
    {"drain-grace", "GATEWAY_DRAIN_GRACE",
     "on SIGTERM, how long RPCs in flight may take to finish (default 5s)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyDuration(v, &c.drain_grace); }},
    {"max-attempts", "GATEWAY_MAX_ATTEMPTS", "upstream attempts per RPC, 1 to 20 (default 5)",
     [](absl::string_view v, GatewayConfig& c) {
       long n = 0;
       std::string problem = ApplyInt(v, 1, 20, &n);
       if (problem.empty()) c.retry.max_attempts = static_cast<int>(n);
       return problem;
     }},
    {"backoff-base", "GATEWAY_BACKOFF_BASE", "first retry backoff ceiling (default 100ms)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyDuration(v, &c.retry.backoff_base); }},
    {"backoff-cap", "GATEWAY_BACKOFF_CAP", "largest retry backoff ceiling (default 2s)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyDuration(v, &c.retry.backoff_cap); }},
    {"retry-after-cap", "GATEWAY_RETRY_AFTER_CAP", "longest Retry-After honoured (default 5s)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyDuration(v, &c.retry.retry_after_cap);
     }},
    {"retry-ambiguous", "GATEWAY_RETRY_AMBIGUOUS",
     "retry 5xx and lost responses with the same idempotency key: true or false (default true)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyBool(v, &c.retry.retry_ambiguous); }},
    {"max-upstream-connections", "GATEWAY_MAX_UPSTREAM_CONNECTIONS",
     "connections to Twilio at most, 0 for no limit (default 0)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 0, 100000, &c.max_upstream_connections);
     }},
    {"twilio-ca-file", "GATEWAY_TWILIO_CA_FILE",
     "CA bundle to verify Twilio's certificate with, instead of the system's",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       c.ca_file = std::string(v);
       return "";
     }},
    {"idempotency-store", "GATEWAY_IDEMPOTENCY_STORE",
     "where idempotency records live: memory, redis or none (default memory)",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       using Kind = GatewayConfig::IdempotencyStoreKind;
       if (v == "memory") {
         c.idempotency_store = Kind::kMemory;
       } else if (v == "redis") {
         c.idempotency_store = Kind::kRedis;
       } else if (v == "none") {
         c.idempotency_store = Kind::kNone;
       } else {
         return "must be memory, redis or none";
       }
       return "";
     }},
    {"idempotency-retention", "GATEWAY_IDEMPOTENCY_RETENTION",
     "how long a final outcome is replayed for its key (default 24h)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyDuration(v, &c.idempotency_retention);
     }},
    {"idempotency-max-entries", "GATEWAY_IDEMPOTENCY_MAX_ENTRIES",
     "memory store: records kept at most (default 100000)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 1, 100000000, &c.idempotency_max_entries);
     }},
    {"idempotency-max-mb", "GATEWAY_IDEMPOTENCY_MAX_MB",
     "memory store: megabytes of records kept at most (default 64)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 1, 65536, &c.idempotency_max_mb);
     }},
    {"redis-address", "GATEWAY_REDIS_ADDRESS",
     "redis store: host:port (default 127.0.0.1:6379); password from GATEWAY_REDIS_PASSWORD",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       // A connect address: a host is needed and port 0 would mean nothing.
       absl::StatusOr<HostPort> split = SplitHostPort(v);
       if (!split.ok() || split->host.empty() || split->port == 0) {
         return "must be host:port (or [ipv6]:port) with a port from 1 to 65535";
       }
       c.redis_host = std::move(split->host);
       c.redis_port = split->port;
       return "";
     }},
    {"redis-username", "GATEWAY_REDIS_USERNAME",
     "redis store: ACL user to AUTH as (default: the default user); its password from "
     "GATEWAY_REDIS_PASSWORD or --redis-password-file",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       c.redis_username = std::string(v);
       return "";
     }},
    {"redis-password-file", "GATEWAY_REDIS_PASSWORD_FILE",
     "redis store: file holding the password (a mounted Secret), read again at each reconnect; "
     "instead of GATEWAY_REDIS_PASSWORD",
     [](absl::string_view v, GatewayConfig& c) { return ApplyPath(v, &c.redis_password_file); }},
    {"redis-sentinels", "GATEWAY_REDIS_SENTINELS",
     "redis store through Sentinel: host:port,host:port,... of the sentinels, asked in turn for "
     "the master at each reconnect (with --redis-master-name; --redis-address is then unused)",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       c.redis_sentinels.clear();
       for (absl::string_view address : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
         absl::StatusOr<HostPort> split = SplitHostPort(absl::StripAsciiWhitespace(address));
         if (!split.ok() || split->host.empty() || split->port == 0) {
           return "must be a comma-separated list of host:port with ports from 1 to 65535";
         }
         c.redis_sentinels.push_back(*std::move(split));
       }
       return c.redis_sentinels.empty() ? "must name at least one sentinel" : "";
     }},
    {"redis-master-name", "GATEWAY_REDIS_MASTER_NAME",
     "redis store through Sentinel: the master's name in the sentinels' configuration",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       if (v.empty()) return "must not be empty";
       c.redis_master_name = std::string(v);
       return "";
     }},
    {"redis-sentinel-password-file", "GATEWAY_REDIS_SENTINEL_PASSWORD_FILE",
     "redis store through Sentinel: file holding the sentinels' password, read at each discovery",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyPath(v, &c.redis_sentinel_password_file);
     }},
    {"redis-wait-replicas", "GATEWAY_REDIS_WAIT_REPLICAS",
     "redis store: replicas that must acknowledge each batch of writes (WAIT) before a claim or "
     "an outcome counts as stored, 0 to 10 (default 1 with --redis-sentinels, 0 without)",
     [](absl::string_view v, GatewayConfig& c) {
       long n = 0;
       std::string problem = ApplyInt(v, 0, 10, &n);
       if (problem.empty()) c.redis_wait_replicas = static_cast<int>(n);
       return problem;
     }},
    {"redis-wait-timeout", "GATEWAY_REDIS_WAIT_TIMEOUT",
     "redis store: how long WAIT waits for the replicas, 1ms to 400ms: below the 500ms a Redis "
     "round trip may take (default 100ms)",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       absl::Duration timeout;
       std::string problem = ApplyDuration(v, &timeout);
       if (!problem.empty()) return problem;
       if (timeout < absl::Milliseconds(1) || timeout > absl::Milliseconds(400)) {
         return "must be from 1ms to 400ms";
       }
       c.redis_wait_timeout = timeout;
       return "";
     }},
    {"max-upstream-in-flight", "GATEWAY_MAX_UPSTREAM_IN_FLIGHT",
     "with --account-limit-adaptive=false: the fixed limit of upstream requests in flight per "
     "Twilio account on this replica; more wait in a queue (default 25)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 1, 10000, &c.max_upstream_in_flight);
     }},
    {"max-upstream-queue", "GATEWAY_MAX_UPSTREAM_QUEUE",
     "requests queued per account before RESOURCE_EXHAUSTED (default 1000)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 0, 1000000, &c.max_upstream_queue);
     }},
    {"retry-budget-ratio", "GATEWAY_RETRY_BUDGET_RATIO",
     "retries allowed per successful attempt once the budget is drained, 0.01 to 1 (default 0.5)",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       double ratio = 0;
       if (!absl::SimpleAtod(v, &ratio) || ratio < 0.01 || ratio > 1) {
         return "must be a number from 0.01 to 1";
       }
       c.retry_budget_ratio = ratio;
       return "";
     }},
    {"retry-budget-tokens", "GATEWAY_RETRY_BUDGET_TOKENS",
     "retry budget size: failed attempts absorbed before retries are throttled (default 100)",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       long tokens = 0;
       std::string problem = ApplyInt(v, 2, 1000, &tokens);
       if (problem.empty()) c.retry_budget_tokens = static_cast<double>(tokens);
       return problem;
     }},
    // One account limit across the fleet.
    {"account-limit-adaptive", "GATEWAY_ACCOUNT_LIMIT_ADAPTIVE",
     "adapt each account's concurrency limit to Twilio's 429s (AIMD), shared by replicas through "
     "Redis with --idempotency-store redis: true or false (default true)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyBool(v, &c.account_limit_adaptive); }},
    {"account-limit-max", "GATEWAY_ACCOUNT_LIMIT_MAX",
     "adaptive: the most requests in flight per account, for the whole fleet with Redis "
     "(default 100)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 1, 10000, &c.account_limit_max);
     }},
    {"account-limit-initial", "GATEWAY_ACCOUNT_LIMIT_INITIAL",
     "adaptive: where an account's limit starts, at most --account-limit-max (default 25)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 1, 10000, &c.account_limit_initial);
     }},
    {"account-limit-lease", "GATEWAY_ACCOUNT_LIMIT_LEASE",
     "adaptive with Redis: how often a replica reports to the fleet's limit and renews its share "
     "(default 1s)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyDuration(v, &c.account_limit_lease);
     }},
    {"credentials-dir", "GATEWAY_CREDENTIALS_DIR",
     "read TWILIO_* credentials from files in this directory (a mounted Secret), reloaded on "
     "change, instead of the environment",
     [](absl::string_view v, GatewayConfig& c) { return ApplyPath(v, &c.credentials_dir); }},
    {"reload-interval", "GATEWAY_RELOAD_INTERVAL",
     "how often credential, token, policy and TLS files are checked for changes (default 5s)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyDuration(v, &c.reload_interval); }},
    {"tls-cert", "GATEWAY_TLS_CERT", "PEM certificate chain for the gRPC port (reloaded)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyPath(v, &c.tls_cert_file); }},
    {"tls-key", "GATEWAY_TLS_KEY", "PEM private key for --tls-cert (reloaded)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyPath(v, &c.tls_key_file); }},
    {"tls-client-ca", "GATEWAY_TLS_CLIENT_CA",
     "PEM CA bundle: client certificates are verified against it and name the caller (mutual "
     "TLS, reloaded); callers without one need a bearer token",
     [](absl::string_view v, GatewayConfig& c) { return ApplyPath(v, &c.tls_client_ca_file); }},
    {"allow-plaintext", "GATEWAY_ALLOW_PLAINTEXT",
     "listen without TLS on a non-loopback address, for a mesh that encrypts: true or false",
     [](absl::string_view v, GatewayConfig& c) { return ApplyBool(v, &c.allow_plaintext); }},
    {"caller-tokens", "GATEWAY_CALLER_TOKENS",
     "file of \"caller sha256:HEX\" lines: bearer tokens, stored hashed (reloaded)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyPath(v, &c.caller_tokens_file); }},
    {"caller-policy", "GATEWAY_CALLER_POLICY",
     "JSON file: which caller may use which Twilio accounts (reloaded); required beyond loopback",
     [](absl::string_view v, GatewayConfig& c) { return ApplyPath(v, &c.caller_policy_file); }},
    {"health-listen", "GATEWAY_HEALTH_LISTEN",
     "extra plaintext gRPC port serving only grpc.health.v1, for kubelet probes (default off)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyAddress(v, &c.health_listen_address);
     }},
    {"metrics-listen", "GATEWAY_METRICS_LISTEN",
     "Prometheus /metrics HTTP address, host:port (default off)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyAddress(v, &c.metrics_listen_address);
     }},
    {"webhook-listen", "GATEWAY_WEBHOOK_LISTEN",
     "plain HTTP address of the Twilio webhook receiver, host:port (default off; TLS ends at "
     "the ingress); needs --public-webhook-url",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyAddress(v, &c.webhook_listen_address);
     }},
    {"public-webhook-url", "GATEWAY_PUBLIC_WEBHOOK_URL",
     "the URL Twilio is given and signs (https://host/path); signatures are checked against it, "
     "and Create uses it when a request has no callback",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       if (!absl::StartsWith(v, "https://") && !absl::StartsWith(v, "http://")) {
         return "must be an absolute https:// (or http://) URL";
       }
       c.public_webhook_url = std::string(v);
       return "";
     }},
    {"webhook-max-body-bytes", "GATEWAY_WEBHOOK_MAX_BODY_BYTES",
     "largest webhook body accepted; larger is answered 413 (default 65536)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 1024, 16 << 20, &c.webhook_max_body_bytes);
     }},
    {"webhook-threads", "GATEWAY_WEBHOOK_THREADS",
     "threads serving the webhook port; a delivery waiting for the store holds none (default 4)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyInt(v, 1, 64, &c.webhook_threads); }},
    {"webhook-token-overlap", "GATEWAY_WEBHOOK_TOKEN_OVERLAP",
     "after the Auth Token changes, how long the previous one still verifies (default 24h)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyDuration(v, &c.webhook_token_overlap);
     }},
    {"message-retention", "GATEWAY_MESSAGE_RETENTION",
     "how long received messages stay available to Watch (default 24h)",
     [](absl::string_view v, GatewayConfig& c) { return ApplyDuration(v, &c.message_retention); }},
    {"message-retention-count", "GATEWAY_MESSAGE_RETENTION_COUNT",
     "received messages kept at most (default 100000; with Redis, trimmed approximately)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 1, 100000000, &c.message_retention_count);
     }},
    {"message-retention-mb", "GATEWAY_MESSAGE_RETENTION_MB",
     "memory store: megabytes of received messages kept at most (default 64)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 1, 65536, &c.message_retention_mb);
     }},
    {"max-watch-streams", "GATEWAY_MAX_WATCH_STREAMS",
     "MessageService.Watch streams served at once; more are RESOURCE_EXHAUSTED (default 1000)",
     [](absl::string_view v, GatewayConfig& c) {
       return ApplyInt(v, 1, 100000, &c.max_watch_streams);
     }},
    {"log-level", "GATEWAY_LOG_LEVEL", "debug, info, warning or error (default info)",
     [](absl::string_view v, GatewayConfig& c) -> std::string {
       return ParseLogLevel(v, &c.log_level) ? "" : "must be debug, info, warning or error";
     }},
};

absl::Status Invalid(absl::string_view name, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(name, " ", problem));
}

// Either a directory or the environment, not a mix: a half-rotated pair is worse than an error.
absl::Status ApplyCredentials(const ValueLookup& env, GatewayConfig& config) {
  if (!config.credentials_dir.empty()) {
    for (const char* name : {"TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_AUTH_TOKEN"}) {
      if (!env(name).value_or("").empty()) {
        return Invalid(name,
                       "is set, but credentials come from GATEWAY_CREDENTIALS_DIR; unset one");
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<TwilioAccount> account = ReadTwilioAccount(env);
  if (!account.ok()) return account.status();
  config.account = *std::move(account);
  return absl::OkStatus();
}

// Plaintext callers are fine on this machine; anywhere else the transport needs TLS (or a mesh
// that provides it, said explicitly) and every caller needs a policy entry.
absl::Status CheckCallerSecurity(const GatewayConfig& config) {
  if (config.tls_cert_file.empty() != config.tls_key_file.empty()) {
    return Invalid("--tls-cert", "and --tls-key must be set together");
  }
  if (!config.tls_client_ca_file.empty() && config.tls_cert_file.empty()) {
    return Invalid("--tls-client-ca", "needs --tls-cert and --tls-key");
  }
  // ApplyAddress checked the form; the default needs no check.
  absl::StatusOr<HostPort> listen = SplitHostPort(config.listen_address);
  if (listen.ok() && IsLoopbackHost(listen->host)) return absl::OkStatus();
  if (config.tls_cert_file.empty() && !config.allow_plaintext) {
    return Invalid("--listen",
                   "is not a loopback address: set --tls-cert and --tls-key, or "
                   "--allow-plaintext=true behind a mesh that encrypts");
  }
  if (config.caller_policy_file.empty()) {
    return Invalid("--caller-policy", "is required when listening beyond loopback");
  }
  return absl::OkStatus();
}

// api.{edge}.{region}.twilio.com, region us1 when only an edge is given. Region-only hosts
// (api.ie1.twilio.com) stopped working on 2026-04-28, so a region alone is refused rather
// than silently built the way the helper libraries still do.
absl::Status ApplyEdgeAndRegion(const ValueLookup& env, GatewayConfig& config) {
  const std::string edge = env("TWILIO_EDGE").value_or("");
  const std::string region = env("TWILIO_REGION").value_or("");
  if (edge.empty() && region.empty()) return absl::OkStatus();
  auto is_name = [](absl::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
      return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
    });
  };
  if (!edge.empty() && !is_name(edge)) return Invalid("TWILIO_EDGE", "must be a name like ashburn");
  if (!region.empty() && !is_name(region))
    return Invalid("TWILIO_REGION", "must be a name like us1");
  if (edge.empty()) {
    return Invalid("TWILIO_REGION",
                   "needs TWILIO_EDGE too: region-only hosts no longer work (since 2026-04-28)");
  }
  config.twilio_base_url =
      absl::StrCat("https://api.", edge, ".", region.empty() ? "us1" : region, ".twilio.com");
  return absl::OkStatus();
}

}  // namespace

std::optional<std::string> ProcessEnvironment(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

absl::StatusOr<GatewayConfig> ParseConfig(const std::vector<std::string>& args,
                                          const ValueLookup& env) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") return absl::NotFoundError("help requested");
  }
  GatewayConfig config;
  if (absl::Status s = ApplyEdgeAndRegion(env, config); !s.ok()) return s;

  // Environment first, so flags override it.
  for (const Setting& setting : kSettings) {
    std::optional<std::string> value = env(setting.env);
    if (!value.has_value()) continue;
    if (std::string problem = setting.apply(*value, config); !problem.empty()) {
      return Invalid(setting.env, problem);
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    std::string name(arg);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const Setting* setting = nullptr;
    for (const Setting& s : kSettings) {
      if (name == s.flag) setting = &s;
    }
    if (setting == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) return Invalid(absl::StrCat("--", name), "needs a value");
      value = args[++i];
    }
    if (std::string problem = setting->apply(*value, config); !problem.empty()) {
      return Invalid(absl::StrCat("--", name), problem);
    }
  }
  if (config.retry.backoff_cap < config.retry.backoff_base) {
    return Invalid("--backoff-cap", "must not be smaller than --backoff-base");
  }
  config.account_limit_initial = std::min(config.account_limit_initial, config.account_limit_max);
  if (config.twilio_key_window < config.attempt_timeout) {
    return Invalid("--twilio-key-window", "must not be shorter than --attempt-timeout");
  }
  if (config.webhook_listen_address.empty() != config.public_webhook_url.empty()) {
    return Invalid(
        config.webhook_listen_address.empty() ? "--public-webhook-url" : "--webhook-listen",
        "needs --webhook-listen and --public-webhook-url together");
  }
  if (!config.webhook_listen_address.empty() &&
      config.idempotency_store == GatewayConfig::IdempotencyStoreKind::kNone) {
    return Invalid("--webhook-listen",
                   "needs a store for the messages: --idempotency-store memory or redis");
  }
  if (absl::Status s = CheckCallerSecurity(config); !s.ok()) return s;
  if (absl::Status s = ApplyCredentials(env, config); !s.ok()) return s;
  config.redis_password = env("GATEWAY_REDIS_PASSWORD").value_or("");
  if (config.redis_sentinels.empty() != config.redis_master_name.empty()) {
    return Invalid("--redis-sentinels", "and --redis-master-name must be set together");
  }
  // Where replicas exist (Sentinel implies them), a record counts as stored once one has it.
  if (config.redis_wait_replicas < 0) {
    config.redis_wait_replicas = config.redis_sentinels.empty() ? 0 : 1;
  }
  if (!config.redis_password.empty() && !config.redis_password_file.empty()) {
    return Invalid("--redis-password-file", "and GATEWAY_REDIS_PASSWORD are exclusive: set one");
  }
  return config;
}

std::string Usage() {
  std::string out =
      "twilio-gateway: gRPC gateway to Twilio user-defined message subscriptions.\n\n"
      "Usage: twilio-gateway [--flag=value ...]\n\n"
      "Flags (each also read from the environment variable shown; flags win):\n";
  for (const Setting& s : kSettings) {
    absl::StrAppend(&out, "  --", s.flag, " (", s.env, ")\n      ", s.help, "\n");
  }
  absl::StrAppend(
      &out,
      "\nCredentials (environment, or files of these names in GATEWAY_CREDENTIALS_DIR; never "
      "flags):\n"
      "  TWILIO_ACCOUNT_SID                 the account (AC...) used when a request names none\n"
      "  TWILIO_API_KEY + TWILIO_API_SECRET recommended; or\n"
      "  TWILIO_AUTH_TOKEN                  the account's auth token; with an API key too when\n"
      "                                     --webhook-listen is on (it verifies Twilio's "
      "signatures)\n"
      "  TWILIO_EDGE, TWILIO_REGION         build https://api.{edge}.{region}.twilio.com\n"
      "  GATEWAY_REDIS_PASSWORD             password of the redis idempotency store (or\n"
      "                                     --redis-password-file)\n");
  return out;
}

}  // namespace gateway
