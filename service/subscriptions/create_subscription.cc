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

}  // namespace

// One Create call: a small state machine driven by transport and timer callbacks.
// States: attempt in flight (transfer_id_ set) -> waiting to retry (timer_id_ set) -> ... ->
// finished (done_ consumed). Every transition happens under mu_; `done` runs outside it.
class CreateSubscriptionHandler::Operation final
    : public PendingCreate,
      public std::enable_shared_from_this<Operation> {
 public:
  Operation(CreateSubscriptionHandler& handler, CreateSubscriptionRequest request,
            absl::Time deadline, Done done)
      : handler_(handler),
        request_(std::move(request)),
        started_(handler.clock_.Now()),
        deadline_(deadline),
        done_(std::move(done)) {}

  void Start() {
    std::optional<absl::StatusOr<Subscription>> result;
    {
      absl::MutexLock lock(&mu_);
      result = StartAttemptLocked();
    }
    Deliver(std::move(result));
  }

  void Cancel() override {
    std::optional<absl::StatusOr<Subscription>> result;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (transfer_id_.has_value()) handler_.transport_.Cancel(*transfer_id_);
      if (timer_id_.has_value()) handler_.timer_.Cancel(*timer_id_);
      result = FinishLocked(absl::CancelledError("the caller cancelled the request"));
    }
    Deliver(std::move(result));
  }

 private:
  // Returns a result when no attempt can start in time.
  std::optional<absl::StatusOr<Subscription>> StartAttemptLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    timer_id_.reset();
    const absl::Duration remaining = deadline_ - handler_.clock_.Now();
    if (remaining < kMinAttemptTime) return FinishLocked(DeadlineStatusLocked());
    const absl::Duration attempt_timeout = std::min(handler_.options_.attempt_timeout, remaining);
    attempt_bounded_by_deadline_ = attempt_timeout == remaining;
    ++attempts_;
    HttpRequest http =
        BuildCreateSubscriptionRequest(handler_.endpoint_, request_, attempt_timeout);
    // Safe under mu_: the transport never runs the callback inline.
    transfer_id_ = handler_.transport_.Send(
        std::move(http), [self = shared_from_this()](HttpResult result) mutable {
          self->OnAttemptDone(std::move(result));
        });
    return std::nullopt;
  }

  void OnAttemptDone(HttpResult http) {
    std::optional<absl::StatusOr<Subscription>> result;
    {
      absl::MutexLock lock(&mu_);
      transfer_id_.reset();
      if (finished_) return;
      result = HandleAttemptLocked(std::move(http));
    }
    Deliver(std::move(result));
  }

  // Returns a result when the call is over, std::nullopt when a retry was scheduled.
  std::optional<absl::StatusOr<Subscription>> HandleAttemptLocked(HttpResult http)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
    const AttemptClass attempt = ClassifyAttempt(http, parsed.ok());
    if (attempt.outcome == AttemptOutcome::kSucceeded) {
      parsed->idempotency_key = request_.idempotency_key;
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

    const bool timed_out_at_deadline =
        http.failure == TransportFailure::kTimeout && attempt_bounded_by_deadline_;
    if (timed_out_at_deadline) return FinishLocked(DeadlineStatusLocked());
    if (!ShouldRetry(attempt.outcome, handler_.options_.retry)) {
      return FinishLocked(DecorateLocked(std::move(status)));
    }
    if (attempts_ >= handler_.options_.retry.max_attempts) {
      return FinishLocked(DecorateLocked(
          WithMessage(status, absl::StrCat(status.message(), " (gave up after ", attempts_,
                                           " attempts: ", absl::StrJoin(attempt_log_, "; "),
                                           ")"))));
    }
    std::optional<absl::Duration> retry_after;
    if (http.response.retry_after.has_value()) {
      retry_after = ParseRetryAfter(*http.response.retry_after, handler_.clock_.Now());
    }
    const absl::Duration delay = RetryDelay(attempts_ - 1, handler_.options_.retry,
                                            handler_.random_.Uniform01(), retry_after);
    const absl::Time next = handler_.clock_.Now() + delay;
    if (next + kMinAttemptTime >= deadline_) {
      // The next attempt could not finish in time: answer now rather than at the deadline.
      return FinishLocked(DeadlineStatusLocked());
    }
    timer_id_ = handler_.timer_.Schedule(next, [self = shared_from_this()]() mutable {
      std::optional<absl::StatusOr<Subscription>> result;
      {
        absl::MutexLock lock(&self->mu_);
        if (!self->finished_) result = self->StartAttemptLocked();
      }
      self->Deliver(std::move(result));
    });
    return std::nullopt;
  }

  absl::Status DeadlineStatusLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string message =
        absl::StrCat("deadline of ", absl::FormatDuration(deadline_ - started_),
                     " reached after ", attempts_, " attempt(s)");
    if (!attempt_log_.empty()) {
      absl::StrAppend(&message, ": ", absl::StrJoin(attempt_log_, "; "));
    }
    absl::Status status = absl::DeadlineExceededError(message);
    // Keep what Twilio said last, so the caller sees why the attempts failed.
    if (auto twilio = GetTwilioError(last_status_)) SetTwilioError(status, *twilio);
    SetErrorInfo(status, "DEADLINE_EXCEEDED");
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

  absl::StatusOr<Subscription> FinishLocked(absl::StatusOr<Subscription> result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    if (result.status().code() == absl::StatusCode::kCancelled) {
      result = DecorateLocked(result.status());
    }
    const absl::Duration latency = handler_.clock_.Now() - started_;
    Log(result.ok() ? LogLevel::kDebug : LogLevel::kInfo, "create finished",
        {{"account_sid", request_.account_sid},
         {"call_sid", request_.call_sid},
         {"idempotency_key", request_.idempotency_key},
         {"code", absl::StatusCodeToString(result.status().code())},
         {"attempts", absl::StrCat(attempts_)},
         {"latency_ms", absl::StrCat(absl::ToDoubleMilliseconds(latency))}});
    return result;
  }

  void Deliver(std::optional<absl::StatusOr<Subscription>> result) {
    if (!result.has_value()) return;
    Done done = std::move(done_);
    std::move(done)(*std::move(result));
  }

  CreateSubscriptionHandler& handler_;
  const CreateSubscriptionRequest request_;
  const absl::Time started_;
  const absl::Time deadline_;
  Done done_;  // Consumed by the one Deliver() that has a result.

  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  bool may_exist_ ABSL_GUARDED_BY(mu_) = false;
  bool attempt_bounded_by_deadline_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status last_status_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> attempt_log_ ABSL_GUARDED_BY(mu_);
  std::optional<HttpTransport::TransferId> transfer_id_ ABSL_GUARDED_BY(mu_);
  std::optional<Timer::TimerId> timer_id_ ABSL_GUARDED_BY(mu_);
};

CreateSubscriptionHandler::CreateSubscriptionHandler(CreateSubscriptionOptions options,
                                                     TwilioEndpoint endpoint,
                                                     HttpTransport& transport, Timer& timer,
                                                     const Clock& clock, Random& random)
    : options_(std::move(options)),
      endpoint_(std::move(endpoint)),
      transport_(transport),
      timer_(timer),
      clock_(clock),
      random_(random) {}

std::shared_ptr<PendingCreate> CreateSubscriptionHandler::Create(
    const CreateSubscriptionInput& input, absl::Time deadline, Done done) {
  absl::StatusOr<CreateSubscriptionRequest> request =
      ValidateCreateRequest(input, options_.default_account_sid);
  if (!request.ok()) {
    std::move(done)(request.status());
    return std::make_shared<AlreadyDone>();
  }
  if (request->idempotency_key.empty()) request->idempotency_key = random_.UuidV4();
  if (deadline == absl::InfiniteFuture()) deadline = clock_.Now() + options_.default_deadline;
  auto operation =
      std::make_shared<Operation>(*this, *std::move(request), deadline, std::move(done));
  operation->Start();
  return operation;
}

}  // namespace gateway
