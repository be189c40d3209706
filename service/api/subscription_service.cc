#include "api/subscription_service.h"

#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/grpc_status.h"

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
class CreateReactor final : public grpc::ServerUnaryReactor {
 public:
  CreateReactor(CreateSubscriptionHandler& handler, grpc::CallbackServerContext* context,
                const pb::CreateSubscriptionRequest& request,
                twilio_gateway::v1::Subscription* response) {
    std::shared_ptr<PendingCreate> pending =
        handler.Create(FromProto(request), DeadlineOf(*context),
                       [this, context, response](absl::StatusOr<Subscription> result) {
                         if (result.ok()) {
                           ToProto(*result, response);
                           // Tells the caller no new subscription was made: this is the stored one.
                           if (result->replayed)
                             context->AddTrailingMetadata("idempotent-replay", "true");
                         }
                         Finish(ToGrpcStatus(result.status()));
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

  void OnDone() override { delete this; }

 private:
  absl::Mutex mu_;
  std::shared_ptr<PendingCreate> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

namespace pb = twilio_gateway::v1;

grpc::ServerUnaryReactor* SubscriptionService::Create(grpc::CallbackServerContext* context,
                                                      const pb::CreateSubscriptionRequest* request,
                                                      twilio_gateway::v1::Subscription* response) {
  return new CreateReactor(handler_, context, *request, response);
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
