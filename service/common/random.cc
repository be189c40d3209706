#include "common/random.h"

#include "absl/random/random.h"

namespace gateway {

double SystemRandom::Uniform01() { return absl::Uniform(ThreadBitGen(), 0.0, 1.0); }

std::string SystemRandom::UuidV4() { return NewUuidV4(); }

std::string SystemRandom::HexId128() { return NewHexId128(); }

}  // namespace gateway
