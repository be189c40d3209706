// SHA-256 as lowercase hex: request fingerprints, hashed caller tokens, and change detection
// for secret files (a digest, so no second copy of a secret stays in memory).
#ifndef GATEWAY_COMMON_SHA256_H_
#define GATEWAY_COMMON_SHA256_H_

#include <string>

#include "absl/strings/string_view.h"

namespace gateway {

std::string Sha256Hex(absl::string_view data);

}  // namespace gateway

#endif  // GATEWAY_COMMON_SHA256_H_
