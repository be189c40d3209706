// What Twilio returns for the three operations, in plain C++. Twilio marks every property
// nullable: a null becomes an empty value.
#ifndef GATEWAY_MODEL_RESOURCES_H_
#define GATEWAY_MODEL_RESOURCES_H_

#include <optional>
#include <string>
#include <variant>

#include "absl/time/time.h"

namespace gateway {

// A UserDefinedMessageSubscription.
struct Subscription {
  std::string account_sid;
  std::string call_sid;
  std::string sid;  // ZY...
  std::optional<absl::Time> date_created;
  std::string uri;
  bool operator==(const Subscription&) const = default;
};

// A UserDefinedMessage sent to the Voice SDK.
struct Message {
  std::string account_sid;
  std::string call_sid;
  std::string sid;  // KX...
  std::optional<absl::Time> date_created;
  bool operator==(const Message&) const = default;
};

// A subscription deleted (Twilio answers 204 with no body).
struct Deletion {
  bool operator==(const Deletion&) const = default;
};

// What one operation yields; which alternative follows from the operation.
using Resource = std::variant<Subscription, Message, Deletion>;

}  // namespace gateway

#endif  // GATEWAY_MODEL_RESOURCES_H_
