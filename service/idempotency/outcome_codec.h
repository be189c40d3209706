// How a final outcome (Create, Send) is stored in an IdempotencyStore and read back: a small JSON
// document, so records in a shared Redis stay readable by every gateway version that knows it.
// Also the request fingerprint that detects a key reused for a different request.
//
// Pure functions; thread-safe.
#ifndef GATEWAY_IDEMPOTENCY_OUTCOME_CODEC_H_
#define GATEWAY_IDEMPOTENCY_OUTCOME_CODEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/requests.h"
#include "model/resources.h"

namespace gateway {

// A final outcome as a record holds it.
struct StoredOutcome {
  absl::StatusOr<Resource> result = absl::UnknownError("no outcome");
  // The operation may have taken effect despite the error (OUTCOME_UNKNOWN, for one).
  bool may_exist = false;
};

std::string EncodeOutcome(const absl::StatusOr<Resource>& result, bool may_exist);

// The stored outcome; INTERNAL if `encoded` is not one EncodeOutcome() wrote (or an earlier
// version, which stored only subscriptions and kept `may_exist` in the error's ErrorInfo).
absl::StatusOr<StoredOutcome> DecodeOutcome(absl::string_view encoded);

// SHA-256 (hex) over the fields that define the request: for a subscription the account, call,
// callback and method; for a message the account, call and content.
std::string RequestFingerprint(const CreateSubscriptionRequest& request);
std::string RequestFingerprint(const SendMessageRequest& request);

}  // namespace gateway

#endif  // GATEWAY_IDEMPOTENCY_OUTCOME_CODEC_H_
