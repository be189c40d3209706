// Randomness as an injected dependency (backoff jitter, generated idempotency keys, request ids
// and claim tokens), so tests can fix it.
//
// Thread-safety: implementations must be safe from any thread (callers draw from gRPC threads,
// the libcurl loop and the Redis store's callers at once). SystemRandom is (one generator per
// thread).
#ifndef GATEWAY_COMMON_RANDOM_H_
#define GATEWAY_COMMON_RANDOM_H_

#include <string>

#include "common/random_ids.h"

namespace gateway {

class Random {
 public:
  virtual ~Random() = default;
  // Uniform in [0, 1).
  virtual double Uniform01() = 0;
  // A random (version 4) UUID in its canonical lowercase 8-4-4-4-12 form.
  virtual std::string UuidV4() = 0;
  // 128 random bits as 32 lowercase hex digits: unguessable ids and tokens.
  virtual std::string HexId128() = 0;
};

// Seeded from the operating system's entropy; one generator per thread (ThreadBitGen()).
class SystemRandom final : public Random {
 public:
  double Uniform01() override;
  std::string UuidV4() override;
  std::string HexId128() override;
};

}  // namespace gateway

#endif  // GATEWAY_COMMON_RANDOM_H_
