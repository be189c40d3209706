#include "api/subscription_service.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/grpc_status.h"
#include "common/error_details.h"
#include "common/log.h"
#include "common/random.h"

namespace gateway {
namespace {

namespace pb = twilio_gateway::v1;

absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// Lives from the RPC's start until gRPC calls OnDone(). The handler's completion and gRPC's
// OnCancel() may race; the handler guarantees `done` runs once, and Finish() is called only there.
std::string NewRequestId() { return SystemRandom().HexId128(); }

// Whether the answer is a stored outcome rather than new work.
bool IsReplay(const absl::StatusOr<Subscription>& result) {
  if (result.ok()) return result->replayed;
  const auto metadata = GetErrorMetadata(result.status());
  auto it = metadata.find("replayed");
  return it != metadata.end() && it->second == "true";
}

// The audit line: one per RPC, whatever its outcome. Never holds a secret.
void Audit(const std::string& request_id, const CreateSubscriptionInput& input,
           const absl::StatusOr<Subscription>& result, absl::Duration latency) {
  std::string key = input.idempotency_key;
  std::string attempts = "0";
  if (result.ok()) {
    key = result->idempotency_key;
    attempts = absl::StrCat(result->attempts);
  } else {
    const auto metadata = GetErrorMetadata(result.status());
    if (auto it = metadata.find("idempotency_key"); it != metadata.end()) key = it->second;
    if (auto it = metadata.find("attempts"); it != metadata.end()) attempts = it->second;
  }
  Log(LogLevel::kInfo, "audit",
      {{"request_id", request_id},
       {"rpc", "Create"},
       {"caller", input.caller.empty() ? "anonymous" : input.caller},
       // Raw input, valid or not, so bounded like call_sid: a caller must not size our log lines.
       {"account_sid", input.account_sid.empty() ? "default" : input.account_sid.substr(0, 64)},
       {"call_sid", input.call_sid.substr(0, 64)},
       {"idempotency_key", key.substr(0, 255)},
       {"code", absl::StatusCodeToString(result.status().code())},
       {"reason", GetErrorReason(result.status()).value_or("")},
       {"attempts", attempts},
       {"replayed", IsReplay(result) ? "true" : "false"},
       {"latency_ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(latency))}});
}

}  // namespace

class CreateReactor final : public grpc::ServerUnaryReactor {
 public:
  CreateReactor(SubscriptionService& service, grpc::CallbackServerContext* context,
                const pb::CreateSubscriptionRequest& request,
                twilio_gateway::v1::Subscription* response)
      : service_(service),
        request_id_(NewRequestId()),
        started_(absl::Now()),
        input_(FromProto(request)) {
    service_.RpcStarted();
    if (service_.metrics_ != nullptr) service_.metrics_->RpcStarted();
    CreateSubscriptionHandler& handler = service_.handler_;
    const CallerAuthenticator* authenticator = service_.authenticator_;
    // Returned to the caller, and in the audit line, so one request can be traced across both.
    context->AddInitialMetadata("x-request-id", request_id_);
    if (authenticator != nullptr) {
      absl::StatusOr<std::string> caller = authenticator->Authenticate(*context);
      if (!caller.ok()) {
        absl::Status status = caller.status();
        MarkNothingSent(status, "", input_.idempotency_key);
        Complete(status);
        return;
      }
      input_.caller = *std::move(caller);
    }
    std::shared_ptr<PendingCreate> pending =
        handler.Create(input_, DeadlineOf(*context),
                       [this, context, response](absl::StatusOr<Subscription> result) {
                         if (result.ok()) {
                           ToProto(*result, response);
                           // Tells the caller no new subscription was made: this is the stored one.
                           if (result->replayed)
                             context->AddTrailingMetadata("idempotent-replay", "true");
                         }
                         Complete(result);
                       });
    absl::MutexLock lock(&mu_);
    pending_ = std::move(pending);
  }

  void OnCancel() override {
    std::shared_ptr<PendingCreate> pending;
    {
      absl::MutexLock lock(&mu_);
      pending = pending_;
    }
    if (pending) pending->Cancel();
  }

  void OnDone() override {
    service_.RpcDone();
    delete this;
  }

 private:
  // Called once per RPC, with its outcome.
  void Complete(const absl::StatusOr<Subscription>& result) {
    const absl::Duration latency = absl::Now() - started_;
    Audit(request_id_, input_, result, latency);
    if (service_.metrics_ != nullptr) {
      service_.metrics_->RpcFinished("Create", result.status().code(),
                                     GetErrorReason(result.status()).value_or(""), IsReplay(result),
                                     latency);
    }
    Finish(ToGrpcStatus(result.status()));
  }

  SubscriptionService& service_;
  const std::string request_id_;
  const absl::Time started_;
  CreateSubscriptionInput input_;  // Written only in the constructor.
  absl::Mutex mu_;
  std::shared_ptr<PendingCreate> pending_ ABSL_GUARDED_BY(mu_);
};

grpc::ServerUnaryReactor* SubscriptionService::Create(grpc::CallbackServerContext* context,
                                                      const pb::CreateSubscriptionRequest* request,
                                                      twilio_gateway::v1::Subscription* response) {
  return new CreateReactor(*this, context, *request, response);
}

void SubscriptionService::RpcStarted() {
  absl::MutexLock lock(&mu_);
  ++in_flight_;
}

void SubscriptionService::RpcDone() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

int SubscriptionService::InFlight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

bool SubscriptionService::WaitIdle(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

CreateSubscriptionInput FromProto(const pb::CreateSubscriptionRequest& request) {
  CreateSubscriptionInput input;
  input.account_sid = request.account_sid();
  input.call_sid = request.call_sid();
  input.callback = request.callback();
  input.method = static_cast<int>(request.method());
  input.idempotency_key = request.idempotency_key();
  return input;
}

void ToProto(const Subscription& subscription, twilio_gateway::v1::Subscription* out) {
  out->set_account_sid(subscription.account_sid);
  out->set_call_sid(subscription.call_sid);
  out->set_sid(subscription.sid);
  out->set_uri(subscription.uri);
  out->set_idempotency_key(subscription.idempotency_key);
  if (subscription.date_created.has_value()) {
    const absl::Time t = *subscription.date_created;
    const int64_t seconds = absl::ToUnixSeconds(t);
    out->mutable_date_created()->set_seconds(seconds);
    out->mutable_date_created()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
  }
}

}  // namespace gateway
