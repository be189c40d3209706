// Twilio's SID shape, the one identifier every floor checks (requests, credentials, policies).
//
// Pure functions; thread-safe.
#ifndef GATEWAY_MODEL_SID_H_
#define GATEWAY_MODEL_SID_H_

#include "absl/strings/string_view.h"

namespace gateway {

// `prefix` followed by exactly 32 hex digits: "AC" accounts, "CA" calls, "ZY" subscriptions,
// "KX" messages, "SK" API keys.
bool IsSid(absl::string_view value, absl::string_view prefix);

}  // namespace gateway

#endif  // GATEWAY_MODEL_SID_H_
