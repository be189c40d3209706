// End-to-end tests: the real gateway binary against the Twilio simulator, over loopback.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "harness.h"
#include "subscription_client.h"

namespace gateway::testing {
namespace {

namespace pb = twilio_gateway::v1;
using twilio_gateway::client::CreateResult;
using twilio_gateway::client::SubscriptionClient;

constexpr char kCallSid[] = "CA0123456789abcdef0123456789abcdef";
constexpr char kCallback[] = "https://example.com/twilio/messages?tenant=7";
const std::regex kUuidV4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");

pb::CreateSubscriptionRequest Request(const std::string& key = "") {
  pb::CreateSubscriptionRequest request;
  request.set_call_sid(kCallSid);
  request.set_callback(kCallback);
  request.set_idempotency_key(key);
  return request;
}

std::string Reason(const CreateResult& result) {
  return result.details.error_info ? result.details.error_info->reason() : "";
}

std::string Meta(const CreateResult& result, const std::string& key) {
  if (!result.details.error_info) return "";
  const auto& m = result.details.error_info->metadata();
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

class GatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sim_ = new Simulator(LogDir());
    // Short backoff keeps retry tests fast; the retry count and deadline logic are unchanged.
    gateway_ = new Gateway(sim_->base_url(),
                           {"--backoff-base", "5ms", "--backoff-cap", "50ms", "--max-attempts", "4",
                            "--log-level", "debug", "--metrics-listen", "127.0.0.1:0"},
                           {}, LogDir() + "/gateway.log");
    metrics_url_ = new std::string(
        "http://" + gateway_->process().WaitForLine("twilio-gateway metrics on ") + "/metrics");
  }
  static void TearDownTestSuite() {
    delete gateway_;
    delete sim_;
    delete metrics_url_;
  }
  void SetUp() override { sim_->Reset(); }
  // The gateway is shared: a background resolution a test started must not send into the next
  // test. Waits (up to 12 s, longer than a key window) until no RPC is in flight (a caller's
  // deadline may end in the client before the gateway has seen it) and every resolution ended.
  void TearDown() override {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(12);
    while (std::chrono::steady_clock::now() < deadline && WorkInProgress() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(WorkInProgress(), 0);
  }

  // gateway_rpcs_in_flight, plus resolutions started less those that ended; -1 if the scrape
  // failed.
  static double WorkInProgress() {
    const HttpReply reply = HttpCall("GET", *metrics_url_);
    if (reply.status != 200) return -1;
    double in_progress = 0;
    std::istringstream lines(reply.body);
    for (std::string line; std::getline(lines, line);) {
      const bool resolutions = line.rfind("gateway_resolutions_total{", 0) == 0;
      if (!resolutions && line.rfind("gateway_rpcs_in_flight ", 0) != 0) continue;
      const double value = std::stod(line.substr(line.rfind(' ') + 1));
      in_progress +=
          !resolutions || line.find("event=\"started\"") != std::string::npos ? value : -value;
    }
    return in_progress;
  }

  // Stalled requests abandoned by earlier tests still count as in flight at the simulator, and
  // would raise its max_in_flight: waits (up to 5 s) for them to end, then resets it.
  static void ResetWhenTheSimulatorIsIdle() {
    for (int i = 0; i < 100 && sim_->Stats()["in_flight"].get<int>() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    sim_->Reset();
  }

  static SubscriptionClient Client(const std::string& target) {
    return SubscriptionClient(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  }
  CreateResult Create(const pb::CreateSubscriptionRequest& request,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return Client(gateway_->target()).Create(request, timeout);
  }

  static Simulator* sim_;
  static Gateway* gateway_;
  static std::string* metrics_url_;
};

Simulator* GatewayTest::sim_ = nullptr;
std::string* GatewayTest::metrics_url_ = nullptr;
Gateway* GatewayTest::gateway_ = nullptr;

TEST_F(GatewayTest, CreateReturnsTheSubscriptionTwilioCreated) {
  const CreateResult result = Create(Request("key-success-1"));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  const pb::Subscription& s = result.subscription;
  EXPECT_EQ(s.account_sid(), kSimAccountSid);
  EXPECT_EQ(s.call_sid(), kCallSid);
  EXPECT_TRUE(std::regex_match(s.sid(), std::regex("^ZY[0-9a-f]{32}$"))) << s.sid();
  EXPECT_EQ(s.uri(), "/2010-04-01/Accounts/" + std::string(kSimAccountSid) + "/Calls/" + kCallSid +
                         "/UserDefinedMessageSubscriptions/" + s.sid() + ".json");
  EXPECT_EQ(s.idempotency_key(), "key-success-1");
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  EXPECT_NEAR(s.date_created().seconds(),
              std::chrono::duration_cast<std::chrono::seconds>(now).count(), 120);

  const nlohmann::json requests = sim_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  const nlohmann::json& r = requests[0];
  EXPECT_EQ(r["method"], "POST");
  EXPECT_EQ(r["path"], "/2010-04-01/Accounts/" + std::string(kSimAccountSid) + "/Calls/" +
                           kCallSid + "/UserDefinedMessageSubscriptions.json");
  EXPECT_EQ(r["form"]["Callback"], kCallback);
  EXPECT_EQ(r["form"]["Method"], "POST");
  EXPECT_EQ(r["form"]["IdempotencyKey"], "key-success-1");
  EXPECT_EQ(r["auth_user"], kSimAccountSid);
  EXPECT_EQ(r["auth_ok"], true);
  EXPECT_EQ(r["headers"]["accept"], "application/json");
  EXPECT_EQ(r["headers"]["content-type"], "application/x-www-form-urlencoded");
  EXPECT_EQ(r["headers"]["user-agent"].get<std::string>().rfind("twilio-subscription-gateway/", 0),
            0u);
  EXPECT_EQ(r["headers"]["authorization"], "<redacted>");
}

TEST_F(GatewayTest, GeneratesAUuidKeyWhenTheCallerSendsNone) {
  // The raw stub, because the client library would generate a key itself.
  auto stub = pb::SubscriptionService::NewStub(
      grpc::CreateChannel(gateway_->target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  pb::Subscription response;
  const grpc::Status status = stub->Create(&context, Request(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(std::regex_match(response.idempotency_key(), kUuidV4)) << response.idempotency_key();
  EXPECT_EQ(sim_->Requests()[0]["form"]["IdempotencyKey"], response.idempotency_key());
}

TEST_F(GatewayTest, SendsMethodGetAndAnExplicitAccount) {
  pb::CreateSubscriptionRequest request = Request("key-get");
  request.set_method(pb::CALLBACK_METHOD_GET);
  request.set_account_sid(kSimAccountSid);
  const CreateResult result = Create(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(sim_->Requests()[0]["form"]["Method"], "GET");
}

struct BadInput {
  const char* name;
  void (*mutate)(pb::CreateSubscriptionRequest&);
  const char* field;
};

class ValidationTest : public GatewayTest, public ::testing::WithParamInterface<BadInput> {};

TEST_P(ValidationTest, RejectsBadFieldWithoutCallingTwilio) {
  pb::CreateSubscriptionRequest request = Request("key-validation");
  GetParam().mutate(request);
  const CreateResult result = Create(request);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(result.details.bad_request.has_value());
  ASSERT_GE(result.details.bad_request->field_violations_size(), 1);
  EXPECT_EQ(result.details.bad_request->field_violations(0).field(), GetParam().field);
  EXPECT_EQ(sim_->Stats()["requests"], 0);
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ValidationTest,
    ::testing::Values(
        BadInput{"MissingCallSid", [](auto& r) { r.clear_call_sid(); }, "call_sid"},
        BadInput{"ShortCallSid", [](auto& r) { r.set_call_sid("CA0123"); }, "call_sid"},
        BadInput{"PathTraversalCallSid",
                 [](auto& r) { r.set_call_sid("CA../../../Accounts/x/Calls/y/zzzzzzzz"); },
                 "call_sid"},
        BadInput{"BadAccountSid", [](auto& r) { r.set_account_sid("ACnothex"); }, "account_sid"},
        BadInput{"MissingCallback", [](auto& r) { r.clear_callback(); }, "callback"},
        BadInput{"RelativeCallback", [](auto& r) { r.set_callback("/messages"); }, "callback"},
        BadInput{"FtpCallback", [](auto& r) { r.set_callback("ftp://example.com/x"); }, "callback"},
        BadInput{"UnderscoreHost", [](auto& r) { r.set_callback("https://my_host.example.com/"); },
                 "callback"},
        BadInput{"UserInfo", [](auto& r) { r.set_callback("https://u:p@example.com/"); },
                 "callback"},
        BadInput{"TooLongCallback",
                 [](auto& r) { r.set_callback("https://example.com/" + std::string(4000, 'a')); },
                 "callback"},
        BadInput{"UnknownMethod", [](auto& r) { r.set_method(static_cast<pb::CallbackMethod>(7)); },
                 "method"},
        BadInput{"LongKey", [](auto& r) { r.set_idempotency_key(std::string(256, 'k')); },
                 "idempotency_key"},
        BadInput{"KeyWithNewline", [](auto& r) { r.set_idempotency_key("a\nb"); },
                 "idempotency_key"}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

// Error trailers must stay small whatever the caller sent: gRPC clients refuse trailers over
// 8 KiB by default (C core: C++, Python), which would turn a fixable INVALID_ARGUMENT into
// RESOURCE_EXHAUSTED. 4 KiB leaves room for the rest of the response.
constexpr size_t kMaxErrorTrailerBytes = 4096;
// Nor may a caller size the gateway's log lines.
constexpr size_t kMaxAuditLineBytes = 4096;

// The request's string fields and a filler that makes each invalid at every size but 0 (the
// key: a space; the others: 'x'). Sizes: nothing, one byte, around the key's 255-byte limit,
// around the callback's 4000, and far beyond.
const std::vector<std::string> kStringFields = {"call_sid", "callback", "idempotency_key",
                                                "account_sid"};
const std::vector<size_t> kFieldSizes = {0, 1, 255, 256, 4 << 10, 64 << 10, 1 << 20};

// The trailers as HTTP/2 carries them: binary values in base64 (unpadded), grpc-message
// percent-encoded. The C++ API hands grpc-status and grpc-message over in the Status instead.
size_t TrailerWireBytes(const grpc::ClientContext& context, const grpc::Status& status) {
  size_t total = 0;
  bool has_status = false;
  bool has_message = false;
  for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
    const std::string_view k(key.data(), key.size());
    const bool binary = k.size() > 4 && k.substr(k.size() - 4) == "-bin";
    total += k.size() + (binary ? (value.size() * 4 + 2) / 3 : value.size());
    has_status |= k == "grpc-status";
    has_message |= k == "grpc-message";
  }
  if (!has_status) total += sizeof("grpc-status") - 1 + std::to_string(status.error_code()).size();
  if (!has_message) {
    total += sizeof("grpc-message") - 1;
    for (unsigned char c : status.error_message()) {
      total += (c < 0x20 || c > 0x7e || c == '%') ? 3 : 1;
    }
  }
  return total;
}

std::string SizeLabel(size_t size) {
  if (size >= (1 << 20)) return std::to_string(size >> 20) + "MiB";
  if (size >= (1 << 10)) return std::to_string(size >> 10) + "KiB";
  return std::to_string(size) + "B";
}

// The gateway log's audit line for `request_id`, or "" if there is none.
// The request's audit line, waiting for it to be written; "" when none comes.
std::string AuditLine(const std::string& request_id) {
  auto find = [&request_id](const std::string& text) -> std::string {
    std::istringstream log(text);
    for (std::string line; std::getline(log, line);) {
      if (line.find("\"audit\"") != std::string::npos &&
          line.find(request_id) != std::string::npos) {
        return line;
      }
    }
    return "";
  };
  return find(ReadLogUntil(LogDir() + "/gateway.log",
                           [&find](const std::string& text) { return !find(text).empty(); }));
}

class OversizedFieldTest : public GatewayTest,
                           public ::testing::WithParamInterface<std::tuple<std::string, size_t>> {};

// Twilio's text is echoed three times (grpc-message, the status in the details, TwilioError),
// so it is cut: whatever Twilio writes, the caller's trailers stay small.
TEST_F(GatewayTest, LongTwilioErrorTextKeepsTheTrailersSmall) {
  std::string message;
  for (int i = 0; i < 2000; ++i) message += "\xC3\xA9";  // 4,000 bytes of non-ASCII text.
  sim_->SetFaults({{{"status", 400}, {"code", 21201}, {"message", message}}});
  auto stub = pb::SubscriptionService::NewStub(
      grpc::CreateChannel(gateway_->target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  pb::Subscription response;
  const grpc::Status status = stub->Create(&context, Request("key-long-text"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(TrailerWireBytes(context, status), kMaxErrorTrailerBytes);
}

TEST(OversizedFieldCoverageTest, CoversEveryStringFieldOfTheRequest) {
  // A new string field must be added to kStringFields (and its filler chosen) to be covered.
  const google::protobuf::Descriptor* descriptor = pb::CreateSubscriptionRequest::descriptor();
  std::vector<std::string> fields;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    if (descriptor->field(i)->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      fields.push_back(descriptor->field(i)->name());
    }
  }
  EXPECT_EQ(fields, kStringFields);
}

TEST_P(OversizedFieldTest, IsRejectedByNameWithSmallTrailersAndNothingSent) {
  const auto& [field, size] = GetParam();
  pb::CreateSubscriptionRequest request =
      Request("key-oversized-" + field + "-" + std::to_string(size));
  const google::protobuf::FieldDescriptor* descriptor =
      pb::CreateSubscriptionRequest::descriptor()->FindFieldByName(field);
  ASSERT_NE(descriptor, nullptr) << field;
  request.GetReflection()->SetString(&request, descriptor,
                                     std::string(size, field == "idempotency_key" ? ' ' : 'x'));

  // The raw stub at default channel settings: the client library hides the trailers.
  auto stub = pb::SubscriptionService::NewStub(
      grpc::CreateChannel(gateway_->target(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  pb::Subscription response;
  const grpc::Status status = stub->Create(&context, request, &response);

  if (size == 0 && (field == "account_sid" || field == "idempotency_key")) {
    // Optional and absent: the rest of the request is valid, so the other cases fail on `field`.
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(sim_->Stats()["requests"], 1);
    return;
  }
  ASSERT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << twilio_gateway::client::StatusCodeName(status.error_code()) << ": "
      << status.error_message();
  const twilio_gateway::client::ErrorDetails details =
      twilio_gateway::client::DecodeErrorDetails(status);
  ASSERT_TRUE(details.bad_request.has_value());
  ASSERT_EQ(details.bad_request->field_violations_size(), 1);
  EXPECT_EQ(details.bad_request->field_violations(0).field(), field);
  ASSERT_TRUE(details.error_info.has_value());
  EXPECT_EQ(details.error_info->reason(), "INVALID_REQUEST");
  EXPECT_LT(TrailerWireBytes(context, status), kMaxErrorTrailerBytes);
  EXPECT_EQ(sim_->Stats()["requests"], 0);

  const auto request_id = context.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(request_id, context.GetServerInitialMetadata().end());
  const std::string audit =
      AuditLine(std::string(request_id->second.data(), request_id->second.size()));
  ASSERT_FALSE(audit.empty());
  EXPECT_LT(audit.size(), kMaxAuditLineBytes);
}

INSTANTIATE_TEST_SUITE_P(Sizes, OversizedFieldTest,
                         ::testing::Combine(::testing::ValuesIn(kStringFields),
                                            ::testing::ValuesIn(kFieldSizes)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" +
                                  SizeLabel(std::get<1>(info.param));
                         });

TEST_F(GatewayTest, UnknownCallIsNotFoundWithTwilioDetails) {
  sim_->SetCallState(kCallSid, "missing");
  const CreateResult result = Create(Request("key-404"));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(result.details.twilio_error.has_value());
  EXPECT_EQ(result.details.twilio_error->code(), 20404);
  EXPECT_EQ(result.details.twilio_error->http_status(), 404);
  EXPECT_EQ(result.details.twilio_error->more_info(), "https://www.twilio.com/docs/errors/20404");
  EXPECT_EQ(Reason(result), "CALL_NOT_FOUND");
  EXPECT_EQ(Meta(result, "idempotency_key"), "key-404");
  EXPECT_EQ(sim_->Stats()["requests"], 1);  // A definite answer is not retried.
}

TEST_F(GatewayTest, CallNotInProgressIsFailedPrecondition) {
  sim_->SetCallState(kCallSid, "completed");
  const CreateResult result = Create(Request("key-21220"));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(result.details.twilio_error.has_value());
  EXPECT_EQ(result.details.twilio_error->code(), 21220);
  EXPECT_EQ(Reason(result), "CALL_NOT_ACTIVE");
}

TEST_F(GatewayTest, TwilioForbiddenIsPermissionDenied) {
  sim_->SetFaults({{{"status", 403}, {"code", 20403}, {"message", "Account suspended"}}});
  const CreateResult result = Create(Request("key-403"));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(result.details.twilio_error->code(), 20403);
}

TEST_F(GatewayTest, PersistentThrottlingIsResourceExhaustedAfterRetries) {
  sim_->SetFaults({{{"status", 429}}});
  const CreateResult result = Create(Request("key-429"));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(result.details.twilio_error->code(), 20429);
  EXPECT_EQ(Meta(result, "attempts"), "4");
  EXPECT_EQ(Meta(result, "subscription_may_exist"), "false");
  EXPECT_EQ(sim_->Stats()["requests"], 4);
}

// Every attempt may have created it. The caller's attempts and then a resolution's (10, fast
// in this fixture) fail; the record is handed over, never released. Past Twilio's assumed memory
// of the key (10 s from the claim, less the 5 s an attempt may take) the next claimant does not
// resend: it records OUTCOME_UNKNOWN, for good.
TEST_F(GatewayTest, PersistentServerErrorsEndInARecordedOutcomeUnknown) {
  const auto claimed = std::chrono::steady_clock::now();
  sim_->SetFaults({{{"status", 500}}});
  const CreateResult result = Create(Request("key-500"));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Reason(result), "OUTCOME_RESOLVING");
  EXPECT_EQ(Meta(result, "subscription_may_exist"), "true");
  EXPECT_TRUE(result.details.retry_info.has_value());
  const int requests = sim_->Stats()["requests"];
  EXPECT_EQ(requests, 4 + 10);  // The caller's attempts, then the resolution's.

  pb::CreateSubscriptionRequest other = Request("key-500");
  other.set_callback("https://example.com/another");
  EXPECT_EQ(Create(other).status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  std::this_thread::sleep_until(claimed + std::chrono::milliseconds(5200));
  const CreateResult late = Create(Request("key-500"));
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(Reason(late), "OUTCOME_UNKNOWN");
  EXPECT_EQ(Meta(late, "subscription_may_exist"), "true");
  const CreateResult again = Create(Request("key-500"));
  EXPECT_EQ(Reason(again), "OUTCOME_UNKNOWN");
  EXPECT_EQ(Meta(again, "replayed"), "true");
  EXPECT_EQ(sim_->Stats()["requests"], requests);  // The key was never sent again.
}

TEST_F(GatewayTest, RejectedGatewayCredentialsAreInternal) {
  Gateway bad(sim_->base_url(), {}, {{"TWILIO_AUTH_TOKEN", "wrong-token"}},
              LogDir() + "/gateway-bad-credentials.log");
  const CreateResult result =
      Client(bad.target()).Create(Request("key-401"), std::chrono::seconds(10));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(result.details.twilio_error->code(), 20003);
  EXPECT_EQ(Reason(result), "GATEWAY_CREDENTIALS_REJECTED");
  EXPECT_EQ(result.status.error_message().find("wrong-token"), std::string::npos);
}

TEST_F(GatewayTest, ApiKeyCredentialsAreUsedWhenGiven) {
  Gateway keyed(sim_->base_url(), {},
                {{"TWILIO_API_KEY", kSimApiKey}, {"TWILIO_API_SECRET", kSimApiSecret}},
                LogDir() + "/gateway-api-key.log");
  const CreateResult result =
      Client(keyed.target()).Create(Request("key-api-key"), std::chrono::seconds(10));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(sim_->Requests()[0]["auth_user"], kSimApiKey);
}

struct RecoverableFault {
  const char* name;
  nlohmann::json rule;
  int expected_requests;
};

class RetryTest : public GatewayTest, public ::testing::WithParamInterface<RecoverableFault> {};

TEST_P(RetryTest, RecoversAndCreatesExactlyOneSubscription) {
  sim_->SetFaults(nlohmann::json::array({GetParam().rule}));
  const std::string key = std::string("key-retry-") + GetParam().name;
  const CreateResult result = Create(Request(key));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(sim_->SubscriptionsForKey(kSimAccountSid, kCallSid, key), 1);
  EXPECT_EQ(sim_->Stats()["subscriptions"], 1);
  EXPECT_EQ(sim_->Stats()["requests"], GetParam().expected_requests);
  for (const auto& request : sim_->Requests()) EXPECT_EQ(request["form"]["IdempotencyKey"], key);
}

INSTANTIATE_TEST_SUITE_P(
    Faults, RetryTest,
    ::testing::Values(
        RecoverableFault{"ServiceUnavailableTwice", {{"status", 503}, {"count", 2}}, 3},
        RecoverableFault{"ThrottledTwice", {{"status", 429}, {"count", 2}}, 3},
        RecoverableFault{
            "ThrottledWithRetryAfter", {{"status", 429}, {"count", 1}, {"retry_after", "1"}}, 2},
        RecoverableFault{"DroppedBeforeRecording", {{"drop", "before"}, {"count", 1}}, 2},
        RecoverableFault{"DroppedAfterRecording", {{"drop", "after"}, {"count", 1}}, 2},
        RecoverableFault{"ServerErrorAfterRecording",
                         {{"status", 500}, {"after_record", true}, {"count", 1}},
                         2},
        RecoverableFault{"TruncatedSuccessBody", {{"malformed", true}, {"count", 1}}, 2}),
    [](const ::testing::TestParamInfo<RecoverableFault>& info) { return info.param.name; });

TEST_F(GatewayTest, StalledTwilioEndsOnTimeWithDeadlineExceeded) {
  sim_->SetFaults({{{"delay_ms", 5000}}});
  const auto start = std::chrono::steady_clock::now();
  const CreateResult result = Create(Request("key-stall"), std::chrono::milliseconds(700));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(elapsed, std::chrono::milliseconds(2000));
}

TEST_F(GatewayTest, RetryAfterLongerThanTheDeadlineLeavesTheResolutionToTheGateway) {
  sim_->SetFaults({{{"status", 503}, {"retry_after", "3"}, {"count", 1}}});
  const auto start = std::chrono::steady_clock::now();
  const CreateResult result = Create(Request("key-retry-after"), std::chrono::milliseconds(1500));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  // Answered before the deadline, so the caller hears "retry with the key", not its own
  // DEADLINE_EXCEEDED, with what Twilio said.
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Reason(result), "OUTCOME_RESOLVING");
  EXPECT_LT(elapsed, std::chrono::milliseconds(1500));
  EXPECT_TRUE(result.details.retry_info.has_value());
  EXPECT_EQ(Meta(result, "subscription_may_exist"), "true");
  ASSERT_TRUE(result.details.twilio_error.has_value());
  EXPECT_EQ(result.details.twilio_error->http_status(), 503);
  EXPECT_EQ(sim_->Stats()["requests"], 1);  // Twilio's 3 s are honoured in the background too.

  // The resolution resends after Twilio's Retry-After; the caller's retry joins it.
  const CreateResult retried = Create(Request("key-retry-after"), std::chrono::seconds(10));
  ASSERT_TRUE(retried.status.ok()) << retried.status.error_message();
  EXPECT_EQ(sim_->SubscriptionsForKey(kSimAccountSid, kCallSid, "key-retry-after"), 1);
}

TEST_F(GatewayTest, GatewayStaysHealthyAfterCancelledCalls) {
  sim_->SetFaults({{{"delay_ms", 3000}, {"count", 5}}});
  for (int i = 0; i < 5; ++i) {
    const CreateResult result =
        Create(Request("key-cancel-" + std::to_string(i)), std::chrono::milliseconds(100));
    // Cut short by the deadline, or answered "resolving" just before it (the delayed faults
    // may also be spent by the resolutions' resends, and then a call succeeds).
    EXPECT_TRUE(result.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                result.status.error_code() == grpc::StatusCode::UNAVAILABLE || result.status.ok())
        << result.status.error_code();
  }
  const CreateResult after = Create(Request("key-after-cancel"));
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();
}

TEST_F(GatewayTest, RepeatedKeyReplaysTheStoredSubscriptionWithoutCallingTwilio) {
  const CreateResult first = Create(Request("key-replay"));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_FALSE(first.replayed);
  const CreateResult second = Create(Request("key-replay"));
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_TRUE(second.replayed);
  EXPECT_EQ(second.subscription.sid(), first.subscription.sid());
  EXPECT_EQ(second.subscription.date_created().seconds(),
            first.subscription.date_created().seconds());
  EXPECT_EQ(sim_->Stats()["requests"], 1);
}

TEST_F(GatewayTest, KeyReusedForADifferentRequestIsRefused) {
  ASSERT_TRUE(Create(Request("key-reused")).status.ok());
  pb::CreateSubscriptionRequest other = Request("key-reused");
  other.set_callback("https://example.com/another");
  const CreateResult result = Create(other);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Reason(result), "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(sim_->Stats()["requests"], 1);
}

TEST_F(GatewayTest, ConcurrentCallsWithOneKeyShareOneUpstreamCall) {
  sim_->SetFaults({{{"delay_ms", 400}, {"count", 1}}});
  auto a = std::async(std::launch::async, [&] { return Create(Request("key-concurrent")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto b = std::async(std::launch::async, [&] { return Create(Request("key-concurrent")); });
  const CreateResult ra = a.get();
  const CreateResult rb = b.get();
  ASSERT_TRUE(ra.status.ok()) << ra.status.error_message();
  ASSERT_TRUE(rb.status.ok()) << rb.status.error_message();
  EXPECT_EQ(ra.subscription.sid(), rb.subscription.sid());
  EXPECT_TRUE(rb.replayed);
  EXPECT_EQ(sim_->Stats()["requests"], 1);
}

TEST_F(GatewayTest, UnresolvedOutcomeIsNotStoredSoARetryTriesAgain) {
  sim_->SetFaults({{{"status", 503}}});
  const CreateResult failed = Create(Request("key-unresolved"));
  EXPECT_EQ(failed.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  sim_->SetFaults(nlohmann::json::array());
  const CreateResult retried = Create(Request("key-unresolved"));
  ASSERT_TRUE(retried.status.ok()) << retried.status.error_message();
  EXPECT_FALSE(retried.replayed);
  EXPECT_EQ(sim_->SubscriptionsForKey(kSimAccountSid, kCallSid, "key-unresolved"), 1);
}

TEST_F(GatewayTest, FinalErrorIsReplayedForTheSameKey) {
  sim_->SetCallState(kCallSid, "missing");
  EXPECT_EQ(Create(Request("key-final-404")).status.error_code(), grpc::StatusCode::NOT_FOUND);
  const CreateResult again = Create(Request("key-final-404"));
  EXPECT_EQ(again.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(sim_->Stats()["requests"], 1);
}

TEST_F(GatewayTest, UpstreamConcurrencyIsCappedPerAccountAndExcessIsShed) {
  Gateway limited(sim_->base_url(),
                  {"--account-limit-adaptive=false", "--max-upstream-in-flight", "2",
                   "--max-upstream-queue", "2"},
                  {}, LogDir() + "/gateway-limited.log");
  ResetWhenTheSimulatorIsIdle();
  sim_->SetFaults({{{"delay_ms", 300}}});
  std::vector<std::future<CreateResult>> calls;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(std::async(std::launch::async, [&, i] {
      return Client(limited.target())
          .Create(Request("key-limit-" + std::to_string(i)), std::chrono::seconds(10));
    }));
  }
  int ok = 0;
  int shed = 0;
  for (auto& call : calls) {
    const CreateResult result = call.get();
    if (result.status.ok()) ++ok;
    if (result.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      EXPECT_EQ(Reason(result), "GATEWAY_QUEUE_FULL");
      ++shed;
    }
  }
  EXPECT_EQ(ok + shed, 8);
  EXPECT_GE(ok, 4);  // 2 in flight + 2 queued at any moment.
  EXPECT_GE(shed, 1);
  EXPECT_LE(sim_->Stats()["max_in_flight"].get<int>(), 2);
}

TEST_F(GatewayTest, UpstreamConcurrencyCapAppliesToSend) {
  Gateway limited(sim_->base_url(),
                  {"--account-limit-adaptive=false", "--max-upstream-in-flight", "1",
                   "--max-upstream-queue", "8"},
                  {}, LogDir() + "/gateway-limited-send.log");
  ResetWhenTheSimulatorIsIdle();
  // Slow enough that the sends overlap at the simulator unless the gateway holds them back.
  sim_->SetFaults({{{"operation", "send"}, {"delay_ms", 200}}});
  std::vector<std::future<grpc::Status>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::async(std::launch::async, [&, i] {
      pb::SendMessageRequest request;
      request.set_call_sid(kCallSid);
      request.set_content("{}");
      request.set_idempotency_key("key-limit-send-" + std::to_string(i));
      return Client(limited.target()).Send(request, std::chrono::seconds(10)).status;
    }));
  }
  for (auto& call : calls) {
    const grpc::Status status = call.get();
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  const nlohmann::json stats = sim_->Stats();
  EXPECT_EQ(stats["messages"], 4);
  EXPECT_EQ(stats["max_in_flight"], 1);
}

TEST_F(GatewayTest, SigtermDrainsRpcsInFlightAndExitsCleanly) {
  Gateway draining(sim_->base_url(), {"--drain-grace", "5s"}, {}, LogDir() + "/gateway-drain.log");
  sim_->SetFaults({{{"delay_ms", 1500}}});
  std::vector<std::future<CreateResult>> calls;
  for (int i = 0; i < 20; ++i) {
    calls.push_back(std::async(std::launch::async, [&, i] {
      return Client(draining.target())
          .Create(Request("key-drain-" + std::to_string(i)), std::chrono::seconds(10));
    }));
  }
  // Every call has reached the simulator before the signal.
  for (int i = 0; i < 100 && sim_->Stats()["requests"].get<int>() < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(sim_->Stats()["in_flight"].get<int>(), 20);
  kill(draining.process().pid(), SIGTERM);
  for (auto& call : calls) {
    const CreateResult result = call.get();
    EXPECT_TRUE(result.status.ok()) << result.status.error_message();
  }
  const int status = draining.process().Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(sim_->Stats()["subscriptions"], 20);
}

// The drain waits for RPCs, not for connections: a client that keeps its connection open and
// idle, as most do, must not hold the gateway until --drain-grace (20 s here).
TEST_F(GatewayTest, SigtermEndsPromptlyWhileAClientKeepsAnIdleConnection) {
  Gateway draining(sim_->base_url(), {"--drain-grace", "20s"}, {},
                   LogDir() + "/gateway-drain-idle.log");
  auto channel = grpc::CreateChannel(draining.target(), grpc::InsecureChannelCredentials());
  ASSERT_TRUE(SubscriptionClient(channel)
                  .Create(Request("key-drain-idle"), std::chrono::seconds(10))
                  .status.ok());
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  const auto signalled = std::chrono::steady_clock::now();
  const int status = draining.process().Stop(SIGTERM);
  const auto took = std::chrono::steady_clock::now() - signalled;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_LT(took, std::chrono::seconds(5));
}

// A health Watch never ends by itself: the drain cancels it, as it ends the gateway's own Watch
// streams, instead of letting it hold the shutdown until --drain-grace (20 s here).
TEST_F(GatewayTest, SigtermEndsAHealthWatchInsteadOfWaitingOutTheGrace) {
  Gateway draining(sim_->base_url(), {"--drain-grace", "20s"}, {},
                   LogDir() + "/gateway-drain-health-watch.log");
  auto channel = grpc::CreateChannel(draining.target(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&context, "/grpc.health.v1.Health/Watch", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::Slice empty(std::string{});  // HealthCheckRequest{}: the server as a whole.
  grpc::ByteBuffer request(&empty, 1);
  call->WriteLast(request, grpc::WriteOptions(), reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);  // SERVING.

  const auto signalled = std::chrono::steady_clock::now();
  int exit_status = -1;
  std::thread stop([&] { exit_status = draining.process().Stop(SIGTERM); });
  int updates = 0;
  while (true) {  // NOT_SERVING may come first; then the stream ends.
    call->Read(&response, reinterpret_cast<void*>(3));
    if (!cq.Next(&tag, &ok) || !ok) break;
    ++updates;
  }
  grpc::Status ended;
  call->Finish(&ended, reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  const auto took = std::chrono::steady_clock::now() - signalled;
  stop.join();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  EXPECT_LE(updates, 1);
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0) << exit_status;
}

// An RPC still running when --drain-grace ends is cancelled then, and the gateway exits.
TEST_F(GatewayTest, SigtermCancelsAnRpcStillRunningWhenTheGraceEnds) {
  Gateway draining(sim_->base_url(), {"--drain-grace", "1s"}, {},
                   LogDir() + "/gateway-drain-late.log");
  sim_->SetFaults({{{"delay_ms", 6000}}});
  std::future<CreateResult> call = std::async(std::launch::async, [&] {
    return Client(draining.target()).Create(Request("key-drain-late"), std::chrono::seconds(20));
  });
  for (int i = 0; i < 100 && sim_->Stats()["requests"].get<int>() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(sim_->Stats()["in_flight"].get<int>(), 1);
  const auto signalled = std::chrono::steady_clock::now();
  const int status = draining.process().Stop(SIGTERM);
  const CreateResult result = call.get();
  const auto took = std::chrono::steady_clock::now() - signalled;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(result.status.ok());
  EXPECT_LT(took, std::chrono::seconds(4));  // The upstream answers only after 6 s.
}

TEST_F(GatewayTest, EveryRpcHasARequestIdAndOneAuditLine) {
  SubscriptionClient client = Client(gateway_->target());
  const CreateResult ok = Create(Request("key-audit-ok"));
  const CreateResult bad = Create(Request(std::string(300, 'k')));
  ASSERT_TRUE(ok.status.ok());
  ASSERT_EQ(bad.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  pb::DeleteSubscriptionRequest remove;
  remove.set_call_sid(kCallSid);
  remove.set_sid(ok.subscription.sid());
  const auto deleted = client.Delete(remove, std::chrono::seconds(10));
  ASSERT_TRUE(deleted.status.ok()) << deleted.status.error_message();
  // An invalid sid is still echoed, but never more of it than a caller could use to size the line.
  const std::string long_sid = "ZY" + std::string(300, 'f');
  remove.set_sid(long_sid);
  const auto bad_delete = client.Delete(remove, std::chrono::seconds(10));
  ASSERT_EQ(bad_delete.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  pb::SendMessageRequest message;
  message.set_call_sid(kCallSid);
  message.set_content(R"({"text":"audit"})");
  message.set_idempotency_key("key-audit-send");
  const auto sent = client.Send(message, std::chrono::seconds(10));
  ASSERT_TRUE(sent.status.ok()) << sent.status.error_message();
  message.set_content("{not json");
  message.set_idempotency_key("key-audit-send-bad");
  const auto bad_send = client.Send(message, std::chrono::seconds(10));
  ASSERT_EQ(bad_send.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Each RPC's request id and what its one audit line must say.
  const std::vector<std::pair<std::string, nlohmann::json>> expected = {
      {ok.request_id,
       {{"rpc", "Create"},
        {"code", "OK"},
        {"idempotency_key", "key-audit-ok"},
        {"attempts", "1"},
        {"call_sid", kCallSid},
        {"sid", ""}}},
      {bad.request_id,
       {{"rpc", "Create"},
        {"code", "INVALID_ARGUMENT"},
        {"reason", "INVALID_REQUEST"},
        {"attempts", "0"}}},
      {deleted.request_id,
       {{"rpc", "Delete"},
        {"code", "OK"},
        {"sid", ok.subscription.sid()},
        {"call_sid", kCallSid},
        {"idempotency_key", ""},
        {"attempts", "1"}}},
      {bad_delete.request_id,
       {{"rpc", "Delete"},
        {"code", "INVALID_ARGUMENT"},
        {"reason", "INVALID_REQUEST"},
        {"sid", long_sid.substr(0, 64)},
        {"attempts", "0"}}},
      {sent.request_id,
       {{"rpc", "Send"},
        {"code", "OK"},
        {"idempotency_key", "key-audit-send"},
        {"sid", ""},
        {"attempts", "1"}}},
      {bad_send.request_id,
       {{"rpc", "Send"},
        {"code", "INVALID_ARGUMENT"},
        {"reason", "INVALID_REQUEST"},
        {"idempotency_key", "key-audit-send-bad"},
        {"attempts", "0"}}},
  };
  std::set<std::string> ids;
  for (const auto& [id, fields] : expected) {
    EXPECT_EQ(id.size(), 32u);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), expected.size()) << "request ids are not unique";
  // Written just before the response, by the log's writer thread: wait until all are there.
  std::istringstream log(ReadLogUntil(LogDir() + "/gateway.log", [&](const std::string& text) {
    return std::all_of(expected.begin(), expected.end(),
                       [&](const auto& e) { return text.find(e.first) != std::string::npos; });
  }));
  std::map<std::string, int> lines;
  for (std::string line; std::getline(log, line);) {
    const nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
    if (entry.is_discarded() || entry.value("msg", "") != "audit") continue;
    for (const auto& [id, fields] : expected) {
      if (entry["request_id"] != id) continue;
      ++lines[id];
      for (const auto& [name, value] : fields.items()) {
        EXPECT_EQ(entry[name], value) << name << " in " << line;
      }
    }
  }
  for (const auto& [id, fields] : expected) {
    EXPECT_EQ(lines[id], 1) << fields.dump();
  }
}

TEST_F(GatewayTest, NoLogOfThisRunContainsACredential) {
  // Produce the lines most likely to leak: success, Twilio errors, rejected credentials.
  ASSERT_TRUE(Create(Request("key-secrets")).status.ok());
  sim_->SetCallState(kCallSid, "missing");
  EXPECT_FALSE(Create(Request("key-secrets-404")).status.ok());
  Gateway bad(sim_->base_url(), {"--log-level", "debug"},
              {{"TWILIO_AUTH_TOKEN", "leak-canary-token-5f2c"}}, LogDir() + "/gateway-secrets.log");
  EXPECT_FALSE(
      Client(bad.target()).Create(Request("key-canary"), std::chrono::seconds(5)).status.ok());
  bad.process().Stop(SIGTERM);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(LogDir())) {
    if (entry.path().extension() != ".log") continue;
    ++files;
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const char* secret : {kSimAuthToken, kSimApiSecret, "leak-canary-token-5f2c"}) {
      EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in " << entry.path();
    }
  }
  EXPECT_GE(files, 2);
}

// A unary call through the generic stub: no generated code needed for grpc.health.v1.
std::string GenericUnary(const std::string& target, const std::string& method,
                         const std::string& request_bytes, grpc::Status* status) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(s); });
  *status = done.get_future().get();
  std::vector<grpc::Slice> slices;
  std::string out;
  if (status->ok() && response.Dump(&slices).ok()) {
    for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

TEST_F(GatewayTest, HealthServiceReportsServing) {
  grpc::Status status;
  // HealthCheckRequest{} is empty; HealthCheckResponse{status: SERVING} is field 1 = 1.
  const std::string reply =
      GenericUnary(gateway_->target(), "/grpc.health.v1.Health/Check", "", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply, std::string("\x08\x01", 2));
}

TEST_F(GatewayTest, ReflectionListsTheService) {
  auto channel = grpc::CreateChannel(gateway_->target(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  // ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_NE(bytes.find("twilio_gateway.v1.SubscriptionService"), std::string::npos);
  context.TryCancel();
  grpc::Status finished;
  call->Finish(&finished, reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(GatewayTest, CliPrintsTheSubscriptionAsJson) {
  const CommandResult run =
      RunCommand({CLI_BINARY, "--target", gateway_->target(), "--call-sid", kCallSid, "--callback",
                  kCallback, "--method", "GET", "--idempotency-key", "cli-key-1"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json printed = nlohmann::json::parse(run.out);
  EXPECT_EQ(printed["call_sid"], kCallSid);
  EXPECT_EQ(printed["idempotency_key"], "cli-key-1");
  EXPECT_EQ(printed["sid"].get<std::string>().substr(0, 2), "ZY");
  EXPECT_EQ(sim_->Requests()[0]["form"]["Method"], "GET");
}

TEST_F(GatewayTest, CliPrintsErrorDetailsAndFails) {
  const CommandResult run = RunCommand({CLI_BINARY, "--target", gateway_->target(), "--call-sid",
                                        "CAnope", "--callback", kCallback});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("INVALID_ARGUMENT"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("\"field\": \"call_sid\""), std::string::npos) << run.err;
  // An invalid request is not something to retry with the same key.
  EXPECT_NE(run.err.find("use a new key"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("retry with it"), std::string::npos) << run.err;
  EXPECT_TRUE(run.out.empty());
}

TEST_F(GatewayTest, CliHelpAndUsageErrors) {
  const CommandResult help = RunCommand({CLI_BINARY, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--call-sid"), std::string::npos);
  const CommandResult missing = RunCommand({CLI_BINARY, "--callback", kCallback});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("--call-sid"), std::string::npos);
  // A CA file that cannot be read must not leave gRPC trusting the system's roots instead.
  const CommandResult no_ca =
      RunCommand({CLI_BINARY, "--target", gateway_->target(), "--call-sid", kCallSid, "--callback",
                  kCallback, "--tls-ca", "/nonexistent/ca.pem"});
  EXPECT_EQ(no_ca.exit_code, 2);
  EXPECT_NE(no_ca.err.find("cannot read /nonexistent/ca.pem"), std::string::npos) << no_ca.err;
}

}  // namespace
}  // namespace gateway::testing
