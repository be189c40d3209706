// Receiving messages end to end with the memory store: the real gateway binary with its webhook
// receiver, the Twilio simulator delivering signed (and forged) messages to it as Twilio does, and
// MessageService.Watch streams reading them back. Shipped defaults, except the webhook flags
// under test. Each test uses calls of its own, so messages other tests stored never match its
// Watch filters.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/sha256.h"
#include "harness.h"
#include "subscription_client.h"
#include "twilio_gateway/v1/message_service.grpc.pb.h"
#include "webhook/signature.h"

namespace gateway::testing {
namespace {

namespace fs = std::filesystem;
namespace pb = twilio_gateway::v1;
using twilio_gateway::client::CreateResult;
using twilio_gateway::client::DecodeErrorDetails;
using twilio_gateway::client::ErrorDetails;
using twilio_gateway::client::SubscriptionClient;

constexpr char kWebhookPath[] = "/twilio/messages";
// The query is part of what Twilio signs: the receiver must verify against it as given.
constexpr char kPublicQuery[] = "tenant=7";
constexpr char kOtherAccount[] = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
// Caller tokens of the policy test (logs.no_secrets looks for them in every log).
constexpr char kWatcherToken[] = "webhook-watcher-token-6a1e93c0d47b28f5";

// A call SID of this file's own: "CA" + 32 hex digits from a number.
std::string CallSid(unsigned number) {
  char sid[35];
  std::snprintf(sid, sizeof sid, "CA%032x", 0xc0de0000u + number);
  return sid;
}

std::string ErrorInfoMeta(const grpc::Status& status, const std::string& key) {
  const ErrorDetails details = DecodeErrorDetails(status);
  if (!details.error_info) return "<no ErrorInfo>";
  const auto& metadata = details.error_info->metadata();
  auto it = metadata.find(key);
  return it == metadata.end() ? "<absent>" : it->second;
}

std::string Reason(const grpc::Status& status) {
  const ErrorDetails details = DecodeErrorDetails(status);
  return details.error_info ? details.error_info->reason() : "<no ErrorInfo>";
}

std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> fields;
  const ErrorDetails details = DecodeErrorDetails(status);
  if (details.bad_request) {
    for (const auto& v : details.bad_request->field_violations()) fields.push_back(v.field());
  }
  return fields;
}

// A raw HTTP/1.1 exchange on loopback (one request, Connection: close): the status code, or 0
// when no status line came within 10 s.
int RawHttp(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while (reply.find("\r\n") == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0) {
      reply.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  int status = 0;
  if (reply.rfind("HTTP/1.1 ", 0) == 0 && reply.size() >= 12)
    status = std::stoi(reply.substr(9, 3));
  return status;
}

// A Watch read on a thread of its own, so a test can wait for messages with a time limit.
class Watcher {
 public:
  Watcher(const std::string& target, const pb::WatchMessagesRequest& request,
          const std::string& bearer_token = "")
      : stub_(pb::MessageService::NewStub(
            grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))) {
    if (!bearer_token.empty()) context_.AddMetadata("authorization", "Bearer " + bearer_token);
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    reader_ = stub_->Watch(&context_, request);
    thread_ = std::thread([this] {
      pb::CallMessage message;
      while (reader_->Read(&message)) {
        std::lock_guard<std::mutex> lock(mu_);
        messages_.push_back(message);
        changed_.notify_all();
      }
      grpc::Status status = reader_->Finish();
      std::lock_guard<std::mutex> lock(mu_);
      status_ = status;
      ended_ = true;
      changed_.notify_all();
    });
  }
  ~Watcher() {
    context_.TryCancel();
    thread_.join();
  }

  // Waits until at least n messages came (or the stream ended): whether they did.
  bool WaitFor(size_t n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, limit, [&] { return messages_.size() >= n || ended_; });
    return messages_.size() >= n;
  }
  // Waits for the stream to end by itself and returns its status (DEADLINE_EXCEEDED if not).
  grpc::Status WaitEnd(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!changed_.wait_for(lock, limit, [&] { return ended_; })) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the Watch did not end");
    }
    return status_;
  }
  bool ended() {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_;
  }
  std::vector<pb::CallMessage> messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  std::vector<int64_t> sequence_numbers() {
    std::vector<int64_t> out;
    for (const pb::CallMessage& m : messages()) out.push_back(m.sequence_number());
    return out;
  }

 private:
  std::unique_ptr<pb::MessageService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<pb::CallMessage>> reader_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<pb::CallMessage> messages_;
  bool ended_ = false;
  grpc::Status status_;
  std::thread thread_;
};

pb::WatchMessagesRequest WatchCall(const std::string& call_sid, bool from_oldest = true,
                                   const std::string& cursor = "") {
  pb::WatchMessagesRequest request;
  request.set_call_sid(call_sid);
  request.set_from_oldest(from_oldest);
  request.set_cursor(cursor);
  return request;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i < to; ++i) out.push_back(i);
  return out;
}

// A gateway with its receiver on a loopback port, and the public URL Twilio is given for it.
struct WebhookGateway {
  std::unique_ptr<Gateway> gateway;
  int port = 0;
  std::string public_url;
  std::string log_path;

  const std::string& target() const { return gateway->target(); }
  std::string Url(const std::string& path_and_query) const {
    return "http://127.0.0.1:" + std::to_string(port) + path_and_query;
  }
};

class WebhookTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sim_ = new Simulator(LogDir());
    shared_ = StartGateway({}, {}, "shared").release();
  }
  static void TearDownTestSuite() {
    if (shared_ != nullptr) {
      const int exit = shared_->gateway->process().Stop(SIGTERM);
      EXPECT_TRUE(WIFEXITED(exit) && WEXITSTATUS(exit) == 0) << exit;
      ExpectNoSecretIn(shared_->log_path);
    }
    delete shared_;
    delete sim_;
  }
  void SetUp() override { sim_->Reset(); }

  // The port is picked before the gateway binds it (the public URL must name it): another
  // process may take it in between, so a few are tried.
  static std::unique_ptr<WebhookGateway> StartGateway(
      const std::vector<std::string>& extra_flags,
      const std::map<std::string, std::string>& extra_env, const std::string& name) {
    auto started = std::make_unique<WebhookGateway>();
    started->log_path = LogDir() + "/webhook-" + name + ".log";
    for (int attempt = 0;; ++attempt) {
      started->port = FreeLoopbackPort();
      started->public_url = started->Url(std::string(kWebhookPath) + "?" + kPublicQuery);
      std::vector<std::string> flags = {"--webhook-listen",
                                        "127.0.0.1:" + std::to_string(started->port),
                                        "--public-webhook-url", started->public_url};
      flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
      try {
        started->gateway =
            std::make_unique<Gateway>(sim_->base_url(), flags, extra_env, started->log_path);
        return started;
      } catch (const std::runtime_error&) {
        if (attempt == 4) throw;
      }
    }
  }

  static void ExpectNoSecretIn(const std::string& path) {
    std::ifstream in(path);
    const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_FALSE(log.empty()) << path;
    EXPECT_EQ(log.find(kSimAuthToken), std::string::npos) << path;
    EXPECT_EQ(log.find(kWatcherToken), std::string::npos) << path;
  }

  // SubscriptionService.Create with no callback: returns the subscription SID.
  static std::string Subscribe(const WebhookGateway& gateway, const std::string& call_sid,
                               pb::CallbackMethod method = pb::CALLBACK_METHOD_POST) {
    SubscriptionClient client(
        grpc::CreateChannel(gateway.target(), grpc::InsecureChannelCredentials()));
    pb::CreateSubscriptionRequest request;
    request.set_call_sid(call_sid);
    request.set_method(method);
    const CreateResult created = client.Create(request, std::chrono::seconds(10));
    EXPECT_TRUE(created.status.ok()) << created.status.error_message();
    return created.subscription.sid();
  }

  // POST /_sim/deliver: the simulator's report.
  static nlohmann::json Deliver(const nlohmann::json& spec) {
    const HttpReply reply = HttpCall("POST", sim_->base_url() + "/_sim/deliver", spec.dump());
    EXPECT_EQ(reply.status, 200) << reply.body;
    nlohmann::json report = nlohmann::json::parse(reply.body, nullptr, false);
    if (!report.is_object() || !report.contains("deliveries")) {
      ADD_FAILURE() << "no delivery report: " << reply.body;
      return nlohmann::json{{"deliveries", nlohmann::json::array()},
                            {"messages", nlohmann::json::array()}};
    }
    return report;
  }

  // What each callback request was answered (0: no answer).
  static std::vector<int> Statuses(const nlohmann::json& report) {
    std::vector<int> out;
    for (const auto& d : report["deliveries"])
      out.push_back(d["status"].is_number() ? d["status"].get<int>() : 0);
    return out;
  }

  static Simulator* sim_;
  static WebhookGateway* shared_;
};
Simulator* WebhookTest::sim_ = nullptr;
WebhookGateway* WebhookTest::shared_ = nullptr;

TEST_F(WebhookTest, CreateWithoutACallbackSubscribesThePublicUrl) {
  const std::string call = CallSid(1);
  const std::string post = Subscribe(*shared_, call);
  const std::string get = Subscribe(*shared_, call, pb::CALLBACK_METHOD_GET);
  std::map<std::string, nlohmann::json> by_sid;
  for (const auto& s : sim_->Subscriptions()) by_sid[s["sid"].get<std::string>()] = s;
  ASSERT_TRUE(by_sid.count(post) && by_sid.count(get)) << sim_->Subscriptions().dump();
  EXPECT_EQ(by_sid[post]["callback"], shared_->public_url);
  EXPECT_EQ(by_sid[post]["method"], "POST");
  EXPECT_EQ(by_sid[get]["callback"], shared_->public_url);
  EXPECT_EQ(by_sid[get]["method"], "GET");
}

TEST_F(WebhookTest, DeliveriesInEveryFormReachAWatchInOrderOnce) {
  const std::string call = CallSid(2);
  const std::string post = Subscribe(*shared_, call);
  const std::string get = Subscribe(*shared_, call, pb::CALLBACK_METHOD_GET);
  Watcher watcher(shared_->target(), WatchCall(call));

  // Each message twice: Twilio redelivers when an answer is lost.
  std::vector<nlohmann::json> sent;
  for (const nlohmann::json& spec :
       {nlohmann::json{{"subscription_sid", post}, {"count", 3}, {"duplicate", 1}},
        nlohmann::json{
            {"subscription_sid", post},
            {"count", 3},
            {"duplicate", 1},
            {"body_form", "form"},
            {"contents", {R"({"text":"a b&c=d"})", R"(["+%20"])", R"("\u00e9t\u00e9")"}}},
        nlohmann::json{{"subscription_sid", get}, {"count", 2}, {"duplicate", 1}}}) {
    const nlohmann::json report = Deliver(spec);
    EXPECT_EQ(Statuses(report), std::vector<int>(report["deliveries"].size(), 200))
        << report.dump();
    for (const auto& m : report["messages"]) sent.push_back(m);
  }
  ASSERT_EQ(sent.size(), 8u);
  ASSERT_TRUE(watcher.WaitFor(8)) << watcher.messages().size();
  // One more, after all the duplicates: had a duplicate been streamed, it would come before it.
  const nlohmann::json last = Deliver({{"subscription_sid", post}});
  ASSERT_TRUE(watcher.WaitFor(9));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  const std::vector<pb::CallMessage> got = watcher.messages();
  ASSERT_EQ(got.size(), 9u);
  EXPECT_EQ(watcher.sequence_numbers(), Range(0, 9));
  std::set<std::string> sids;
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(got[i].sid(), sent[i]["sid"]) << i;
    EXPECT_EQ(got[i].content(), sent[i]["content"]) << i;
    EXPECT_EQ(got[i].account_sid(), kSimAccountSid);
    EXPECT_EQ(got[i].call_sid(), call);
    EXPECT_EQ(got[i].content_type(), "application/json");
    EXPECT_GT(got[i].timestamp().seconds(), 1600000000) << i;
    EXPECT_FALSE(got[i].cursor().empty());
    sids.insert(got[i].sid());
  }
  EXPECT_EQ(got[8].sid(), last["messages"][0]["sid"]);
  EXPECT_EQ(sids.size(), 8u);
}

TEST_F(WebhookTest, ForgedDeliveriesAreForbiddenAndNeverStreamed) {
  const std::string call = CallSid(3);
  const std::string post = Subscribe(*shared_, call);
  const std::string get = Subscribe(*shared_, call, pb::CALLBACK_METHOD_GET);
  Watcher watcher(shared_->target(), WatchCall(call));
  for (const char* forge : {"signature", "missing", "body"}) {
    for (const nlohmann::json& target :
         {nlohmann::json{{"subscription_sid", post}, {"body_form", "json"}},
          nlohmann::json{{"subscription_sid", post}, {"body_form", "form"}},
          nlohmann::json{{"subscription_sid", get}}}) {
      nlohmann::json spec = target;
      spec["forge"] = forge;
      const nlohmann::json report = Deliver(spec);
      EXPECT_EQ(Statuses(report), std::vector<int>{403}) << forge << " " << report.dump();
    }
  }
  // A genuine message after them: it is the first the Watch gets, so none of those was stored.
  const nlohmann::json genuine = Deliver({{"subscription_sid", post}});
  EXPECT_EQ(Statuses(genuine), std::vector<int>{200});
  ASSERT_TRUE(watcher.WaitFor(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(watcher.messages().size(), 1u);
  EXPECT_EQ(watcher.messages()[0].sid(), genuine["messages"][0]["sid"]);
}

TEST_F(WebhookTest, RefusedRequestsGetTheirCodesAndNothingIsStreamed) {
  const std::string call = CallSid(4);
  const std::string post = Subscribe(*shared_, call);
  Watcher watcher(shared_->target(), WatchCall(call));

  // Signed by Twilio (the simulator), but over the body limit (64 KiB by default).
  const nlohmann::json oversized =
      Deliver({{"subscription_sid", post}, {"content", "\"" + std::string(70000, 'x') + "\""}});
  EXPECT_EQ(Statuses(oversized), std::vector<int>{413}) << oversized.dump().substr(0, 2000);
  const HttpReply unsigned_oversized =
      HttpCall("POST", shared_->public_url, std::string(70000, 'y'));
  EXPECT_EQ(unsigned_oversized.status, 413);

  // Signed, with a field the receiver refuses: a ContentType over 255 characters.
  const nlohmann::json long_type =
      Deliver({{"subscription_sid", post}, {"content_type", std::string(300, 't')}});
  EXPECT_EQ(Statuses(long_type), std::vector<int>{400});
  EXPECT_NE(long_type["deliveries"][0]["response_body"].get<std::string>().find("ContentType"),
            std::string::npos);

  // Signed by hand with the account's token, with a SequenceNumber that is not one.
  const FormParams fields = {{"Sid", "KX" + std::string(32, 'e')},
                             {"AccountSid", kSimAccountSid},
                             {"CallSid", call},
                             {"SequenceNumber", "-1"},
                             {"Content", "{}"}};
  std::string body;
  for (const auto& [name, value] : fields) body += (body.empty() ? "" : "&") + name + "=" + value;
  const std::string form_request =
      "POST " + std::string(kWebhookPath) + "?" + kPublicQuery +
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
      "X-Twilio-Signature: " +
      ComputeTwilioSignature(kSimAuthToken, shared_->public_url, fields) +
      "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  EXPECT_EQ(RawHttp(shared_->port, form_request), 400);

  // Another account's delivery, signed with this token: not this gateway's to take.
  FormParams other = fields;
  other[1].second = kOtherAccount;
  other[3].second = "5";
  std::string other_body;
  for (const auto& [name, value] : other) {
    other_body += (other_body.empty() ? "" : "&") + name + "=" + value;
  }
  const std::string other_request =
      "POST " + std::string(kWebhookPath) + "?" + kPublicQuery +
      " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
      "X-Twilio-Signature: " +
      ComputeTwilioSignature(kSimAuthToken, shared_->public_url, other) +
      "\r\nConnection: close\r\nContent-Length: " + std::to_string(other_body.size()) + "\r\n\r\n" +
      other_body;
  EXPECT_EQ(RawHttp(shared_->port, other_request), 403);

  // Another path, another method; the probe path.
  EXPECT_EQ(HttpCall("POST", shared_->Url("/twilio/other?tenant=7"), "{}").status, 404);
  EXPECT_EQ(HttpCall("PUT", shared_->public_url, "{}").status, 405);
  EXPECT_EQ(HttpCall("GET", shared_->Url("/healthz")).status, 200);

  const nlohmann::json genuine = Deliver({{"subscription_sid", post}});
  EXPECT_EQ(Statuses(genuine), std::vector<int>{200});
  ASSERT_TRUE(watcher.WaitFor(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(watcher.messages().size(), 1u);
  EXPECT_EQ(watcher.messages()[0].sid(), genuine["messages"][0]["sid"]);
}

TEST_F(WebhookTest, WatchFiltersByCall) {
  const std::string mine = CallSid(5);
  const std::string other = CallSid(6);
  const std::string mine_sub = Subscribe(*shared_, mine);
  const std::string other_sub = Subscribe(*shared_, other);
  Watcher watcher(shared_->target(), WatchCall(mine));
  Watcher everything(shared_->target(), WatchCall(""));
  for (const std::string& sub : {mine_sub, other_sub, other_sub, mine_sub, other_sub, mine_sub}) {
    EXPECT_EQ(Statuses(Deliver({{"subscription_sid", sub}})), std::vector<int>{200});
  }
  ASSERT_TRUE(watcher.WaitFor(3));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(watcher.messages().size(), 3u);
  for (const pb::CallMessage& m : watcher.messages()) EXPECT_EQ(m.call_sid(), mine);
  EXPECT_EQ(watcher.sequence_numbers(), Range(0, 3));
  // Without the filter, both calls' messages (and whatever earlier tests stored), interleaved.
  std::vector<std::string> calls;
  for (int i = 0; i < 100 && calls.size() < 6; ++i) {
    everything.WaitFor(everything.messages().size() + 1, std::chrono::milliseconds(100));
    calls.clear();
    for (const pb::CallMessage& m : everything.messages()) {
      if (m.call_sid() == mine || m.call_sid() == other) calls.push_back(m.call_sid());
    }
  }
  EXPECT_EQ(calls, (std::vector<std::string>{mine, other, other, mine, other, mine}));
}

TEST_F(WebhookTest, ResumingFromACursorLosesAndRepeatsNothing) {
  const std::string call = CallSid(7);
  const std::string post = Subscribe(*shared_, call);
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", post}, {"count", 10}})),
            std::vector<int>(10, 200));
  std::string cursor;
  {
    Watcher first(shared_->target(), WatchCall(call));
    ASSERT_TRUE(first.WaitFor(10));
    EXPECT_EQ(first.sequence_numbers(), Range(0, 10));
    cursor = first.messages()[3].cursor();
  }  // Disconnected after taking message 3 (the ones after it count as lost by the client).
  // More arrive while nobody watches, one of them twice.
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", post}, {"count", 3}, {"duplicate", 1}})),
            std::vector<int>(6, 200));
  Watcher resumed(shared_->target(), WatchCall(call, /*from_oldest=*/false, cursor));
  ASSERT_TRUE(resumed.WaitFor(9)) << resumed.messages().size();
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", post}})), std::vector<int>{200});
  ASSERT_TRUE(resumed.WaitFor(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(resumed.sequence_numbers(), Range(4, 14));
}

TEST_F(WebhookTest, FromOldestTakesWhatIsRetainedAndWithoutItTheWatchStartsAtTheEnd) {
  const std::string call = CallSid(8);
  const std::string post = Subscribe(*shared_, call);
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", post}, {"count", 2}})),
            std::vector<int>(2, 200));
  Watcher oldest(shared_->target(), WatchCall(call, /*from_oldest=*/true));
  Watcher newest(shared_->target(), WatchCall(call, /*from_oldest=*/false));
  ASSERT_TRUE(oldest.WaitFor(2));
  // The stream without from_oldest starts at the log's end once the gateway has begun it, which
  // a client cannot observe: deliver until it gets one, then it must have every later one.
  int delivered = 2;
  while (!newest.WaitFor(1, std::chrono::milliseconds(200)) && delivered < 30) {
    Deliver({{"subscription_sid", post}});
    ++delivered;
  }
  ASSERT_TRUE(newest.WaitFor(1));
  const int64_t first_new = newest.messages()[0].sequence_number();
  EXPECT_GE(first_new, 2);  // Never the messages stored before it started.
  Deliver({{"subscription_sid", post}, {"count", 2}});
  delivered += 2;
  ASSERT_TRUE(oldest.WaitFor(delivered));
  ASSERT_TRUE(newest.WaitFor(delivered - first_new));
  EXPECT_EQ(oldest.sequence_numbers(), Range(0, delivered));
  EXPECT_EQ(newest.sequence_numbers(), Range(first_new, delivered));
}

TEST_F(WebhookTest, AnInvalidCursorIsInvalidArgumentNamingTheCursor) {
  for (const char* cursor : {"bad", "12-", "-1", "1-2-3", "99999999999999999999999-0"}) {
    Watcher watcher(shared_->target(), WatchCall(CallSid(9), /*from_oldest=*/false, cursor));
    const grpc::Status status = watcher.WaitEnd();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << cursor;
    EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{"cursor"}) << cursor;
  }
  Watcher both(shared_->target(), WatchCall(CallSid(9), /*from_oldest=*/true, "1700000000000-0"));
  const grpc::Status status = both.WaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ViolatedFields(status), std::vector<std::string>{"from_oldest"});
  Watcher bad_call(shared_->target(), WatchCall("CA123"));
  EXPECT_EQ(ViolatedFields(bad_call.WaitEnd()), std::vector<std::string>{"call_sid"});
}

TEST_F(WebhookTest, ACursorPastTheRetentionCountIsOutOfRange) {
  const std::unique_ptr<WebhookGateway> gateway =
      StartGateway({"--message-retention-count", "3"}, {}, "retention");
  const std::string call = CallSid(10);
  const std::string post = Subscribe(*gateway, call);
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", post}, {"count", 2}})),
            std::vector<int>(2, 200));
  std::string first_cursor;
  std::string second_cursor;
  {
    Watcher watcher(gateway->target(), WatchCall(call));
    ASSERT_TRUE(watcher.WaitFor(2));
    first_cursor = watcher.messages()[0].cursor();
    second_cursor = watcher.messages()[1].cursor();
  }
  // Three more: the log keeps 2, 3 and 4. After message 1 nothing is lost; after 0, message 1 is.
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", post}, {"count", 3}})),
            std::vector<int>(3, 200));
  {
    Watcher watcher(gateway->target(), WatchCall(call, false, second_cursor));
    ASSERT_TRUE(watcher.WaitFor(3));
    EXPECT_EQ(watcher.sequence_numbers(), Range(2, 5));
  }
  {
    Watcher oldest(gateway->target(), WatchCall(call));
    ASSERT_TRUE(oldest.WaitFor(3));
    EXPECT_EQ(oldest.sequence_numbers(), Range(2, 5));
  }
  Watcher expired(gateway->target(), WatchCall(call, false, first_cursor));
  const grpc::Status status = expired.WaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE) << status.error_message();
  EXPECT_EQ(Reason(status), "CURSOR_EXPIRED");
  EXPECT_EQ(ErrorInfoMeta(status, "cursor"), first_cursor);
  EXPECT_TRUE(expired.messages().empty());
  // A cursor from before this process started: whatever it had is gone.
  Watcher before_start(gateway->target(), WatchCall(call, false, "1-0"));
  EXPECT_EQ(before_start.WaitEnd().error_code(), grpc::StatusCode::OUT_OF_RANGE);

  gateway->gateway->process().Stop(SIGTERM);
  ExpectNoSecretIn(gateway->log_path);
}

TEST_F(WebhookTest, TheCallerPolicyDecidesWhichAccountsACallerWatches) {
  const fs::path dir = fs::path(LogDir()) / "webhook-policy";
  fs::create_directories(dir);
  std::ofstream(dir / "policy.json") << R"({"callers": {"watcher": {"accounts": ["default"]}}})";
  std::ofstream(dir / "tokens") << "watcher sha256:" << Sha256Hex(kWatcherToken) << "\n";
  const std::unique_ptr<WebhookGateway> gateway =
      StartGateway({"--caller-policy", (dir / "policy.json").string(), "--caller-tokens",
                    (dir / "tokens").string()},
                   {}, "policy");
  const std::string call = CallSid(11);

  pb::WatchMessagesRequest other_account = WatchCall(call);
  other_account.set_account_sid(kOtherAccount);
  Watcher denied(gateway->target(), other_account, kWatcherToken);
  const grpc::Status denied_status = denied.WaitEnd();
  EXPECT_EQ(denied_status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Reason(denied_status), "CALLER_NOT_ALLOWED");

  Watcher anonymous(gateway->target(), WatchCall(call));
  EXPECT_EQ(anonymous.WaitEnd().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  Watcher wrong_token(gateway->target(), WatchCall(call), "not-a-token");
  EXPECT_EQ(wrong_token.WaitEnd().error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // The account the policy allows: the stream stays open and gets the call's messages.
  pb::WatchMessagesRequest own_account = WatchCall(call);
  own_account.set_account_sid(kSimAccountSid);
  Watcher allowed(gateway->target(), own_account, kWatcherToken);
  pb::CreateSubscriptionRequest request;
  request.set_call_sid(call);
  SubscriptionClient client(
      grpc::CreateChannel(gateway->target(), grpc::InsecureChannelCredentials()),
      {.bearer_token = kWatcherToken});
  const CreateResult created = client.Create(request, std::chrono::seconds(10));
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", created.subscription.sid()}})),
            std::vector<int>{200});
  ASSERT_TRUE(allowed.WaitFor(1)) << allowed.WaitEnd(std::chrono::milliseconds(1)).error_message();
  EXPECT_EQ(allowed.messages()[0].call_sid(), call);
  EXPECT_TRUE(denied.messages().empty());

  gateway->gateway->process().Stop(SIGTERM);
  ExpectNoSecretIn(gateway->log_path);
}

TEST_F(WebhookTest, WatchesBeyondMaxWatchStreamsAreResourceExhausted) {
  const std::unique_ptr<WebhookGateway> gateway =
      StartGateway({"--max-watch-streams", "2"}, {}, "max-streams");
  const std::string call = CallSid(12);
  const std::string post = Subscribe(*gateway, call);
  auto first = std::make_unique<Watcher>(gateway->target(), WatchCall(call));
  Watcher second(gateway->target(), WatchCall(call));
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", post}})), std::vector<int>{200});
  // Both streams are served (they got the message): the gateway counts them.
  ASSERT_TRUE(first->WaitFor(1));
  ASSERT_TRUE(second.WaitFor(1));

  Watcher third(gateway->target(), WatchCall(call));
  const grpc::Status refused = third.WaitEnd();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();

  // A stream that ends frees its place.
  first.reset();
  std::unique_ptr<Watcher> again;
  for (int attempt = 0; attempt < 50; ++attempt) {
    again = std::make_unique<Watcher>(gateway->target(), WatchCall(call));
    if (again->WaitFor(1, std::chrono::milliseconds(500))) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(again->WaitFor(1)) << again->WaitEnd(std::chrono::milliseconds(1)).error_message();
  EXPECT_FALSE(second.ended());
  gateway->gateway->process().Stop(SIGTERM);
}

TEST_F(WebhookTest, ShutdownEndsAWatchWithUnavailableAndTheCursorToResumeFrom) {
  const std::unique_ptr<WebhookGateway> gateway = StartGateway({}, {}, "shutdown");
  const std::string call = CallSid(13);
  const std::string post = Subscribe(*gateway, call);
  Watcher watcher(gateway->target(), WatchCall(call));
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", post}, {"count", 3}})),
            std::vector<int>(3, 200));
  ASSERT_TRUE(watcher.WaitFor(3));

  const int exit = gateway->gateway->process().Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(exit) && WEXITSTATUS(exit) == 0) << exit;
  const grpc::Status status = watcher.WaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(ErrorInfoMeta(status, "cursor"), watcher.messages()[2].cursor());
  EXPECT_EQ(watcher.messages().size(), 3u);
  ExpectNoSecretIn(gateway->log_path);
}

// A Watch of new messages that ends before any came still says where it started (the log's tail),
// so resuming there on another replica loses none that arrived meanwhile.
TEST_F(WebhookTest, ShutdownEndsAWatchThatGotNoMessageWithTheCursorItStartedAfter) {
  const std::unique_ptr<WebhookGateway> gateway =
      StartGateway({"--log-level", "debug"}, {}, "shutdown-quiet");
  ChildProcess& process = gateway->gateway->process();
  // The debug line each Watch logs once it has its place in the log: true once `count` have.
  auto started = [&](size_t count) {
    auto enough = [count](const std::string& text) {
      size_t found = 0;
      for (size_t at = text.find("\"watch started\""); at != std::string::npos;
           at = text.find("\"watch started\"", at + 1)) {
        ++found;
      }
      return found >= count;
    };
    return enough(ReadLogUntil(gateway->log_path, enough));
  };
  const std::string call = CallSid(14);
  const std::string post = Subscribe(*gateway, call);
  Watcher earlier(gateway->target(), WatchCall(call));
  ASSERT_TRUE(started(1));
  EXPECT_EQ(Statuses(Deliver({{"subscription_sid", post}, {"count", 2}})),
            std::vector<int>(2, 200));
  ASSERT_TRUE(earlier.WaitFor(2));

  // Of new messages (the log's tail), on a call no message will come for.
  Watcher quiet(gateway->target(), WatchCall(CallSid(15), /*from_oldest=*/false));
  ASSERT_TRUE(started(2));
  const int exit = process.Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(exit) && WEXITSTATUS(exit) == 0) << exit;
  const grpc::Status status = quiet.WaitEnd();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(quiet.messages().empty());
  EXPECT_EQ(ErrorInfoMeta(status, "cursor"), earlier.messages()[1].cursor());
}

TEST_F(WebhookTest, TheWebhookPortAnswersWhileAThousandHalfOpenConnectionsAreHeld) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur < 4096 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4096);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
  ASSERT_GE(limit.rlim_cur, 1100u) << "the test needs 1,000 descriptors for its connections";

  const std::string call = CallSid(14);
  const std::string post = Subscribe(*shared_, call);
  Watcher watcher(shared_->target(), WatchCall(call));

  // Half a request head each, never finished: each connection waits for the rest (until the
  // receiver's idle timeout, 10 s, longer than this test takes to check).
  const std::string half = "POST " + std::string(kWebhookPath) + "?" + kPublicQuery +
                           " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl";
  std::vector<int> held;
  for (int i = 0; i < 1000; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0) << i;
    held.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(shared_->port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << i;
    ASSERT_EQ(send(fd, half.data(), half.size(), MSG_NOSIGNAL), static_cast<ssize_t>(half.size()));
  }
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(HttpCall("GET", shared_->Url("/healthz")).status, 200);
  // And Twilio's deliveries still get through, and reach the Watch.
  const nlohmann::json report = Deliver({{"subscription_sid", post}, {"count", 2}});
  EXPECT_EQ(Statuses(report), std::vector<int>(2, 200));
  EXPECT_TRUE(watcher.WaitFor(2));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_LT(elapsed, std::chrono::seconds(8)) << "answered, but only once connections timed out";

  // The connections were held, not refused: none was closed by the server meanwhile.
  int open = 0;
  for (int fd : held) {
    char byte;
    const ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
    open += (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ? 1 : 0;
  }
  EXPECT_EQ(open, 1000);
  for (int fd : held) close(fd);
}

}  // namespace
}  // namespace gateway::testing
