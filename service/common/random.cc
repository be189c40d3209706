#include "common/random.h"

#include <cstdint>

#include "absl/random/random.h"

namespace gateway {
namespace {

absl::BitGen& ThreadGen() {
  thread_local absl::BitGen gen;
  return gen;
}

}  // namespace

double SystemRandom::Uniform01() { return absl::Uniform(ThreadGen(), 0.0, 1.0); }

std::string SystemRandom::UuidV4() { return UuidV4From(ThreadGen()); }

std::string UuidV4From(absl::BitGenRef gen) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint8_t bytes[16];
  for (uint8_t& b : bytes) b = absl::Uniform<uint8_t>(absl::IntervalClosedClosed, gen, 0, 255);
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // Version 4.
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant.
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

}  // namespace gateway
