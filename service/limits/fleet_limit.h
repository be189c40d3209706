// One concurrency limit per Twilio account for the whole fleet of replicas, kept in a shared
// store, and each replica's lease of it.
//
// Every lease period each replica makes one Exchange(): it reports, per account it serves, how
// much its AIMD feedback grew the limit since the last report and whether a 429 cut it; the
// store folds the reports of every replica into the account's fleet limit F (halving F at most
// once per backoff interval however many replicas report the same overload), records the
// replica's heartbeat (every exchange, with or without accounts), and answers F with the live
// replicas. The replica then holds LeaseShare() permits until the next exchange: no store round
// trip per permit.
//
// Usage (FleetLeases drives it):
//   store.Exchange(reports, [](absl::StatusOr<std::vector<FleetLease>> leases) {...});
//
// Thread-safety: implementations are safe from any thread; `done` runs on the store's own
// thread (or inline when the call is refused at once) and must not block.
#ifndef GATEWAY_LIMITS_FLEET_LIMIT_H_
#define GATEWAY_LIMITS_FLEET_LIMIT_H_

#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway {

// One account's feedback since the replica's previous report.
struct FleetReport {
  std::string account = {};
  // Additive increase earned: 1/F per attempt Twilio accepted while the account used at least
  // half its limit, so all replicas together add one permit per full fleet window.
  double increase = 0;
  // A 429 cut this replica's limit: the fleet's limit is cut too (once per backoff interval).
  bool throttled = false;
};

// One account's answer, in the order of the reports.
struct FleetLease {
  std::string account = {};
  // The fleet's limit F after this report.
  double fleet_limit = 0;
  // Live replicas (heartbeats not expired), this one included, and this replica's place among
  // them (0-based, in the order of their ids). A load balancer spreads every account's requests
  // over every replica, so each holds a share.
  int replicas = 1;
  int index = 0;
};

class FleetLimitStore {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<std::vector<FleetLease>>) &&>;
  virtual ~FleetLimitStore() = default;
  virtual void Exchange(std::vector<FleetReport> reports, Done done) = 0;
  // Fails calls still queued and later ones with UNAVAILABLE; returns once no callback runs.
  virtual void Shutdown() = 0;
};

// This replica's permits: F's whole permits divided among the replicas, the remainder going to
// `floor(F) mod replicas` of them, starting at a place that depends on the account so that
// different accounts favour different replicas. Every replica computes the same division, so
// the shares add up to floor(F), except that each replica holds at least one permit (a replica
// with none could not serve the account at all): with more replicas than F, the fleet may send
// up to `replicas` at once.
int LeaseShare(double fleet_limit, int replicas, int index, absl::string_view account);

}  // namespace gateway

#endif  // GATEWAY_LIMITS_FLEET_LIMIT_H_
