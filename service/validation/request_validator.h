// Checks a request before anything leaves the gateway: bad input is answered with
// INVALID_ARGUMENT naming each offending field and never reaches Twilio.
//
// Pure functions; thread-safe.
#ifndef GATEWAY_VALIDATION_REQUEST_VALIDATOR_H_
#define GATEWAY_VALIDATION_REQUEST_VALIDATOR_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/requests.h"

namespace gateway {

inline constexpr size_t kMaxCallbackLength = 4000;  // Twilio's documented URL limit.
inline constexpr size_t kMaxIdempotencyKeyLength = 255;
// A message's content. Twilio publishes no limit (it answers 31212 when a message is too large);
// 4 KiB keeps a message well inside one gRPC frame and the idempotency fingerprint cheap.
inline constexpr size_t kMaxContentBytes = 4096;
// Arrays and objects within one another in a message's content. Twilio documents no limit, and
// parsers differ (Python's json stops near 1,000, nlohmann never); 64 is far beyond any real
// message's shape and well inside every limit we know of, so what the gateway accepts Twilio
// parses too, instead of answering after an upstream call.
inline constexpr int kMaxContentDepth = 64;

// At most kMaxIdempotencyKeyLength printable ASCII characters, no spaces (empty is valid: the
// gateway generates one).
bool IsValidIdempotencyKey(absl::string_view key);

// Why `url` is not an acceptable callback, or an empty string if it is.
std::string CallbackProblem(absl::string_view url);

// Why `content` is not an acceptable message, or an empty string if it is.
std::string ContentProblem(absl::string_view content);

// Each validates `input` and applies defaults: the gateway's account when none is given, POST
// when a callback method is unspecified. An idempotency key is checked but left empty if absent.
absl::StatusOr<CreateSubscriptionRequest> ValidateCreateRequest(
    const CreateSubscriptionInput& input, absl::string_view default_account_sid);
absl::StatusOr<DeleteSubscriptionRequest> ValidateDeleteRequest(
    const DeleteSubscriptionInput& input, absl::string_view default_account_sid);
absl::StatusOr<SendMessageRequest> ValidateSendRequest(const SendMessageInput& input,
                                                       absl::string_view default_account_sid);
absl::StatusOr<WatchRequest> ValidateWatchRequest(const WatchInput& input,
                                                  absl::string_view default_account_sid);

}  // namespace gateway

#endif  // GATEWAY_VALIDATION_REQUEST_VALIDATOR_H_
