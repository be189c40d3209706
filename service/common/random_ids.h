// Random identifiers formatted from a bit generator: version 4 UUIDs (idempotency keys, claim
// tokens) and 128-bit hex ids (request ids, Redis claim tokens). Shared by the gateway and the
// C++ client library (target gateway_random_ids), so it depends on Abseil's random library only.
//
// Usage:
//   std::string key = NewUuidV4();            // per-thread generator
//   std::string id = HexId128From(some_gen);  // any URBG, e.g. a fixed one in a test
//
// Thread-safety: the New* functions and ThreadBitGen() are safe from any thread (one generator
// per thread); the *From functions use only the generator they are given.
#ifndef GATEWAY_COMMON_RANDOM_IDS_H_
#define GATEWAY_COMMON_RANDOM_IDS_H_

#include <string>

#include "absl/random/bit_gen_ref.h"
#include "absl/random/random.h"

namespace gateway {

// This thread's generator. absl::BitGen seeds its whole state from the operating system's
// entropy, unlike std::mt19937_64{std::random_device{}()}, which gets only 32 bits.
absl::BitGen& ThreadBitGen();

// Formats 128 random bits from `gen` as a version 4, variant 1 UUID (canonical lowercase
// 8-4-4-4-12 form).
std::string UuidV4From(absl::BitGenRef gen);

// 128 random bits from `gen` as 32 lowercase hex digits.
std::string HexId128From(absl::BitGenRef gen);

// The same from ThreadBitGen().
std::string NewUuidV4();
std::string NewHexId128();

}  // namespace gateway

#endif  // GATEWAY_COMMON_RANDOM_IDS_H_
