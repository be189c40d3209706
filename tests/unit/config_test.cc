#include "config/config.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kAccount = "AC0123456789abcdef0123456789abcdef";
const std::string kApiKey = "SK0123456789abcdef0123456789abcdef";
const std::string kAuthToken = "auth-token-VALUE-4f2a";
const std::string kApiSecret = "api-secret-VALUE-9c1b";
const std::string kRedisPassword = "redis-password-VALUE-77d0";

using EnvMap = std::map<std::string, std::string>;

ValueLookup EnvFrom(EnvMap vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) {
      return std::nullopt;
    }
    return it->second;
  };
}

// The minimum a valid environment holds.
EnvMap BaseEnv() { return {{"TWILIO_ACCOUNT_SID", kAccount}, {"TWILIO_AUTH_TOKEN", kAuthToken}}; }

absl::StatusOr<GatewayConfig> Parse(const std::vector<std::string>& args, EnvMap env = BaseEnv()) {
  return ParseConfig(args, EnvFrom(std::move(env)));
}

void ExpectInvalidNaming(const absl::StatusOr<GatewayConfig>& result, const std::string& name) {
  ASSERT_FALSE(result.ok()) << "expected an error naming " << name;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr(name));
}

TEST(ParseConfigTest, Defaults) {
  absl::StatusOr<GatewayConfig> config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_address, "127.0.0.1:50051");
  EXPECT_EQ(config->twilio_base_url, "https://api.twilio.com");
  EXPECT_EQ(config->account.account_sid, kAccount);
  EXPECT_EQ(config->account.credentials.username, kAccount);
  EXPECT_EQ(config->account.credentials.password, kAuthToken);
  EXPECT_FALSE(config->account.api_key);
  EXPECT_EQ(config->default_deadline, absl::Seconds(10));
  EXPECT_EQ(config->attempt_timeout, absl::Seconds(5));
  EXPECT_EQ(config->connect_timeout, absl::Seconds(3));
  EXPECT_EQ(config->retry.max_attempts, 5);
  EXPECT_EQ(config->retry.backoff_base, absl::Milliseconds(100));
  EXPECT_EQ(config->retry.backoff_cap, absl::Seconds(2));
  EXPECT_EQ(config->retry.retry_after_cap, absl::Seconds(5));
  EXPECT_TRUE(config->retry.retry_ambiguous);
  EXPECT_EQ(config->max_upstream_connections, 0);
  EXPECT_EQ(config->ca_file, "");
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
}

TEST(ParseConfigTest, ReadsEnvironment) {
  EnvMap env = BaseEnv();
  env["GATEWAY_LISTEN"] = "127.0.0.1:6000";
  env["GATEWAY_ATTEMPT_TIMEOUT"] = "750ms";
  env["GATEWAY_MAX_ATTEMPTS"] = "7";
  env["GATEWAY_RETRY_AMBIGUOUS"] = "false";
  env["GATEWAY_LOG_LEVEL"] = "debug";
  absl::StatusOr<GatewayConfig> config = Parse({}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_address, "127.0.0.1:6000");
  EXPECT_EQ(config->attempt_timeout, absl::Milliseconds(750));
  EXPECT_EQ(config->retry.max_attempts, 7);
  EXPECT_FALSE(config->retry.retry_ambiguous);
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
}

TEST(ParseConfigTest, FlagsOverrideEnvironment) {
  EnvMap env = BaseEnv();
  env["GATEWAY_MAX_ATTEMPTS"] = "7";
  env["GATEWAY_LISTEN"] = "127.0.0.1:6000";
  absl::StatusOr<GatewayConfig> config = Parse({"--max-attempts=3", "--listen", "[::1]:7000"}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->retry.max_attempts, 3);
  EXPECT_EQ(config->listen_address, "[::1]:7000");
}

TEST(ParseConfigTest, AcceptsFlagSpaceValueAndFlagEqualsValue) {
  absl::StatusOr<GatewayConfig> config =
      Parse({"--default-deadline", "20s", "--backoff-cap=3s", "--twilio-ca-file", "/etc/ca.pem",
             "--max-upstream-connections=64", "--retry-after-cap", "1m"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->default_deadline, absl::Seconds(20));
  EXPECT_EQ(config->retry.backoff_cap, absl::Seconds(3));
  EXPECT_EQ(config->ca_file, "/etc/ca.pem");
  EXPECT_EQ(config->max_upstream_connections, 64);
  EXPECT_EQ(config->retry.retry_after_cap, absl::Minutes(1));
}

TEST(ParseConfigTest, RejectsUnknownFlag) {
  ExpectInvalidNaming(Parse({"--no-such-flag=1"}), "no-such-flag");
}

TEST(ParseConfigTest, RejectsPositionalArgument) { ExpectInvalidNaming(Parse({"extra"}), "extra"); }

TEST(ParseConfigTest, RejectsFlagWithoutValue) {
  ExpectInvalidNaming(Parse({"--attempt-timeout"}), "--attempt-timeout");
}

TEST(ParseConfigTest, RejectsBadDuration) {
  ExpectInvalidNaming(Parse({"--attempt-timeout=5"}), "--attempt-timeout");
  ExpectInvalidNaming(Parse({"--attempt-timeout=fast"}), "--attempt-timeout");
  ExpectInvalidNaming(Parse({"--default-deadline=-1s"}), "--default-deadline");
  ExpectInvalidNaming(Parse({"--connect-timeout=0s"}), "--connect-timeout");
  ExpectInvalidNaming(Parse({"--backoff-base=inf"}), "--backoff-base");
}

TEST(ParseConfigTest, BadEnvironmentValueNamesTheVariable) {
  EnvMap env = BaseEnv();
  env["GATEWAY_ATTEMPT_TIMEOUT"] = "soon";
  ExpectInvalidNaming(Parse({}, env), "GATEWAY_ATTEMPT_TIMEOUT");
}

TEST(ParseConfigTest, RejectsOutOfRangeMaxAttempts) {
  ExpectInvalidNaming(Parse({"--max-attempts=0"}), "--max-attempts");
  ExpectInvalidNaming(Parse({"--max-attempts=21"}), "--max-attempts");
  ExpectInvalidNaming(Parse({"--max-attempts=two"}), "--max-attempts");
}

TEST(ParseConfigTest, RejectsCapBelowBase) {
  ExpectInvalidNaming(Parse({"--backoff-base=1s", "--backoff-cap=500ms"}), "--backoff-cap");
}

TEST(ParseConfigTest, RejectsBadEnumValues) {
  ExpectInvalidNaming(Parse({"--retry-ambiguous=yes"}), "--retry-ambiguous");
  ExpectInvalidNaming(Parse({"--log-level=loud"}), "--log-level");
  ExpectInvalidNaming(Parse({"--listen=50051"}), "--listen");
}

TEST(ParseConfigTest, MissingAccountSid) {
  EnvMap env = BaseEnv();
  env.erase("TWILIO_ACCOUNT_SID");
  ExpectInvalidNaming(Parse({}, env), "TWILIO_ACCOUNT_SID");
  env["TWILIO_ACCOUNT_SID"] = "";
  ExpectInvalidNaming(Parse({}, env), "TWILIO_ACCOUNT_SID");
}

TEST(ParseConfigTest, MalformedAccountSid) {
  for (const std::string& bad :
       {std::string("AC123"), "CA" + kAccount.substr(2), kAccount.substr(0, 33) + "g"}) {
    EnvMap env = BaseEnv();
    env["TWILIO_ACCOUNT_SID"] = bad;
    ExpectInvalidNaming(Parse({}, env), "TWILIO_ACCOUNT_SID");
  }
}

TEST(ParseConfigTest, MissingAuthTokenWithoutApiKey) {
  EnvMap env = BaseEnv();
  env.erase("TWILIO_AUTH_TOKEN");
  ExpectInvalidNaming(Parse({}, env), "TWILIO_AUTH_TOKEN");
}

TEST(ParseConfigTest, PrefersApiKeyOverAuthToken) {
  EnvMap env = BaseEnv();
  env["TWILIO_API_KEY"] = kApiKey;
  env["TWILIO_API_SECRET"] = kApiSecret;
  absl::StatusOr<GatewayConfig> config = Parse({}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->account.api_key);
  EXPECT_EQ(config->account.credentials.username, kApiKey);
  EXPECT_EQ(config->account.credentials.password, kApiSecret);
  EXPECT_EQ(config->account.account_sid, kAccount);  // Still the account in the path.
}

TEST(ParseConfigTest, ApiKeyWithoutAuthTokenIsEnough) {
  EnvMap env = {{"TWILIO_ACCOUNT_SID", kAccount},
                {"TWILIO_API_KEY", kApiKey},
                {"TWILIO_API_SECRET", kApiSecret}};
  absl::StatusOr<GatewayConfig> config = Parse({}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->account.api_key);
}

TEST(ParseConfigTest, ApiKeyWithoutSecret) {
  EnvMap env = BaseEnv();
  env["TWILIO_API_KEY"] = kApiKey;
  ExpectInvalidNaming(Parse({}, env), "TWILIO_API_SECRET");
}

TEST(ParseConfigTest, MalformedApiKey) {
  EnvMap env = BaseEnv();
  env["TWILIO_API_KEY"] = "AK123";
  env["TWILIO_API_SECRET"] = kApiSecret;
  ExpectInvalidNaming(Parse({}, env), "TWILIO_API_KEY");
}

TEST(ParseConfigTest, EdgeAndRegionBuildTheHost) {
  EnvMap env = BaseEnv();
  env["TWILIO_EDGE"] = "dublin";
  env["TWILIO_REGION"] = "ie1";
  absl::StatusOr<GatewayConfig> config = Parse({}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->twilio_base_url, "https://api.dublin.ie1.twilio.com");
}

TEST(ParseConfigTest, EdgeAloneUsesRegionUs1) {
  EnvMap env = BaseEnv();
  env["TWILIO_EDGE"] = "ashburn";
  absl::StatusOr<GatewayConfig> config = Parse({}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->twilio_base_url, "https://api.ashburn.us1.twilio.com");
}

TEST(ParseConfigTest, RegionAloneIsRejected) {
  EnvMap env = BaseEnv();
  env["TWILIO_REGION"] = "ie1";
  ExpectInvalidNaming(Parse({}, env), "TWILIO_REGION");
}

TEST(ParseConfigTest, RejectsMalformedEdge) {
  EnvMap env = BaseEnv();
  env["TWILIO_EDGE"] = "Ash.burn";
  ExpectInvalidNaming(Parse({}, env), "TWILIO_EDGE");
}

TEST(ParseConfigTest, BaseUrlFlagOverridesEdge) {
  EnvMap env = BaseEnv();
  env["TWILIO_EDGE"] = "ashburn";
  absl::StatusOr<GatewayConfig> config = Parse({"--twilio-base-url=https://twilio.example/"}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->twilio_base_url, "https://twilio.example");  // Trailing slash dropped.
}

TEST(ParseConfigTest, PlainHttpAllowedToLoopback) {
  for (const char* url : {"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080",
                          "http://127.0.0.1", "http://127.1.2.3:9000"}) {
    absl::StatusOr<GatewayConfig> config = Parse({std::string("--twilio-base-url=") + url});
    ASSERT_TRUE(config.ok()) << url << ": " << config.status();
    EXPECT_EQ(config->twilio_base_url, url);
  }
}

TEST(ParseConfigTest, PlainHttpRejectedToOtherHosts) {
  for (const char* url :
       {"http://api.twilio.com", "http://10.0.0.1:8080", "http://[2001:db8::1]:80"}) {
    ExpectInvalidNaming(Parse({std::string("--twilio-base-url=") + url}), "--twilio-base-url");
  }
}

// Names under 127.* are ordinary DNS names that can point anywhere.
TEST(ParseConfigTest, PlainHttpRejectedToHostsThatOnlyLookLikeLoopback) {
  for (const char* url :
       {"http://127.example.com", "http://127.0.0.1.nip.io:8080", "http://localhost.example.com"}) {
    ExpectInvalidNaming(Parse({std::string("--twilio-base-url=") + url}), "--twilio-base-url");
  }
}

TEST(ParseConfigTest, RejectsMalformedBaseUrl) {
  for (const char* url :
       {"api.twilio.com", "https://", "https://api.twilio.com/2010-04-01",
        "https://user:pw@api.twilio.com", "ftp://api.twilio.com", "https://api.twilio.com:99999",
        "https://:443", "http://127.0.0.1:http", "http://[::1"}) {
    ExpectInvalidNaming(Parse({std::string("--twilio-base-url=") + url}), "--twilio-base-url");
  }
  EnvMap env = BaseEnv();
  env["TWILIO_BASE_URL"] = "http://example.com";
  ExpectInvalidNaming(Parse({}, env), "TWILIO_BASE_URL");
}

TEST(ParseConfigTest, HelpIsNotFound) {
  EXPECT_EQ(Parse({"--help"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Parse({"-h"}).status().code(), absl::StatusCode::kNotFound);
  // Help works before any credentials are configured.
  EXPECT_EQ(Parse({"--help"}, {}).status().code(), absl::StatusCode::kNotFound);
}

TEST(ParseConfigTest, HelpWinsOverMalformedEnvironment) {
  EnvMap env = BaseEnv();
  env["GATEWAY_MAX_ATTEMPTS"] = "many";
  EXPECT_EQ(Parse({"--help"}, env).status().code(), absl::StatusCode::kNotFound);
  env = BaseEnv();
  env["TWILIO_REGION"] = "ie1";
  EXPECT_EQ(Parse({"--help"}, env).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Parse({"--max-attempts=0", "--help"}).status().code(), absl::StatusCode::kNotFound);
}

TEST(ParseConfigTest, ErrorMessagesNeverContainSecrets) {
  const EnvMap with_secrets = {{"TWILIO_ACCOUNT_SID", kAccount},
                               {"TWILIO_AUTH_TOKEN", kAuthToken},
                               {"TWILIO_API_KEY", kApiKey},
                               {"TWILIO_API_SECRET", kApiSecret},
                               {"GATEWAY_REDIS_PASSWORD", kRedisPassword}};
  struct Case {
    std::vector<std::string> args;
    EnvMap overrides;
  };
  const std::vector<Case> cases = {
      {{}, {{"TWILIO_ACCOUNT_SID", "AC-bad"}}},
      {{}, {{"TWILIO_ACCOUNT_SID", kAuthToken}}},  // Secret pasted in the wrong variable.
      {{}, {{"TWILIO_API_KEY", "bad-key"}}},
      {{}, {{"TWILIO_API_KEY", kApiSecret}}},
      {{}, {{"TWILIO_API_SECRET", ""}}},
      {{}, {{"TWILIO_REGION", "ie1"}}},
      {{}, {{"TWILIO_EDGE", "BAD EDGE"}}},
      {{}, {{"GATEWAY_ATTEMPT_TIMEOUT", "x"}}},
      {{}, {{"TWILIO_BASE_URL", "http://example.com"}}},
      {{"--unknown=" + kAuthToken}, {}},
      {{"--twilio-auth-token=" + kAuthToken}, {}},
      {{"--max-attempts=" + kApiSecret}, {}},
      {{"--backoff-base=2s", "--backoff-cap=1s"}, {}},
      {{"--redis-address=" + kRedisPassword}, {}},
      {{}, {{"GATEWAY_REDIS_ADDRESS", kRedisPassword}}},
  };
  for (const Case& c : cases) {
    EnvMap env = with_secrets;
    for (const auto& [name, value] : c.overrides) {
      env[name] = value;
    }
    absl::StatusOr<GatewayConfig> result = Parse(c.args, env);
    ASSERT_FALSE(result.ok());
    EXPECT_THAT(result.status().message(), Not(HasSubstr(kAuthToken))) << result.status();
    EXPECT_THAT(result.status().message(), Not(HasSubstr(kApiSecret))) << result.status();
    EXPECT_THAT(result.status().message(), Not(HasSubstr(kRedisPassword))) << result.status();
  }
}

TEST(ParseConfigTest, IdempotencyStoreKinds) {
  using Kind = GatewayConfig::IdempotencyStoreKind;
  EXPECT_EQ(Parse({})->idempotency_store, Kind::kMemory);
  EXPECT_EQ(Parse({"--idempotency-store=redis"})->idempotency_store, Kind::kRedis);
  EXPECT_EQ(Parse({"--idempotency-store", "none"})->idempotency_store, Kind::kNone);
  ExpectInvalidNaming(Parse({"--idempotency-store=disk"}), "--idempotency-store");
}

TEST(ParseConfigTest, RedisAddressIsHostAndPort) {
  absl::StatusOr<GatewayConfig> config = Parse({"--redis-address=redis.internal:6380"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis_host, "redis.internal");
  EXPECT_EQ(config->redis_port, 6380);
  for (const char* bad : {"redis.internal", ":6379", "redis:0", "redis:65536", "redis:port"}) {
    ExpectInvalidNaming(Parse({std::string("--redis-address=") + bad}), "--redis-address");
  }
}

TEST(ParseConfigTest, RedisAddressMayBeBracketedIpv6) {
  absl::StatusOr<GatewayConfig> config = Parse({"--redis-address=[::1]:6380"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis_host, "::1");
  EXPECT_EQ(config->redis_port, 6380);
  ExpectInvalidNaming(Parse({"--redis-address=::1:6380"}), "--redis-address");
  ExpectInvalidNaming(Parse({"--redis-address=[::1]"}), "--redis-address");
}

// The listen flags are split like the servers split them, so a typo stops start-up with the
// flag's name rather than failing in gRPC or the metrics server later.
TEST(ParseConfigTest, ListenAddressesNeedAPort) {
  for (const char* flag : {"--listen", "--health-listen", "--metrics-listen"}) {
    for (const char* bad : {"127.0.0.1:", "127.0.0.1:http", "::1:9090", "[::1:9090", "h:65536"}) {
      ExpectInvalidNaming(Parse({absl::StrCat(flag, "=", bad)}), flag);
    }
  }
  absl::StatusOr<GatewayConfig> config =
      Parse({"--health-listen=[::1]:8081", "--metrics-listen=:9090"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->health_listen_address, "[::1]:8081");
  EXPECT_EQ(config->metrics_listen_address, ":9090");
}

TEST(ParseConfigTest, RedisPasswordComesFromTheEnvironmentOnly) {
  EnvMap env = BaseEnv();
  env["GATEWAY_REDIS_PASSWORD"] = kRedisPassword;
  absl::StatusOr<GatewayConfig> config = Parse({}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis_password, kRedisPassword);
  ExpectInvalidNaming(Parse({"--redis-password=x"}), "redis-password");
}

TEST(ParseConfigTest, RedisUserAndPasswordFile) {
  absl::StatusOr<GatewayConfig> config =
      Parse({"--redis-username=gateway", "--redis-password-file=/run/secrets/redis/password"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->redis_username, "gateway");
  EXPECT_EQ(config->redis_password_file, "/run/secrets/redis/password");
  EXPECT_TRUE(config->redis_password.empty());

  EnvMap env = BaseEnv();
  env["GATEWAY_REDIS_PASSWORD"] = kRedisPassword;
  absl::StatusOr<GatewayConfig> both = Parse({"--redis-password-file=/run/p"}, env);
  ExpectInvalidNaming(both, "--redis-password-file");
  EXPECT_THAT(both.status().message(), Not(HasSubstr(kRedisPassword)));
}

TEST(ParseConfigTest, RedisSentinelsAndWait) {
  absl::StatusOr<GatewayConfig> plain = Parse({});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->redis_wait_replicas, 0);  // No replicas known: no WAIT.

  absl::StatusOr<GatewayConfig> config =
      Parse({"--redis-sentinels=s0:26379, s1:26379,[::1]:26380", "--redis-master-name=gateway"});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->redis_sentinels.size(), 3u);
  EXPECT_EQ(config->redis_sentinels[1].host, "s1");
  EXPECT_EQ(config->redis_sentinels[2].port, 26380);
  EXPECT_EQ(config->redis_master_name, "gateway");
  EXPECT_EQ(config->redis_wait_replicas, 1);  // Sentinel means replicas: WAIT for one.
  EXPECT_EQ(config->redis_wait_timeout, absl::Milliseconds(100));

  absl::StatusOr<GatewayConfig> no_wait =
      Parse({"--redis-sentinels=s0:26379", "--redis-master-name=g", "--redis-wait-replicas=0",
             "--redis-wait-timeout=50ms"});
  ASSERT_TRUE(no_wait.ok()) << no_wait.status();
  EXPECT_EQ(no_wait->redis_wait_replicas, 0);
  EXPECT_EQ(no_wait->redis_wait_timeout, absl::Milliseconds(50));

  ExpectInvalidNaming(Parse({"--redis-sentinels=s0:26379"}), "--redis-sentinels");
  ExpectInvalidNaming(Parse({"--redis-master-name=g"}), "--redis-sentinels");
  ExpectInvalidNaming(Parse({"--redis-sentinels=s0"}), "--redis-sentinels");
  ExpectInvalidNaming(Parse({"--redis-sentinels=,"}), "--redis-sentinels");
  ExpectInvalidNaming(Parse({"--redis-wait-replicas=11"}), "--redis-wait-replicas");
  ExpectInvalidNaming(Parse({"--redis-wait-timeout=1s"}), "--redis-wait-timeout");
}

TEST(ParseConfigTest, RetryBudgetRatioRange) {
  absl::StatusOr<GatewayConfig> config = Parse({"--retry-budget-ratio=0.5"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->retry_budget_ratio, 0.5);
  for (const char* bad : {"0", "1.5", "lots"}) {
    ExpectInvalidNaming(Parse({std::string("--retry-budget-ratio=") + bad}),
                        "--retry-budget-ratio");
  }
}

TEST(ParseConfigTest, CredentialsDirectoryNeedsNoCredentialEnvironment) {
  absl::StatusOr<GatewayConfig> config =
      Parse({"--credentials-dir=/var/run/secrets/twilio"}, EnvMap{});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->credentials_dir, "/var/run/secrets/twilio");
  EXPECT_TRUE(config->account.account_sid.empty());  // main() reads the directory.
}

TEST(ParseConfigTest, CredentialsDirectoryAndSecretEnvironmentConflict) {
  // A rotated directory and a stale variable would disagree; say so instead of picking one.
  ExpectInvalidNaming(Parse({"--credentials-dir=/secrets"}), "TWILIO_AUTH_TOKEN");
}

TEST(ParseConfigTest, NonLoopbackListenNeedsTlsAndPolicy) {
  ExpectInvalidNaming(Parse({"--listen=0.0.0.0:50051"}), "--listen");
  ExpectInvalidNaming(Parse({"--listen=0.0.0.0:50051", "--tls-cert=c.pem", "--tls-key=k.pem"}),
                      "--caller-policy");
  EXPECT_TRUE(Parse({"--listen=0.0.0.0:50051", "--tls-cert=c.pem", "--tls-key=k.pem",
                     "--caller-policy=p.json"})
                  .ok());
  // A mesh that encrypts may carry plaintext, but callers still need a policy.
  ExpectInvalidNaming(Parse({"--listen=0.0.0.0:50051", "--allow-plaintext=true"}),
                      "--caller-policy");
  EXPECT_TRUE(
      Parse({"--listen=0.0.0.0:50051", "--allow-plaintext=true", "--caller-policy=p.json"}).ok());
}

TEST(ParseConfigTest, LoopbackListenMayBeOpen) {
  for (const char* listen : {"127.0.0.1:50051", "localhost:1", "[::1]:50051", "127.9.9.9:2"}) {
    EXPECT_TRUE(Parse({std::string("--listen=") + listen}).ok()) << listen;
  }
}

TEST(ParseConfigTest, TlsFlagsComeTogether) {
  ExpectInvalidNaming(Parse({"--tls-cert=c.pem"}), "--tls-cert");
  ExpectInvalidNaming(Parse({"--tls-key=k.pem"}), "--tls-cert");
  ExpectInvalidNaming(Parse({"--tls-client-ca=ca.pem"}), "--tls-client-ca");
  ASSERT_TRUE(Parse({"--tls-cert=c.pem", "--tls-key=k.pem", "--tls-client-ca=ca.pem"}).ok());
}

TEST(UsageTest, ListsFlagsAndCredentialVariables) {
  const std::string usage = Usage();
  for (const char* name : {"--listen", "--twilio-base-url", "--attempt-timeout", "--max-attempts",
                           "TWILIO_ACCOUNT_SID", "TWILIO_API_KEY", "TWILIO_AUTH_TOKEN",
                           "--credentials-dir", "--tls-client-ca", "--caller-tokens",
                           "--caller-policy", "--metrics-listen", "--health-listen"}) {
    EXPECT_THAT(usage, HasSubstr(name));
  }
}

// The exactly-once defaults: the retry budget rides out 30% faults (it drains only above 1/3),
// resolutions add at most 0.4 attempts per RPC in an outage, and Twilio is assumed to honour a
// key for 10 s.
TEST(ExactlyOnceConfigTest, DefaultsKeepThePromise) {
  absl::StatusOr<GatewayConfig> config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->retry_budget_ratio, 0.5);
  EXPECT_EQ(config->resolution_budget_ratio, 0.4);
  EXPECT_EQ(config->resolution_max_attempts, 10);
  EXPECT_EQ(config->twilio_key_window, absl::Seconds(10));
}

TEST(ExactlyOnceConfigTest, FlagsAndEnvironmentSetTheResolution) {
  absl::StatusOr<GatewayConfig> config =
      Parse({"--twilio-key-window", "24h", "--resolution-max-attempts", "3",
             "--resolution-budget-ratio", "0.2"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->twilio_key_window, absl::Hours(24));
  EXPECT_EQ(config->resolution_max_attempts, 3);
  EXPECT_EQ(config->resolution_budget_ratio, 0.2);
  EnvMap env = BaseEnv();
  env["GATEWAY_TWILIO_KEY_WINDOW"] = "1m";
  config = Parse({}, env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->twilio_key_window, absl::Minutes(1));
}

TEST(ExactlyOnceConfigTest, AKeyWindowShorterThanAnAttemptIsRefused) {
  // No resend could ever end inside it: every ambiguous outcome would be OUTCOME_UNKNOWN.
  absl::StatusOr<GatewayConfig> config = Parse({"--twilio-key-window", "3s"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), ::testing::HasSubstr("--twilio-key-window"));
  EXPECT_TRUE(Parse({"--twilio-key-window", "3s", "--attempt-timeout", "2s"}).ok());
  EXPECT_FALSE(Parse({"--resolution-max-attempts", "0"}).ok());
  EXPECT_FALSE(Parse({"--resolution-budget-ratio", "2"}).ok());
}

}  // namespace
}  // namespace gateway
