#include "common/error_details.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/duration.pb.h"
#include "google/rpc/error_details.pb.h"
#include "twilio_gateway/v1/subscription_service.pb.h"

namespace gateway {
namespace {

template <typename Message>
std::string UrlOf() {
  return absl::StrCat("type.googleapis.com/", Message::descriptor()->full_name());
}

template <typename Message>
void Put(absl::Status& status, const Message& message) {
  status.SetPayload(UrlOf<Message>(), absl::Cord(message.SerializeAsString()));
}

template <typename Message>
std::optional<Message> Get(const absl::Status& status) {
  auto payload = status.GetPayload(UrlOf<Message>());
  if (!payload.has_value()) return std::nullopt;
  Message message;
  if (!message.ParseFromString(std::string(*payload))) return std::nullopt;
  return message;
}

}  // namespace

absl::Status WithMessage(const absl::Status& status, absl::string_view message) {
  absl::Status out(status.code(), message);
  status.ForEachPayload([&out](absl::string_view type_url, const absl::Cord& payload) {
    out.SetPayload(type_url, payload);
  });
  return out;
}

absl::Status InvalidArgument(const std::vector<FieldViolation>& violations) {
  google::rpc::BadRequest bad_request;
  std::vector<std::string> parts;
  for (const FieldViolation& v : violations) {
    auto* out = bad_request.add_field_violations();
    out->set_field(v.field);
    out->set_description(v.description);
    parts.push_back(absl::StrCat(v.field, ": ", v.description));
  }
  absl::Status status =
      absl::InvalidArgumentError(absl::StrCat("invalid request: ", absl::StrJoin(parts, "; ")));
  Put(status, bad_request);
  SetErrorInfo(status, "INVALID_REQUEST");
  return status;
}

void AddFieldViolation(absl::Status& status, const FieldViolation& violation) {
  google::rpc::BadRequest bad_request =
      Get<google::rpc::BadRequest>(status).value_or(google::rpc::BadRequest());
  auto* out = bad_request.add_field_violations();
  out->set_field(violation.field);
  out->set_description(violation.description);
  Put(status, bad_request);
}

void SetTwilioError(absl::Status& status, const TwilioErrorInfo& error) {
  twilio_gateway::v1::TwilioError detail;
  detail.set_code(error.code);
  detail.set_message(error.message);
  detail.set_more_info(error.more_info);
  detail.set_http_status(error.http_status);
  Put(status, detail);
}

void SetRetryDelay(absl::Status& status, absl::Duration delay) {
  google::rpc::RetryInfo info;
  const int64_t nanos = absl::ToInt64Nanoseconds(delay);
  info.mutable_retry_delay()->set_seconds(nanos / 1000000000);
  info.mutable_retry_delay()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  Put(status, info);
}

void SetErrorInfo(absl::Status& status, absl::string_view reason,
                  const std::map<std::string, std::string>& metadata) {
  google::rpc::ErrorInfo info =
      Get<google::rpc::ErrorInfo>(status).value_or(google::rpc::ErrorInfo());
  if (info.reason().empty()) info.set_reason(std::string(reason));
  info.set_domain(std::string(kErrorDomain));
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  Put(status, info);
}

std::vector<FieldViolation> GetFieldViolations(const absl::Status& status) {
  std::vector<FieldViolation> out;
  if (auto detail = Get<google::rpc::BadRequest>(status)) {
    for (const auto& v : detail->field_violations()) out.push_back({v.field(), v.description()});
  }
  return out;
}

std::optional<TwilioErrorInfo> GetTwilioError(const absl::Status& status) {
  auto detail = Get<twilio_gateway::v1::TwilioError>(status);
  if (!detail) return std::nullopt;
  return TwilioErrorInfo{detail->code(), detail->message(), detail->more_info(),
                         detail->http_status()};
}

std::optional<absl::Duration> GetRetryDelay(const absl::Status& status) {
  auto detail = Get<google::rpc::RetryInfo>(status);
  if (!detail) return std::nullopt;
  return absl::Seconds(detail->retry_delay().seconds()) +
         absl::Nanoseconds(detail->retry_delay().nanos());
}

std::optional<std::string> GetErrorReason(const absl::Status& status) {
  auto detail = Get<google::rpc::ErrorInfo>(status);
  if (!detail) return std::nullopt;
  return detail->reason();
}

std::map<std::string, std::string> GetErrorMetadata(const absl::Status& status) {
  std::map<std::string, std::string> out;
  if (auto detail = Get<google::rpc::ErrorInfo>(status)) {
    for (const auto& [k, v] : detail->metadata()) out[k] = v;
  }
  return out;
}

}  // namespace gateway
