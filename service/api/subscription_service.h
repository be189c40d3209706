// The gRPC face of SubscriptionService: each method converts its proto to the operation's
// input, and its result back; UnaryCall does everything else. No business logic here.
//
// Thread-safety: gRPC calls the methods concurrently from its callback threads; none blocks.
#ifndef GATEWAY_API_SUBSCRIPTION_SERVICE_H_
#define GATEWAY_API_SUBSCRIPTION_SERVICE_H_

#include "api/unary_call.h"
#include "model/requests.h"
#include "model/resources.h"
#include "twilio_gateway/v1/subscription_service.grpc.pb.h"

namespace gateway {

class SubscriptionService final : public twilio_gateway::v1::SubscriptionService::CallbackService {
 public:
  explicit SubscriptionService(Api& api) : api_(api) {}

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* context,
                                   const twilio_gateway::v1::CreateSubscriptionRequest* request,
                                   twilio_gateway::v1::Subscription* response) override;
  grpc::ServerUnaryReactor* Delete(
      grpc::CallbackServerContext* context,
      const twilio_gateway::v1::DeleteSubscriptionRequest* request,
      twilio_gateway::v1::DeleteSubscriptionResponse* response) override;

 private:
  Api& api_;
};

// Conversions, exposed for unit tests.
CreateSubscriptionInput FromProto(const twilio_gateway::v1::CreateSubscriptionRequest& request);
DeleteSubscriptionInput FromProto(const twilio_gateway::v1::DeleteSubscriptionRequest& request);
void ToProto(const Subscription& subscription, absl::string_view idempotency_key,
             twilio_gateway::v1::Subscription* out);

}  // namespace gateway

#endif  // GATEWAY_API_SUBSCRIPTION_SERVICE_H_
