#include "api/subscription_service.h"

#include <string>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "api/message_service.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

namespace pb = twilio_gateway::v1;

TEST(FromProtoTest, CopiesEveryField) {
  pb::CreateSubscriptionRequest request;
  request.set_account_sid("AC1");
  request.set_call_sid("CA1");
  request.set_callback("https://example.com/hook");
  request.set_method(pb::CALLBACK_METHOD_GET);
  request.set_idempotency_key("key");
  CreateSubscriptionInput input = FromProto(request);
  EXPECT_EQ(input.account_sid, "AC1");
  EXPECT_EQ(input.call_sid, "CA1");
  EXPECT_EQ(input.callback, "https://example.com/hook");
  EXPECT_EQ(input.method, 2);
  EXPECT_EQ(input.idempotency_key, "key");
}

TEST(FromProtoTest, KeepsUnknownEnumNumbers) {
  // Open proto3 enums may carry numbers this build does not know; validation must see them.
  pb::CreateSubscriptionRequest request;
  request.set_method(static_cast<pb::CallbackMethod>(7));
  EXPECT_EQ(FromProto(request).method, 7);
  EXPECT_EQ(FromProto(pb::CreateSubscriptionRequest()).method, 0);
}

TEST(ToProtoTest, CopiesEveryField) {
  Subscription subscription;
  subscription.account_sid = "AC1";
  subscription.call_sid = "CA1";
  subscription.sid = "ZY1";
  subscription.uri = "/uri.json";
  subscription.date_created =
      absl::FromCivil(absl::CivilSecond(2019, 12, 18, 20, 2, 1), absl::UTCTimeZone());
  pb::Subscription out;
  ToProto(subscription, "key", &out);
  EXPECT_EQ(out.account_sid(), "AC1");
  EXPECT_EQ(out.call_sid(), "CA1");
  EXPECT_EQ(out.sid(), "ZY1");
  EXPECT_EQ(out.uri(), "/uri.json");
  EXPECT_EQ(out.idempotency_key(), "key");
  ASSERT_TRUE(out.has_date_created());
  EXPECT_EQ(out.date_created().seconds(), 1576699321);
  EXPECT_EQ(out.date_created().nanos(), 0);
}

TEST(ToProtoTest, UnsetDateStaysUnset) {
  pb::Subscription out;
  ToProto(Subscription(), "", &out);
  EXPECT_FALSE(out.has_date_created());
}

TEST(ToProtoTest, SubSecondAndPreEpochDatesUseNonNegativeNanos) {
  Subscription subscription;
  subscription.date_created = absl::FromUnixSeconds(-1) + absl::Milliseconds(500);
  pb::Subscription out;
  ToProto(subscription, "", &out);
  EXPECT_EQ(out.date_created().seconds(), -1);
  EXPECT_EQ(out.date_created().nanos(), 500000000);
}

TEST(FromProtoTest, CopiesEveryDeleteField) {
  pb::DeleteSubscriptionRequest request;
  request.set_account_sid("AC1");
  request.set_call_sid("CA1");
  request.set_sid("ZY1");
  DeleteSubscriptionInput input = FromProto(request);
  EXPECT_EQ(input.account_sid, "AC1");
  EXPECT_EQ(input.call_sid, "CA1");
  EXPECT_EQ(input.sid, "ZY1");
}

TEST(FromProtoTest, CopiesEverySendField) {
  pb::SendMessageRequest request;
  request.set_account_sid("AC1");
  request.set_call_sid("CA1");
  request.set_content(R"({"a":1})");
  request.set_idempotency_key("key");
  SendMessageInput input = FromProto(request);
  EXPECT_EQ(input.account_sid, "AC1");
  EXPECT_EQ(input.call_sid, "CA1");
  EXPECT_EQ(input.content, R"({"a":1})");
  EXPECT_EQ(input.idempotency_key, "key");
}

TEST(ToProtoTest, CopiesEveryMessageField) {
  Message message;
  message.account_sid = "AC1";
  message.call_sid = "CA1";
  message.sid = "KX1";
  message.date_created =
      absl::FromCivil(absl::CivilSecond(2019, 12, 18, 20, 2, 1), absl::UTCTimeZone());
  pb::Message out;
  ToProto(message, "key", &out);
  EXPECT_EQ(out.account_sid(), "AC1");
  EXPECT_EQ(out.call_sid(), "CA1");
  EXPECT_EQ(out.sid(), "KX1");
  EXPECT_EQ(out.idempotency_key(), "key");
  ASSERT_TRUE(out.has_date_created());
  EXPECT_EQ(out.date_created().seconds(), 1576699321);

  pb::Message undated;
  ToProto(Message(), "", &undated);
  EXPECT_FALSE(undated.has_date_created());
}

}  // namespace
}  // namespace gateway
