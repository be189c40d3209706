// The gateway as a production deployment runs it: credentials from a Secret directory that is
// rotated under load, callers on TLS and mutual TLS with certificates that are rotated too,
// bearer tokens, and the caller policy. Real binary, real simulator, real openssl certificates.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <thread>

#include "common/sha256.h"
#include "harness.h"
#include "subscription_client.h"

namespace gateway::testing {
namespace {

namespace fs = std::filesystem;
namespace pb = twilio_gateway::v1;
using twilio_gateway::client::ChannelCredentialsFromFiles;
using twilio_gateway::client::ClientOptions;
using twilio_gateway::client::CreateResult;
using twilio_gateway::client::DeleteResult;
using twilio_gateway::client::ErrorDetails;
using twilio_gateway::client::SendResult;
using twilio_gateway::client::SubscriptionClient;

constexpr char kCallSid[] = "CA0123456789abcdef0123456789abcdef";
constexpr char kOtherAccount[] = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
constexpr char kRotatedKey[] = "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
constexpr char kRotatedSecret[] = "rotated-api-secret-31c7";
constexpr char kBillingToken[] = "billing-token-0f9d2a7e61b4c385";
constexpr char kSupportToken[] = "support-token-77ae01c4d93b5f26";
constexpr char kBillingSpiffeId[] = "spiffe://test.example/ns/billing/sa/worker";

pb::CreateSubscriptionRequest Request(const std::string& key, const std::string& account = "") {
  pb::CreateSubscriptionRequest request;
  request.set_call_sid(kCallSid);
  request.set_callback("https://example.com/twilio/messages");
  request.set_idempotency_key(key);
  request.set_account_sid(account);
  return request;
}

pb::DeleteSubscriptionRequest DeleteRequest(const std::string& sid,
                                            const std::string& account = "") {
  pb::DeleteSubscriptionRequest request;
  request.set_call_sid(kCallSid);
  request.set_sid(sid);
  request.set_account_sid(account);
  return request;
}

pb::SendMessageRequest SendRequest(const std::string& key, const std::string& account = "") {
  pb::SendMessageRequest request;
  request.set_call_sid(kCallSid);
  request.set_content(R"({"text":"hi"})");
  request.set_idempotency_key(key);
  request.set_account_sid(account);
  return request;
}

std::string Reason(const ErrorDetails& details) {
  return details.error_info ? details.error_info->reason() : "";
}
std::string Reason(const CreateResult& result) { return Reason(result.details); }

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Replaces a file the way a careful writer (and the kubelet) does: write aside, then rename.
void WriteFileAtomically(const fs::path& path, const std::string& contents) {
  const fs::path temporary = path.string() + ".tmp";
  std::ofstream(temporary, std::ios::binary | std::ios::trunc) << contents;
  fs::rename(temporary, path);
}

// Waits up to `limit` for `condition`, checking every 50 ms.
bool Eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

int CountLines(const std::string& path, const std::vector<std::string>& needles) {
  std::ifstream in(path);
  int count = 0;
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const std::string& needle : needles) all = all && line.find(needle) != std::string::npos;
    count += all ? 1 : 0;
  }
  return count;
}

// grpc.health.v1.Health/Check through the generic stub: returns the status enum, or -1.
int HealthStatus(const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials =
                                                grpc::InsecureChannelCredentials()) {
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel(target, credentials, args);
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(s); });
  if (!done.get_future().get().ok()) return -1;
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!response.Dump(&slices).ok()) return -1;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse{status}: field 1, varint; an empty message is UNKNOWN (0).
  if (bytes.empty()) return 0;
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : -1;
}
constexpr int kServing = 1;
constexpr int kNotServing = 2;

// A throwaway certificate authority made with the openssl command line.
class TestPki {
 public:
  explicit TestPki(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

  // A CA named `name`: <name>.pem and <name>.key.
  void MakeCa(const std::string& name) {
    Run({"/usr/bin/openssl",
         "req",
         "-x509",
         "-newkey",
         "ec",
         "-pkeyopt",
         "ec_paramgen_curve:P-256",
         "-nodes",
         "-days",
         "2",
         "-subj",
         "/CN=" + name,
         "-addext",
         "basicConstraints=critical,CA:TRUE",
         "-addext",
         "keyUsage=critical,keyCertSign",
         "-keyout",
         Path(name + ".key"),
         "-out",
         Path(name + ".pem")});
  }

  // A leaf signed by `ca`, with the given subjectAltName and extendedKeyUsage.
  void MakeLeaf(const std::string& name, const std::string& ca, const std::string& san,
                const std::string& usage) {
    std::ofstream(Path(name + ".ext"))
        << "subjectAltName=" << san << "\nextendedKeyUsage=" << usage << "\n";
    Run({"/usr/bin/openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-subj", "/CN=" + name, "-keyout", Path(name + ".key"), "-out",
         Path(name + ".csr")});
    Run({"/usr/bin/openssl", "x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca + ".pem"),
         "-CAkey", Path(ca + ".key"), "-CAcreateserial", "-days", "2", "-extfile",
         Path(name + ".ext"), "-out", Path(name + ".pem")});
  }

  std::string Path(const std::string& file) const { return (dir_ / file).string(); }

 private:
  static void Run(const std::vector<std::string>& argv) {
    CommandResult result = RunCommand(argv);
    if (result.exit_code != 0) throw std::runtime_error("openssl failed: " + result.err);
  }

  fs::path dir_;
};

SubscriptionClient PlainClient(const std::string& target, std::string token = "") {
  return SubscriptionClient(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()),
                            ClientOptions{.bearer_token = std::move(token)});
}

SubscriptionClient TlsClient(const std::string& target, const TestPki& pki, const std::string& ca,
                             const std::string& client_cert = "", std::string token = "") {
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  std::string error;
  auto credentials = ChannelCredentialsFromFiles(
      pki.Path(ca + ".pem"), client_cert.empty() ? "" : pki.Path(client_cert + ".pem"),
      client_cert.empty() ? "" : pki.Path(client_cert + ".key"), &error);
  EXPECT_NE(credentials, nullptr) << error;
  return SubscriptionClient(grpc::CreateCustomChannel(target, credentials, args),
                            ClientOptions{.bearer_token = std::move(token)});
}

class ProductionSetupTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { sim_ = new Simulator(LogDir()); }
  static void TearDownTestSuite() { delete sim_; }
  void SetUp() override {
    sim_->Reset();
    dir_ = fs::path(LogDir()) / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  std::string LogPath() const { return (dir_ / "gateway.log").string(); }

  // Outside the log directory: logs.no_secrets reads every file there for these values.
  fs::path SecretsDir() {
    secrets_dir_ = fs::temp_directory_path() /
                   ("gateway-secrets-" + std::to_string(getpid()) + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(secrets_dir_);
    return secrets_dir_;
  }
  void TearDown() override {
    if (!secrets_dir_.empty()) fs::remove_all(secrets_dir_);
  }

  static void SetSimulatorApiKeys(const nlohmann::json& keys) {
    ASSERT_EQ(HttpCall("POST", sim_->base_url() + "/_sim/config",
                       nlohmann::json{{"api_keys", keys}}.dump())
                  .status,
              200);
  }

  // The last request the simulator saw for an idempotency key.
  static std::string AuthUserFor(const std::string& key) {
    std::string user;
    for (const auto& entry : sim_->Requests()) {
      if (entry["form"].value("IdempotencyKey", "") == key) user = entry.value("auth_user", "");
    }
    return user;
  }

  // API requests of one operation ("create", "delete", "send") the simulator received.
  static int RequestsFor(const std::string& operation) {
    int count = 0;
    for (const auto& entry : sim_->Requests()) count += entry["operation"] == operation ? 1 : 0;
    return count;
  }

  static Simulator* sim_;
  fs::path dir_;
  fs::path secrets_dir_;
};
Simulator* ProductionSetupTest::sim_ = nullptr;

// The environment the harness sets carries an auth token; a directory setup must not.
const std::map<std::string, std::string> kNoEnvironmentSecret = {{"TWILIO_AUTH_TOKEN", ""}};

TEST_F(ProductionSetupTest, SecretDirectoryRotatesWithoutRestartAndCallsInFlightKeepTheOldKey) {
  const fs::path secrets = SecretsDir();
  fs::create_directories(secrets);
  WriteFileAtomically(secrets / "TWILIO_ACCOUNT_SID", kSimAccountSid);
  WriteFileAtomically(secrets / "TWILIO_API_KEY", kSimApiKey);
  WriteFileAtomically(secrets / "TWILIO_API_SECRET", std::string(kSimApiSecret) + "\n");
  Gateway gateway(sim_->base_url(),
                  {"--credentials-dir", secrets.string(), "--reload-interval", "100ms"},
                  kNoEnvironmentSecret, LogPath());
  SubscriptionClient client = PlainClient(gateway.target());
  ASSERT_TRUE(client.Create(Request("before-rotation"), std::chrono::seconds(10)).status.ok());
  EXPECT_EQ(AuthUserFor("before-rotation"), kSimApiKey);

  // A call that is still in flight while the Secret rotates.
  sim_->SetFaults({{{"idempotency_key", "in-flight"}, {"delay_ms", 1500}}});
  auto in_flight = std::async(std::launch::async, [&client] {
    return client.Create(Request("in-flight"), std::chrono::seconds(10));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // Rotation as Twilio recommends: create the new key, roll it out, then revoke the old one.
  SetSimulatorApiKeys({{kSimApiKey, kSimApiSecret}, {kRotatedKey, kRotatedSecret}});
  WriteFileAtomically(secrets / "TWILIO_API_KEY", kRotatedKey);
  WriteFileAtomically(secrets / "TWILIO_API_SECRET", kRotatedSecret);
  ASSERT_TRUE(Eventually([&] {
    return CountLines(LogPath(), {"\"reloaded\"", "\"what\":\"credentials\""}) >= 2;
  })) << "the gateway never reloaded the directory";
  ASSERT_TRUE(client.Create(Request("after-rotation"), std::chrono::seconds(10)).status.ok());
  EXPECT_EQ(AuthUserFor("after-rotation"), kRotatedKey);

  const CreateResult slow = in_flight.get();
  EXPECT_TRUE(slow.status.ok()) << slow.status.error_message();
  EXPECT_EQ(AuthUserFor("in-flight"), kSimApiKey);

  SetSimulatorApiKeys({{kRotatedKey, kRotatedSecret}});
  EXPECT_TRUE(client.Create(Request("after-revocation"), std::chrono::seconds(10)).status.ok());

  // A half-written Secret is refused and the working key stays in use.
  WriteFileAtomically(secrets / "TWILIO_API_KEY", "SKnot-a-key");
  ASSERT_TRUE(Eventually([&] { return CountLines(LogPath(), {"reload rejected"}) >= 1; }));
  EXPECT_TRUE(client.Create(Request("after-bad-write"), std::chrono::seconds(10)).status.ok());
  EXPECT_EQ(AuthUserFor("after-bad-write"), kRotatedKey);

  gateway.process().Stop(SIGTERM);
  const std::string log = ReadFile(LogPath());
  EXPECT_EQ(log.find(kSimApiSecret), std::string::npos);
  EXPECT_EQ(log.find(kRotatedSecret), std::string::npos);
}

TEST_F(ProductionSetupTest, HealthIsNotServingUntilCredentialsArrive) {
  const fs::path secrets = SecretsDir();
  fs::create_directories(secrets);
  Gateway gateway(sim_->base_url(),
                  {"--credentials-dir", secrets.string(), "--reload-interval", "100ms",
                   "--health-listen", "127.0.0.1:0"},
                  kNoEnvironmentSecret, LogPath());
  const std::string health_target = gateway.process().WaitForLine("twilio-gateway health on ");
  EXPECT_TRUE(Eventually([&] { return HealthStatus(gateway.target()) == kNotServing; }));
  EXPECT_EQ(HealthStatus(health_target), kNotServing);

  const CreateResult refused =
      PlainClient(gateway.target()).Create(Request("too-early"), std::chrono::seconds(5));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Reason(refused), "CREDENTIALS_UNAVAILABLE");
  EXPECT_EQ(sim_->Stats()["requests"], 0);

  WriteFileAtomically(secrets / "TWILIO_ACCOUNT_SID", kSimAccountSid);
  WriteFileAtomically(secrets / "TWILIO_AUTH_TOKEN", kSimAuthToken);
  EXPECT_TRUE(Eventually([&] { return HealthStatus(gateway.target()) == kServing; }));
  EXPECT_EQ(HealthStatus(health_target), kServing);
  EXPECT_TRUE(PlainClient(gateway.target())
                  .Create(Request("in-time"), std::chrono::seconds(10))
                  .status.ok());
}

class CallerPolicyTest : public ProductionSetupTest {
 protected:
  void WritePolicyAndTokens() {
    WriteFileAtomically(dir_ / "policy.json", std::string(R"({"callers": {
        "billing": {"accounts": ["default"]},
        "support": {"accounts": ["default", ")") + kOtherAccount +
                                                  R"("]},
        ")" + kBillingSpiffeId + R"(": {"accounts": ["default"]}}})");
    WriteFileAtomically(dir_ / "tokens",
                        "# caller digest\nbilling sha256:" + Sha256Hex(kBillingToken) + "\n");
  }
};

TEST_F(CallerPolicyTest, TokensAuthenticateAndThePolicyAuthorizes) {
  WritePolicyAndTokens();
  Gateway gateway(sim_->base_url(),
                  {"--caller-policy", (dir_ / "policy.json").string(), "--caller-tokens",
                   (dir_ / "tokens").string(), "--reload-interval", "100ms"},
                  {}, LogPath());

  const CreateResult anonymous =
      PlainClient(gateway.target()).Create(Request("anon"), std::chrono::seconds(5));
  EXPECT_EQ(anonymous.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Reason(anonymous), "CALLER_UNAUTHENTICATED");
  // Like every error: the key to retry with, and that nothing can exist.
  ASSERT_TRUE(anonymous.details.error_info.has_value());
  const auto& metadata = anonymous.details.error_info->metadata();
  EXPECT_EQ(metadata.count("idempotency_key") ? metadata.at("idempotency_key") : "", "anon");
  EXPECT_EQ(metadata.count("subscription_may_exist") ? metadata.at("subscription_may_exist") : "",
            "false");

  const CreateResult wrong = PlainClient(gateway.target(), "not-a-token")
                                 .Create(Request("wrong"), std::chrono::seconds(5));
  EXPECT_EQ(wrong.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  SubscriptionClient billing = PlainClient(gateway.target(), kBillingToken);
  const CreateResult allowed = billing.Create(Request("billing-1"), std::chrono::seconds(10));
  EXPECT_TRUE(allowed.status.ok()) << allowed.status.error_message();

  const CreateResult denied =
      billing.Create(Request("billing-2", kOtherAccount), std::chrono::seconds(5));
  EXPECT_EQ(denied.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(denied), "CALLER_NOT_ALLOWED");
  // Only the allowed call reached Twilio.
  EXPECT_EQ(sim_->Stats()["requests"], 1);

  // A new token appears in the file without a restart.
  const CreateResult before = PlainClient(gateway.target(), kSupportToken)
                                  .Create(Request("support-early"), std::chrono::seconds(5));
  EXPECT_EQ(before.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  WriteFileAtomically(dir_ / "tokens", ReadFile(dir_ / "tokens") +
                                           "support sha256:" + Sha256Hex(kSupportToken) + "\n");
  EXPECT_TRUE(Eventually([&] {
    return PlainClient(gateway.target(), kSupportToken)
        .Create(Request("support-1"), std::chrono::seconds(5))
        .status.ok();
  }));

  gateway.process().Stop(SIGTERM);
  // The audit names the caller, never the token.
  EXPECT_EQ(CountLines(LogPath(), {"\"audit\"", "\"caller\":\"billing\"", "\"code\":\"OK\""}), 1);
  EXPECT_EQ(CountLines(LogPath(),
                       {"\"audit\"", "\"caller\":\"billing\"", "\"code\":\"PERMISSION_DENIED\""}),
            1);
  EXPECT_GE(CountLines(LogPath(), {"\"audit\"", "\"code\":\"UNAUTHENTICATED\""}), 3);
  const std::string log = ReadFile(LogPath());
  EXPECT_EQ(log.find(kBillingToken), std::string::npos);
  EXPECT_EQ(log.find(kSupportToken), std::string::npos);
}

TEST_F(CallerPolicyTest, DeleteAndSendAreAuthenticatedAndAuthorizedLikeCreate) {
  WritePolicyAndTokens();
  Gateway gateway(sim_->base_url(),
                  {"--caller-policy", (dir_ / "policy.json").string(), "--caller-tokens",
                   (dir_ / "tokens").string()},
                  {}, LogPath());
  SubscriptionClient anonymous = PlainClient(gateway.target());
  SubscriptionClient billing = PlainClient(gateway.target(), kBillingToken);
  const CreateResult created = billing.Create(Request("policy-create"), std::chrono::seconds(10));
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  const std::string sid = created.subscription.sid();

  const DeleteResult anonymous_delete =
      anonymous.Delete(DeleteRequest(sid), std::chrono::seconds(5));
  EXPECT_EQ(anonymous_delete.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Reason(anonymous_delete.details), "CALLER_UNAUTHENTICATED");
  const SendResult anonymous_send = anonymous.Send(SendRequest("anon"), std::chrono::seconds(5));
  EXPECT_EQ(anonymous_send.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Reason(anonymous_send.details), "CALLER_UNAUTHENTICATED");
  // Like every Send error: the key to retry with, and that nothing was sent.
  EXPECT_EQ(anonymous_send.details.Metadata("idempotency_key"), "anon");
  EXPECT_EQ(anonymous_send.details.Metadata("message_may_exist"), "false");

  // billing may use only the gateway's own account.
  const DeleteResult denied_delete =
      billing.Delete(DeleteRequest(sid, kOtherAccount), std::chrono::seconds(5));
  EXPECT_EQ(denied_delete.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(denied_delete.details), "CALLER_NOT_ALLOWED");
  const SendResult denied_send =
      billing.Send(SendRequest("billing-other", kOtherAccount), std::chrono::seconds(5));
  EXPECT_EQ(denied_send.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(denied_send.details), "CALLER_NOT_ALLOWED");
  EXPECT_EQ(denied_send.details.Metadata("message_may_exist"), "false");
  EXPECT_EQ(RequestsFor("delete"), 0);
  EXPECT_EQ(RequestsFor("send"), 0);

  const DeleteResult deleted = billing.Delete(DeleteRequest(sid), std::chrono::seconds(10));
  EXPECT_TRUE(deleted.status.ok()) << deleted.status.error_message();
  const SendResult sent = billing.Send(SendRequest("billing-send"), std::chrono::seconds(10));
  EXPECT_TRUE(sent.status.ok()) << sent.status.error_message();
  EXPECT_EQ(RequestsFor("delete"), 1);
  EXPECT_EQ(RequestsFor("send"), 1);
  EXPECT_EQ(sim_->Stats()["subscriptions_deleted"], 1);
  EXPECT_EQ(sim_->Stats()["messages"], 1);

  gateway.process().Stop(SIGTERM);
  for (const char* rpc : {"\"rpc\":\"Delete\"", "\"rpc\":\"Send\""}) {
    EXPECT_EQ(CountLines(LogPath(), {"\"audit\"", rpc, "\"code\":\"UNAUTHENTICATED\""}), 1) << rpc;
    EXPECT_EQ(CountLines(LogPath(), {"\"audit\"", rpc, "\"caller\":\"billing\"",
                                     "\"code\":\"PERMISSION_DENIED\""}),
              1)
        << rpc;
    EXPECT_EQ(
        CountLines(LogPath(), {"\"audit\"", rpc, "\"caller\":\"billing\"", "\"code\":\"OK\""}), 1)
        << rpc;
  }
}

TEST_F(CallerPolicyTest, SameKeyFromTwoCallersIsTwoRecords) {
  WritePolicyAndTokens();
  WriteFileAtomically(dir_ / "tokens", ReadFile(dir_ / "tokens") +
                                           "support sha256:" + Sha256Hex(kSupportToken) + "\n");
  Gateway gateway(sim_->base_url(),
                  {"--caller-policy", (dir_ / "policy.json").string(), "--caller-tokens",
                   (dir_ / "tokens").string()},
                  {}, LogPath());
  const CreateResult billing = PlainClient(gateway.target(), kBillingToken)
                                   .Create(Request("shared-key"), std::chrono::seconds(10));
  ASSERT_TRUE(billing.status.ok());
  EXPECT_FALSE(billing.replayed);
  const CreateResult support = PlainClient(gateway.target(), kSupportToken)
                                   .Create(Request("shared-key"), std::chrono::seconds(10));
  ASSERT_TRUE(support.status.ok());
  EXPECT_FALSE(support.replayed) << "one caller's record must not answer another caller";
  const CreateResult again = PlainClient(gateway.target(), kBillingToken)
                                 .Create(Request("shared-key"), std::chrono::seconds(10));
  ASSERT_TRUE(again.status.ok());
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(sim_->Stats()["requests"], 2);
}

TEST_F(CallerPolicyTest, MutualTlsIdentifiesCallersAndCertificatesRotate) {
  WritePolicyAndTokens();
  TestPki pki(dir_ / "pki");
  pki.MakeCa("ca");
  pki.MakeLeaf("server", "ca", "DNS:localhost,IP:127.0.0.1", "serverAuth");
  pki.MakeLeaf("billing", "ca", std::string("URI:") + kBillingSpiffeId, "clientAuth");
  pki.MakeCa("rogue-ca");
  pki.MakeLeaf("rogue", "rogue-ca", std::string("URI:") + kBillingSpiffeId, "clientAuth");
  fs::copy_file(pki.Path("server.pem"), dir_ / "tls.crt");
  fs::copy_file(pki.Path("server.key"), dir_ / "tls.key");
  Gateway gateway(sim_->base_url(),
                  {"--tls-cert", (dir_ / "tls.crt").string(), "--tls-key",
                   (dir_ / "tls.key").string(), "--tls-client-ca", pki.Path("ca.pem"),
                   "--caller-policy", (dir_ / "policy.json").string(), "--reload-interval", "1s"},
                  {}, LogPath());

  const CreateResult with_cert = TlsClient(gateway.target(), pki, "ca", "billing")
                                     .Create(Request("mtls-1"), std::chrono::seconds(10));
  EXPECT_TRUE(with_cert.status.ok()) << with_cert.status.error_message();

  // A certificate from another CA, or plaintext: no handshake at all.
  for (auto* client : {new SubscriptionClient(TlsClient(gateway.target(), pki, "ca", "rogue")),
                       new SubscriptionClient(PlainClient(gateway.target()))}) {
    const CreateResult refused = client->Create(Request("refused"), std::chrono::seconds(3));
    EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << refused.status.error_message();
    delete client;
  }
  // No certificate: the connection is made, and the call says what is missing.
  const CreateResult no_cert =
      TlsClient(gateway.target(), pki, "ca").Create(Request("no-cert"), std::chrono::seconds(3));
  EXPECT_EQ(no_cert.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Reason(no_cert), "CALLER_UNAUTHENTICATED");
  EXPECT_EQ(sim_->Stats()["requests"], 1);

  // The server certificate is renewed under a new CA: new connections get it, no restart.
  pki.MakeCa("ca2");
  pki.MakeLeaf("server2", "ca2", "DNS:localhost,IP:127.0.0.1", "serverAuth");
  WriteFileAtomically(dir_ / "tls.key", ReadFile(pki.Path("server2.key")));
  WriteFileAtomically(dir_ / "tls.crt", ReadFile(pki.Path("server2.pem")));
  EXPECT_TRUE(Eventually(
      [&] {
        return TlsClient(gateway.target(), pki, "ca2", "billing")
            .Create(Request("mtls-2"), std::chrono::seconds(3))
            .status.ok();
      },
      std::chrono::seconds(15)));

  gateway.process().Stop(SIGTERM);
  EXPECT_GE(CountLines(LogPath(), {"\"audit\"", std::string("\"caller\":\"") + kBillingSpiffeId,
                                   "\"code\":\"OK\""}),
            2);
}

TEST_F(CallerPolicyTest, TlsWithBearerTokensOnANonLoopbackListener) {
  WritePolicyAndTokens();
  TestPki pki(dir_ / "pki");
  pki.MakeCa("ca");
  pki.MakeLeaf("server", "ca", "DNS:localhost,IP:127.0.0.1", "serverAuth");
  const int port = FreeLoopbackPort();
  // 0.0.0.0 is what a pod listens on: allowed only with TLS and a policy.
  Gateway gateway(sim_->base_url(),
                  {"--listen", "0.0.0.0:" + std::to_string(port), "--tls-cert",
                   pki.Path("server.pem"), "--tls-key", pki.Path("server.key"), "--caller-policy",
                   (dir_ / "policy.json").string(), "--caller-tokens", (dir_ / "tokens").string()},
                  {}, LogPath());
  const std::string target = "127.0.0.1:" + std::to_string(port);
  const CreateResult ok = TlsClient(target, pki, "ca", "", kBillingToken)
                              .Create(Request("tls-token"), std::chrono::seconds(10));
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  const CreateResult no_token =
      TlsClient(target, pki, "ca").Create(Request("tls-no-token"), std::chrono::seconds(5));
  EXPECT_EQ(no_token.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(CallerPolicyTest, PlaintextBeyondLoopbackIsRefusedAtStart) {
  CommandResult result = RunCommand({GATEWAY_BINARY_PATH, "--listen", "0.0.0.0:0"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--tls-cert"), std::string::npos) << result.err;
}

// The value of one sample line ("name{labels} value") in a scrape, or -1 when absent. Labels are
// written sorted by name (prometheus-cpp keeps them in a std::map).
double Sample(const std::string& scrape, const std::string& series) {
  std::istringstream lines(scrape);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

TEST_F(ProductionSetupTest, MetricsCountWhatHappened) {
  Gateway gateway(
      sim_->base_url(),
      {"--metrics-listen", "127.0.0.1:0", "--backoff-base", "5ms", "--backoff-cap", "20ms"}, {},
      LogPath());
  const std::string metrics_url =
      "http://" + gateway.process().WaitForLine("twilio-gateway metrics on ") + "/metrics";
  SubscriptionClient client = PlainClient(gateway.target());
  sim_->SetFaults({{{"status", 503}, {"count", 1}}});
  ASSERT_TRUE(client.Create(Request("metrics-1"), std::chrono::seconds(10)).status.ok());
  ASSERT_TRUE(client.Create(Request("metrics-1"), std::chrono::seconds(10)).replayed);
  pb::CreateSubscriptionRequest reused = Request("metrics-1");
  reused.set_callback("https://example.com/another");
  EXPECT_EQ(client.Create(reused, std::chrono::seconds(10)).status.error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  pb::CreateSubscriptionRequest bad = Request("metrics-2");
  bad.set_callback("ftp://example.com");
  EXPECT_EQ(client.Create(bad, std::chrono::seconds(10)).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  const HttpReply reply = HttpCall("GET", metrics_url);
  ASSERT_EQ(reply.status, 200);
  const std::string& text = reply.body;
  EXPECT_EQ(Sample(text, R"(gateway_rpcs_total{code="OK",method="Create"})"), 2);
  EXPECT_EQ(Sample(text, R"(gateway_rpcs_total{code="INVALID_ARGUMENT",method="Create"})"), 1);
  EXPECT_EQ(Sample(text, R"(gateway_rpcs_total{code="FAILED_PRECONDITION",method="Create"})"), 1);
  EXPECT_EQ(Sample(text, R"(gateway_rpc_duration_seconds_count{method="Create"})"), 4);
  EXPECT_EQ(Sample(text, R"(gateway_upstream_responses_total{status="503"})"), 1);
  EXPECT_EQ(Sample(text, R"(gateway_upstream_responses_total{status="201"})"), 1);
  EXPECT_EQ(Sample(text, "gateway_upstream_attempt_duration_seconds_count"), 2);
  EXPECT_EQ(Sample(text, R"(gateway_retries_total{reason="server_error"})"), 1);
  EXPECT_EQ(Sample(text, "gateway_idempotency_replays_total"), 1);
  EXPECT_EQ(Sample(text, "gateway_idempotency_conflicts_total"), 1);
  EXPECT_EQ(Sample(text, "gateway_rpcs_in_flight"), 0);
  EXPECT_EQ(Sample(text, "gateway_upstream_in_flight"), 0);
  EXPECT_EQ(Sample(text, "gateway_credentials_loaded"), 1);
  EXPECT_EQ(text.find(kSimAuthToken), std::string::npos);
  EXPECT_EQ(text.find("metrics-1"), std::string::npos) << "no request data in labels";
}

TEST_F(ProductionSetupTest, MetricsCountDeleteAndSendByMethod) {
  Gateway gateway(sim_->base_url(), {"--metrics-listen", "127.0.0.1:0"}, {}, LogPath());
  const std::string metrics_url =
      "http://" + gateway.process().WaitForLine("twilio-gateway metrics on ") + "/metrics";
  SubscriptionClient client = PlainClient(gateway.target());
  const CreateResult created = client.Create(Request("metrics-create"), std::chrono::seconds(10));
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  const std::string sid = created.subscription.sid();
  ASSERT_TRUE(client.Delete(DeleteRequest(sid), std::chrono::seconds(10)).status.ok());
  EXPECT_EQ(client.Delete(DeleteRequest(sid), std::chrono::seconds(10)).status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(client.Send(SendRequest("metrics-send"), std::chrono::seconds(10)).status.ok());
  EXPECT_TRUE(client.Send(SendRequest("metrics-send"), std::chrono::seconds(10)).replayed);
  pb::SendMessageRequest bad = SendRequest("metrics-send-bad");
  bad.set_content("{not json");
  EXPECT_EQ(client.Send(bad, std::chrono::seconds(10)).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  const HttpReply reply = HttpCall("GET", metrics_url);
  ASSERT_EQ(reply.status, 200);
  const std::string& text = reply.body;
  EXPECT_EQ(Sample(text, R"(gateway_rpcs_total{code="OK",method="Create"})"), 1);
  EXPECT_EQ(Sample(text, R"(gateway_rpcs_total{code="OK",method="Delete"})"), 1);
  EXPECT_EQ(Sample(text, R"(gateway_rpcs_total{code="NOT_FOUND",method="Delete"})"), 1);
  EXPECT_EQ(Sample(text, R"(gateway_rpcs_total{code="OK",method="Send"})"), 2);
  EXPECT_EQ(Sample(text, R"(gateway_rpcs_total{code="INVALID_ARGUMENT",method="Send"})"), 1);
  EXPECT_EQ(Sample(text, R"(gateway_rpc_duration_seconds_count{method="Create"})"), 1);
  EXPECT_EQ(Sample(text, R"(gateway_rpc_duration_seconds_count{method="Delete"})"), 2);
  EXPECT_EQ(Sample(text, R"(gateway_rpc_duration_seconds_count{method="Send"})"), 3);
  EXPECT_EQ(Sample(text, R"(gateway_upstream_responses_total{status="201"})"), 2);
  EXPECT_EQ(Sample(text, R"(gateway_upstream_responses_total{status="204"})"), 1);
  EXPECT_EQ(Sample(text, R"(gateway_upstream_responses_total{status="404"})"), 1);
  EXPECT_EQ(Sample(text, "gateway_upstream_attempt_duration_seconds_count"), 4);
  EXPECT_EQ(Sample(text, "gateway_idempotency_replays_total"), 1);
  EXPECT_EQ(Sample(text, "gateway_rpcs_in_flight"), 0);
  EXPECT_EQ(text.find(sid), std::string::npos) << "no request data in labels";
  EXPECT_EQ(text.find("metrics-send"), std::string::npos) << "no request data in labels";
}

TEST_F(ProductionSetupTest, MetricsCountResolutions) {
  Gateway gateway(sim_->base_url(),
                  {"--metrics-listen", "127.0.0.1:0", "--max-attempts", "1", "--backoff-base",
                   "5ms", "--backoff-cap", "20ms"},
                  {}, LogPath());
  const std::string metrics_url =
      "http://" + gateway.process().WaitForLine("twilio-gateway metrics on ") + "/metrics";
  SubscriptionClient client = PlainClient(gateway.target());
  // The caller's one attempt may have created it; the resolution's first resend finds out.
  sim_->SetFaults({{{"status", 500}, {"after_record", true}, {"count", 1}}});
  const CreateResult resolved =
      client.Create(Request("metrics-resolved"), std::chrono::seconds(10));
  ASSERT_TRUE(resolved.status.ok()) << resolved.status.error_message();
  EXPECT_EQ(sim_->SubscriptionsForKey(kSimAccountSid, kCallSid, "metrics-resolved"), 1);

  const HttpReply reply = HttpCall("GET", metrics_url);
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(Sample(reply.body, R"(gateway_resolutions_total{event="started"})"), 1);
  EXPECT_EQ(Sample(reply.body, R"(gateway_resolutions_total{event="resolved"})"), 1);
  constexpr char kEnded[] = R"("msg":"resolution ended","idempotency_key":"metrics-resolved")";
  const std::string text = ReadLogUntil(
      LogPath(), [&](const std::string& log) { return log.find(kEnded) != std::string::npos; });
  EXPECT_NE(text.find(kEnded), std::string::npos);
}

}  // namespace
}  // namespace gateway::testing
