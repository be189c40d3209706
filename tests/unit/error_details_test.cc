#include "common/error_details.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(ErrorDetailsTest, InvalidArgumentListsEveryViolation) {
  absl::Status status = InvalidArgument({{"a", "bad a"}, {"b", "bad b"}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("a: bad a"));
  EXPECT_THAT(status.message(), HasSubstr("b: bad b"));
  EXPECT_THAT(GetFieldViolations(status),
              ElementsAre(FieldViolation{"a", "bad a"}, FieldViolation{"b", "bad b"}));
}

TEST(ErrorDetailsTest, TwilioErrorRoundTrips) {
  absl::Status status = absl::UnavailableError("x");
  SetTwilioError(status, {20503, "down", "https://www.twilio.com/docs/errors/20503", 503});
  std::optional<TwilioErrorInfo> error = GetTwilioError(status);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, 20503);
  EXPECT_EQ(error->message, "down");
  EXPECT_EQ(error->more_info, "https://www.twilio.com/docs/errors/20503");
  EXPECT_EQ(error->http_status, 503);
}

TEST(ErrorDetailsTest, RetryDelayRoundTripsSubSecond) {
  absl::Status status = absl::UnavailableError("x");
  SetRetryDelay(status, absl::Milliseconds(2250));
  EXPECT_EQ(GetRetryDelay(status), absl::Milliseconds(2250));
}

TEST(ErrorDetailsTest, ErrorInfoKeepsFirstReasonAndMergesMetadata) {
  absl::Status status = absl::UnavailableError("x");
  SetErrorInfo(status, "FIRST", {{"a", "1"}});
  SetErrorInfo(status, "SECOND", {{"b", "2"}, {"a", "3"}});
  EXPECT_EQ(GetErrorReason(status), "FIRST");
  EXPECT_THAT(GetErrorMetadata(status), ElementsAre(Pair("a", "3"), Pair("b", "2")));
}

TEST(ErrorDetailsTest, AbsentDetailsAreEmpty) {
  absl::Status status = absl::InternalError("x");
  EXPECT_THAT(GetFieldViolations(status), IsEmpty());
  EXPECT_EQ(GetTwilioError(status), std::nullopt);
  EXPECT_EQ(GetRetryDelay(status), std::nullopt);
  EXPECT_EQ(GetErrorReason(status), std::nullopt);
  EXPECT_THAT(GetErrorMetadata(status), IsEmpty());
}

TEST(ErrorDetailsTest, WithMessageKeepsCodeAndDetails) {
  absl::Status status = absl::UnavailableError("old");
  SetTwilioError(status, {20503, "down", "", 503});
  SetErrorInfo(status, "REASON", {{"k", "v"}});
  absl::Status renamed = WithMessage(status, "new");
  EXPECT_EQ(renamed.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(renamed.message(), "new");
  ASSERT_TRUE(GetTwilioError(renamed).has_value());
  EXPECT_EQ(GetTwilioError(renamed)->code, 20503);
  EXPECT_EQ(GetErrorReason(renamed), "REASON");
  EXPECT_THAT(GetErrorMetadata(renamed), ElementsAre(Pair("k", "v")));
}

TEST(ErrorDetailsTest, DetailsTravelUnderTheirTypeUrls) {
  absl::Status status = absl::UnavailableError("down");
  SetErrorInfo(status, "REASON");
  EXPECT_TRUE(status.GetPayload("type.googleapis.com/google.rpc.ErrorInfo").has_value());
}

}  // namespace
}  // namespace gateway
