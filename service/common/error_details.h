// Typed error details carried inside absl::Status as payloads (absl's mechanism for them), so
// that an error keeps its reason, Twilio's error, the fields at fault and a retry delay as it
// travels up, and core code stays free of gRPC. Only this file's source knows their encoding:
// the Google error model's messages (ErrorInfo, BadRequest, RetryInfo, our TwilioError) under
// their type URLs, so that api/grpc_status.h can place them in the grpc-status-details-bin
// trailer as they are, and stored outcomes keep them verbatim. This header needs no protobuf:
// the floors below api/ see no generated code (layering.floors checks it).
#ifndef GATEWAY_COMMON_ERROR_DETAILS_H_
#define GATEWAY_COMMON_ERROR_DETAILS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

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

}  // namespace gateway

#endif  // GATEWAY_COMMON_ERROR_DETAILS_H_
