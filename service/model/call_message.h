// A user-defined message a Voice SDK client sent on a call, as Twilio delivered it to the
// gateway's webhook, and where it sits in the gateway's message log.
#ifndef GATEWAY_MODEL_CALL_MESSAGE_H_
#define GATEWAY_MODEL_CALL_MESSAGE_H_

#include <compare>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gateway {

struct CallMessage {
  std::string sid;  // KX...: the identity a redelivery shares.
  std::string account_sid;
  std::string call_sid;
  int64_t sequence_number = 0;
  std::string content;  // The SDK's JSON text, as delivered.
  std::string content_type;
  std::optional<absl::Time> timestamp;  // Twilio's Timestamp, when it could be read.
  bool operator==(const CallMessage&) const = default;
};

// A position in the message log: a Redis stream ID, "<milliseconds>-<sequence>", which the
// memory log imitates, so that a cursor has one form whichever store issued it.
struct LogPosition {
  uint64_t millis = 0;
  uint64_t sequence = 0;

  // nullopt for anything but two runs of 1 to 20 digits around a '-' that fit in 64 bits.
  static std::optional<LogPosition> Parse(absl::string_view cursor);
  std::string ToString() const;
  auto operator<=>(const LogPosition&) const = default;
};

// A message with its place in the log.
struct LoggedMessage {
  std::string cursor;
  CallMessage message;
};

}  // namespace gateway

#endif  // GATEWAY_MODEL_CALL_MESSAGE_H_
