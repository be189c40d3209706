#include "operations/operations.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/error_details.h"
#include "idempotency/outcome_codec.h"
#include "validation/request_validator.h"

namespace gateway {
namespace {

class AlreadyDone final : public PendingCall {
 public:
  void Cancel() override {}
};

std::shared_ptr<PendingCall> FailEarly(absl::Status status, absl::string_view reason,
                                       absl::string_view input_key, Operations::Done& done) {
  if (!reason.empty()) SetErrorInfo(status, reason);
  std::move(done)(NothingSent(std::move(status), input_key));
  return std::make_shared<AlreadyDone>();
}

// Records of different operations and callers never meet, even for the same key and account.
// Create's records keep the bare scope they had before other operations existed, so records
// written by earlier versions are still found. The anonymous caller (no authentication
// configured) keeps the bare account as its scope.
std::string RecordKey(TwilioCall::Kind kind, absl::string_view caller,
                      absl::string_view account_sid, absl::string_view idempotency_key) {
  const std::string scope = caller.empty()
                                ? std::string(account_sid)
                                : absl::StrCat(caller.size(), ":", caller, "/", account_sid);
  const absl::string_view space = kind == TwilioCall::Kind::kSendMessage ? "message/" : "";
  return absl::StrCat(space, scope, "/", idempotency_key);
}

}  // namespace

Outcome NothingSent(absl::Status status, absl::string_view idempotency_key) {
  return {.result = std::move(status),
          .report = {.idempotency_key = IsValidIdempotencyKey(idempotency_key)
                                            ? std::string(idempotency_key)
                                            : std::string()}};
}

Operations::Operations(OperationsOptions options, const Snapshot<TwilioAccount>& account,
                       UpstreamEngine& engine, const Clock& clock, Random& random,
                       OperationsControls controls)
    : options_(options),
      account_(account),
      engine_(engine),
      clock_(clock),
      random_(random),
      controls_(controls) {}

std::shared_ptr<PendingCall> Operations::Create(const CreateSubscriptionInput& input,
                                                absl::Time deadline, Done done) {
  return Run(
      input, input.idempotency_key, deadline,
      [&](absl::string_view default_account) -> absl::StatusOr<Plan> {
        absl::StatusOr<CreateSubscriptionRequest> request;
        if (input.callback.empty() && !options_.default_callback.empty()) {
          CreateSubscriptionInput to_gateway = input;
          to_gateway.callback = options_.default_callback;
          request = ValidateCreateRequest(to_gateway, default_account);
        } else {
          request = ValidateCreateRequest(input, default_account);
        }
        if (!request.ok()) return request.status();
        // A generated key is recorded too: every error hands it to the caller, who may
        // retry with it.
        if (request->idempotency_key.empty()) request->idempotency_key = random_.UuidV4();
        return Plan{.call = CreateSubscriptionCall(*request),
                    .fingerprint = RequestFingerprint(*request)};
      },
      std::move(done));
}

std::shared_ptr<PendingCall> Operations::Delete(const DeleteSubscriptionInput& input,
                                                absl::Time deadline, Done done) {
  return Run(
      input, "", deadline,
      [&](absl::string_view default_account) -> absl::StatusOr<Plan> {
        absl::StatusOr<DeleteSubscriptionRequest> request =
            ValidateDeleteRequest(input, default_account);
        if (!request.ok()) return request.status();
        return Plan{.call = DeleteSubscriptionCall(*request), .fingerprint = ""};
      },
      std::move(done));
}

std::shared_ptr<PendingCall> Operations::Send(const SendMessageInput& input, absl::Time deadline,
                                              Done done) {
  return Run(
      input, input.idempotency_key, deadline,
      [&](absl::string_view default_account) -> absl::StatusOr<Plan> {
        absl::StatusOr<SendMessageRequest> request = ValidateSendRequest(input, default_account);
        if (!request.ok()) return request.status();
        if (request->idempotency_key.empty()) request->idempotency_key = random_.UuidV4();
        return Plan{.call = SendMessageCall(*request), .fingerprint = RequestFingerprint(*request)};
      },
      std::move(done));
}

std::shared_ptr<PendingCall> Operations::Run(const CallInput& input, absl::string_view input_key,
                                             absl::Time deadline, Describe describe, Done done) {
  std::shared_ptr<const TwilioAccount> account = account_.Get();
  if (account == nullptr) {
    return FailEarly(absl::UnavailableError("the gateway has no valid Twilio credentials loaded"),
                     "CREDENTIALS_UNAVAILABLE", input_key, done);
  }
  absl::StatusOr<Plan> plan = describe(account->account_sid);
  if (!plan.ok()) return FailEarly(plan.status(), "", input_key, done);
  if (absl::Status allowed =
          CheckPolicy(input.caller, plan->call.account_sid, account->account_sid);
      !allowed.ok()) {
    return FailEarly(std::move(allowed), "", input_key, done);
  }
  if (deadline == absl::InfiniteFuture()) deadline = clock_.Now() + options_.default_deadline;
  auto call = std::make_shared<const TwilioCall>(std::move(plan->call));
  if (controls_.idempotency == nullptr || plan->fingerprint.empty()) {
    return engine_.Start(std::move(account), call,
                         {.deadline = deadline, .window_start = clock_.Now()},
                         [done = std::move(done), call](UpstreamOutcome run) mutable {
                           std::move(done)({.result = std::move(run.result),
                                            .report = {.idempotency_key = call->idempotency_key,
                                                       .attempts = run.attempts,
                                                       .may_exist = run.may_exist}});
                         });
  }
  GuardedRequest guarded = {
      .record_key = RecordKey(call->kind, input.caller, call->account_sid, call->idempotency_key),
      .fingerprint = std::move(plan->fingerprint),
      .idempotency_key = call->idempotency_key,
      .call_sid = call->call_sid,
      .deadline = deadline};
  return controls_.idempotency->Run(
      std::move(guarded),
      [this, account = std::move(account), call = std::move(call)](
          const UpstreamPlan& upstream, IdempotencyGuard::UpstreamDone upstream_done) {
        return engine_.Start(account, call, upstream, std::move(upstream_done));
      },
      std::move(done));
}

absl::Status Operations::CheckPolicy(absl::string_view caller, absl::string_view account_sid,
                                     absl::string_view default_account_sid) const {
  if (controls_.policy == nullptr) return absl::OkStatus();
  std::shared_ptr<const CallerPolicy> policy = controls_.policy->Get();
  if (policy != nullptr && policy->Allows(caller, account_sid, default_account_sid)) {
    return absl::OkStatus();
  }
  absl::Status denied = absl::PermissionDeniedError(
      absl::StrCat("caller \"", caller, "\" may not use account ", account_sid));
  SetErrorInfo(denied, "CALLER_NOT_ALLOWED");
  return denied;
}

absl::StatusOr<WatchRequest> Operations::AuthorizeWatch(const WatchInput& input) const {
  std::shared_ptr<const TwilioAccount> account = account_.Get();
  if (account == nullptr) {
    absl::Status status =
        absl::UnavailableError("the gateway has no valid Twilio credentials loaded");
    SetErrorInfo(status, "CREDENTIALS_UNAVAILABLE");
    return status;
  }
  absl::StatusOr<WatchRequest> request = ValidateWatchRequest(input, account->account_sid);
  if (!request.ok()) return request.status();
  if (absl::Status allowed = CheckPolicy(input.caller, request->account_sid, account->account_sid);
      !allowed.ok()) {
    return allowed;
  }
  return request;
}

}  // namespace gateway
