// The gRPC face of MessageService: converts Send's proto to the operation's input and the
// message back; UnaryCall does everything else. No business logic here.
//
// Thread-safety: gRPC calls the methods concurrently from its callback threads; none blocks.
#ifndef GATEWAY_API_MESSAGE_SERVICE_H_
#define GATEWAY_API_MESSAGE_SERVICE_H_

#include "api/unary_call.h"
#include "model/requests.h"
#include "model/resources.h"
#include "twilio_gateway/v1/message_service.grpc.pb.h"

namespace gateway {

class MessageService final : public twilio_gateway::v1::MessageService::CallbackService {
 public:
  explicit MessageService(Api& api) : api_(api) {}

  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* context,
                                 const twilio_gateway::v1::SendMessageRequest* request,
                                 twilio_gateway::v1::Message* response) override;

 private:
  Api& api_;
};

// Conversions, exposed for unit tests.
SendMessageInput FromProto(const twilio_gateway::v1::SendMessageRequest& request);
void ToProto(const Message& message, absl::string_view idempotency_key,
             twilio_gateway::v1::Message* out);

}  // namespace gateway

#endif  // GATEWAY_API_MESSAGE_SERVICE_H_
