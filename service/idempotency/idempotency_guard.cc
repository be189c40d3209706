#include "idempotency/idempotency_guard.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/error_details.h"
#include "common/log.h"
#include "idempotency/outcome_codec.h"

namespace gateway {
namespace {

// Log fields stay bounded whatever the caller sent (keys are validated to 255 characters).
std::string Bounded(const std::string& text) { return text.substr(0, 255); }

}  // namespace

// One claimed key, from its claim to its final record. The caller is answered once (answered_);
// the record may outlive the caller while a resolution runs.
//   claiming -> [waiting for another owner] -> caller run -> done
//                                                        \-> resolution -> done / handed over
class IdempotencyGuard::Call final : public PendingCall, public std::enable_shared_from_this<Call> {
 public:
  Call(IdempotencyGuard& guard, GuardedRequest request, StartUpstream start, Done done)
      : guard_(guard),
        key_(std::move(request.record_key)),
        fingerprint_(std::move(request.fingerprint)),
        idempotency_key_(std::move(request.idempotency_key)),
        call_sid_(std::move(request.call_sid)),
        deadline_(request.deadline),
        start_(std::move(start)),
        done_(std::move(done)) {}

  void TryClaim() {
    guard_.store_.Claim(key_, fingerprint_, guard_.options_.lease, guard_.options_.retention,
                        [self = shared_from_this()](absl::StatusOr<ClaimResult> result) {
                          self->OnClaim(std::move(result));
                        });
  }

  // The caller went away. Its run of attempts is cancelled (which may leave the outcome
  // ambiguous, and so start a resolution); a resolution goes on without it.
  void Cancel() override {
    std::shared_ptr<PendingCall> upstream;
    {
      absl::MutexLock lock(&mu_);
      if (answered_) return;
      if (phase_ == Phase::kCallerRun) upstream = upstream_;
    }
    if (upstream != nullptr) {
      upstream->Cancel();  // Reports CANCELLED through OnCallerRunDone.
    } else {
      Answer(Decorate(absl::CancelledError("the caller cancelled the request"), may_exist()));
    }
  }

  // Drain: ends the resolution's attempts; OnResolved then hands the record over.
  void StopResolution() {
    std::shared_ptr<PendingCall> upstream;
    {
      absl::MutexLock lock(&mu_);
      upstream = upstream_;
    }
    if (upstream != nullptr) upstream->Cancel();
  }

  // From the guard's lease tick: renews the lease if it is a third old.
  void RenewLeaseIfDue(absl::Time now) {
    std::string token;
    {
      absl::MutexLock lock(&mu_);
      if (!owned_ || now - renewed_ < guard_.options_.lease / 3) return;
      renewed_ = now;
      token = token_;
    }
    guard_.store_.Renew(
        key_, token, guard_.options_.lease, [self = shared_from_this()](absl::Status renewed) {
          if (absl::IsFailedPrecondition(renewed)) {
            // Taken over: the new owner sends with the same key, which Twilio
            // deduplicates within its window.
            Log(LogLevel::kWarning, "idempotency claim lost", {{"call_sid", self->call_sid_}});
          }
        });
  }

 private:
  enum class Phase { kClaiming, kCallerRun, kResolving, kFinished };

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
      Answer(Decorate(std::move(status), /*may_exist=*/false));
      return;
    }
    switch (result->state) {
      case ClaimResult::State::kClaimed:
        OnClaimed(*std::move(result));
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
        Answer(Decorate(std::move(status), /*may_exist=*/false));
        return;
      }
    }
  }

  void OnClaimed(ClaimResult claim) {
    const absl::Time now = guard_.clock_.Now();
    bool caller_gone = false;
    {
      absl::MutexLock lock(&mu_);
      token_ = std::move(claim.token);
      // A record taken over from an owner that is gone: it may have sent, so Twilio's memory
      // of the key is counted from the first claim, not from now.
      window_start_ = now - claim.taken_over_age.value_or(absl::ZeroDuration());
      may_exist_ = claim.taken_over_age.has_value();
      owned_ = true;
      renewed_ = now;
      caller_gone = answered_;
      phase_ = Phase::kCallerRun;
    }
    if (claim.taken_over_age.has_value()) {
      Log(LogLevel::kInfo, "idempotency record taken over",
          {{"idempotency_key", Bounded(idempotency_key_)},
           {"call_sid", call_sid_},
           {"first_claimed_ms_ago",
            absl::StrCat(absl::ToInt64Milliseconds(*claim.taken_over_age))}});
    }
    guard_.Own(shared_from_this());
    if (caller_gone) {
      // Cancelled while claiming: give the key back, or hand it on if an owner before us may
      // have sent.
      if (may_exist()) {
        HandOver(std::nullopt);
      } else {
        Release(std::nullopt);
      }
      return;
    }
    UpstreamPlan plan;
    {
      absl::MutexLock lock(&mu_);
      plan = {.deadline = deadline_, .window_start = window_start_, .may_exist = may_exist_};
    }
    std::shared_ptr<PendingCall> upstream =
        start_(plan, [self = shared_from_this()](UpstreamOutcome outcome) {
          self->OnCallerRunDone(std::move(outcome));
        });
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      if (phase_ == Phase::kCallerRun) upstream_ = upstream;
      cancel = answered_;
    }
    if (cancel) upstream->Cancel();
  }

  void OnCallerRunDone(UpstreamOutcome outcome) {
    bool may_exist = false;
    {
      absl::MutexLock lock(&mu_);
      upstream_.reset();
      may_exist_ = may_exist_ || outcome.may_exist;
      may_exist = may_exist_;
      attempts_ = outcome.attempts;
      last_status_ = outcome.result.status();
    }
    if (outcome.settled) {
      Record(std::move(outcome.result), /*resolution=*/false);
    } else if (!may_exist) {
      // No attempt can have reached Twilio (throttled, never connected): leave no record, so a
      // retry with the key tries again, and the key may even be reused.
      Release(std::move(outcome.result));
    } else if (outcome.window_closed) {
      Record(UnknownStatus(), /*resolution=*/false);
    } else if (absl::IsCancelled(outcome.result.status())) {
      StartResolution(outcome.result.status());
    } else {
      StartResolution(std::nullopt);
    }
  }

  // `answer` ends the caller's wait at once (it cancelled); otherwise the caller waits for the
  // resolution within its deadline. Counted as started before the caller hears anything.
  void StartResolution(std::optional<absl::Status> answer) {
    if (guard_.metrics_ != nullptr) guard_.metrics_->Resolution("started");
    Log(LogLevel::kInfo, "resolution started",
        {{"idempotency_key", Bounded(idempotency_key_)}, {"call_sid", call_sid_}});
    guard_.Track(shared_from_this());
    UpstreamPlan plan;
    const absl::Time answer_at = deadline_ - guard_.options_.answer_margin;
    bool answer_now = false;
    {
      absl::MutexLock lock(&mu_);
      phase_ = Phase::kResolving;
      plan = {.window_start = window_start_,
              .may_exist = true,
              .resolution = true,
              .retry_after = GetRetryDelay(last_status_)};
      if (!answered_ && !answer.has_value()) {
        // The caller waits for the resolution within its deadline, then is told to retry.
        if (answer_at > guard_.clock_.Now()) {
          answer_timer_ = guard_.timer_.Schedule(answer_at, [self = shared_from_this()] {
            {
              absl::MutexLock lock(&self->mu_);
              self->answer_timer_.reset();
            }
            self->Answer(self->ResolvingOutcome());
          });
        } else {
          answer_now = true;
        }
      }
    }
    if (answer.has_value()) {
      Answer(Decorate(*std::move(answer), /*may_exist=*/true));
    } else if (answer_now) {
      Answer(ResolvingOutcome());
    }
    std::shared_ptr<PendingCall> upstream =
        start_(plan, [self = shared_from_this()](UpstreamOutcome outcome) {
          self->OnResolved(std::move(outcome));
        });
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kResolving) upstream_ = std::move(upstream);
  }

  void OnResolved(UpstreamOutcome outcome) {
    {
      absl::MutexLock lock(&mu_);
      upstream_.reset();
      attempts_ += outcome.attempts;
      last_status_ = outcome.result.status();
    }
    // Out of attempts, or the gateway is stopping, while the key may still be recognized: the
    // next claimant (a caller retry, on any replica) takes the record over.
    const absl::string_view result = outcome.settled         ? "resolved"
                                     : outcome.window_closed ? "unknown"
                                                             : "handed_over";
    // Counted and logged before anyone hears the outcome.
    if (guard_.metrics_ != nullptr) guard_.metrics_->Resolution(result);
    Log(LogLevel::kInfo, "resolution ended",
        {{"idempotency_key", Bounded(idempotency_key_)},
         {"call_sid", call_sid_},
         {"result", std::string(result)},
         {"code", absl::StatusCodeToString(outcome.result.status().code())},
         {"attempts", absl::StrCat(outcome.attempts)}});
    if (result == "resolved") {
      Record(std::move(outcome.result), /*resolution=*/true);
    } else if (result == "unknown") {
      Record(UnknownStatus(), /*resolution=*/true);
    } else {
      HandOver(ResolvingOutcome());
    }
  }

  // Stores a final outcome, then answers the caller (if it still waits) with it.
  void Record(absl::StatusOr<Resource> result, bool resolution) {
    StopRenewal();
    Outcome outcome = {.result = std::move(result), .report = MakeReport(may_exist())};
    const std::string encoded = EncodeOutcome(outcome.result, outcome.report.may_exist);
    guard_.store_.Complete(key_, token(), encoded, guard_.options_.retention,
                           [self = shared_from_this(), outcome = std::move(outcome),
                            resolution](absl::Status stored) mutable {
                             if (!stored.ok()) {
                               // The caller still gets the outcome; a retry with the key finds the
                               // record in flight and, once its lease ends, takes it over.
                               Log(LogLevel::kWarning, "idempotency record not stored",
                                   {{"error", std::string(stored.message())}});
                             }
                             self->Answer(std::move(outcome));
                             if (resolution) self->guard_.Untrack(self.get());
                           });
  }

  void Release(std::optional<absl::StatusOr<Resource>> result) {
    StopRenewal();
    guard_.store_.Release(
        key_, token(),
        [self = shared_from_this(), result = std::move(result)](absl::Status) mutable {
          if (result.has_value()) {
            self->Answer({.result = *std::move(result), .report = self->MakeReport(false)});
          }
        });
  }

  // Leaves the record in flight with its lease ended, so the next claimant takes it over.
  void HandOver(std::optional<Outcome> answer) {
    StopRenewal();
    bool tracked = false;
    {
      absl::MutexLock lock(&mu_);
      tracked = phase_ == Phase::kResolving;
      phase_ = Phase::kFinished;
    }
    guard_.store_.Renew(
        key_, token(), absl::ZeroDuration(),
        [self = shared_from_this(), answer = std::move(answer), tracked](absl::Status) mutable {
          if (answer.has_value()) self->Answer(*std::move(answer));
          if (tracked) self->guard_.Untrack(self.get());
        });
  }

  void StopRenewal() {
    {
      absl::MutexLock lock(&mu_);
      if (!owned_) return;
      owned_ = false;
    }
    guard_.Disown(this);
  }

  void Replay(const std::string& encoded) {
    absl::StatusOr<StoredOutcome> stored = DecodeOutcome(encoded);
    if (!stored.ok()) {
      Answer(Decorate(stored.status(), /*may_exist=*/true));
      return;
    }
    Answer({.result = std::move(stored->result),
            .report = {.idempotency_key = idempotency_key_,
                       .attempts = 0,
                       .may_exist = stored->may_exist,
                       .replayed = true}});
  }

  void WaitForOther() {
    const absl::Time next = guard_.clock_.Now() + guard_.options_.poll_interval;
    if (next >= deadline_ - guard_.options_.answer_margin) {
      absl::Status status = absl::UnavailableError(
          "another request with this idempotency_key is still in progress, or its outcome is "
          "being resolved; retry with the same key to get its outcome");
      SetRetryDelay(status, guard_.options_.resolving_retry_delay);
      SetErrorInfo(status, "IDEMPOTENCY_KEY_IN_FLIGHT");
      Answer(Decorate(std::move(status), /*may_exist=*/true));
      return;
    }
    absl::MutexLock lock(&mu_);
    if (answered_) return;
    poll_timer_ = guard_.timer_.Schedule(next, [self = shared_from_this()]() mutable {
      {
        absl::MutexLock lock(&self->mu_);
        self->poll_timer_.reset();
        if (self->answered_) return;
      }
      self->TryClaim();
    });
  }

  Outcome ResolvingOutcome() {
    absl::Status status = absl::UnavailableError(
        "an attempt may have taken effect and Twilio has not confirmed it yet; the gateway is "
        "resolving it in the background: retry with the same idempotency_key");
    {
      absl::MutexLock lock(&mu_);
      if (auto twilio = GetTwilioError(last_status_)) SetTwilioError(status, *twilio);
    }
    SetRetryDelay(status, guard_.options_.resolving_retry_delay);
    SetErrorInfo(status, "OUTCOME_RESOLVING");
    return Decorate(std::move(status), /*may_exist=*/true);
  }

  static absl::Status UnknownStatus() {
    absl::Status status = absl::UnknownError(
        "the operation may or may not have taken effect: Twilio gave no definite answer while "
        "it could still recognize the idempotency key, so the gateway will not send this key "
        "again. Do not retry with this key; a new key may act a second time");
    SetErrorInfo(status, "OUTCOME_UNKNOWN");
    return status;
  }

  Report MakeReport(bool may_exist) {
    absl::MutexLock lock(&mu_);
    return {.idempotency_key = idempotency_key_, .attempts = attempts_, .may_exist = may_exist};
  }

  Outcome Decorate(absl::Status status, bool may_exist) {
    return {.result = std::move(status), .report = MakeReport(may_exist)};
  }

  // Answers the caller once; later answers (a resolution ending after the caller's deadline)
  // only update the record.
  void Answer(Outcome outcome) {
    Done done;
    {
      absl::MutexLock lock(&mu_);
      if (answered_) return;
      answered_ = true;
      for (std::optional<Timer::TimerId>* timer : {&poll_timer_, &answer_timer_}) {
        if (timer->has_value()) guard_.timer_.Cancel(**timer);
        timer->reset();
      }
      done = std::move(done_);
    }
    std::move(done)(std::move(outcome));
  }

  bool may_exist() {
    absl::MutexLock lock(&mu_);
    return may_exist_;
  }

  std::string token() {
    absl::MutexLock lock(&mu_);
    return token_;
  }

  IdempotencyGuard& guard_;
  const std::string key_;
  const std::string fingerprint_;
  const std::string idempotency_key_;
  const std::string call_sid_;
  const absl::Time deadline_;
  StartUpstream start_;  // Called on the store, transport or timer thread that moves us on.
  Done done_;

  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kClaiming;
  bool answered_ ABSL_GUARDED_BY(mu_) = false;
  bool owned_ ABSL_GUARDED_BY(mu_) = false;  // Holding the claim: the lease is renewed.
  bool may_exist_ ABSL_GUARDED_BY(mu_) = false;
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  std::string token_ ABSL_GUARDED_BY(mu_);
  absl::Time window_start_ ABSL_GUARDED_BY(mu_);
  absl::Status last_status_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<PendingCall> upstream_ ABSL_GUARDED_BY(mu_);
  std::optional<Timer::TimerId> poll_timer_ ABSL_GUARDED_BY(mu_);
  std::optional<Timer::TimerId> answer_timer_ ABSL_GUARDED_BY(mu_);
  absl::Time renewed_ ABSL_GUARDED_BY(mu_);  // When the lease was last taken or renewed.
};

IdempotencyGuard::IdempotencyGuard(IdempotencyOptions options, IdempotencyStore& store,
                                   Timer& timer, const Clock& clock, GatewayMetrics* metrics)
    : options_(options), store_(store), timer_(timer), clock_(clock), metrics_(metrics) {}

IdempotencyGuard::~IdempotencyGuard() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  if (lease_tick_.has_value()) timer_.Cancel(*lease_tick_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !renewing_; };
  mu_.Await(absl::Condition(&idle));
}

void IdempotencyGuard::Own(const std::shared_ptr<Call>& call) {
  absl::MutexLock lock(&mu_);
  owned_.emplace(call.get(), call);
  if (lease_tick_.has_value() || renewing_ || stopping_) return;
  lease_tick_ = timer_.Schedule(clock_.Now() + options_.lease / 3, [this] { RenewLeases(); });
}

void IdempotencyGuard::Disown(Call* call) {
  absl::MutexLock lock(&mu_);
  owned_.erase(call);
}

void IdempotencyGuard::RenewLeases() {
  std::vector<std::shared_ptr<Call>> owned;
  {
    absl::MutexLock lock(&mu_);
    lease_tick_.reset();
    if (stopping_) return;
    renewing_ = true;
    for (const auto& [unused, weak] : owned_) {
      if (std::shared_ptr<Call> call = weak.lock()) owned.push_back(std::move(call));
    }
  }
  const absl::Time now = clock_.Now();
  for (const std::shared_ptr<Call>& call : owned) call->RenewLeaseIfDue(now);
  owned.clear();  // Released outside mu_: a call's last reference may go here.
  absl::MutexLock lock(&mu_);
  renewing_ = false;
  // Runs again while anything is owned; stops when nothing is, until the next Own().
  if (!stopping_ && !owned_.empty()) {
    lease_tick_ = timer_.Schedule(clock_.Now() + options_.lease / 3, [this] { RenewLeases(); });
  }
}

std::shared_ptr<PendingCall> IdempotencyGuard::Run(GuardedRequest request, StartUpstream start,
                                                   Done done) {
  auto call = std::make_shared<Call>(*this, std::move(request), std::move(start), std::move(done));
  call->TryClaim();
  return call;
}

void IdempotencyGuard::Track(std::shared_ptr<Call> call) {
  absl::MutexLock lock(&mu_);
  Call* key = call.get();
  resolving_.emplace(key, std::move(call));
}

void IdempotencyGuard::Untrack(Call* call) {
  absl::MutexLock lock(&mu_);
  resolving_.erase(call);
}

int IdempotencyGuard::resolving() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(resolving_.size());
}

void IdempotencyGuard::Drain(absl::Time deadline) {
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return resolving_.empty(); };
  std::vector<std::shared_ptr<Call>> left;
  {
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithDeadline(absl::Condition(&idle), deadline)) return;
    for (const auto& [unused, call] : resolving_) left.push_back(call);
  }
  Log(LogLevel::kWarning, "handing over unresolved idempotency records",
      {{"count", absl::StrCat(left.size())}});
  for (const std::shared_ptr<Call>& call : left) call->StopResolution();
  absl::MutexLock lock(&mu_);
  // Mutex waits, like the drain deadline, are in real time, not the injected clock's.
  mu_.AwaitWithDeadline(absl::Condition(&idle), std::max(deadline, absl::Now()) + absl::Seconds(2));
}

}  // namespace gateway
