// FakeFleetLimitStore: a recording FleetLimitStore for unit tests. It records every Exchange()
// and answers none on its own: the test answers each, with leases or an error, when it likes.
//
// Usage:
//   FakeFleetLimitStore store;
//   ... FleetLeases calls store.Exchange(reports, done) ...
//   EXPECT_EQ(store.exchange(0)[0].account, "AC...");
//   store.Answer(0, std::vector<FleetLease>{{.account = "AC...", .fleet_limit = 30,
//                                            .replicas = 3, .index = 0}});
//
// Thread-safety: every method may be called from any thread; callbacks run on the thread that
// answers, with no internal lock held.
#ifndef GATEWAY_TESTS_FAKES_FAKE_FLEET_LIMIT_STORE_H_
#define GATEWAY_TESTS_FAKES_FAKE_FLEET_LIMIT_STORE_H_

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "limits/fleet_limit.h"

namespace gateway::testing {

class FakeFleetLimitStore final : public FleetLimitStore {
 public:
  void Exchange(std::vector<FleetReport> reports, Done done) override {
    absl::MutexLock lock(&mu_);
    calls_.push_back({std::move(reports), std::move(done)});
  }
  void Shutdown() override {}

  size_t exchange_count() const {
    absl::MutexLock lock(&mu_);
    return calls_.size();
  }
  // The reports of the `index`th Exchange().
  std::vector<FleetReport> exchange(size_t index) const {
    absl::MutexLock lock(&mu_);
    return calls_.at(index).reports;
  }
  // Answers the `index`th Exchange(); false if it was answered before.
  bool Answer(size_t index, absl::StatusOr<std::vector<FleetLease>> leases) {
    std::optional<Done> done;
    {
      absl::MutexLock lock(&mu_);
      if (!calls_.at(index).done.has_value()) return false;
      done = std::move(calls_.at(index).done);
      calls_.at(index).done.reset();
    }
    std::move (*done)(std::move(leases));
    return true;
  }

 private:
  struct Call {
    std::vector<FleetReport> reports;
    std::optional<Done> done;
  };
  mutable absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway::testing

#endif  // GATEWAY_TESTS_FAKES_FAKE_FLEET_LIMIT_STORE_H_
