// The webhook receiver: decoding a form, reading a delivery's fields, and Handle() end to end
// over a MemoryMessageLog, with signatures made by the signature code itself (whose own tests
// hold it to Twilio's reference vectors) and a FakeClock for Auth Token rotation.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fakes/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "messages/memory_message_log.h"
#include "webhook/receiver.h"
#include "webhook/signature.h"

namespace gateway {
namespace {

using ::gateway::testing::FakeClock;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Optional;
using ::testing::Pair;
using ::testing::StartsWith;

constexpr char kAccount[] = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kOtherAccount[] = "ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
constexpr char kCall[] = "CA0123456789abcdef0123456789abcdef";
constexpr char kSid[] = "KX0123456789abcdef0123456789abcdef";
constexpr char kToken[] = "current-token";
constexpr char kPreviousToken[] = "previous-token";
constexpr char kPublicUrl[] = "https://hooks.example.com/twilio/messages";
constexpr char kPath[] = "/twilio/messages";
constexpr char kTimestamp[] = "Wed, 18 Dec 2019 20:02:01 +0000";

// A delivery's fields as Twilio sends them, in an order that is not sorted.
FormParams Fields(const std::string& sid = kSid, const std::string& account = kAccount) {
  return {{"ContentType", "application/json"},
          {"Content", R"({"say":"hello world","n":1})"},
          {"SequenceNumber", "3"},
          {"CallSid", kCall},
          {"AccountSid", account},
          {"Sid", sid},
          {"Timestamp", kTimestamp}};
}

FormParams Without(FormParams params, const std::string& name) {
  std::erase_if(params, [&](const auto& p) { return p.first == name; });
  return params;
}

FormParams With(FormParams params, const std::string& name, const std::string& value) {
  for (auto& [n, v] : params) {
    if (n == name) v = value;
  }
  return params;
}

// application/x-www-form-urlencoded as Python's urlencode writes it: unreserved bytes as they
// are, space as '+', the rest as %XX.
std::string Encode(const FormParams& params) {
  auto component = [](const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
      if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else if (c == ' ') {
        out.push_back('+');
      } else {
        absl::StrAppendFormat(&out, "%%%02X", c);
      }
    }
    return out;
  };
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    absl::StrAppend(&out, component(name), "=", component(value));
  }
  return out;
}

// The JSON body Twilio sends: SequenceNumber a number.
std::string JsonBody(const FormParams& params) {
  nlohmann::json body = nlohmann::json::object();
  for (const auto& [name, value] : params) {
    if (name == "SequenceNumber") {
      body[name] = std::stoll(value);
    } else {
      body[name] = value;
    }
  }
  return body.dump();
}

std::string QueryOf(const std::string& url) {
  const size_t at = url.find('?');
  return at == std::string::npos ? "" : url.substr(at + 1);
}

HttpServer::Request JsonRequest(const std::string& token, const std::string& body,
                                const std::string& public_url = kPublicUrl) {
  const std::string url = UrlWithBodySha256(public_url, body);
  return {.method = "POST",
          .path = kPath,
          .query = QueryOf(url),
          .headers = {{"Host", "hooks.example.com"},
                      {"Content-Type", "application/json"},
                      {"X-Twilio-Signature", ComputeTwilioSignature(token, url, {})}},
          .body = body};
}

HttpServer::Request FormRequest(const std::string& token, const FormParams& params,
                                const std::string& public_url = kPublicUrl) {
  return {.method = "POST",
          .path = kPath,
          .query = QueryOf(public_url),
          .headers = {{"Host", "hooks.example.com"},
                      {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                      {"X-Twilio-Signature", ComputeTwilioSignature(token, public_url, params)}},
          .body = Encode(params)};
}

HttpServer::Request GetRequest(const std::string& token, const FormParams& params) {
  const std::string url = absl::StrCat(kPublicUrl, "?", Encode(params));
  return {.method = "GET",
          .path = kPath,
          .query = QueryOf(url),
          .headers = {{"Host", "hooks.example.com"},
                      {"X-Twilio-Signature", ComputeTwilioSignature(token, url, {})}},
          .body = ""};
}

HttpServer::Request Probe(const std::string& method, const std::string& path) {
  HttpServer::Request request;
  request.method = method;
  request.path = path;
  return request;
}

// Fails every append, as a Redis log does when Redis is down.
class UnavailableLog final : public MessageLog {
 public:
  void Append(CallMessage, AppendDone done) override {
    std::move(done)(absl::UnavailableError("store down"));
  }
  void Read(const std::string&, size_t, ReadDone done) override {
    std::move(done)(absl::UnavailableError("store down"));
  }
  void Tail(TailDone done) override { std::move(done)(absl::UnavailableError("store down")); }
};

class WebhookReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override { receiver_ = MakeReceiver(kPublicUrl, log_); }

  std::unique_ptr<WebhookReceiver> MakeReceiver(const std::string& public_url, MessageLog& log) {
    absl::StatusOr<std::unique_ptr<WebhookReceiver>> receiver = WebhookReceiver::Create(
        {.public_url = public_url, .token_overlap = absl::Hours(1)},
        [this] {
          absl::MutexLock lock(&mu_);
          return account_;
        },
        log, clock_,
        [this](absl::string_view result) {
          absl::MutexLock lock(&mu_);
          results_.emplace_back(result);
        });
    EXPECT_TRUE(receiver.ok()) << receiver.status();
    return receiver.ok() ? *std::move(receiver) : nullptr;
  }

  void SetToken(const std::string& token, absl::Time since = absl::InfinitePast()) {
    absl::MutexLock lock(&mu_);
    account_.auth_token = token;
    account_.since = since;
  }

  std::string LastResult() {
    absl::MutexLock lock(&mu_);
    return results_.empty() ? "<none>" : results_.back();
  }

  std::vector<CallMessage> Stored() {
    std::vector<CallMessage> out;
    log_.Read("", 1000, [&out](absl::StatusOr<MessageLog::Batch> batch) {
      ASSERT_TRUE(batch.ok()) << batch.status();
      for (LoggedMessage& logged : batch->messages) out.push_back(std::move(logged.message));
    });
    return out;
  }

  FakeClock clock_;
  MemoryMessageLog log_{{}, clock_};
  absl::Mutex mu_;
  WebhookAccount account_ ABSL_GUARDED_BY(mu_) = {kAccount, kToken, absl::InfinitePast()};
  std::vector<std::string> results_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<WebhookReceiver> receiver_;
};

// --- DecodeForm ---

TEST(DecodeFormTest, DecodesPercentEscapesAndPlusAsSpace) {
  EXPECT_THAT(DecodeForm("a=b+c&d=%41%2b%3D%2f&%43all+Sid=x"),
              Optional(ElementsAre(Pair("a", "b c"), Pair("d", "A+=/"), Pair("Call Sid", "x"))));
  EXPECT_THAT(DecodeForm("e=%00%ff"), Optional(ElementsAre(Pair("e", std::string("\0\xff", 2)))));
}

TEST(DecodeFormTest, KeepsOrderRepeatsAndEqualsInValues) {
  EXPECT_THAT(DecodeForm("b=2&a=1&b=3&c=x=y&flag"),
              Optional(ElementsAre(Pair("b", "2"), Pair("a", "1"), Pair("b", "3"), Pair("c", "x=y"),
                                   Pair("flag", ""))));
}

TEST(DecodeFormTest, SkipsEmptyPairs) {
  EXPECT_THAT(DecodeForm(""), Optional(IsEmpty()));
  EXPECT_THAT(DecodeForm("&&"), Optional(IsEmpty()));
  EXPECT_THAT(DecodeForm("&a=1&&b=&"), Optional(ElementsAre(Pair("a", "1"), Pair("b", ""))));
  EXPECT_THAT(DecodeForm("="), Optional(ElementsAre(Pair("", ""))));
}

TEST(DecodeFormTest, RefusesBadEscapes) {
  for (const char* text :
       {"a=%", "a=%4", "a=%G1", "a=%4G", "%zz=1", "a=%%41", "a=1&b=%2", "a=% 1", "%=1"}) {
    EXPECT_EQ(DecodeForm(text), std::nullopt) << text;
  }
}

// --- ParseDelivery / ParseJsonDelivery ---

TEST(ParseDeliveryTest, ReadsEveryField) {
  absl::StatusOr<CallMessage> message = ParseDelivery(Fields());
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->sid, kSid);
  EXPECT_EQ(message->account_sid, kAccount);
  EXPECT_EQ(message->call_sid, kCall);
  EXPECT_EQ(message->sequence_number, 3);
  EXPECT_EQ(message->content, R"({"say":"hello world","n":1})");
  EXPECT_EQ(message->content_type, "application/json");
  EXPECT_EQ(message->timestamp, absl::FromUnixSeconds(1576699321));
}

TEST(ParseDeliveryTest, EachMissingRequiredFieldIsNamed) {
  for (const char* field : {"Sid", "AccountSid", "CallSid", "SequenceNumber", "Content"}) {
    absl::StatusOr<CallMessage> form = ParseDelivery(Without(Fields(), field));
    EXPECT_EQ(form.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(std::string(form.status().message()), StartsWith(absl::StrCat(field, " ")))
        << field;
    absl::StatusOr<CallMessage> json = ParseJsonDelivery(JsonBody(Without(Fields(), field)));
    EXPECT_EQ(json.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(std::string(json.status().message()), StartsWith(absl::StrCat(field, " ")))
        << field;
  }
}

TEST(ParseDeliveryTest, OptionalFieldsMayBeMissing) {
  absl::StatusOr<CallMessage> message =
      ParseDelivery(Without(Without(Fields(), "ContentType"), "Timestamp"));
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->content_type, "");
  EXPECT_EQ(message->timestamp, std::nullopt);
}

TEST(ParseDeliveryTest, EachMalformedFieldIsNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Sid", "KX0123"},
      {"Sid", "ZY0123456789abcdef0123456789abcdef"},
      {"Sid", "KX0123456789abcdef0123456789abcdeg"},
      {"Sid", "KX0123456789abcdef0123456789abcdef0"},
      {"AccountSid", "CA0123456789abcdef0123456789abcdef"},
      {"AccountSid", ""},
      {"CallSid", "CA0123456789abcdef0123456789abcde"},
      {"CallSid", "ca0123456789abcdef0123456789abcdef"},
      {"SequenceNumber", ""},
      {"SequenceNumber", "-1"},
      {"SequenceNumber", "+1"},
      {"SequenceNumber", " 1"},
      {"SequenceNumber", "1 "},
      {"SequenceNumber", "1.0"},
      {"SequenceNumber", "0x10"},
      {"SequenceNumber", "one"},
      {"SequenceNumber", "99999999999999999999"},
      {"ContentType", std::string(256, 'a')},
  };
  for (const auto& [field, value] : cases) {
    absl::StatusOr<CallMessage> message = ParseDelivery(With(Fields(), field, value));
    EXPECT_EQ(message.status().code(), absl::StatusCode::kInvalidArgument) << field << "=" << value;
    EXPECT_THAT(std::string(message.status().message()), StartsWith(absl::StrCat(field, " ")))
        << field << "=" << value;
    // The message never echoes what was sent.
    if (value.size() > 2) {
      EXPECT_THAT(std::string(message.status().message()), Not(HasSubstr(value)))
          << field << "=" << value;
    }
  }
}

TEST(ParseDeliveryTest, SequenceNumberTakesTheLargestInt64) {
  absl::StatusOr<CallMessage> message =
      ParseDelivery(With(Fields(), "SequenceNumber", "9223372036854775807"));
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->sequence_number, INT64_MAX);
  EXPECT_FALSE(ParseDelivery(With(Fields(), "SequenceNumber", "9223372036854775808")).ok());
}

TEST(ParseDeliveryTest, AnUnreadableTimestampIsNotAReasonToRefuse) {
  absl::StatusOr<CallMessage> message = ParseDelivery(With(Fields(), "Timestamp", "yesterday"));
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->timestamp, std::nullopt);
}

TEST(ParseDeliveryTest, UnknownFieldsAreIgnoredEvenRepeated) {
  FormParams params = Fields();
  params.emplace_back("Extra", "1");
  params.emplace_back("Extra", "2");
  params.emplace_back("sid", "lower-case is another name");
  absl::StatusOr<CallMessage> message = ParseDelivery(params);
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(*message, *ParseDelivery(Fields()));
}

TEST(ParseDeliveryTest, ARepeatedFieldIsRefused) {
  for (const char* field : {"Sid", "Content", "SequenceNumber", "Timestamp"}) {
    FormParams params = Fields();
    for (const auto& [name, value] : Fields()) {
      if (name == field) params.emplace_back(name, value);  // Even the same value twice.
    }
    absl::StatusOr<CallMessage> message = ParseDelivery(params);
    EXPECT_EQ(message.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(std::string(message.status().message()),
                StartsWith(absl::StrCat(field, " is repeated")));
  }
}

TEST(ParseJsonDeliveryTest, SequenceNumberMayBeANumberOrAString) {
  nlohmann::json body = nlohmann::json::parse(JsonBody(Fields()));
  ASSERT_TRUE(body["SequenceNumber"].is_number());
  absl::StatusOr<CallMessage> as_number = ParseJsonDelivery(body.dump());
  ASSERT_TRUE(as_number.ok()) << as_number.status();
  body["SequenceNumber"] = "3";
  absl::StatusOr<CallMessage> as_string = ParseJsonDelivery(body.dump());
  ASSERT_TRUE(as_string.ok()) << as_string.status();
  EXPECT_EQ(*as_number, *as_string);
  EXPECT_EQ(*as_number, *ParseDelivery(Fields()));
}

TEST(ParseJsonDeliveryTest, ContentEmbeddedAsJsonIsKeptAsJsonText) {
  nlohmann::json body = nlohmann::json::parse(JsonBody(Fields()));
  body["Content"] = nlohmann::json{{"say", "hi"}};
  absl::StatusOr<CallMessage> message = ParseJsonDelivery(body.dump());
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(nlohmann::json::parse(message->content), (nlohmann::json{{"say", "hi"}}));
}

TEST(ParseJsonDeliveryTest, WrongTypesAreNamed) {
  const std::vector<std::pair<std::string, nlohmann::json>> cases = {
      {"SequenceNumber", true},
      {"SequenceNumber", 1.5},
      {"SequenceNumber", -1},
      {"SequenceNumber", nlohmann::json::array({1})},
      {"Sid", 5},
      {"AccountSid", nlohmann::json::object()},
      {"CallSid", false},
      {"ContentType", nlohmann::json::array()},
      {"Timestamp", 1576699321.5},
  };
  for (const auto& [field, value] : cases) {
    nlohmann::json body = nlohmann::json::parse(JsonBody(Fields()));
    body[field] = value;
    absl::StatusOr<CallMessage> message = ParseJsonDelivery(body.dump());
    EXPECT_EQ(message.status().code(), absl::StatusCode::kInvalidArgument)
        << field << "=" << value.dump();
    EXPECT_THAT(std::string(message.status().message()), StartsWith(absl::StrCat(field, " ")))
        << field << "=" << value.dump();
  }
}

TEST(ParseJsonDeliveryTest, NullIsMissing) {
  nlohmann::json body = nlohmann::json::parse(JsonBody(Fields()));
  body["Content"] = nullptr;
  EXPECT_THAT(std::string(ParseJsonDelivery(body.dump()).status().message()),
              StartsWith("Content is missing"));
}

TEST(ParseJsonDeliveryTest, ABodyThatIsNotAnObjectIsNamed) {
  for (const char* body :
       {"", "[]", "\"Sid\"", "null", "{", "{\"Sid\": }", "not json", R"({"Sid":"x"} trailing)"}) {
    absl::StatusOr<CallMessage> message = ParseJsonDelivery(body);
    EXPECT_EQ(message.status().code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(std::string(message.status().message()), StartsWith("body ")) << body;
  }
}

TEST(ParseJsonDeliveryTest, UnknownFieldsAreIgnored) {
  nlohmann::json body = nlohmann::json::parse(JsonBody(Fields()));
  body["Extra"] = nlohmann::json{{"nested", {1, 2, 3}}};
  body["Sid2"] = 7;
  absl::StatusOr<CallMessage> message = ParseJsonDelivery(body.dump());
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(message->sid, kSid);
}

TEST(ParseJsonDeliveryTest, ARepeatedFieldIsRefused) {
  // JSON parsers disagree on which of two equal names wins; the form reading refuses the same.
  const std::string body = JsonBody(Fields());
  const std::string repeated = absl::StrCat(body.substr(0, body.size() - 1),
                                            R"(,"Sid":"KXffffffffffffffffffffffffffffffff"})");
  absl::StatusOr<CallMessage> message = ParseJsonDelivery(repeated);
  EXPECT_EQ(message.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(message.status().message()), StartsWith("Sid is repeated"));
  // A name repeated inside an unknown field's object is no field of the delivery.
  const std::string nested =
      absl::StrCat(body.substr(0, body.size() - 1), R"(,"Extra":{"Sid":1,"Sid":2}})");
  EXPECT_TRUE(ParseJsonDelivery(nested).ok()) << ParseJsonDelivery(nested).status();
}

// --- WebhookReceiver::Create ---

TEST(WebhookReceiverCreateTest, RefusesAPublicUrlThatIsNotAnAbsoluteHttpUrl) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  for (const char* url :
       {"", "hooks.example.com/x", "ftp://hooks.example.com/x", "https:///x",
        "https://user@hooks.example.com/x", "https://hooks.example.com/x#frag",
        "https://hooks.example.com:/x", "https://hooks.example.com:0/x", "https://[::1/x"}) {
    absl::StatusOr<std::unique_ptr<WebhookReceiver>> receiver = WebhookReceiver::Create(
        {.public_url = url}, [] { return WebhookAccount{}; }, log, clock);
    EXPECT_EQ(receiver.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_THAT(std::string(receiver.status().message()), HasSubstr("--public-webhook-url")) << url;
  }
}

TEST(WebhookReceiverCreateTest, ServesThePublicUrlsPath) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"https://hooks.example.com", "/"},
      {"https://hooks.example.com?tenant=1", "/"},
      {"http://hooks.example.com:8080/a/b?tenant=1", "/a/b"},
  };
  for (const auto& [url, path] : cases) {
    absl::StatusOr<std::unique_ptr<WebhookReceiver>> receiver = WebhookReceiver::Create(
        {.public_url = url}, [] { return WebhookAccount{}; }, log, clock);
    ASSERT_TRUE(receiver.ok()) << url << ": " << receiver.status();
    EXPECT_EQ((*receiver)->path(), path) << url;
  }
}

// --- WebhookReceiver::Handle ---

TEST_F(WebhookReceiverTest, JsonDeliveryIsStored) {
  const HttpServer::Response response = receiver_->Handle(JsonRequest(kToken, JsonBody(Fields())));
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(LastResult(), "stored");
  ASSERT_EQ(Stored().size(), 1u);
  EXPECT_EQ(Stored()[0], *ParseDelivery(Fields()));
}

TEST_F(WebhookReceiverTest, FormDeliveryIsStored) {
  const HttpServer::Response response = receiver_->Handle(FormRequest(kToken, Fields()));
  EXPECT_EQ(response.status, 200) << response.body;
  ASSERT_EQ(Stored().size(), 1u);
  EXPECT_EQ(Stored()[0], *ParseDelivery(Fields()));
}

TEST_F(WebhookReceiverTest, GetDeliveryIsStored) {
  const HttpServer::Response response = receiver_->Handle(GetRequest(kToken, Fields()));
  EXPECT_EQ(response.status, 200) << response.body;
  ASSERT_EQ(Stored().size(), 1u);
  EXPECT_EQ(Stored()[0], *ParseDelivery(Fields()));
}

TEST_F(WebhookReceiverTest, ARedeliveryIsAcknowledgedAndStoredOnce) {
  EXPECT_EQ(receiver_->Handle(JsonRequest(kToken, JsonBody(Fields()))).status, 200);
  EXPECT_EQ(receiver_->Handle(JsonRequest(kToken, JsonBody(Fields()))).status, 200);
  EXPECT_EQ(LastResult(), "duplicate");
  EXPECT_EQ(receiver_->Handle(FormRequest(kToken, Fields())).status, 200);
  EXPECT_EQ(LastResult(), "duplicate");
  EXPECT_EQ(Stored().size(), 1u);
}

TEST_F(WebhookReceiverTest, AWrongTokenIsForbiddenInEveryForm) {
  const HttpServer::Request requests[] = {JsonRequest("wrong-token", JsonBody(Fields())),
                                          FormRequest("wrong-token", Fields()),
                                          GetRequest("wrong-token", Fields())};
  for (const HttpServer::Request& request : requests) {
    const HttpServer::Response response = receiver_->Handle(request);
    EXPECT_EQ(response.status, 403) << request.method << " " << request.body;
    EXPECT_EQ(LastResult(), "mismatch");
    EXPECT_THAT(response.body, Not(HasSubstr(kToken)));
  }
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(WebhookReceiverTest, AMissingOrMalformedSignatureIsForbidden) {
  HttpServer::Request missing = FormRequest(kToken, Fields());
  missing.headers.pop_back();
  EXPECT_EQ(receiver_->Handle(missing).status, 403);
  EXPECT_EQ(LastResult(), "missing_signature");
  HttpServer::Request garbled = JsonRequest(kToken, JsonBody(Fields()));
  garbled.headers.back().second = "not base64!";
  EXPECT_EQ(receiver_->Handle(garbled).status, 403);
  EXPECT_EQ(LastResult(), "malformed_signature");
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(WebhookReceiverTest, AChangedBodyIsForbidden) {
  // JSON: the URL's signature holds, only its bodySHA256 does not.
  HttpServer::Request json = JsonRequest(kToken, JsonBody(Fields()));
  json.body = JsonBody(With(Fields(), "Content", "{\"say\":\"forged\"}"));
  EXPECT_EQ(receiver_->Handle(json).status, 403);
  EXPECT_EQ(LastResult(), "body_hash_mismatch");
  // Form: the parameters are signed.
  HttpServer::Request form = FormRequest(kToken, Fields());
  form.body = Encode(With(Fields(), "Content", "{\"say\":\"forged\"}"));
  EXPECT_EQ(receiver_->Handle(form).status, 403);
  EXPECT_EQ(LastResult(), "mismatch");
  // GET: the query is the URL, which is signed.
  HttpServer::Request get = GetRequest(kToken, Fields());
  get.query = Encode(With(Fields(), "SequenceNumber", "4"));
  EXPECT_EQ(receiver_->Handle(get).status, 403);
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(WebhookReceiverTest, AnotherAccountsDeliveryIsForbidden) {
  // Signed correctly (with this token), but for an account the gateway does not serve.
  for (const HttpServer::Request& request :
       {JsonRequest(kToken, JsonBody(Fields(kSid, kOtherAccount))),
        FormRequest(kToken, Fields(kSid, kOtherAccount))}) {
    const HttpServer::Response response = receiver_->Handle(request);
    EXPECT_EQ(response.status, 403);
    EXPECT_EQ(LastResult(), "unknown_account");
  }
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(WebhookReceiverTest, NoTokenVerifiesNothing) {
  SetToken("");
  EXPECT_EQ(receiver_->Handle(JsonRequest("", JsonBody(Fields()))).status, 403);
  EXPECT_EQ(LastResult(), "no_token");
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(WebhookReceiverTest, MalformedFieldsAreABadRequestNamingTheField) {
  const HttpServer::Response json =
      receiver_->Handle(JsonRequest(kToken, JsonBody(Without(Fields(), "CallSid"))));
  EXPECT_EQ(json.status, 400);
  EXPECT_THAT(json.body, HasSubstr("CallSid"));
  const HttpServer::Response form =
      receiver_->Handle(FormRequest(kToken, With(Fields(), "SequenceNumber", "minus one")));
  EXPECT_EQ(form.status, 400);
  EXPECT_THAT(form.body, HasSubstr("SequenceNumber"));
  EXPECT_THAT(form.body, Not(HasSubstr("minus one")));
  const HttpServer::Response not_json = receiver_->Handle(JsonRequest(kToken, "[1, 2]"));
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(LastResult(), "malformed");
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(WebhookReceiverTest, ABadEscapeIsABadRequest) {
  HttpServer::Request form = FormRequest(kToken, Fields());
  form.body += "&Extra=%zz";
  EXPECT_EQ(receiver_->Handle(form).status, 400);
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(WebhookReceiverTest, AnUnforgedBadRequestIsStillForbiddenWithoutASignature) {
  // Malformed and unsigned: the signature is checked first, so nothing is learned by probing.
  HttpServer::Request request = JsonRequest("wrong-token", JsonBody(Without(Fields(), "Sid")));
  EXPECT_EQ(receiver_->Handle(request).status, 403);
}

TEST_F(WebhookReceiverTest, OtherPathsAreNotFoundAndOtherMethodsNotAllowed) {
  HttpServer::Request other = FormRequest(kToken, Fields());
  other.path = "/twilio/messages/";
  EXPECT_EQ(receiver_->Handle(other).status, 404);
  other.path = "/";
  EXPECT_EQ(receiver_->Handle(other).status, 404);

  HttpServer::Request put = FormRequest(kToken, Fields());
  put.method = "PUT";
  const HttpServer::Response not_allowed = receiver_->Handle(put);
  EXPECT_EQ(not_allowed.status, 405);
  EXPECT_THAT(not_allowed.headers, ElementsAre(Pair("Allow", "POST, GET")));
  put.method = "post";  // Methods are case-sensitive.
  EXPECT_EQ(receiver_->Handle(put).status, 405);
  EXPECT_THAT(Stored(), IsEmpty());
}

TEST_F(WebhookReceiverTest, HealthzAnswersGetAndHead) {
  for (const char* method : {"GET", "HEAD"}) {
    const HttpServer::Response response = receiver_->Handle(Probe(method, "/healthz"));
    EXPECT_EQ(response.status, 200) << method;
  }
  EXPECT_EQ(receiver_->Handle(Probe("POST", "/healthz")).status, 404);
}

TEST_F(WebhookReceiverTest, AStoreFailureIsServiceUnavailable) {
  UnavailableLog down;
  std::unique_ptr<WebhookReceiver> receiver = MakeReceiver(kPublicUrl, down);
  ASSERT_NE(receiver, nullptr);
  EXPECT_EQ(receiver->Handle(JsonRequest(kToken, JsonBody(Fields()))).status, 503);
  EXPECT_EQ(LastResult(), "store_unavailable");
}

TEST_F(WebhookReceiverTest, ThePreviousTokenVerifiesWithinTheOverlapOnly) {
  SetToken(kPreviousToken);
  EXPECT_EQ(receiver_->Handle(JsonRequest(kPreviousToken, JsonBody(Fields()))).status, 200);
  // Before the rotation, the next token is not yet accepted.
  EXPECT_EQ(
      receiver_->Handle(JsonRequest(kToken, JsonBody(Fields("KX" + std::string(32, '1'))))).status,
      403);

  SetToken(kToken);  // The Secret rotated; the overlap (1 h here) starts with its first use.
  EXPECT_EQ(receiver_->Handle(FormRequest(kToken, Fields("KX" + std::string(32, '2')))).status,
            200);
  clock_.Advance(absl::Minutes(59));
  EXPECT_EQ(
      receiver_->Handle(FormRequest(kPreviousToken, Fields("KX" + std::string(32, '3')))).status,
      200);
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(
      receiver_->Handle(FormRequest(kPreviousToken, Fields("KX" + std::string(32, '4')))).status,
      403);
  EXPECT_EQ(LastResult(), "mismatch");
  EXPECT_EQ(receiver_->Handle(FormRequest(kToken, Fields("KX" + std::string(32, '5')))).status,
            200);
  EXPECT_EQ(Stored().size(), 4u);
}

TEST_F(WebhookReceiverTest, TheOverlapRunsFromTheReloadThatBroughtTheNewToken) {
  SetToken(kPreviousToken);
  EXPECT_EQ(receiver_->Handle(JsonRequest(kPreviousToken, JsonBody(Fields()))).status, 200);
  // Reloaded now; the first delivery after it comes 50 minutes later.
  SetToken(kToken, clock_.Now());
  clock_.Advance(absl::Minutes(50));
  EXPECT_EQ(
      receiver_->Handle(FormRequest(kPreviousToken, Fields("KX" + std::string(32, '1')))).status,
      200);
  // 61 minutes after the reload, not after that first delivery, the old token is refused.
  clock_.Advance(absl::Minutes(11));
  EXPECT_EQ(
      receiver_->Handle(FormRequest(kPreviousToken, Fields("KX" + std::string(32, '2')))).status,
      403);
}

TEST_F(WebhookReceiverTest, APublicUrlWithAQueryIsSignedWithIt) {
  const std::string public_url = absl::StrCat(kPublicUrl, "?tenant=a%2Fb&region=eu");
  std::unique_ptr<WebhookReceiver> receiver = MakeReceiver(public_url, log_);
  ASSERT_NE(receiver, nullptr);
  EXPECT_EQ(receiver->Handle(FormRequest(kToken, Fields(), public_url)).status, 200);
  const std::string body = JsonBody(Fields("KX" + std::string(32, '1')));
  const HttpServer::Request json = JsonRequest(kToken, body, public_url);
  EXPECT_THAT(json.query, StartsWith("tenant=a%2Fb&region=eu&bodySHA256="));
  EXPECT_EQ(receiver->Handle(json).status, 200);

  // Signed without the query (or with it decoded) is not what Twilio was given.
  HttpServer::Request unsigned_query =
      FormRequest(kToken, Fields("KX" + std::string(32, '2')), kPublicUrl);
  unsigned_query.query = "tenant=a%2Fb&region=eu";
  EXPECT_EQ(receiver->Handle(unsigned_query).status, 403);
  HttpServer::Request decoded = FormRequest(kToken, Fields("KX" + std::string(32, '3')),
                                            absl::StrCat(kPublicUrl, "?tenant=a/b&region=eu"));
  decoded.query = "tenant=a%2Fb&region=eu";
  EXPECT_EQ(receiver->Handle(decoded).status, 403);
  EXPECT_EQ(Stored().size(), 2u);
}

TEST_F(WebhookReceiverTest, WhatTheProxyForwardedPlaysNoPart) {
  // The Ingress ends TLS and forwards to the pod's address: Host, scheme and port differ.
  HttpServer::Request forwarded = JsonRequest(kToken, JsonBody(Fields()));
  forwarded.headers[0] = {"Host", "10.1.2.3:8080"};
  forwarded.headers.emplace_back("X-Forwarded-Proto", "http");
  forwarded.headers.emplace_back("X-Forwarded-Host", "evil.example.com");
  EXPECT_EQ(receiver_->Handle(forwarded).status, 200);

  // A signature over the forwarded URL is not one over the public URL.
  FormParams params = Fields("KX" + std::string(32, '1'));
  HttpServer::Request internal =
      FormRequest(kToken, params, "http://10.1.2.3:8080/twilio/messages");
  internal.headers[0] = {"Host", "10.1.2.3:8080"};
  EXPECT_EQ(receiver_->Handle(internal).status, 403);
  EXPECT_EQ(Stored().size(), 1u);
}

TEST_F(WebhookReceiverTest, AFormContentTypeIsMatchedWithoutCase) {
  HttpServer::Request form = FormRequest(kToken, Fields());
  form.headers[1].second = "  Application/X-WWW-Form-URLEncoded";
  EXPECT_EQ(receiver_->Handle(form).status, 200);
}

}  // namespace
}  // namespace gateway
