// Checks a create request before anything leaves the gateway: bad input is answered with
// INVALID_ARGUMENT naming each offending field and never reaches Twilio.
//
// Pure functions; thread-safe.
#ifndef GATEWAY_VALIDATION_REQUEST_VALIDATOR_H_
#define GATEWAY_VALIDATION_REQUEST_VALIDATOR_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "subscriptions/subscription.h"

namespace gateway {

inline constexpr size_t kMaxCallbackLength = 4000;  // Twilio's documented URL limit.
inline constexpr size_t kMaxIdempotencyKeyLength = 255;

// `prefix` followed by exactly 32 hex digits: Twilio's SID shape ("AC", "CA", "ZY", ...).
bool IsSid(absl::string_view value, absl::string_view prefix);

// At most kMaxIdempotencyKeyLength printable ASCII characters, no spaces (empty is valid: the
// gateway generates one).
bool IsValidIdempotencyKey(absl::string_view key);

// Why `url` is not an acceptable callback, or an empty string if it is.
std::string CallbackProblem(absl::string_view url);

// Validates `input` and applies defaults: the gateway's account when none is given, POST when
// the method is unspecified. The idempotency key is checked but left empty if absent.
absl::StatusOr<CreateSubscriptionRequest> ValidateCreateRequest(
    const CreateSubscriptionInput& input, absl::string_view default_account_sid);

}  // namespace gateway

#endif  // GATEWAY_VALIDATION_REQUEST_VALIDATOR_H_
