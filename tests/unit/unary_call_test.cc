// RenderStatus: the one place a typed Outcome becomes the gRPC status a caller decodes.
#include "api/unary_call.h"

#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/error_details.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "twilio_gateway/v1/subscription_service.pb.h"

namespace gateway {
namespace {

using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// The ErrorInfo a client decodes from the grpc-status-details-bin trailer.
google::rpc::ErrorInfo ErrorInfoOf(const grpc::Status& status) {
  google::rpc::Status rich;
  EXPECT_TRUE(rich.ParseFromString(status.error_details()));
  for (const auto& any : rich.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) return info;
  }
  ADD_FAILURE() << "no ErrorInfo in " << status.error_message();
  return {};
}

std::map<std::string, std::string> MetadataOf(const grpc::Status& status) {
  const google::rpc::ErrorInfo info = ErrorInfoOf(status);
  return {info.metadata().begin(), info.metadata().end()};
}

absl::Status Unavailable() {
  absl::Status status = absl::UnavailableError("Twilio answered HTTP 503");
  SetTwilioError(status, {20503, "down", "", 503});
  SetErrorInfo(status, "TWILIO_UNAVAILABLE");
  return status;
}

TEST(RenderStatusTest, SuccessIsOkWithoutDetails) {
  const grpc::Status status = RenderStatus(
      {.result = Resource(Subscription{}), .report = {.idempotency_key = "", .attempts = 2}},
      "subscription_may_exist");
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.error_details(), "");
}

TEST(RenderStatusTest, CreateErrorCarriesKeyAttemptsAndSubscriptionMayExist) {
  const Outcome outcome = {.result = Unavailable(),
                           .report = {.idempotency_key = "k-1", .attempts = 3, .may_exist = true}};
  const grpc::Status status = RenderStatus(outcome, "subscription_may_exist");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "Twilio answered HTTP 503");
  const google::rpc::ErrorInfo info = ErrorInfoOf(status);
  EXPECT_EQ(info.reason(), "TWILIO_UNAVAILABLE");  // The reason set where the error arose.
  EXPECT_EQ(info.domain(), "twilio-gateway");
  EXPECT_THAT(MetadataOf(status),
              UnorderedElementsAre(Pair("idempotency_key", "k-1"), Pair("attempts", "3"),
                                   Pair("subscription_may_exist", "true")));
}

TEST(RenderStatusTest, MayExistFalseIsSaid) {
  const Outcome outcome = {.result = absl::InvalidArgumentError("bad"),
                           .report = {.idempotency_key = "k-1", .attempts = 0}};
  EXPECT_EQ(MetadataOf(RenderStatus(outcome, "subscription_may_exist"))["subscription_may_exist"],
            "false");
}

TEST(RenderStatusTest, SendErrorSaysWhetherTheMessageMayExist) {
  const Outcome outcome = {.result = Unavailable(),
                           .report = {.idempotency_key = "k-2", .attempts = 1, .may_exist = true}};
  EXPECT_THAT(MetadataOf(RenderStatus(outcome, "message_may_exist")),
              UnorderedElementsAre(Pair("idempotency_key", "k-2"), Pair("attempts", "1"),
                                   Pair("message_may_exist", "true")));
}

// Delete has no key, and nothing of it can "exist": only the attempts are rendered.
TEST(RenderStatusTest, DeleteErrorCarriesAttemptsOnly) {
  absl::Status not_found = absl::NotFoundError("Twilio answered HTTP 404");
  SetErrorInfo(not_found, "SUBSCRIPTION_NOT_FOUND");
  const Outcome outcome = {.result = not_found,
                           .report = {.idempotency_key = "", .attempts = 1, .may_exist = true}};
  const grpc::Status status = RenderStatus(outcome, "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrorInfoOf(status).reason(), "SUBSCRIPTION_NOT_FOUND");
  EXPECT_THAT(MetadataOf(status), UnorderedElementsAre(Pair("attempts", "1")));
}

TEST(RenderStatusTest, ReplayedOutcomeSaysSo) {
  const Outcome outcome = {
      .result = absl::NotFoundError("no such call"),
      .report = {.idempotency_key = "k-1", .attempts = 0, .may_exist = false, .replayed = true}};
  const std::map<std::string, std::string> metadata =
      MetadataOf(RenderStatus(outcome, "subscription_may_exist"));
  EXPECT_EQ(metadata.at("replayed"), "true");
  EXPECT_EQ(metadata.at("attempts"), "0");
  const Outcome fresh = {.result = absl::NotFoundError("no such call"),
                         .report = {.idempotency_key = "k-1", .attempts = 1}};
  EXPECT_EQ(MetadataOf(RenderStatus(fresh, "subscription_may_exist")).count("replayed"), 0u);
}

// A replayed record of an earlier version carries the metadata that version wrote; the report
// of this call wins.
TEST(RenderStatusTest, ReportOverridesMetadataAStoredErrorCarried) {
  absl::Status stored = absl::UnknownError("outcome unknown");
  SetErrorInfo(stored, "OUTCOME_UNKNOWN",
               {{"attempts", "4"}, {"idempotency_key", "k-1"}, {"subscription_may_exist", "true"}});
  const Outcome outcome = {
      .result = stored,
      .report = {.idempotency_key = "k-1", .attempts = 0, .may_exist = true, .replayed = true}};
  const std::map<std::string, std::string> metadata =
      MetadataOf(RenderStatus(outcome, "subscription_may_exist"));
  EXPECT_EQ(metadata.at("attempts"), "0");
  EXPECT_EQ(metadata.at("subscription_may_exist"), "true");
  EXPECT_EQ(ErrorInfoOf(RenderStatus(outcome, "subscription_may_exist")).reason(),
            "OUTCOME_UNKNOWN");
}

TEST(RenderStatusTest, ErrorWithoutReasonStillGetsTheReport) {
  const Outcome outcome = {.result = absl::InternalError("oops"),
                           .report = {.idempotency_key = "k", .attempts = 2}};
  const grpc::Status status = RenderStatus(outcome, "subscription_may_exist");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(MetadataOf(status).at("attempts"), "2");
  EXPECT_EQ(MetadataOf(status).at("idempotency_key"), "k");
}

TEST(RenderStatusTest, KeepsTheOtherDetails) {
  const Outcome outcome = {.result = Unavailable(),
                           .report = {.idempotency_key = "", .attempts = 1}};
  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(RenderStatus(outcome, "").error_details()));
  bool twilio_error = false;
  for (const auto& any : rich.details()) {
    twilio_gateway::v1::TwilioError error;
    if (any.UnpackTo(&error)) {
      twilio_error = true;
      EXPECT_EQ(error.code(), 20503);
    }
  }
  EXPECT_TRUE(twilio_error);
}

TEST(ToTimestampTest, SplitsSecondsAndNonNegativeNanos) {
  google::protobuf::Timestamp out;
  ToTimestamp(absl::FromUnixSeconds(-1) + absl::Milliseconds(500), &out);
  EXPECT_EQ(out.seconds(), -1);
  EXPECT_EQ(out.nanos(), 500000000);
  ToTimestamp(absl::FromUnixSeconds(1576699321), &out);
  EXPECT_EQ(out.seconds(), 1576699321);
  EXPECT_EQ(out.nanos(), 0);
}

}  // namespace
}  // namespace gateway
