#include "upstream/upstream_engine.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/error_details.h"
#include "common/log.h"
#include "twilio/attempt.h"

namespace gateway {
namespace {

// Below this much time left, an attempt cannot plausibly complete; end with the deadline.
constexpr absl::Duration kMinAttemptTime = absl::Milliseconds(5);

using Result = std::optional<UpstreamOutcome>;

// What an attempt says about the account's concurrency limit: a 429 is Twilio's overload signal;
// any other answer (a 4xx rejection included) was accepted for processing; a 5xx or no answer
// says nothing about concurrency.
UpstreamFeedback LimitFeedback(const AttemptResult& attempt) {
  if (attempt.throttled) return UpstreamFeedback::kThrottled;
  return attempt.accepted ? UpstreamFeedback::kAccepted : UpstreamFeedback::kOther;
}

}  // namespace

// One run of attempts: a small state machine driven by limiter, transport and timer callbacks.
//   waiting for a permit (ticket_) -> attempt in flight (transfer_id_) -> waiting to retry
//   (timer_id_) -> ... -> finished (done_ consumed).
// Transitions happen under mu_; `done`, limiter Release() and Cancel() run outside it, because
// they may call into other runs.
class UpstreamEngine::Run final : public PendingCall, public std::enable_shared_from_this<Run> {
 public:
  Run(UpstreamEngine& engine, std::shared_ptr<const TwilioAccount> account,
      std::shared_ptr<const TwilioCall> call, const UpstreamPlan& plan, Done done)
      : engine_(engine),
        account_(std::move(account)),
        call_(std::move(call)),
        naturally_idempotent_(call_->naturally_idempotent),
        started_(engine.clock_.Now()),
        resolution_(plan.resolution),
        max_attempts_(plan.resolution ? engine.options_.resolution_max_attempts
                                      : engine.options_.retry.max_attempts),
        resend_until_(plan.window_start + engine.options_.key_window -
                      engine.options_.attempt_timeout),
        // A resolution has no caller: the key window bounds it.
        deadline_(plan.resolution ? resend_until_ + engine.options_.attempt_timeout
                                  : plan.deadline),
        first_retry_after_(plan.retry_after),
        done_(std::move(done)),
        may_exist_(plan.may_exist) {}

  void Start() {
    if (!resolution_) {
      BeginAttempt();
      return;
    }
    // A resolution follows a failed attempt: back off first, as a retry would.
    absl::MutexLock lock(&mu_);
    ScheduleAttemptLocked(engine_.clock_.Now() + RetryDelay(0, engine_.options_.retry,
                                                            engine_.random_.Uniform01(),
                                                            first_retry_after_));
  }

  void Cancel() override {
    Result result;
    std::optional<ConcurrencyLimiter::Ticket> ticket;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (transfer_id_.has_value()) {
        engine_.transport_.Cancel(*transfer_id_);
        // The abandoned request may already have reached Twilio.
        may_exist_ = true;
      }
      if (timer_id_.has_value()) engine_.timer_.Cancel(*timer_id_);
      ticket = std::exchange(ticket_, std::nullopt);
      result = FinishLocked(absl::CancelledError("the caller cancelled the request"));
    }
    if (ticket.has_value()) limiter()->Cancel(*ticket);
    Deliver(std::move(result));
  }

 private:
  ConcurrencyLimiter* limiter() const { return engine_.controls_.limiter; }
  GatewayMetrics* metrics() const { return engine_.controls_.metrics; }

  // Gets an upstream permit, then sends. Called with no lock held.
  void BeginAttempt() {
    if (resolution_ && !SpendResolutionBudget()) return;
    if (limiter() == nullptr || limiter()->TryAcquire(call_->account_sid)) {
      OnPermit(absl::OkStatus());
      return;
    }
    Result result;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      const ConcurrencyLimiter::Ticket ticket = limiter()->Enqueue(
          call_->account_sid, deadline_, [self = shared_from_this()](absl::Status granted) mutable {
            self->OnPermit(std::move(granted));
          });
      if (ticket != 0) {
        ticket_ = ticket;
        return;
      }
      absl::Status status = absl::ResourceExhaustedError(
          "too many requests queued for this account's upstream concurrency limit");
      SetErrorInfo(status, "GATEWAY_QUEUE_FULL");
      result = FinishLocked(std::move(status));
    }
    Deliver(std::move(result));
  }

  // A resolution attempt spends from the resolution budget. When it is spent, the resolution
  // waits for it (new runs refill it) as long as an attempt could still start in the key
  // window; false when the attempt must not go now.
  bool SpendResolutionBudget() {
    RetryBudget* budget = engine_.controls_.resolution_budget;
    if (budget == nullptr) return true;
    Result result;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return false;
      // The resolution budget is a RetryBudget used as credit (RecordSuccess) and debit
      // (RecordFailure): AllowRetry() says whether credit is left.
      if (budget->AllowRetry()) {
        budget->RecordFailure();
        return true;
      }
      const absl::Time next =
          engine_.clock_.Now() +
          FullJitterBackoff(++budget_waits_, engine_.options_.retry.backoff_base,
                            engine_.options_.retry.backoff_cap, engine_.random_.Uniform01());
      if (MaySendAtLocked(next)) {
        ScheduleAttemptLocked(next);
        return false;
      }
      result = FinishLocked(WindowClosedLocked());
    }
    Deliver(std::move(result));
    return false;
  }

  void OnPermit(absl::Status granted) {
    Result result;
    bool give_back = false;
    {
      absl::MutexLock lock(&mu_);
      ticket_.reset();
      if (finished_) {
        give_back = granted.ok();
      } else if (!granted.ok()) {
        if (absl::IsDeadlineExceeded(granted)) {
          result = FinishLocked(DeadlineStatusLocked(granted.message()));
        } else {
          result = FinishLocked(std::move(granted));
        }
      } else {
        result = SendLocked();
        give_back = result.has_value();
      }
    }
    if (give_back && limiter() != nullptr) limiter()->Release(call_->account_sid);
    Deliver(std::move(result));
  }

  // Sends one attempt while holding a permit; returns a result when no attempt fits.
  Result SendLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = engine_.clock_.Now();
    if (!MaySendAtLocked(now)) return FinishLocked(WindowClosedLocked());
    const absl::Duration remaining = deadline_ - now;
    if (remaining < kMinAttemptTime) return FinishLocked(DeadlineStatusLocked());
    if (RetryBudget* budget = engine_.controls_.resolution_budget;
        budget != nullptr && !resolution_ && attempts_ == 0) {
      // Every run that reaches Twilio earns resolutions a share of an attempt, so that in an
      // outage they add at most that share to the callers' attempts.
      budget->RecordSuccess();
    }
    const absl::Duration attempt_timeout = std::min(engine_.options_.attempt_timeout, remaining);
    attempt_bounded_by_deadline_ = attempt_timeout == remaining;
    ++attempts_;
    attempt_started_ = now;
    // Safe under mu_: the transport never runs the callback inline.
    transfer_id_ = engine_.transport_.Send(
        BuildHttpRequest(engine_.options_.base_url, account_->credentials, *call_, attempt_timeout),
        [self = shared_from_this()](HttpResult http) mutable {
          self->OnAttemptDone(std::move(http));
        });
    return std::nullopt;
  }

  void OnAttemptDone(HttpResult http) {
    const absl::Time now = engine_.clock_.Now();
    AttemptResult attempt = ClassifyAttempt(call_->kind, http, now);
    if (limiter() != nullptr) {
      absl::Time sent;
      {
        absl::MutexLock lock(&mu_);
        sent = attempt_started_;
      }
      // While the permit is still held, so that the limit learns how much of it was in use.
      limiter()->Feedback(call_->account_sid, LimitFeedback(attempt), sent);
      limiter()->Release(call_->account_sid);
    }
    Result result;
    {
      absl::MutexLock lock(&mu_);
      transfer_id_.reset();
      if (finished_) return;
      if (metrics() != nullptr) {
        metrics()->UpstreamAttempt(attempt.http_status, attempt.failure, now - attempt_started_);
      }
      result = HandleAttemptLocked(std::move(attempt));
    }
    Deliver(std::move(result));
  }

  // Returns a result when the run is over, std::nullopt when a retry was scheduled.
  Result HandleAttemptLocked(AttemptResult attempt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Resolutions answer to their own budget (checked before each send), not the callers'.
    RetryBudget* budget = resolution_ ? nullptr : engine_.controls_.retry_budget;
    // Before the checks below: a Delete's 404 is success when this attempt's own earlier send
    // may have deleted it.
    may_exist_ = may_exist_ || attempt.may_have_acted;
    if (attempt.outcome == AttemptOutcome::kSucceeded) {
      if (budget != nullptr) budget->RecordSuccess();
      return FinishLocked(std::move(attempt.result), /*settled=*/true);
    }
    if (call_->not_found_after_effect_is_success && may_exist_ && attempt.http_status == 404) {
      // An earlier attempt may have acted: what the caller asked for is done. The answer is
      // the operation's empty success (a Delete's 204 has no body either).
      if (budget != nullptr) budget->RecordSuccess();
      return FinishLocked(ParseResource(call_->kind, ""), /*settled=*/true);
    }
    if (attempt.outcome == AttemptOutcome::kStopped) return FinishLocked(attempt.result.status());
    const absl::Status status = attempt.result.status();
    attempt_log_.push_back(absl::StrCat(attempts_, ": ", attempt.summary));
    last_status_ = status;
    Log(LogLevel::kDebug, "attempt failed",
        {{"operation", std::string(OperationName(call_->kind))},
         {"call_sid", call_->call_sid},
         {"idempotency_key", call_->idempotency_key},
         {"attempt", absl::StrCat(attempts_)},
         {"why", attempt.summary}});

    if (attempt.timed_out && attempt_bounded_by_deadline_) {
      return FinishLocked(DeadlineStatusLocked());
    }
    if (!ShouldRetry(attempt.outcome, engine_.options_.retry, naturally_idempotent_)) {
      // With ambiguous retries turned off, nothing will ever resend this key.
      if (attempt.outcome == AttemptOutcome::kAmbiguous) window_closed_ = true;
      return FinishLocked(status, attempt.settled);
    }
    if (budget != nullptr) budget->RecordFailure();
    if (attempts_ >= max_attempts_) return FinishLocked(GiveUp(status, "gave up after"));
    if (budget != nullptr && !budget->AllowRetry()) {
      // Twilio is failing broadly: retrying now would only add load.
      return FinishLocked(GiveUp(status, "retry budget exhausted after"));
    }
    const absl::Duration delay = RetryDelay(attempts_ - 1, engine_.options_.retry,
                                            engine_.random_.Uniform01(), attempt.retry_after);
    const absl::Time next = engine_.clock_.Now() + delay;
    if (!MaySendAtLocked(next)) return FinishLocked(WindowClosedLocked());
    if (next + kMinAttemptTime >= deadline_) {
      // The next attempt could not finish in time: answer now rather than at the deadline.
      return FinishLocked(DeadlineStatusLocked());
    }
    if (metrics() != nullptr) metrics()->Retry(attempt.retry_reason);
    ScheduleAttemptLocked(next);
    return std::nullopt;
  }

  void ScheduleAttemptLocked(absl::Time when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    timer_id_ = engine_.timer_.Schedule(when, [self = shared_from_this()]() mutable {
      {
        absl::MutexLock lock(&self->mu_);
        self->timer_id_.reset();
        if (self->finished_) return;
      }
      self->BeginAttempt();
    });
  }

  absl::Status GiveUp(const absl::Status& status, absl::string_view why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return WithMessage(status, absl::StrCat(status.message(), " (", why, " ", attempts_,
                                            " attempts: ", absl::StrJoin(attempt_log_, "; "), ")"));
  }

  absl::Status DeadlineStatusLocked(absl::string_view why = "") ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string message = absl::StrCat("deadline of ", absl::FormatDuration(deadline_ - started_),
                                       " reached after ", attempts_, " attempt(s)");
    if (!why.empty()) absl::StrAppend(&message, " (", why, ")");
    if (!attempt_log_.empty()) absl::StrAppend(&message, ": ", absl::StrJoin(attempt_log_, "; "));
    absl::Status status = absl::DeadlineExceededError(message);
    // Keep what Twilio said last, so the caller sees why the attempts failed and, with its
    // Retry-After, when to try again.
    if (auto twilio = GetTwilioError(last_status_)) SetTwilioError(status, *twilio);
    if (auto delay = GetRetryDelay(last_status_)) SetRetryDelay(status, *delay);
    SetErrorInfo(status, "DEADLINE_EXCEEDED");
    return status;
  }

  // Once an attempt may have taken effect, an attempt sent after resend_until_ could still be
  // in Twilio's hands when Twilio no longer recognizes the key.
  bool MaySendAtLocked(absl::Time when) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return naturally_idempotent_ || !may_exist_ || when <= resend_until_;
  }

  // The run ends because a resend could outlive Twilio's memory of the key.
  absl::Status WindowClosedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    window_closed_ = true;
    constexpr absl::string_view kWhy =
        "no further attempt: Twilio may stop recognizing the idempotency key before it ends";
    return last_status_.ok() ? absl::UnavailableError(kWhy)
                             : GiveUp(last_status_, absl::StrCat(kWhy, "; stopped after"));
  }

  // `settled`: Twilio's last answer settles the operation (see AttemptResult::settled).
  UpstreamOutcome FinishLocked(absl::StatusOr<Resource> result, bool settled = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    if (!result.ok()) {
      // Every error names a reason; those that arise here without one are upstream errors.
      absl::Status status = result.status();
      SetErrorInfo(status, "UPSTREAM_ERROR");
      result = std::move(status);
    }
    // Debug only: the api floor writes the one audit line per RPC.
    Log(LogLevel::kDebug, "upstream run finished",
        {{"operation", std::string(OperationName(call_->kind))},
         {"account_sid", call_->account_sid},
         {"call_sid", call_->call_sid},
         {"idempotency_key", call_->idempotency_key},
         {"resolution", resolution_ ? "true" : "false"},
         {"code", absl::StatusCodeToString(result.status().code())},
         {"attempts", absl::StrCat(attempts_)},
         {"latency_ms",
          absl::StrCat(absl::ToDoubleMilliseconds(engine_.clock_.Now() - started_))}});
    return {.result = std::move(result),
            .settled = settled,
            .may_exist = may_exist_,
            .window_closed = window_closed_,
            .attempts = attempts_};
  }

  void Deliver(Result result) {
    if (!result.has_value()) return;
    Done done = std::move(done_);
    std::move(done)(*std::move(result));
  }

  UpstreamEngine& engine_;
  // The credentials in use when the run started: a reload mid-run does not switch them.
  const std::shared_ptr<const TwilioAccount> account_;
  const std::shared_ptr<const TwilioCall> call_;
  const bool naturally_idempotent_;
  const absl::Time started_;
  const bool resolution_;
  const int max_attempts_;
  const absl::Time resend_until_;
  const absl::Time deadline_;
  const std::optional<absl::Duration> first_retry_after_;
  Done done_;  // Consumed by the one Deliver() that has a result.

  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time attempt_started_ ABSL_GUARDED_BY(mu_);
  bool may_exist_ ABSL_GUARDED_BY(mu_);
  bool window_closed_ ABSL_GUARDED_BY(mu_) = false;
  int budget_waits_ ABSL_GUARDED_BY(mu_) = 0;
  bool attempt_bounded_by_deadline_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_status_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> attempt_log_ ABSL_GUARDED_BY(mu_);
  std::optional<ConcurrencyLimiter::Ticket> ticket_ ABSL_GUARDED_BY(mu_);
  std::optional<HttpTransport::TransferId> transfer_id_ ABSL_GUARDED_BY(mu_);
  std::optional<Timer::TimerId> timer_id_ ABSL_GUARDED_BY(mu_);
};

UpstreamEngine::UpstreamEngine(UpstreamOptions options, HttpTransport& transport, Timer& timer,
                               const Clock& clock, Random& random, UpstreamControls controls)
    : options_(std::move(options)),
      transport_(transport),
      timer_(timer),
      clock_(clock),
      random_(random),
      controls_(controls) {}

std::shared_ptr<PendingCall> UpstreamEngine::Start(std::shared_ptr<const TwilioAccount> account,
                                                   std::shared_ptr<const TwilioCall> call,
                                                   const UpstreamPlan& plan, Done done) {
  auto run =
      std::make_shared<Run>(*this, std::move(account), std::move(call), plan, std::move(done));
  run->Start();
  return run;
}

}  // namespace gateway
