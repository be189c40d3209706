// The gRPC face of SubscriptionService: translates protos to the plain handler's types and back,
// and ties the RPC's deadline and cancellation to the handler's call. No business logic here.
//
// Thread-safety: gRPC calls Create() concurrently from its callback threads; it never blocks.
#ifndef GATEWAY_API_SUBSCRIPTION_SERVICE_H_
#define GATEWAY_API_SUBSCRIPTION_SERVICE_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/caller_authenticator.h"
#include "metrics/gateway_metrics.h"
#include "subscriptions/create_subscription.h"
#include "twilio_gateway/v1/subscription_service.grpc.pb.h"

namespace gateway {

class SubscriptionService final : public twilio_gateway::v1::SubscriptionService::CallbackService {
 public:
  // `authenticator` null: every caller is anonymous (tests, loopback runs without a policy).
  // `metrics` null: none recorded.
  explicit SubscriptionService(CreateSubscriptionHandler& handler,
                               const CallerAuthenticator* authenticator = nullptr,
                               GatewayMetrics* metrics = nullptr)
      : handler_(handler), authenticator_(authenticator), metrics_(metrics) {}

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* context,
                                   const twilio_gateway::v1::CreateSubscriptionRequest* request,
                                   twilio_gateway::v1::Subscription* response) override;

  // RPCs between Create() and gRPC's OnDone(), i.e. until the reply is handed to the transport.
  int InFlight() const;
  // Waits until no RPC is in flight or `deadline` passes; true when idle. Used by the drain.
  bool WaitIdle(absl::Time deadline) const;

 private:
  friend class CreateReactor;
  void RpcStarted();
  void RpcDone();

  CreateSubscriptionHandler& handler_;
  const CallerAuthenticator* const authenticator_;
  GatewayMetrics* const metrics_;
  mutable absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

// Conversions, exposed for unit tests.
CreateSubscriptionInput FromProto(const twilio_gateway::v1::CreateSubscriptionRequest& request);
void ToProto(const Subscription& subscription, twilio_gateway::v1::Subscription* out);

}  // namespace gateway

#endif  // GATEWAY_API_SUBSCRIPTION_SERVICE_H_
