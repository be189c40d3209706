#include "idempotency/idempotency_guard.h"

#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/error_details.h"
#include "common/log.h"
#include "idempotency/outcome_codec.h"

namespace gateway {

class IdempotencyGuard::Call final : public PendingCreate,
                                     public std::enable_shared_from_this<Call> {
 public:
  Call(IdempotencyGuard& guard, std::string key, std::string fingerprint,
       std::string idempotency_key, absl::Time deadline, StartUpstream start, Done done)
      : guard_(guard),
        key_(std::move(key)),
        fingerprint_(std::move(fingerprint)),
        idempotency_key_(std::move(idempotency_key)),
        deadline_(deadline),
        start_(std::move(start)),
        done_(std::move(done)) {}

  void TryClaim() {
    const absl::Duration lease = std::max(deadline_ - guard_.clock_.Now(), absl::ZeroDuration()) +
                                 guard_.options_.lease_margin;
    guard_.store_.Claim(key_, fingerprint_, lease,
                        [self = shared_from_this()](absl::StatusOr<ClaimResult> result) {
                          self->OnClaim(std::move(result));
                        });
  }

  void Cancel() override {
    std::shared_ptr<PendingCreate> upstream;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (timer_id_.has_value()) guard_.timer_.Cancel(*timer_id_);
      upstream = upstream_;
    }
    // The upstream call reports CANCELLED through OnUpstreamDone, which releases the claim.
    if (upstream != nullptr) {
      upstream->Cancel();
    } else {
      Finish(Decorate(absl::CancelledError("the caller cancelled the request")));
    }
  }

 private:
  void OnClaim(absl::StatusOr<ClaimResult> result) {
    if (!result.ok()) {
      absl::Status status = result.status();
      if (absl::IsUnavailable(status)) {
        // Fail closed: without the store a retry could create a second subscription.
        status = absl::UnavailableError(
            absl::StrCat("idempotency store unavailable, so the request was not sent to Twilio: ",
                         status.message()));
      }
      SetErrorInfo(status, absl::IsResourceExhausted(status) ? "IDEMPOTENCY_STORE_FULL"
                                                             : "IDEMPOTENCY_STORE_UNAVAILABLE");
      Finish(Decorate(std::move(status), /*may_exist=*/false));
      return;
    }
    switch (result->state) {
      case ClaimResult::State::kClaimed:
        StartUpstreamCall(std::move(result->token));
        return;
      case ClaimResult::State::kDone:
        Replay(result->outcome);
        return;
      case ClaimResult::State::kInFlight:
        WaitForOther();
        return;
      case ClaimResult::State::kConflict: {
        absl::Status status = absl::FailedPreconditionError(
            "idempotency_key was already used for a different request (another call, callback, "
            "method or account); use a new key");
        SetErrorInfo(status, "IDEMPOTENCY_KEY_REUSED");
        Finish(Decorate(std::move(status), /*may_exist=*/false));
        return;
      }
    }
  }

  void StartUpstreamCall(std::string token) {
    {
      absl::MutexLock lock(&mu_);
      token_ = token;
      if (finished_) {
        // Cancelled while claiming: give the key back.
        guard_.store_.Release(key_, token_, [](absl::Status) {});
        return;
      }
    }
    std::shared_ptr<PendingCreate> upstream =
        std::move(start_)([self = shared_from_this()](absl::StatusOr<Subscription> outcome) {
          self->OnUpstreamDone(std::move(outcome));
        });
    bool cancelled = false;
    {
      absl::MutexLock lock(&mu_);
      upstream_ = upstream;
      cancelled = finished_;
    }
    if (cancelled) upstream->Cancel();
  }

  void OnUpstreamDone(absl::StatusOr<Subscription> outcome) {
    std::string token;
    {
      absl::MutexLock lock(&mu_);
      token = token_;
    }
    auto self = shared_from_this();
    if (IsReplayableOutcome(outcome)) {
      const std::string encoded = EncodeOutcome(outcome);
      guard_.store_.Complete(key_, token, encoded, guard_.options_.retention,
                             [self, outcome = std::move(outcome)](absl::Status stored) mutable {
                               if (!stored.ok()) {
                                 // The caller still gets the outcome; a retry with the key
                                 // re-asks Twilio with the same IdempotencyKey.
                                 Log(LogLevel::kWarning, "idempotency record not stored",
                                     {{"error", std::string(stored.message())}});
                               }
                               self->Finish(std::move(outcome));
                             });
    } else {
      // Unknown or transient: leave no record, so a retry with the key tries again.
      guard_.store_.Release(key_, token,
                            [self, outcome = std::move(outcome)](absl::Status) mutable {
                              self->Finish(std::move(outcome));
                            });
    }
  }

  void Replay(const std::string& encoded) {
    absl::StatusOr<absl::StatusOr<Subscription>> stored = DecodeOutcome(encoded);
    if (!stored.ok()) {
      Finish(Decorate(stored.status(), /*may_exist=*/true));
      return;
    }
    absl::StatusOr<Subscription> outcome = *std::move(stored);
    if (outcome.ok()) {
      outcome->replayed = true;
      outcome->attempts = 0;
    } else {
      absl::Status status = outcome.status();
      SetErrorInfo(status, "", {{"replayed", "true"}});
      outcome = status;
    }
    Finish(std::move(outcome));
  }

  void WaitForOther() {
    const absl::Time next = guard_.clock_.Now() + guard_.options_.poll_interval;
    if (next >= deadline_) {
      absl::Status status = absl::DeadlineExceededError(
          "another request with this idempotency_key is still in progress; retry with the same "
          "key to get its outcome");
      SetErrorInfo(status, "IDEMPOTENCY_KEY_IN_FLIGHT");
      Finish(Decorate(std::move(status), /*may_exist=*/true));
      return;
    }
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    timer_id_ = guard_.timer_.Schedule(next, [self = shared_from_this()]() mutable {
      {
        absl::MutexLock lock(&self->mu_);
        self->timer_id_.reset();
        if (self->finished_) return;
      }
      self->TryClaim();
    });
  }

  absl::Status Decorate(absl::Status status, bool may_exist = false) {
    SetErrorInfo(status, "",
                 {{"idempotency_key", idempotency_key_},
                  {"attempts", "0"},
                  {"subscription_may_exist", may_exist ? "true" : "false"}});
    return status;
  }

  void Finish(absl::StatusOr<Subscription> outcome) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Done done = std::move(done_);
    std::move(done)(std::move(outcome));
  }

  IdempotencyGuard& guard_;
  const std::string key_;
  const std::string fingerprint_;
  const std::string idempotency_key_;
  const absl::Time deadline_;
  StartUpstream start_;
  Done done_;

  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::string token_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<PendingCreate> upstream_ ABSL_GUARDED_BY(mu_);
  std::optional<Timer::TimerId> timer_id_ ABSL_GUARDED_BY(mu_);
};

IdempotencyGuard::IdempotencyGuard(IdempotencyOptions options, IdempotencyStore& store,
                                   Timer& timer, const Clock& clock)
    : options_(options), store_(store), timer_(timer), clock_(clock) {}

std::shared_ptr<PendingCreate> IdempotencyGuard::Run(const CreateSubscriptionRequest& request,
                                                     const std::string& scope, absl::Time deadline,
                                                     StartUpstream start, Done done) {
  auto call = std::make_shared<Call>(*this, absl::StrCat(scope, "/", request.idempotency_key),
                                     RequestFingerprint(request), request.idempotency_key, deadline,
                                     std::move(start), std::move(done));
  call->TryClaim();
  return call;
}

}  // namespace gateway
