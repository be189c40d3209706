#include "api/message_service.h"

#include <utility>
#include <variant>

namespace gateway {

namespace pb = twilio_gateway::v1;

grpc::ServerUnaryReactor* MessageService::Send(grpc::CallbackServerContext* context,
                                               const pb::SendMessageRequest* request,
                                               pb::Message* response) {
  return UnaryCall::Begin(
      api_, context,
      {.method = "Send",
       .may_exist_key = "message_may_exist",
       .account_sid = request->account_sid(),
       .call_sid = request->call_sid(),
       .sid = "",
       .idempotency_key = request->idempotency_key()},
      FromProto(*request), &Operations::Send, [response](const Outcome& outcome) {
        ToProto(std::get<Message>(*outcome.result), outcome.report.idempotency_key, response);
      });
}

SendMessageInput FromProto(const pb::SendMessageRequest& request) {
  SendMessageInput input;
  input.account_sid = request.account_sid();
  input.call_sid = request.call_sid();
  input.content = request.content();
  input.idempotency_key = request.idempotency_key();
  return input;
}

void ToProto(const Message& message, absl::string_view idempotency_key, pb::Message* out) {
  out->set_account_sid(message.account_sid);
  out->set_call_sid(message.call_sid);
  out->set_sid(message.sid);
  out->set_idempotency_key(idempotency_key.data(), idempotency_key.size());
  if (message.date_created.has_value()) {
    ToTimestamp(*message.date_created, out->mutable_date_created());
  }
}

}  // namespace gateway
