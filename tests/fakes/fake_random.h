// FakeRandom: a Random whose draws a test chooses.
//
// Uniform01() returns a fixed value (settable); UuidV4() returns well-formed version 4 UUIDs
// numbered from 1: "00000000-0000-4000-8000-000000000001", "...0002", ...; HexId128() returns
// 32 hex digits numbered from 1 on their own counter: "000...001", "000...002", ...
//
// Thread-safety: safe from any thread.
#ifndef GATEWAY_TESTS_FAKES_FAKE_RANDOM_H_
#define GATEWAY_TESTS_FAKES_FAKE_RANDOM_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/random.h"

namespace gateway::testing {

class FakeRandom final : public Random {
 public:
  explicit FakeRandom(double uniform01 = 0.5) : uniform01_(uniform01) {}

  double Uniform01() override {
    absl::MutexLock lock(&mu_);
    ++uniform01_calls_;
    return uniform01_;
  }

  std::string UuidV4() override {
    absl::MutexLock lock(&mu_);
    return NthUuid(++uuids_);
  }

  std::string HexId128() override {
    absl::MutexLock lock(&mu_);
    return NthHexId(++hex_ids_);
  }

  void set_uniform01(double value) {
    absl::MutexLock lock(&mu_);
    uniform01_ = value;
  }
  int uniform01_calls() const {
    absl::MutexLock lock(&mu_);
    return uniform01_calls_;
  }
  int uuid_calls() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(uuids_);
  }

  int hex_id_calls() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(hex_ids_);
  }

  // The UUID the `n`th UuidV4() call returns (from 1).
  static std::string NthUuid(uint64_t n) {
    return absl::StrFormat("00000000-0000-4000-8000-%012x", n);
  }
  // The id the `n`th HexId128() call returns (from 1).
  static std::string NthHexId(uint64_t n) { return absl::StrFormat("%032x", n); }

 private:
  mutable absl::Mutex mu_;
  double uniform01_ ABSL_GUARDED_BY(mu_);
  int uniform01_calls_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t uuids_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t hex_ids_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gateway::testing

#endif  // GATEWAY_TESTS_FAKES_FAKE_RANDOM_H_
