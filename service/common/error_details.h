// Rich error details carried inside absl::Status as payloads, so that core code stays free of
// gRPC while callers still receive google.rpc details (BadRequest, ErrorInfo, RetryInfo,
// TwilioError). api/grpc_status.h turns the payloads into the grpc-status-details-bin trailer.
//
// Payload keys are the type URLs the details travel under ("type.googleapis.com/<full name>"),
// values their serialized bytes.
#ifndef GATEWAY_COMMON_ERROR_DETAILS_H_
#define GATEWAY_COMMON_ERROR_DETAILS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"

namespace gateway {

inline constexpr absl::string_view kErrorDomain = "twilio-gateway";

struct FieldViolation {
  std::string field;
  std::string description;
  bool operator==(const FieldViolation&) const = default;
};

struct TwilioErrorInfo {
  int code = 0;
  std::string message;
  std::string more_info;
  int http_status = 0;
};

// Returns INVALID_ARGUMENT naming every violation, with a google.rpc.BadRequest detail.
absl::Status InvalidArgument(const std::vector<FieldViolation>& violations);

// Adds a google.rpc.BadRequest violation to a status of any code (Twilio rejecting a field).
void AddFieldViolation(absl::Status& status, const FieldViolation& violation);
void SetTwilioError(absl::Status& status, const TwilioErrorInfo& error);
void SetRetryDelay(absl::Status& status, absl::Duration delay);
// google.rpc.ErrorInfo in kErrorDomain; later calls merge metadata and keep the first reason.
void SetErrorInfo(absl::Status& status, absl::string_view reason,
                  const std::map<std::string, std::string>& metadata = {});

std::vector<FieldViolation> GetFieldViolations(const absl::Status& status);
std::optional<TwilioErrorInfo> GetTwilioError(const absl::Status& status);
std::optional<absl::Duration> GetRetryDelay(const absl::Status& status);
std::optional<std::string> GetErrorReason(const absl::Status& status);
std::map<std::string, std::string> GetErrorMetadata(const absl::Status& status);

// `status` with a new message and the same code and details.
absl::Status WithMessage(const absl::Status& status, absl::string_view message);

std::string TypeUrl(const google::protobuf::Message& message);

}  // namespace gateway

#endif  // GATEWAY_COMMON_ERROR_DETAILS_H_
