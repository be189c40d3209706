// Which caller may use which Twilio accounts. A JSON file:
//
//   {
//     "callers": {
//       "billing-worker": {"accounts": ["default"]},
//       "spiffe://prod/ns/support/sa/agent": {"accounts": ["default", "AC0123..."]},
//       "ops-console": {"accounts": ["*"]}
//     }
//   }
//
// "default" is the gateway's own account (TWILIO_ACCOUNT_SID, whatever it is after a reload);
// "*" is any account the gateway's credentials reach (the main account and its subaccounts).
// A caller not listed may use nothing.
//
// Thread-safety: immutable once parsed.
#ifndef GATEWAY_AUTH_CALLER_POLICY_H_
#define GATEWAY_AUTH_CALLER_POLICY_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway {

class CallerPolicy {
 public:
  static absl::StatusOr<CallerPolicy> Parse(absl::string_view json);

  bool Allows(absl::string_view caller, absl::string_view account_sid,
              absl::string_view default_account_sid) const;

  size_t size() const { return accounts_by_caller_.size(); }

 private:
  absl::flat_hash_map<std::string, std::vector<std::string>> accounts_by_caller_;
};

}  // namespace gateway

#endif  // GATEWAY_AUTH_CALLER_POLICY_H_
