// Parses the RFC 2822 dates Twilio returns ("Wed, 18 Dec 2019 20:02:01 +0000").
//
// Accepts what RFC 2822 section 3.3 allows, including its obsolete forms that appear in the
// wild: optional day of week, one- or two-digit day, optional seconds, numeric zones and the
// named zones UT, GMT, Z and the US zones. Rejects anything else rather than guessing.
#ifndef GATEWAY_COMMON_RFC2822_H_
#define GATEWAY_COMMON_RFC2822_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gateway {

absl::StatusOr<absl::Time> ParseRfc2822Date(absl::string_view text);

}  // namespace gateway

#endif  // GATEWAY_COMMON_RFC2822_H_
