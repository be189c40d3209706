#include "api/grpc_status.h"

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

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

google::rpc::Status RichStatus(const grpc::Status& status) {
  google::rpc::Status rich;
  EXPECT_TRUE(rich.ParseFromString(status.error_details()));
  return rich;
}

std::vector<std::string> TypeUrls(const google::rpc::Status& rich) {
  std::vector<std::string> out;
  for (const auto& any : rich.details()) {
    out.push_back(any.type_url());
  }
  return out;
}

TEST(ToGrpcStatusTest, OkMapsToOk) {
  grpc::Status status = ToGrpcStatus(absl::OkStatus());
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(status.error_details(), "");
}

TEST(ToGrpcStatusTest, PreservesCodeAndMessage) {
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
        absl::StatusCode::kFailedPrecondition, absl::StatusCode::kPermissionDenied,
        absl::StatusCode::kResourceExhausted, absl::StatusCode::kUnavailable,
        absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kCancelled,
        absl::StatusCode::kInternal}) {
    grpc::Status status = ToGrpcStatus(absl::Status(code, "what happened"));
    EXPECT_EQ(static_cast<int>(status.error_code()), static_cast<int>(code));
    EXPECT_EQ(status.error_message(), "what happened");
    google::rpc::Status rich = RichStatus(status);
    EXPECT_EQ(rich.code(), static_cast<int>(code));
    EXPECT_EQ(rich.message(), "what happened");
  }
}

TEST(ToGrpcStatusTest, NamedCodesLineUp) {
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("x")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::DeadlineExceededError("x")).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST(ToGrpcStatusTest, PacksEveryPayloadAsAny) {
  absl::Status status = InvalidArgument({{"call_sid", "is required"}});
  SetTwilioError(status,
                 {21220, "not in progress", "https://www.twilio.com/docs/errors/21220", 400});
  SetRetryDelay(status, absl::Milliseconds(1500));

  google::rpc::Status rich = RichStatus(ToGrpcStatus(status));
  EXPECT_THAT(TypeUrls(rich),
              UnorderedElementsAre("type.googleapis.com/google.rpc.BadRequest",
                                   "type.googleapis.com/google.rpc.ErrorInfo",
                                   "type.googleapis.com/google.rpc.RetryInfo",
                                   "type.googleapis.com/twilio_gateway.v1.TwilioError"));
  for (const auto& any : rich.details()) {
    if (any.Is<google::rpc::BadRequest>()) {
      google::rpc::BadRequest bad_request;
      ASSERT_TRUE(any.UnpackTo(&bad_request));
      ASSERT_EQ(bad_request.field_violations_size(), 1);
      EXPECT_EQ(bad_request.field_violations(0).field(), "call_sid");
    } else if (any.Is<google::rpc::ErrorInfo>()) {
      google::rpc::ErrorInfo info;
      ASSERT_TRUE(any.UnpackTo(&info));
      EXPECT_EQ(info.reason(), "INVALID_REQUEST");
      EXPECT_EQ(info.domain(), "twilio-gateway");
    } else if (any.Is<google::rpc::RetryInfo>()) {
      google::rpc::RetryInfo info;
      ASSERT_TRUE(any.UnpackTo(&info));
      EXPECT_EQ(info.retry_delay().seconds(), 1);
      EXPECT_EQ(info.retry_delay().nanos(), 500000000);
    } else if (any.Is<twilio_gateway::v1::TwilioError>()) {
      twilio_gateway::v1::TwilioError error;
      ASSERT_TRUE(any.UnpackTo(&error));
      EXPECT_EQ(error.code(), 21220);
      EXPECT_EQ(error.http_status(), 400);
      EXPECT_EQ(error.more_info(), "https://www.twilio.com/docs/errors/21220");
    } else {
      ADD_FAILURE() << "unexpected detail " << any.type_url();
    }
  }
}

TEST(ToGrpcStatusTest, DetailsAreInTypeUrlOrder) {
  // The same error must give the same trailer bytes, whatever order the payloads were set in.
  absl::Status a = absl::UnavailableError("x");
  SetRetryDelay(a, absl::Seconds(1));
  SetTwilioError(a, {20503, "down", "", 503});
  SetErrorInfo(a, "R");
  absl::Status b = absl::UnavailableError("x");
  SetErrorInfo(b, "R");
  SetTwilioError(b, {20503, "down", "", 503});
  SetRetryDelay(b, absl::Seconds(1));
  const grpc::Status from_a = ToGrpcStatus(a);
  EXPECT_THAT(TypeUrls(RichStatus(from_a)),
              ElementsAre("type.googleapis.com/google.rpc.ErrorInfo",
                          "type.googleapis.com/google.rpc.RetryInfo",
                          "type.googleapis.com/twilio_gateway.v1.TwilioError"));
  EXPECT_EQ(from_a.error_details(), ToGrpcStatus(b).error_details());
}

TEST(ToGrpcStatusTest, ErrorWithoutPayloadsHasNoDetails) {
  google::rpc::Status rich = RichStatus(ToGrpcStatus(absl::InternalError("oops")));
  EXPECT_EQ(rich.details_size(), 0);
  EXPECT_EQ(rich.code(), static_cast<int>(absl::StatusCode::kInternal));
}

}  // namespace
}  // namespace gateway
