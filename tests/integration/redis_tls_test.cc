// Redis over TLS with an ACL user, the way deploy/k8s runs it: Debian's redis-server listening
// with TLS only, an stunnel client on loopback in front of it (as the sidecar in the gateway's
// pod), and the real gateway talking plain RESP to stunnel, authenticating as an ACL user whose
// password it reads from a file. Debian 12's hiredis 0.14 has no TLS, hence the sidecar.
//
// A throwaway CA and server certificate are made with openssl in a scratch directory at test time
// (removed afterwards, outside the log directory that logs.no_secrets reads). Skipped only when
// stunnel is not installed (scripts/install-deps.sh installs stunnel4).
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "twilio_gateway/v1/subscription_service.grpc.pb.h"

namespace gateway::testing {
namespace {

namespace pb = twilio_gateway::v1;

constexpr char kUser[] = "twgw";
// Listed in check_logs_for_secrets.py: no file the tests leave may hold it.
constexpr char kPassword[] = "tls-acl-user-password-8d41f7";
constexpr char kServerName[] = "redis.test";
constexpr char kCallSid[] = "CA0123456789abcdef0123456789abcdef";
constexpr char kOpenssl[] = "/usr/bin/openssl";
constexpr char kRedisCli[] = "/usr/bin/redis-cli";

std::string StunnelBinary() {
  for (const char* path : {"/usr/bin/stunnel4", "/usr/bin/stunnel"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool Connectable(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

void RunOrThrow(const std::vector<std::string>& argv) {
  const CommandResult result = RunCommand(argv);
  if (result.exit_code != 0) {
    throw std::runtime_error(argv[0] + " " + argv[1] + " failed: " + result.err);
  }
}

// An stunnel client (foreground, logging to a file in LogDir()) accepting plain connections on a
// loopback port and opening TLS to `redis_tls_port`, verifying the server's certificate against
// `ca_file` and its name against `check_host`. Stopped when destroyed.
class Stunnel {
 public:
  Stunnel(const std::string& binary, const std::string& config_dir, int redis_tls_port,
          const std::string& ca_file, const std::string& check_host)
      : port_(FreeLoopbackPort()) {
    const std::string config = config_dir + "/stunnel-" + std::to_string(port_) + ".conf";
    // deploy/k8s/overlays/production-redis-tls/stunnel-configmap.yaml, on test ports.
    std::ofstream(config) << "foreground = yes\n"
                             "syslog = no\n"
                             "pid =\n"
                             "debug = notice\n"
                             "[redis]\n"
                             "client = yes\n"
                             "accept = 127.0.0.1:"
                          << port_ << "\nconnect = 127.0.0.1:" << redis_tls_port
                          << "\nCAfile = " << ca_file
                          << "\nverifyChain = yes\n"
                             "checkHost = "
                          << check_host << "\nsni = " << check_host
                          << "\nsslVersionMin = TLSv1.2\n";
    log_path_ = LogDir() + "/stunnel-" + std::to_string(port_) + ".log";
    process_ = std::make_unique<ChildProcess>(std::vector<std::string>{binary, config},
                                              std::map<std::string, std::string>{}, log_path_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!Connectable(port_)) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("stunnel did not listen; see " + log_path_);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  int port() const { return port_; }
  std::string Log() const { return ReadFile(log_path_); }

 private:
  int port_;
  std::string log_path_;
  std::unique_ptr<ChildProcess> process_;
};

class RedisTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stunnel_binary_ = StunnelBinary();
    if (stunnel_binary_.empty()) {
      GTEST_SKIP() << "stunnel is not installed (apt-get install stunnel4, or "
                      "scripts/install-deps.sh): the TLS sidecar cannot be tested";
    }
    char scratch[] = "/tmp/twgw-redis-tls-XXXXXX";
    ASSERT_NE(mkdtemp(scratch), nullptr);
    scratch_ = scratch;
    MakeCertificates();
    password_file_ = scratch_ + "/redis-password";
    std::ofstream(password_file_) << kPassword << "\n";  // As a mounted Secret's file may be.

    tls_port_ = FreeLoopbackPort();
    // TLS only (no plain port). The gateway's user: its keys, every command but the dangerous
    // ones (KEYS, CONFIG, FLUSHALL, ROLE...), which the gateway does not send without Sentinel.
    redis_ = std::make_unique<RedisServer>(std::vector<std::string>{"--port",
                                                                    "0",
                                                                    "--tls-port",
                                                                    std::to_string(tls_port_),
                                                                    "--tls-cert-file",
                                                                    scratch_ + "/server.crt",
                                                                    "--tls-key-file",
                                                                    scratch_ + "/server.key",
                                                                    "--tls-ca-cert-file",
                                                                    ca_file_,
                                                                    "--tls-auth-clients",
                                                                    "no",
                                                                    "--user",
                                                                    "default",
                                                                    "off",
                                                                    "--user",
                                                                    kUser,
                                                                    "on",
                                                                    std::string(">") + kPassword,
                                                                    "~twgw:*",
                                                                    "+@all",
                                                                    "-@dangerous"});
    sim_ = std::make_unique<Simulator>(LogDir());
  }

  void TearDown() override {
    sim_.reset();
    redis_.reset();
    if (!scratch_.empty()) RunCommand({"/bin/rm", "-rf", scratch_});
  }

  // A CA, a server certificate it signs for kServerName and 127.0.0.1, and a second CA that
  // signed nothing here (a client trusting only that one must refuse the server).
  void MakeCertificates() {
    ca_file_ = scratch_ + "/ca.crt";
    const std::string ext = scratch_ + "/server.ext";
    std::ofstream(ext) << "subjectAltName=DNS:" << kServerName << ",IP:127.0.0.1\n";
    for (const char* ca : {"ca", "other-ca"}) {
      RunOrThrow({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-days", "1", "-subj", std::string("/CN=gateway test ") + ca, "-keyout",
                  scratch_ + "/" + ca + ".key", "-out", scratch_ + "/" + ca + ".crt"});
    }
    RunOrThrow({kOpenssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-subj", std::string("/CN=") + kServerName, "-keyout", scratch_ + "/server.key",
                "-out", scratch_ + "/server.csr"});
    RunOrThrow({kOpenssl, "x509", "-req", "-in", scratch_ + "/server.csr", "-CA", ca_file_,
                "-CAkey", scratch_ + "/ca.key", "-CAcreateserial", "-days", "1", "-extfile", ext,
                "-out", scratch_ + "/server.crt"});
  }

  std::unique_ptr<Gateway> StartGateway(const Stunnel& stunnel, const std::string& name) {
    return std::make_unique<Gateway>(
        sim_->base_url(),
        std::vector<std::string>{"--idempotency-store", "redis", "--redis-address",
                                 "127.0.0.1:" + std::to_string(stunnel.port()), "--redis-username",
                                 kUser, "--redis-password-file", password_file_},
        std::map<std::string, std::string>{}, LogDir() + "/gateway-redis-tls-" + name + ".log");
  }

  // redis-cli straight to the TLS port, trusting the test's CA, as the ACL user.
  std::string Cli(const std::vector<std::string>& command) const {
    std::vector<std::string> argv = {kRedisCli,
                                     "--tls",
                                     "--cacert",
                                     ca_file_,
                                     "-h",
                                     "127.0.0.1",
                                     "-p",
                                     std::to_string(tls_port_),
                                     "--user",
                                     kUser,
                                     "--pass",
                                     kPassword,
                                     "--no-auth-warning"};
    argv.insert(argv.end(), command.begin(), command.end());
    const CommandResult result = RunCommand(argv);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return result.out;
  }

  static grpc::Status Create(const Gateway& gateway, const std::string& key,
                             pb::Subscription* subscription) {
    pb::CreateSubscriptionRequest request;
    request.set_call_sid(kCallSid);
    request.set_callback("https://example.com/twilio/messages");
    request.set_idempotency_key(key);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const auto channel = grpc::CreateChannel(gateway.target(), grpc::InsecureChannelCredentials());
    return pb::SubscriptionService::NewStub(channel)->Create(&context, request, subscription);
  }

  // A Create through a stunnel that refuses the server's certificate: UNAVAILABLE, nothing sent
  // to Twilio, and stunnel says why.
  void ExpectFailsClosed(const Stunnel& stunnel, const std::string& name) {
    auto gateway = StartGateway(stunnel, name);
    pb::Subscription subscription;
    const grpc::Status status = Create(*gateway, "tls-refused-" + name, &subscription);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    EXPECT_EQ(sim_->Stats()["requests"], 0);
    const std::string log = stunnel.Log();
    EXPECT_NE(log.find("certificate verify failed"), std::string::npos) << log;
    EXPECT_EQ(log.find("Certificate accepted"), std::string::npos) << log;
    gateway.reset();
    EXPECT_EQ(ReadFile(LogDir() + "/gateway-redis-tls-" + name + ".log").find(kPassword),
              std::string::npos);
  }

  std::string stunnel_binary_;
  std::string scratch_;
  std::string ca_file_;
  std::string password_file_;
  int tls_port_ = 0;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<Simulator> sim_;
};

TEST_F(RedisTlsTest, CreateKeepsItsRecordInRedisOverTlsThroughStunnelAsAnAclUser) {
  Stunnel stunnel(stunnel_binary_, scratch_, tls_port_, ca_file_, kServerName);
  auto gateway = StartGateway(stunnel, "ok");

  pb::Subscription created;
  const grpc::Status status = Create(*gateway, "tls-key-1", &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(created.sid().empty());
  // The same key again is answered from the record in Redis: still one subscription upstream.
  pb::Subscription replayed;
  ASSERT_TRUE(Create(*gateway, "tls-key-1", &replayed).ok());
  EXPECT_EQ(replayed.sid(), created.sid());
  EXPECT_EQ(sim_->SubscriptionsForKey(kSimAccountSid, kCallSid, "tls-key-1"), 1);

  // The record is in the TLS-only Redis, under the user's key pattern, holding the result.
  const std::string keys = Cli({"--scan", "--pattern", "twgw:idem:*"});
  ASSERT_NE(keys.find("tls-key-1"), std::string::npos) << keys;
  const std::string key = keys.substr(0, keys.find('\n'));
  EXPECT_NE(Cli({"HGETALL", key}).find(created.sid()), std::string::npos);
  // stunnel verified the certificate chain and name (it logs the leaf it accepted).
  EXPECT_NE(stunnel.Log().find("Certificate accepted at depth=0: CN=redis.test"), std::string::npos)
      << stunnel.Log();

  gateway.reset();
  EXPECT_EQ(ReadFile(LogDir() + "/gateway-redis-tls-ok.log").find(kPassword), std::string::npos);
}

TEST_F(RedisTlsTest, GatewayFailsClosedWhenStunnelRefusesACertificateItsCaDidNotSign) {
  Stunnel stunnel(stunnel_binary_, scratch_, tls_port_, scratch_ + "/other-ca.crt", kServerName);
  ExpectFailsClosed(stunnel, "wrong-ca");
}

TEST_F(RedisTlsTest, GatewayFailsClosedWhenStunnelRefusesACertificateForAnotherHost) {
  Stunnel stunnel(stunnel_binary_, scratch_, tls_port_, ca_file_, "redis.elsewhere.test");
  ExpectFailsClosed(stunnel, "wrong-host");
}

}  // namespace
}  // namespace gateway::testing
