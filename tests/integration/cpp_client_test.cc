// The C++ client library (client/cpp) and subscription-cli (client/cli): Create, Delete and Send
// against the real gateway and the Twilio simulator, and the parts that need no gateway (error
// helpers, the CLI's commands and usage errors).
//
// The Delete and Send cases follow the contract (proto/twilio_gateway/v1/*.proto); until the
// gateway implements those RPCs they fail with UNIMPLEMENTED.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "harness.h"
#include "subscription_client.h"

namespace gateway::testing {
namespace {

namespace pb = twilio_gateway::v1;
using twilio_gateway::client::ErrorDetails;
using twilio_gateway::client::NextStep;
using twilio_gateway::client::Operation;
using twilio_gateway::client::SubscriptionClient;

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

}  // namespace
}  // namespace gateway::testing
