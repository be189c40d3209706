// FakeIdempotencyStore: a recording IdempotencyStore for unit tests. It records every call and,
// by default, answers none on its own: the test decides when, and with what, each call is
// answered. Scripted answers make it answer inline instead, as MemoryIdempotencyStore does.
//
// Usage:
//   FakeIdempotencyStore store;
//   ... code under test calls store.Claim(...) ...
//   EXPECT_EQ(store.claim(0).key, "scope/key");
//   store.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1"));  // runs the callback here
//
//   store.QueueClaimAnswer(FakeIdempotencyStore::InFlight());  // the next Claim answers inline
//   store.set_inline_status(absl::OkStatus());  // Complete()/Release() answer inline
//
// Each call is answered at most once; Answer*() returns false, running nothing, otherwise.
//
// Thread-safety: every method may be called from any thread; callbacks run on the thread that
// answers, with no internal lock held (so they may call the store again).
#ifndef GATEWAY_TESTS_FAKES_FAKE_IDEMPOTENCY_STORE_H_
#define GATEWAY_TESTS_FAKES_FAKE_IDEMPOTENCY_STORE_H_

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "idempotency/idempotency_store.h"

namespace gateway::testing {

class FakeIdempotencyStore final : public IdempotencyStore {
 public:
  struct ClaimCall {
    std::string key;
    std::string fingerprint;
    absl::Duration lease;
    absl::Duration retention;
  };
  struct RenewCall {
    std::string key;
    std::string token;
    absl::Duration lease;
  };
  struct CompleteCall {
    std::string key;
    std::string token;
    std::string outcome;
    absl::Duration retention;
  };
  struct ReleaseCall {
    std::string key;
    std::string token;
  };

  static ClaimResult Claimed(std::string token) {
    ClaimResult result;
    result.state = ClaimResult::State::kClaimed;
    result.token = std::move(token);
    return result;
  }
  // A claim that took over a record first claimed `age` ago by an owner now gone.
  static ClaimResult TakenOver(std::string token, absl::Duration age) {
    ClaimResult result = Claimed(std::move(token));
    result.taken_over_age = age;
    return result;
  }
  static ClaimResult InFlight() {
    ClaimResult result;
    result.state = ClaimResult::State::kInFlight;
    return result;
  }
  static ClaimResult Done(std::string outcome) {
    ClaimResult result;
    result.state = ClaimResult::State::kDone;
    result.outcome = std::move(outcome);
    return result;
  }
  static ClaimResult Conflict() {
    ClaimResult result;
    result.state = ClaimResult::State::kConflict;
    return result;
  }

  void Claim(const std::string& key, const std::string& fingerprint, absl::Duration lease,
             absl::Duration retention, ClaimCallback done) override {
    std::optional<absl::StatusOr<ClaimResult>> inline_answer;
    size_t index = 0;
    {
      absl::MutexLock lock(&mu_);
      index = claims_.size();
      claims_.push_back({ClaimCall{key, fingerprint, lease, retention}, std::move(done), false});
      if (!scripted_claims_.empty()) {
        inline_answer = std::move(scripted_claims_.front());
        scripted_claims_.pop_front();
      }
    }
    if (inline_answer.has_value()) AnswerClaim(index, *std::move(inline_answer));
  }

  void Renew(const std::string& key, const std::string& token, absl::Duration lease,
             DoneCallback done) override {
    std::optional<absl::Status> inline_answer;
    size_t index = 0;
    {
      absl::MutexLock lock(&mu_);
      index = renews_.size();
      renews_.push_back({RenewCall{key, token, lease}, std::move(done), false});
      inline_answer = inline_status_;
    }
    if (inline_answer.has_value()) AnswerRenew(index, *inline_answer);
  }

  void Complete(const std::string& key, const std::string& token, const std::string& outcome,
                absl::Duration retention, DoneCallback done) override {
    std::optional<absl::Status> inline_answer;
    size_t index = 0;
    {
      absl::MutexLock lock(&mu_);
      index = completes_.size();
      completes_.push_back({CompleteCall{key, token, outcome, retention}, std::move(done), false});
      inline_answer = inline_status_;
    }
    if (inline_answer.has_value()) AnswerComplete(index, *inline_answer);
  }

  void Release(const std::string& key, const std::string& token, DoneCallback done) override {
    std::optional<absl::Status> inline_answer;
    size_t index = 0;
    {
      absl::MutexLock lock(&mu_);
      index = releases_.size();
      releases_.push_back({ReleaseCall{key, token}, std::move(done), false});
      inline_answer = inline_status_;
    }
    if (inline_answer.has_value()) AnswerRelease(index, *inline_answer);
  }

  // The next Claim() calls are answered inline with these, in order.
  void QueueClaimAnswer(absl::StatusOr<ClaimResult> answer) {
    absl::MutexLock lock(&mu_);
    scripted_claims_.push_back(std::move(answer));
  }
  // When set, Renew(), Complete() and Release() answer inline with this status.
  void set_inline_status(std::optional<absl::Status> status) {
    absl::MutexLock lock(&mu_);
    inline_status_ = std::move(status);
  }

  bool AnswerClaim(size_t index, absl::StatusOr<ClaimResult> answer) {
    return Answer(claims_, index, std::move(answer));
  }
  bool AnswerRenew(size_t index, absl::Status status) {
    return Answer(renews_, index, std::move(status));
  }
  bool AnswerComplete(size_t index, absl::Status status) {
    return Answer(completes_, index, std::move(status));
  }
  bool AnswerRelease(size_t index, absl::Status status) {
    return Answer(releases_, index, std::move(status));
  }

  size_t claim_count() const {
    absl::MutexLock lock(&mu_);
    return claims_.size();
  }
  size_t renew_count() const {
    absl::MutexLock lock(&mu_);
    return renews_.size();
  }
  size_t complete_count() const {
    absl::MutexLock lock(&mu_);
    return completes_.size();
  }
  size_t release_count() const {
    absl::MutexLock lock(&mu_);
    return releases_.size();
  }
  // The `index`th call of each kind (from 0).
  ClaimCall claim(size_t index) const {
    absl::MutexLock lock(&mu_);
    return claims_.at(index).call;
  }
  RenewCall renew(size_t index) const {
    absl::MutexLock lock(&mu_);
    return renews_.at(index).call;
  }
  CompleteCall complete(size_t index) const {
    absl::MutexLock lock(&mu_);
    return completes_.at(index).call;
  }
  ReleaseCall release(size_t index) const {
    absl::MutexLock lock(&mu_);
    return releases_.at(index).call;
  }

 private:
  template <typename Call, typename Callback>
  struct Recorded {
    Call call;
    Callback callback;
    bool answered = false;
  };

  template <typename Call, typename Callback, typename Value>
  bool Answer(std::vector<Recorded<Call, Callback>>& calls, size_t index, Value answer) {
    Callback callback;
    {
      absl::MutexLock lock(&mu_);
      if (index >= calls.size() || calls[index].answered) return false;
      calls[index].answered = true;
      callback = std::move(calls[index].callback);
    }
    std::move(callback)(std::move(answer));
    return true;
  }

  mutable absl::Mutex mu_;
  std::vector<Recorded<ClaimCall, ClaimCallback>> claims_ ABSL_GUARDED_BY(mu_);
  std::vector<Recorded<RenewCall, DoneCallback>> renews_ ABSL_GUARDED_BY(mu_);
  std::vector<Recorded<CompleteCall, DoneCallback>> completes_ ABSL_GUARDED_BY(mu_);
  std::vector<Recorded<ReleaseCall, DoneCallback>> releases_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::StatusOr<ClaimResult>> scripted_claims_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> inline_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway::testing

#endif  // GATEWAY_TESTS_FAKES_FAKE_IDEMPOTENCY_STORE_H_
