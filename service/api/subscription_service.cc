#include "api/subscription_service.h"

#include <utility>
#include <variant>

namespace gateway {

namespace pb = twilio_gateway::v1;

grpc::ServerUnaryReactor* SubscriptionService::Create(grpc::CallbackServerContext* context,
                                                      const pb::CreateSubscriptionRequest* request,
                                                      pb::Subscription* response) {
  return UnaryCall::Begin(
      api_, context,
      {.method = "Create",
       .may_exist_key = "subscription_may_exist",
       .account_sid = request->account_sid(),
       .call_sid = request->call_sid(),
       .sid = "",
       .idempotency_key = request->idempotency_key()},
      FromProto(*request), &Operations::Create, [response](const Outcome& outcome) {
        ToProto(std::get<Subscription>(*outcome.result), outcome.report.idempotency_key, response);
      });
}

grpc::ServerUnaryReactor* SubscriptionService::Delete(grpc::CallbackServerContext* context,
                                                      const pb::DeleteSubscriptionRequest* request,
                                                      pb::DeleteSubscriptionResponse*) {
  return UnaryCall::Begin(api_, context,
                          {.method = "Delete",
                           .may_exist_key = "",
                           .account_sid = request->account_sid(),
                           .call_sid = request->call_sid(),
                           .sid = request->sid(),
                           .idempotency_key = ""},
                          FromProto(*request), &Operations::Delete, [](const Outcome&) {});
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

DeleteSubscriptionInput FromProto(const pb::DeleteSubscriptionRequest& request) {
  DeleteSubscriptionInput input;
  input.account_sid = request.account_sid();
  input.call_sid = request.call_sid();
  input.sid = request.sid();
  return input;
}

void ToProto(const Subscription& subscription, absl::string_view idempotency_key,
             pb::Subscription* out) {
  out->set_account_sid(subscription.account_sid);
  out->set_call_sid(subscription.call_sid);
  out->set_sid(subscription.sid);
  out->set_uri(subscription.uri);
  out->set_idempotency_key(idempotency_key.data(), idempotency_key.size());
  if (subscription.date_created.has_value()) {
    ToTimestamp(*subscription.date_created, out->mutable_date_created());
  }
}

}  // namespace gateway
