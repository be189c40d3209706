#include "subscriptions/create_subscription.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/error_details.h"
#include "common/log.h"
#include "validation/request_validator.h"

namespace gateway {
namespace {

// Below this much time left, an attempt cannot plausibly complete; end with the deadline.
constexpr absl::Duration kMinAttemptTime = absl::Milliseconds(5);

class AlreadyDone final : public PendingCreate {
 public:
  void Cancel() override {}
};

using Result = std::optional<UpstreamOutcome>;

}  // namespace

// One run of upstream Create attempts, for a caller or for a background resolution (the guard's
// plan says which): a small state machine driven by limiter, transport and timer callbacks.
//   waiting for a permit (ticket_) -> attempt in flight (transfer_id_) -> waiting to retry
//   (timer_id_) -> ... -> finished (done_ consumed).
// Once an attempt may have created the subscription, no attempt is sent after resend_until_:
// it could reach Twilio after Twilio stopped recognizing the key, and create a second one.
// Transitions happen under mu_; `done`, limiter Release() and Cancel() run outside it, because
// they may call into other operations.
class CreateSubscriptionHandler::Operation final : public PendingCreate,
                                                   public std::enable_shared_from_this<Operation> {
 public:
  Operation(CreateSubscriptionHandler& handler, std::shared_ptr<const TwilioAccount> account,
            CreateSubscriptionRequest request, const UpstreamPlan& plan,
            IdempotencyGuard::UpstreamDone done)
      : handler_(handler),
        endpoint_{handler.options_.base_url, account->credentials},
        request_(std::move(request)),
        started_(handler.clock_.Now()),
        resolution_(plan.resolution),
        max_attempts_(plan.resolution ? handler.options_.resolution_max_attempts
                                      : handler.options_.retry.max_attempts),
        resend_until_(plan.window_start + handler.options_.key_window -
                      handler.options_.attempt_timeout),
        // A resolution has no caller: the key window bounds it.
        deadline_(plan.resolution ? resend_until_ + handler.options_.attempt_timeout
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
    ScheduleAttemptLocked(handler_.clock_.Now() + RetryDelay(0, handler_.options_.retry,
                                                             handler_.random_.Uniform01(),
                                                             first_retry_after_));
  }

  void Cancel() override {
    Result result;
    std::optional<ConcurrencyLimiter::Ticket> ticket;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (transfer_id_.has_value()) {
        handler_.transport_.Cancel(*transfer_id_);
        // The abandoned request may already have reached Twilio.
        may_exist_ = true;
      }
      if (timer_id_.has_value()) handler_.timer_.Cancel(*timer_id_);
      ticket = std::exchange(ticket_, std::nullopt);
      result = FinishLocked(absl::CancelledError("the caller cancelled the request"));
    }
    if (ticket.has_value()) handler_.controls_.limiter->Cancel(*ticket);
    Deliver(std::move(result));
  }

 private:
  ConcurrencyLimiter* limiter() const { return handler_.controls_.limiter; }
  GatewayMetrics* metrics() const { return handler_.controls_.metrics; }

  // Gets an upstream permit, then sends. Called with no lock held.
  void BeginAttempt() {
    if (resolution_ && !SpendResolutionBudget()) return;
    if (limiter() == nullptr || limiter()->TryAcquire(request_.account_sid)) {
      OnPermit(absl::OkStatus());
      return;
    }
    Result result;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      const ConcurrencyLimiter::Ticket ticket =
          limiter()->Enqueue(request_.account_sid, deadline_,
                             [self = shared_from_this()](absl::Status granted) mutable {
                               self->OnPermit(std::move(granted));
                             });
      if (ticket != 0) {
        ticket_ = ticket;
        return;
      }
      absl::Status status = absl::ResourceExhaustedError(
          "too many requests queued for this account's upstream concurrency limit");
      SetErrorInfo(status, "GATEWAY_QUEUE_FULL");
      result = FinishLocked(DecorateLocked(std::move(status)));
    }
    Deliver(std::move(result));
  }

  // A resolution attempt spends from the resolution budget. When it is spent, the resolution
  // waits for it (new RPCs refill it) as long as an attempt could still start in the key
  // window; false when the attempt must not go now.
  bool SpendResolutionBudget() {
    RetryBudget* budget = handler_.controls_.resolution_budget;
    if (budget == nullptr) return true;
    Result result;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return false;
      if (budget->AllowRetry()) {
        budget->RecordFailure();
        return true;
      }
      const absl::Time next =
          handler_.clock_.Now() +
          FullJitterBackoff(++budget_waits_, handler_.options_.retry.backoff_base,
                            handler_.options_.retry.backoff_cap, handler_.random_.Uniform01());
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
          result = FinishLocked(DecorateLocked(std::move(granted)));
        }
      } else {
        result = SendLocked();
        give_back = result.has_value();
      }
    }
    if (give_back && limiter() != nullptr) limiter()->Release(request_.account_sid);
    Deliver(std::move(result));
  }

  // Sends one attempt while holding a permit; returns a result when no attempt fits.
  Result SendLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = handler_.clock_.Now();
    if (!MaySendAtLocked(now)) return FinishLocked(WindowClosedLocked());
    const absl::Duration remaining = deadline_ - now;
    if (remaining < kMinAttemptTime) return FinishLocked(DeadlineStatusLocked());
    if (RetryBudget* budget = handler_.controls_.resolution_budget;
        budget != nullptr && !resolution_ && attempts_ == 0) {
      // Every RPC that reaches Twilio earns resolutions a share of an attempt, so that in an
      // outage they add at most that share to the callers' attempts.
      budget->RecordSuccess();
    }
    const absl::Duration attempt_timeout = std::min(handler_.options_.attempt_timeout, remaining);
    attempt_bounded_by_deadline_ = attempt_timeout == remaining;
    ++attempts_;
    attempt_started_ = handler_.clock_.Now();
    HttpRequest http = BuildCreateSubscriptionRequest(endpoint_, request_, attempt_timeout);
    // Safe under mu_: the transport never runs the callback inline.
    transfer_id_ = handler_.transport_.Send(std::move(http),
                                            [self = shared_from_this()](HttpResult result) mutable {
                                              self->OnAttemptDone(std::move(result));
                                            });
    return std::nullopt;
  }

  void OnAttemptDone(HttpResult http) {
    if (limiter() != nullptr) limiter()->Release(request_.account_sid);
    Result result;
    {
      absl::MutexLock lock(&mu_);
      transfer_id_.reset();
      if (finished_) return;
      if (metrics() != nullptr) {
        metrics()->UpstreamAttempt(http, handler_.clock_.Now() - attempt_started_);
      }
      result = HandleAttemptLocked(std::move(http));
    }
    Deliver(std::move(result));
  }

  // Returns a result when the call is over, std::nullopt when a retry was scheduled.
  Result HandleAttemptLocked(HttpResult http) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<Subscription> parsed = absl::UnknownError("no response");
    absl::Status status = StatusFromTransportFailure(http);
    if (status.ok()) {
      status = StatusFromHttpResponse(http.response);
      if (status.ok()) {
        parsed = ParseSubscriptionJson(http.response.body);
        if (!parsed.ok()) {
          status = parsed.status();
          SetErrorInfo(status, "UNREADABLE_TWILIO_RESPONSE");
        }
      }
    }
    if (http.failure == TransportFailure::kCancelled) {
      // Not the caller's cancel (that finishes the call first): the transport is stopping.
      if (http.request_sent) may_exist_ = true;
      absl::Status stopped = absl::UnavailableError(
          absl::StrCat("the gateway stopped the upstream request: ", http.error));
      SetErrorInfo(stopped, "GATEWAY_STOPPING");
      return FinishLocked(DecorateLocked(std::move(stopped)));
    }
    const AttemptClass attempt = ClassifyAttempt(http, parsed.ok());
    // Resolutions answer to their own budget (checked before each send), not the callers'.
    RetryBudget* budget = resolution_ ? nullptr : handler_.controls_.retry_budget;
    if (attempt.outcome == AttemptOutcome::kSucceeded) {
      if (budget != nullptr) budget->RecordSuccess();
      parsed->idempotency_key = request_.idempotency_key;
      parsed->attempts = attempts_;
      return FinishLocked(std::move(parsed));
    }
    if (attempt.outcome == AttemptOutcome::kAmbiguous) may_exist_ = true;
    attempt_log_.push_back(absl::StrCat(attempts_, ": ", attempt.why,
                                        http.failure == TransportFailure::kNone
                                            ? absl::StrCat(" HTTP ", http.response.status)
                                            : absl::StrCat(" (", http.error, ")")));
    last_status_ = status;
    Log(LogLevel::kDebug, "attempt failed",
        {{"call_sid", request_.call_sid},
         {"idempotency_key", request_.idempotency_key},
         {"attempt", absl::StrCat(attempts_)},
         {"why", std::string(attempt.why)}});

    if (http.failure == TransportFailure::kTimeout && attempt_bounded_by_deadline_) {
      return FinishLocked(DeadlineStatusLocked());
    }
    if (!ShouldRetry(attempt.outcome, handler_.options_.retry)) {
      // With ambiguous retries turned off, nothing will ever resend this key.
      if (attempt.outcome == AttemptOutcome::kAmbiguous) window_closed_ = true;
      return FinishLocked(DecorateLocked(std::move(status)));
    }
    if (budget != nullptr) budget->RecordFailure();
    if (attempts_ >= max_attempts_) {
      return FinishLocked(DecorateLocked(GiveUp(status, "gave up after")));
    }
    if (budget != nullptr && !budget->AllowRetry()) {
      // Twilio is failing broadly: retrying now would only add load.
      return FinishLocked(DecorateLocked(GiveUp(status, "retry budget exhausted after")));
    }
    std::optional<absl::Duration> retry_after;
    if (http.response.retry_after.has_value()) {
      retry_after = ParseRetryAfter(*http.response.retry_after, handler_.clock_.Now());
    }
    const absl::Duration delay = RetryDelay(attempts_ - 1, handler_.options_.retry,
                                            handler_.random_.Uniform01(), retry_after);
    const absl::Time next = handler_.clock_.Now() + delay;
    if (!MaySendAtLocked(next)) return FinishLocked(WindowClosedLocked());
    if (next + kMinAttemptTime >= deadline_) {
      // The next attempt could not finish in time: answer now rather than at the deadline.
      return FinishLocked(DeadlineStatusLocked());
    }
    if (metrics() != nullptr) metrics()->Retry(http);
    ScheduleAttemptLocked(next);
    return std::nullopt;
  }

  void ScheduleAttemptLocked(absl::Time when) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    timer_id_ = handler_.timer_.Schedule(when, [self = shared_from_this()]() mutable {
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
    return DecorateLocked(std::move(status));
  }

  // Once an attempt may have created the subscription, an attempt sent after resend_until_
  // could still be in Twilio's hands when Twilio no longer recognizes the key.
  bool MaySendAtLocked(absl::Time when) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !may_exist_ || when <= resend_until_;
  }

  // The run ends because a resend could outlive Twilio's memory of the key.
  absl::Status WindowClosedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    window_closed_ = true;
    constexpr absl::string_view kWhy =
        "no further attempt: Twilio may stop recognizing the idempotency key before it ends";
    absl::Status status = last_status_.ok()
                              ? absl::UnavailableError(kWhy)
                              : GiveUp(last_status_, absl::StrCat(kWhy, "; stopped after"));
    return DecorateLocked(std::move(status));
  }

  // Adds what every error tells the caller: the key to retry with, how many attempts were made,
  // and whether the subscription may exist despite the error.
  absl::Status DecorateLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    SetErrorInfo(status, "UPSTREAM_ERROR",
                 {{"idempotency_key", request_.idempotency_key},
                  {"attempts", absl::StrCat(attempts_)},
                  {"subscription_may_exist", may_exist_ ? "true" : "false"}});
    return status;
  }

  UpstreamOutcome FinishLocked(absl::StatusOr<Subscription> result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    if (absl::IsCancelled(result.status())) result = DecorateLocked(result.status());
    const absl::Duration latency = handler_.clock_.Now() - started_;
    // Debug only: the api layer writes the one audit line per RPC.
    Log(LogLevel::kDebug, "upstream create finished",
        {{"account_sid", request_.account_sid},
         {"call_sid", request_.call_sid},
         {"idempotency_key", request_.idempotency_key},
         {"resolution", resolution_ ? "true" : "false"},
         {"code", absl::StatusCodeToString(result.status().code())},
         {"attempts", absl::StrCat(attempts_)},
         {"latency_ms", absl::StrCat(absl::ToDoubleMilliseconds(latency))}});
    return {.result = std::move(result),
            .may_exist = may_exist_,
            .window_closed = window_closed_,
            .attempts = attempts_};
  }

  void Deliver(Result result) {
    if (!result.has_value()) return;
    IdempotencyGuard::UpstreamDone done = std::move(done_);
    std::move(done)(*std::move(result));
  }

  CreateSubscriptionHandler& handler_;
  // The credentials in use when the call started: a reload mid-call does not switch them.
  const TwilioEndpoint endpoint_;
  const CreateSubscriptionRequest request_;
  const absl::Time started_;
  const bool resolution_;
  const int max_attempts_;
  const absl::Time resend_until_;
  const absl::Time deadline_;
  const std::optional<absl::Duration> first_retry_after_;
  IdempotencyGuard::UpstreamDone done_;  // Consumed by the one Deliver() that has a result.

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

CreateSubscriptionHandler::CreateSubscriptionHandler(CreateSubscriptionOptions options,
                                                     const Snapshot<TwilioAccount>& account,
                                                     HttpTransport& transport, Timer& timer,
                                                     const Clock& clock, Random& random,
                                                     CreateSubscriptionControls controls)
    : options_(std::move(options)),
      account_(account),
      transport_(transport),
      timer_(timer),
      clock_(clock),
      random_(random),
      controls_(controls) {}

std::shared_ptr<PendingCreate> CreateSubscriptionHandler::StartUpstream(
    std::shared_ptr<const TwilioAccount> account, CreateSubscriptionRequest request,
    const UpstreamPlan& plan, IdempotencyGuard::UpstreamDone done) {
  auto operation = std::make_shared<Operation>(*this, std::move(account), std::move(request), plan,
                                               std::move(done));
  operation->Start();
  return operation;
}

void MarkNothingSent(absl::Status& status, absl::string_view reason,
                     absl::string_view idempotency_key) {
  SetErrorInfo(status, reason,
               {{"idempotency_key",
                 IsValidIdempotencyKey(idempotency_key) ? std::string(idempotency_key) : ""},
                {"attempts", "0"},
                {"subscription_may_exist", "false"}});
}

namespace {

// An error before any upstream work: nothing was sent, so nothing can exist.
std::shared_ptr<PendingCreate> FailEarly(absl::Status status, absl::string_view reason,
                                         const CreateSubscriptionInput& input,
                                         CreateSubscriptionHandler::Done done) {
  MarkNothingSent(status, reason, input.idempotency_key);
  std::move(done)(std::move(status));
  return std::make_shared<AlreadyDone>();
}

// Records of different callers never meet, even for the same key and account. The anonymous
// caller (no authentication configured) keeps the bare account as its scope.
std::string IdempotencyScope(absl::string_view caller, absl::string_view account_sid) {
  if (caller.empty()) return std::string(account_sid);
  return absl::StrCat(caller.size(), ":", caller, "/", account_sid);
}

}  // namespace

std::shared_ptr<PendingCreate> CreateSubscriptionHandler::Create(
    const CreateSubscriptionInput& input, absl::Time deadline, Done done) {
  std::shared_ptr<const TwilioAccount> account = account_.Get();
  if (account == nullptr) {
    return FailEarly(absl::UnavailableError("the gateway has no valid Twilio credentials loaded"),
                     "CREDENTIALS_UNAVAILABLE", input, std::move(done));
  }
  absl::StatusOr<CreateSubscriptionRequest> request =
      ValidateCreateRequest(input, account->account_sid);
  if (!request.ok()) return FailEarly(request.status(), "", input, std::move(done));
  if (controls_.policy != nullptr) {
    std::shared_ptr<const CallerPolicy> policy = controls_.policy->Get();
    if (policy == nullptr ||
        !policy->Allows(input.caller, request->account_sid, account->account_sid)) {
      return FailEarly(
          absl::PermissionDeniedError(absl::StrCat(
              "caller \"", input.caller, "\" may not use account ", request->account_sid)),
          "CALLER_NOT_ALLOWED", input, std::move(done));
    }
  }
  if (deadline == absl::InfiniteFuture()) deadline = clock_.Now() + options_.default_deadline;
  // A generated key is recorded too: every error hands it to the caller, who may retry with it.
  if (request->idempotency_key.empty()) request->idempotency_key = random_.UuidV4();
  if (controls_.idempotency == nullptr) {
    return StartUpstream(std::move(account), *std::move(request),
                         {.deadline = deadline, .window_start = clock_.Now()},
                         [done = std::move(done)](UpstreamOutcome outcome) mutable {
                           std::move(done)(std::move(outcome.result));
                         });
  }
  const std::string scope = IdempotencyScope(input.caller, request->account_sid);
  return controls_.idempotency->Run(
      *request, scope, deadline,
      [this, account = std::move(account), request = *request](
          const UpstreamPlan& plan, IdempotencyGuard::UpstreamDone upstream_done) {
        return StartUpstream(account, request, plan, std::move(upstream_done));
      },
      std::move(done));
}

}  // namespace gateway
