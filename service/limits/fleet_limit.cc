#include "limits/fleet_limit.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace gateway {
namespace {

// FNV-1a: the same on every replica and every build, unlike std::hash.
uint32_t Fnv1a(absl::string_view text) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

}  // namespace

int LeaseShare(double fleet_limit, int replicas, int index, absl::string_view account) {
  if (replicas < 1) replicas = 1;
  index = std::clamp(index, 0, replicas - 1);
  const int64_t whole = static_cast<int64_t>(std::floor(std::max(fleet_limit, 0.0)));
  const int64_t base = whole / replicas;
  const int64_t remainder = whole % replicas;
  const int64_t first = Fnv1a(account) % static_cast<uint32_t>(replicas);
  const int64_t place = (index - first + replicas) % replicas;
  const int64_t share = base + (place < remainder ? 1 : 0);
  return static_cast<int>(std::max<int64_t>(1, share));
}

}  // namespace gateway
