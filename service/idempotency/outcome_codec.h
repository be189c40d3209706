// How a final Create outcome is stored in an IdempotencyStore and read back: a small JSON
// document, so records in a shared Redis stay readable by every gateway version that knows it.
// Also the request fingerprint that detects a key reused for a different request.
//
// Pure functions; thread-safe.
#ifndef GATEWAY_IDEMPOTENCY_OUTCOME_CODEC_H_
#define GATEWAY_IDEMPOTENCY_OUTCOME_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "subscriptions/subscription.h"

namespace gateway {

std::string EncodeOutcome(const absl::StatusOr<Subscription>& outcome);

// The stored outcome; INTERNAL if `encoded` is not one EncodeOutcome() wrote.
absl::StatusOr<absl::StatusOr<Subscription>> DecodeOutcome(absl::string_view encoded);

// SHA-256 (hex) over the fields that define the subscription: account, call, callback, method.
std::string RequestFingerprint(const CreateSubscriptionRequest& request);

// Whether an outcome is final and may be replayed for the same key: a created subscription, or
// an answer that no retry can change (the call does not exist, Twilio rejected a parameter).
// Unknown or transient outcomes are not: a later retry with the key must try again.
bool IsReplayableOutcome(const absl::StatusOr<Subscription>& outcome);

}  // namespace gateway

#endif  // GATEWAY_IDEMPOTENCY_OUTCOME_CODEC_H_
