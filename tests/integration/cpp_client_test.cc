// The C++ client library (client/cpp) and subscription-cli (client/cli): Create, Delete, Send and
// Watch against the real gateway and the Twilio simulator, and the parts that need no gateway
// (error helpers, the CLI's commands and usage errors). Watch runs against a gateway whose
// webhook receiver is its own public URL (--webhook-listen, --public-webhook-url), with the
// simulator playing the Voice SDK (POST /_sim/deliver signs each message as Twilio does).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "subscription_client.h"

namespace gateway::testing {
namespace {

namespace pb = twilio_gateway::v1;
using twilio_gateway::client::ErrorDetails;
using twilio_gateway::client::NextStep;
using twilio_gateway::client::Operation;
using twilio_gateway::client::SubscriptionClient;
using twilio_gateway::client::WatchResult;

constexpr char kCallSid[] = "CA0123456789abcdef0123456789abcdef";
constexpr char kCallback[] = "https://example.com/twilio/messages";
constexpr auto kTimeout = std::chrono::seconds(10);

// A status as the gateway sends it: ErrorInfo with `metadata`, in grpc-status-details-bin.
grpc::Status StatusWithErrorInfo(grpc::StatusCode code,
                                 const std::map<std::string, std::string>& metadata) {
  google::rpc::ErrorInfo info;
  info.set_domain("twilio-gateway");
  info.set_reason("TWILIO_UNAVAILABLE");
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(code));
  rich.add_details()->PackFrom(info);
  return grpc::Status(code, "upstream failed", rich.SerializeAsString());
}

TEST(CppClientErrorsTest, HelpersReadTheGatewaysMetadata) {
  const ErrorDetails send = twilio_gateway::client::DecodeErrorDetails(StatusWithErrorInfo(
      grpc::StatusCode::UNAVAILABLE,
      {{"idempotency_key", "k"}, {"attempts", "3"}, {"message_may_exist", "false"}}));
  EXPECT_EQ(send.Attempts(), 3);
  EXPECT_FALSE(send.MessageMayExist());
  EXPECT_EQ(send.Metadata("idempotency_key"), "k");
  EXPECT_EQ(send.Metadata("absent"), "");

  const ErrorDetails create = twilio_gateway::client::DecodeErrorDetails(StatusWithErrorInfo(
      grpc::StatusCode::UNAVAILABLE, {{"attempts", "2"}, {"subscription_may_exist", "true"}}));
  EXPECT_TRUE(create.SubscriptionMayExist());
  // Another operation's key says nothing about this one: without the gateway's word it may exist.
  EXPECT_TRUE(create.MessageMayExist());
}

TEST(CppClientErrorsTest, WithoutTheGatewaysWordItMayExist) {
  const ErrorDetails none = twilio_gateway::client::DecodeErrorDetails(
      grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline"));
  EXPECT_TRUE(none.SubscriptionMayExist());
  EXPECT_TRUE(none.MessageMayExist());
  EXPECT_EQ(none.Attempts(), 0);
  const ErrorDetails garbage = twilio_gateway::client::DecodeErrorDetails(
      StatusWithErrorInfo(grpc::StatusCode::UNAVAILABLE, {{"attempts", "three"}}));
  EXPECT_EQ(garbage.Attempts(), 0);
}

TEST(CppClientErrorsTest, NextStepSpeaksOfTheOperation) {
  EXPECT_STREQ(NextStep(Operation::kCreate, grpc::StatusCode::UNAVAILABLE, ""),
               "retry with it to repeat this create safely");
  EXPECT_STREQ(NextStep(Operation::kSend, grpc::StatusCode::UNAVAILABLE, ""),
               "retry with it to repeat this send safely");
  EXPECT_NE(std::string(NextStep(Operation::kSend, grpc::StatusCode::UNKNOWN, "OUTCOME_UNKNOWN"))
                .find("the message may or may not have been sent"),
            std::string::npos);
  EXPECT_STREQ(NextStep(Operation::kDelete, grpc::StatusCode::UNAVAILABLE, ""),
               "retry the delete: deleting again is always safe");
  EXPECT_STREQ(NextStep(Operation::kDelete, grpc::StatusCode::NOT_FOUND, ""),
               "there is no such subscription, call or account: do not retry");
  EXPECT_STREQ(
      NextStep(Operation::kSend, grpc::StatusCode::FAILED_PRECONDITION, "IDEMPOTENCY_KEY_REUSED"),
      "this key belongs to another request: use a new key");
  EXPECT_STREQ(NextStep(Operation::kWatch, grpc::StatusCode::UNAVAILABLE, ""),
               "watch again with the resume cursor: nothing it still keeps after it is lost");
  EXPECT_NE(
      std::string(NextStep(Operation::kWatch, grpc::StatusCode::OUT_OF_RANGE, "CURSOR_EXPIRED"))
          .find("watch again without it"),
      std::string::npos);
}

TEST(CppClientCliTest, UsageErrorsOfEachCommandNeedNoGateway) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"delete", "--call-sid", kCallSid}, "--sid is required"},
      {{"delete", "--sid", "ZY0123456789abcdef0123456789abcdef"}, "--call-sid is required"},
      {{"send", "--call-sid", kCallSid}, "--content is required"},
      {{"send", "--call-sid", kCallSid, "--content", "{}", "--callback", kCallback},
       "unknown flag --callback for send"},
      {{"delete", "--call-sid", kCallSid, "--sid", "ZY0", "--idempotency-key", "k"},
       "unknown flag --idempotency-key for delete"},
      {{"remove", "--call-sid", kCallSid}, "unknown command \"remove\""},
      {{"send", "--call-sid", kCallSid, "--content", "{}", "--timeout", "0"}, "--timeout"},
      {{"create", "--callback", kCallback}, "--call-sid is required"},
      {{"watch", "--cursor", "1-0", "--from-oldest"}, "exclude each other"},
      {{"watch", "--from-oldest=maybe"}, "--from-oldest takes no value"},
      {{"watch", "--content", "{}"}, "unknown flag --content for watch"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> argv = {CLI_BINARY};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    const CommandResult run = RunCommand(argv);
    EXPECT_EQ(run.exit_code, 2) << c.args[0] << " " << run.err;
    EXPECT_NE(run.err.find(c.message), std::string::npos) << run.err;
    EXPECT_TRUE(run.out.empty()) << run.out;
  }
}

TEST(CppClientCliTest, EachCommandHasItsHelp) {
  const CommandResult general = RunCommand({CLI_BINARY, "--help"});
  EXPECT_EQ(general.exit_code, 0);
  for (const char* text : {"create", "delete", "send", "Without a command"}) {
    EXPECT_NE(general.out.find(text), std::string::npos) << text;
  }
  const CommandResult del = RunCommand({CLI_BINARY, "delete", "--help"});
  EXPECT_EQ(del.exit_code, 0);
  EXPECT_NE(del.out.find("--sid SID"), std::string::npos) << del.out;
  const CommandResult send = RunCommand({CLI_BINARY, "send", "--help"});
  EXPECT_EQ(send.exit_code, 0);
  EXPECT_NE(send.out.find("--content JSON"), std::string::npos) << send.out;
  const CommandResult watch = RunCommand({CLI_BINARY, "watch", "--help"});
  EXPECT_EQ(watch.exit_code, 0);
  EXPECT_NE(watch.out.find("--from-oldest"), std::string::npos) << watch.out;
  EXPECT_NE(watch.out.find("resume_cursor"), std::string::npos) << watch.out;
}

class CppClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sim_ = new Simulator(LogDir());
    gateway_ = new Gateway(
        sim_->base_url(), {"--backoff-base", "5ms", "--backoff-cap", "50ms", "--max-attempts", "4"},
        {}, LogDir() + "/gateway-cpp-client.log");
  }
  static void TearDownTestSuite() {
    delete gateway_;
    delete sim_;
  }
  void SetUp() override { sim_->Reset(); }

  static SubscriptionClient Client() {
    return SubscriptionClient(
        grpc::CreateChannel(gateway_->target(), grpc::InsecureChannelCredentials()));
  }
  static std::string CreateSubscription() {
    pb::CreateSubscriptionRequest request;
    request.set_call_sid(kCallSid);
    request.set_callback(kCallback);
    const auto created = Client().Create(request, kTimeout);
    EXPECT_TRUE(created.status.ok()) << created.status.error_message();
    return created.subscription.sid();
  }
  static pb::DeleteSubscriptionRequest DeleteRequest(const std::string& sid) {
    pb::DeleteSubscriptionRequest request;
    request.set_call_sid(kCallSid);
    request.set_sid(sid);
    return request;
  }
  static pb::SendMessageRequest SendRequest(const std::string& content, const std::string& key) {
    pb::SendMessageRequest request;
    request.set_call_sid(kCallSid);
    request.set_content(content);
    request.set_idempotency_key(key);
    return request;
  }
  static nlohmann::json MessageStats(const std::string& key) {
    const nlohmann::json stats = sim_->Stats()["messages_by_key"];
    const std::string id = std::string(kSimAccountSid) + "/" + kCallSid + "/" + key;
    return stats.contains(id) ? stats[id] : nlohmann::json{{"requests", 0}, {"messages", 0}};
  }
  static std::string Reason(const ErrorDetails& details) {
    return details.error_info ? details.error_info->reason() : "";
  }

  static Simulator* sim_;
  static Gateway* gateway_;
};

Simulator* CppClientTest::sim_ = nullptr;
Gateway* CppClientTest::gateway_ = nullptr;

TEST_F(CppClientTest, DeleteRemovesTheSubscriptionAndASecondDeleteIsNotFound) {
  const std::string sid = CreateSubscription();
  const auto deleted = Client().Delete(DeleteRequest(sid), kTimeout);
  ASSERT_TRUE(deleted.status.ok()) << deleted.status.error_message();
  EXPECT_FALSE(deleted.request_id.empty());
  EXPECT_EQ(sim_->Stats()["subscriptions_deleted"], 1);

  const auto again = Client().Delete(DeleteRequest(sid), kTimeout);
  EXPECT_EQ(again.status.error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(again.details.twilio_error.has_value());
  EXPECT_EQ(again.details.twilio_error->code(), 20404);
  EXPECT_EQ(again.details.Attempts(), 1);
}

TEST_F(CppClientTest, DeleteWhoseAnswerWasLostIsOk) {
  const std::string sid = CreateSubscription();
  // The first attempt deletes, its answer is lost; the retry's 404 means that attempt did it.
  sim_->SetFaults({{{"operation", "delete"}, {"drop", "after"}, {"count", 1}}});
  const auto deleted = Client().Delete(DeleteRequest(sid), kTimeout);
  EXPECT_TRUE(deleted.status.ok()) << deleted.status.error_message();
  EXPECT_EQ(sim_->Stats()["subscriptions_deleted"], 1);
}

TEST_F(CppClientTest, DeleteWhoseFirstAttemptFailedAfterTwilioActedIsOk) {
  const std::string sid = CreateSubscription();
  // Twilio deletes, then answers 500; the retry's 404 means the first attempt did it.
  sim_->SetFaults(
      {{{"operation", "delete"}, {"status", 500}, {"after_record", true}, {"count", 1}}});
  const auto deleted = Client().Delete(DeleteRequest(sid), kTimeout);
  EXPECT_TRUE(deleted.status.ok()) << deleted.status.error_message();
  EXPECT_EQ(sim_->Stats()["subscriptions_deleted"], 1);
  std::vector<int> answers;
  for (const auto& request : sim_->Requests()) {
    if (request["operation"] == "delete") answers.push_back(request["response_status"].get<int>());
  }
  EXPECT_EQ(answers, (std::vector<int>{500, 404}));
}

TEST_F(CppClientTest, DeleteOfAMalformedSidIsRefusedWithoutCallingTwilio) {
  const auto deleted = Client().Delete(DeleteRequest("ZY-not-a-sid"), kTimeout);
  EXPECT_EQ(deleted.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(deleted.details.bad_request.has_value());
  ASSERT_EQ(deleted.details.bad_request->field_violations_size(), 1);
  EXPECT_EQ(deleted.details.bad_request->field_violations(0).field(), "sid");
  EXPECT_EQ(sim_->Stats()["requests"], 0);
}

TEST_F(CppClientTest, SendDeliversOneMessageAndTheSameKeyReplaysIt) {
  const auto sent = Client().Send(SendRequest(R"({"text":"hi"})", "cpp-send-1"), kTimeout);
  ASSERT_TRUE(sent.status.ok()) << sent.status.error_message();
  EXPECT_EQ(sent.message.sid().substr(0, 2), "KX");
  EXPECT_EQ(sent.message.call_sid(), kCallSid);
  EXPECT_EQ(sent.message.idempotency_key(), "cpp-send-1");
  EXPECT_TRUE(sent.message.has_date_created());
  EXPECT_FALSE(sent.replayed);

  const auto again = Client().Send(SendRequest(R"({"text":"hi"})", "cpp-send-1"), kTimeout);
  ASSERT_TRUE(again.status.ok()) << again.status.error_message();
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.message.sid(), sent.message.sid());
  EXPECT_EQ(MessageStats("cpp-send-1"), (nlohmann::json{{"requests", 1}, {"messages", 1}}));
}

TEST_F(CppClientTest, SendWithoutAKeyGeneratesOneBeforeSending) {
  const auto sent = Client().Send(SendRequest("[1,2,3]", ""), kTimeout);
  ASSERT_TRUE(sent.status.ok()) << sent.status.error_message();
  EXPECT_EQ(sent.idempotency_key.size(), 36u);
  EXPECT_EQ(sent.message.idempotency_key(), sent.idempotency_key);
  EXPECT_EQ(sim_->Requests()[0]["form"]["IdempotencyKey"], sent.idempotency_key);
  EXPECT_EQ(sim_->Requests()[0]["form"]["Content"], "[1,2,3]");
}

TEST_F(CppClientTest, SendThroughAmbiguousFaultsSendsExactlyOnce) {
  sim_->SetFaults({{{"operation", "send"}, {"status", 500}, {"after_record", true}, {"count", 1}},
                   {{"operation", "send"}, {"drop", "after"}, {"count", 1}}});
  const auto sent = Client().Send(SendRequest("{}", "cpp-send-ambiguous"), kTimeout);
  ASSERT_TRUE(sent.status.ok()) << sent.status.error_message();
  EXPECT_EQ(MessageStats("cpp-send-ambiguous"), (nlohmann::json{{"requests", 3}, {"messages", 1}}));
}

TEST_F(CppClientTest, SendOfContentThatIsNotJsonNamesContentAndSendsNothing) {
  const auto sent = Client().Send(SendRequest("{not json", "cpp-send-bad"), kTimeout);
  EXPECT_EQ(sent.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(sent.details.bad_request.has_value());
  EXPECT_EQ(sent.details.bad_request->field_violations(0).field(), "content");
  EXPECT_EQ(sent.details.Metadata("idempotency_key"), "cpp-send-bad");
  EXPECT_FALSE(sent.details.MessageMayExist());
  EXPECT_EQ(sim_->Stats()["requests"], 0);
}

TEST_F(CppClientTest, SendOfContentOverTheCapNamesContentAndSendsNothing) {
  // One JSON string of 4097 bytes: valid JSON, one byte over the contract's 4096-byte cap.
  const std::string too_long = "\"" + std::string(4095, 'a') + "\"";
  const auto sent = Client().Send(SendRequest(too_long, "cpp-send-4097"), kTimeout);
  EXPECT_EQ(sent.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(sent.details.bad_request.has_value());
  ASSERT_EQ(sent.details.bad_request->field_violations_size(), 1);
  EXPECT_EQ(sent.details.bad_request->field_violations(0).field(), "content");
  EXPECT_NE(sent.details.bad_request->field_violations(0).description().find("4096"),
            std::string::npos)
      << sent.details.bad_request->field_violations(0).description();
  EXPECT_FALSE(sent.details.twilio_error.has_value()) << "refused by the gateway, not Twilio";
  EXPECT_FALSE(sent.details.MessageMayExist());
  EXPECT_EQ(sim_->Stats()["requests"], 0);

  // At the cap it goes through.
  const std::string at_cap = "\"" + std::string(4094, 'a') + "\"";
  const auto fits = Client().Send(SendRequest(at_cap, "cpp-send-4096"), kTimeout);
  EXPECT_TRUE(fits.status.ok()) << fits.status.error_message();
  EXPECT_EQ(sim_->Stats()["messages"], 1);
}

TEST_F(CppClientTest, SendThatTwilioFindsTooLargeIsInvalidArgumentNamingContent) {
  sim_->SetConfig({{"max_content_bytes", 8}});
  const auto sent = Client().Send(SendRequest(R"({"text":"too long"})", "cpp-31212"), kTimeout);
  EXPECT_EQ(sent.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(sent.details.twilio_error.has_value());
  EXPECT_EQ(sent.details.twilio_error->code(), 31212);
  ASSERT_TRUE(sent.details.bad_request.has_value());
  EXPECT_EQ(sent.details.bad_request->field_violations(0).field(), "content");
  EXPECT_FALSE(sent.details.MessageMayExist());
}

TEST_F(CppClientTest, SendToACallThatIsNotActiveIsFailedPrecondition) {
  sim_->SetCallState(kCallSid, "completed");
  const auto sent = Client().Send(SendRequest("{}", "cpp-inactive"), kTimeout);
  EXPECT_EQ(sent.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(sent.details.twilio_error.has_value());
  EXPECT_EQ(sent.details.twilio_error->code(), 31211);
  EXPECT_FALSE(sent.details.MessageMayExist());
  EXPECT_EQ(sent.details.Attempts(), 1);
}

TEST_F(CppClientTest, CliWithoutACommandStillCreates) {
  const CommandResult run =
      RunCommand({CLI_BINARY, "--target", gateway_->target(), "--call-sid", kCallSid, "--callback",
                  kCallback, "--idempotency-key", "cpp-cli-legacy"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // Only the subscription on stdout, as before the commands existed.
  const nlohmann::json printed = nlohmann::json::parse(run.out);
  EXPECT_EQ(printed["idempotency_key"], "cpp-cli-legacy");
  EXPECT_EQ(sim_->SubscriptionsForKey(kSimAccountSid, kCallSid, "cpp-cli-legacy"), 1);
}

TEST_F(CppClientTest, CliCreateThenDeleteThenSend) {
  const CommandResult created = RunCommand({CLI_BINARY, "create", "--target", gateway_->target(),
                                            "--call-sid", kCallSid, "--callback", kCallback});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string sid = nlohmann::json::parse(created.out)["sid"];

  const CommandResult deleted = RunCommand(
      {CLI_BINARY, "delete", "--target", gateway_->target(), "--call-sid", kCallSid, "--sid", sid});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(nlohmann::json::parse(deleted.out), nlohmann::json::object());
  EXPECT_EQ(sim_->Stats()["subscriptions_deleted"], 1);

  const CommandResult sent =
      RunCommand({CLI_BINARY, "send", "--target", gateway_->target(), "--call-sid", kCallSid,
                  "--content", R"({"text": "hi"})", "--idempotency-key", "cpp-cli-send"});
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  const nlohmann::json message = nlohmann::json::parse(sent.out);
  EXPECT_EQ(message["sid"].get<std::string>().substr(0, 2), "KX");
  EXPECT_EQ(message["idempotency_key"], "cpp-cli-send");
}

TEST_F(CppClientTest, CliErrorsSayWhatToDoNext) {
  sim_->SetCallState(kCallSid, "completed");
  const CommandResult sent =
      RunCommand({CLI_BINARY, "send", "--target", gateway_->target(), "--call-sid", kCallSid,
                  "--content", "{}", "--idempotency-key", "cpp-cli-inactive"});
  EXPECT_EQ(sent.exit_code, 1);
  EXPECT_NE(sent.err.find("error: FAILED_PRECONDITION"), std::string::npos) << sent.err;
  EXPECT_NE(sent.err.find("idempotency_key: cpp-cli-inactive (retrying with it is safe once"),
            std::string::npos)
      << sent.err;
  EXPECT_TRUE(sent.out.empty());

  const CommandResult deleted =
      RunCommand({CLI_BINARY, "delete", "--target", gateway_->target(), "--call-sid", kCallSid,
                  "--sid", "ZY00000000000000000000000000000000"});
  EXPECT_EQ(deleted.exit_code, 1);
  EXPECT_NE(deleted.err.find("error: NOT_FOUND"), std::string::npos) << deleted.err;
  EXPECT_NE(deleted.err.find("next: there is no such subscription"), std::string::npos)
      << deleted.err;
}

TEST_F(CppClientTest, CreateWithoutACallbackIsInvalidWhenTheGatewayHasNoReceiver) {
  pb::CreateSubscriptionRequest request;
  request.set_call_sid(kCallSid);
  const auto created = Client().Create(request, kTimeout);
  EXPECT_EQ(created.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(created.details.bad_request.has_value());
  EXPECT_EQ(created.details.bad_request->field_violations(0).field(), "callback");

  auto stream = Client().Watch(pb::WatchMessagesRequest(), kTimeout);
  pb::CallMessage message;
  EXPECT_FALSE(stream->Next(&message));
  const WatchResult ended = stream->Finish();
  EXPECT_EQ(ended.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ended.resume_cursor, "");
}

// A gateway that receives Twilio's deliveries at its own public URL.
class WebhookGateway {
 public:
  WebhookGateway(const Simulator& sim, const std::string& log_name)
      : port_(FreeLoopbackPort()),
        url_("http://127.0.0.1:" + std::to_string(port_) + "/twilio/messages"),
        gateway_(sim.base_url(),
                 {"--webhook-listen", "127.0.0.1:" + std::to_string(port_), "--public-webhook-url",
                  url_},
                 {}, LogDir() + "/" + log_name) {}
  const std::string& url() const { return url_; }
  Gateway& gateway() { return gateway_; }
  SubscriptionClient Client() const {
    return SubscriptionClient(
        grpc::CreateChannel(gateway_.target(), grpc::InsecureChannelCredentials()));
  }

 private:
  int port_;
  std::string url_;
  Gateway gateway_;
};

class CppClientWatchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sim_ = new Simulator(LogDir());
    receiver_ = new WebhookGateway(*sim_, "gateway-cpp-client-watch.log");
  }
  static void TearDownTestSuite() {
    delete receiver_;
    delete sim_;
  }

  // A call no other test has messages on: the gateway's log outlives each test, and the
  // simulator treats every call as in progress.
  static std::string NewCall() {
    static int calls = 0;
    char sid[35];
    std::snprintf(sid, sizeof sid, "CA%032x", ++calls);
    return sid;
  }
  // Subscribes the call to the gateway's own URL (Create without a callback).
  static void Subscribe(WebhookGateway& receiver, const std::string& call_sid) {
    pb::CreateSubscriptionRequest request;
    request.set_call_sid(call_sid);
    const auto created = receiver.Client().Create(request, kTimeout);
    ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  }
  // The simulator plays the SDK: one message per content, signed, to the call's subscriptions.
  static void Deliver(const std::string& call_sid, const std::vector<std::string>& contents) {
    const HttpReply reply =
        HttpCall("POST", sim_->base_url() + "/_sim/deliver",
                 nlohmann::json{{"call_sid", call_sid}, {"contents", contents}}.dump());
    ASSERT_EQ(reply.status, 200) << reply.body;
    // Kept in a variable: a range-for over a member of a temporary outlives the temporary.
    const nlohmann::json answer = nlohmann::json::parse(reply.body);
    for (const auto& delivery : answer["deliveries"]) {
      EXPECT_EQ(delivery["status"], 200) << delivery.dump();
    }
  }
  static pb::WatchMessagesRequest FromOldest(const std::string& call_sid) {
    pb::WatchMessagesRequest request;
    request.set_call_sid(call_sid);
    request.set_from_oldest(true);
    return request;
  }
  static std::vector<pb::CallMessage> Take(twilio_gateway::client::MessageStream& stream,
                                           int count) {
    std::vector<pb::CallMessage> messages(count);
    for (auto& message : messages) {
      if (!stream.Next(&message)) {
        ADD_FAILURE() << "the stream ended early: " << stream.Finish().status.error_message();
        return {};
      }
    }
    return messages;
  }

  static Simulator* sim_;
  static WebhookGateway* receiver_;
};

Simulator* CppClientWatchTest::sim_ = nullptr;
WebhookGateway* CppClientWatchTest::receiver_ = nullptr;

// Every stream has a deadline, so that a message that never comes fails instead of hanging.
constexpr auto kStreamTimeout = std::chrono::seconds(30);

TEST_F(CppClientWatchTest, CreateWithoutACallbackSubscribesTheGatewaysOwnUrl) {
  const std::string call = NewCall();
  pb::CreateSubscriptionRequest request;
  request.set_call_sid(call);
  const auto created = receiver_->Client().Create(request, kTimeout);
  ASSERT_TRUE(created.status.ok()) << created.status.error_message();
  bool found = false;
  for (const auto& subscription : sim_->Subscriptions()) {
    if (subscription["sid"] != created.subscription.sid()) continue;
    found = true;
    EXPECT_EQ(subscription["callback"], receiver_->url());
  }
  EXPECT_TRUE(found);
}

// A Watch of new messages that the gateway ends (a drain) before any came: the client has no
// cursor of its own, so it resumes where the gateway says the stream started, and loses nothing
// that arrives in between.
TEST_F(CppClientWatchTest, AWatchEndedBeforeAnyMessageResumesWhereItStarted) {
  WebhookGateway draining(*sim_, "gateway-cpp-client-watch-drained.log");
  const std::string busy = NewCall();
  const std::string quiet = NewCall();
  Subscribe(draining, busy);
  auto watch_busy = draining.Client().Watch(FromOldest(busy), kStreamTimeout);
  Deliver(busy, {"[1]"});
  const std::vector<pb::CallMessage> first = Take(*watch_busy, 1);
  ASSERT_EQ(first.size(), 1u);

  pb::WatchMessagesRequest new_messages;  // No cursor: from the log's tail.
  new_messages.set_call_sid(quiet);
  auto watch_quiet = draining.Client().Watch(new_messages, kStreamTimeout);
  // A round trip through the log after the quiet Watch began: it has started by now, at the
  // first message's cursor or (if it started later) the second's.
  Deliver(busy, {"[2]"});
  const std::vector<pb::CallMessage> second = Take(*watch_busy, 1);
  ASSERT_EQ(second.size(), 1u);

  draining.gateway().process().Stop(SIGTERM);
  pb::CallMessage none;
  EXPECT_FALSE(watch_quiet->Next(&none));
  const WatchResult ended = watch_quiet->Finish();
  EXPECT_EQ(ended.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ended.messages, 0u);
  EXPECT_TRUE(ended.resume_cursor == first[0].cursor() || ended.resume_cursor == second[0].cursor())
      << "resume cursor \"" << ended.resume_cursor << "\"";
  watch_busy->Finish();
}

TEST_F(CppClientWatchTest, WatchStreamsTheDeliveredMessagesAndResumesAfterACursor) {
  const std::string call = NewCall();
  Subscribe(*receiver_, call);
  auto stream = receiver_->Client().Watch(FromOldest(call), kStreamTimeout);
  Deliver(call, {R"({"text":"one"})", R"({"text":"two"})", "[3]"});
  const std::vector<pb::CallMessage> first = Take(*stream, 3);
  ASSERT_EQ(first.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(first[i].sequence_number(), i);
    EXPECT_EQ(first[i].call_sid(), call);
    EXPECT_EQ(first[i].account_sid(), kSimAccountSid);
    EXPECT_EQ(first[i].sid().substr(0, 2), "KX");
    EXPECT_EQ(first[i].content_type(), "application/json");
    EXPECT_TRUE(first[i].has_timestamp());
    EXPECT_FALSE(first[i].cursor().empty());
  }
  EXPECT_EQ(first[2].content(), "[3]");
  EXPECT_EQ(stream->cursor(), first[2].cursor());

  // Cancelled from another thread, as the CLI does on SIGINT: no error.
  std::thread cancel([&stream] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stream->Cancel();
  });
  pb::CallMessage more;
  EXPECT_FALSE(stream->Next(&more));
  cancel.join();
  const WatchResult ended = stream->Finish();
  EXPECT_TRUE(ended.cancelled);
  EXPECT_EQ(ended.messages, 3u);
  EXPECT_EQ(ended.resume_cursor, first[2].cursor());

  // Delivered while nobody watches; a Watch after the second message's cursor gets the third and
  // these, nothing twice.
  Deliver(call, {"4", "5"});
  pb::WatchMessagesRequest resume;
  resume.set_call_sid(call);
  resume.set_cursor(first[1].cursor());
  auto resumed = receiver_->Client().Watch(resume, kStreamTimeout);
  const std::vector<pb::CallMessage> later = Take(*resumed, 3);
  ASSERT_EQ(later.size(), 3u);
  EXPECT_EQ(later[0].sid(), first[2].sid());
  EXPECT_EQ(later[1].sequence_number(), 3);
  EXPECT_EQ(later[2].content(), "5");
}

TEST_F(CppClientWatchTest, AGatewayThatStopsEndsTheStreamWithTheCursorToResumeFrom) {
  WebhookGateway stopping(*sim_, "gateway-cpp-client-watch-stop.log");
  const std::string call = NewCall();
  Subscribe(stopping, call);
  auto stream = stopping.Client().Watch(FromOldest(call), kStreamTimeout);
  Deliver(call, {"1", "2"});
  const std::vector<pb::CallMessage> received = Take(*stream, 2);
  ASSERT_EQ(received.size(), 2u);

  std::thread stop([&stopping] { stopping.gateway().process().Stop(SIGTERM); });
  pb::CallMessage more;
  EXPECT_FALSE(stream->Next(&more));
  stop.join();
  const WatchResult ended = stream->Finish();
  EXPECT_FALSE(ended.cancelled);
  EXPECT_EQ(ended.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << ended.status.error_message();
  EXPECT_EQ(ended.resume_cursor, received[1].cursor());
  EXPECT_EQ(ended.details.Metadata("cursor"), received[1].cursor());
}

TEST_F(CppClientWatchTest, AMalformedCursorIsInvalidArgumentNamingIt) {
  pb::WatchMessagesRequest request;
  request.set_cursor("not-a-cursor");
  auto stream = receiver_->Client().Watch(request, kStreamTimeout);
  pb::CallMessage message;
  EXPECT_FALSE(stream->Next(&message));
  const WatchResult ended = stream->Finish();
  EXPECT_EQ(ended.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(ended.details.bad_request.has_value());
  EXPECT_EQ(ended.details.bad_request->field_violations(0).field(), "cursor");
}

TEST_F(CppClientWatchTest, CliCreatesWithoutACallbackAndWatchesUntilTheStreamEnds) {
  const std::string call = NewCall();
  const CommandResult created = RunCommand(
      {CLI_BINARY, "create", "--target", receiver_->gateway().target(), "--call-sid", call});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  Deliver(call, {R"({"text":"hi"})", "2", "3"});

  // From the oldest, with a deadline: three lines, then the deadline ends the stream and the
  // CLI says where to resume.
  const CommandResult watched =
      RunCommand({CLI_BINARY, "watch", "--target", receiver_->gateway().target(), "--call-sid",
                  call, "--from-oldest", "--timeout", "2"});
  EXPECT_EQ(watched.exit_code, 1) << watched.err;
  std::vector<nlohmann::json> lines;
  size_t start = 0;
  for (size_t end; (end = watched.out.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(nlohmann::json::parse(watched.out.substr(start, end - start)));
  }
  ASSERT_EQ(lines.size(), 3u) << watched.out;
  EXPECT_EQ(lines[0]["content"], R"({"text":"hi"})");
  EXPECT_EQ(lines[0]["call_sid"], call);
  EXPECT_EQ(lines[2]["sequence_number"], 2);
  EXPECT_EQ(lines[0]["sid"].get<std::string>().substr(0, 2), "KX");
  EXPECT_TRUE(lines[0].contains("timestamp")) << lines[0].dump();
  const std::string last = lines[2]["cursor"];
  EXPECT_NE(watched.err.find("error: DEADLINE_EXCEEDED"), std::string::npos) << watched.err;
  EXPECT_NE(watched.err.find("resume_cursor: " + last + "\n"), std::string::npos) << watched.err;

  // Resumed after the second: only the third.
  const CommandResult resumed =
      RunCommand({CLI_BINARY, "watch", "--target", receiver_->gateway().target(), "--call-sid",
                  call, "--cursor", lines[1]["cursor"].get<std::string>(), "--timeout", "2"});
  EXPECT_EQ(resumed.exit_code, 1) << resumed.err;
  ASSERT_EQ(std::count(resumed.out.begin(), resumed.out.end(), '\n'), 1) << resumed.out;
  EXPECT_EQ(nlohmann::json::parse(resumed.out)["cursor"], last);
}

TEST_F(CppClientWatchTest, CliWatchStopsCleanlyOnSigint) {
  const std::string call = NewCall();
  Subscribe(*receiver_, call);
  Deliver(call, {"1"});
  ChildProcess watch({CLI_BINARY, "watch", "--target", receiver_->gateway().target(), "--call-sid",
                      call, "--from-oldest"},
                     {}, LogDir() + "/cli-watch-sigint.err");
  // The message's line: the stream is open.
  EXPECT_NE(watch.WaitForLine("\"sid\":").find("KX"), std::string::npos);
  const int status = watch.Stop(SIGINT);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace gateway::testing
