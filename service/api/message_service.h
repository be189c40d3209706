// The gRPC face of MessageService: converts Send's proto to the operation's input and the
// message back, UnaryCall doing everything else; Watch is MessageWatch's. No business logic here.
//
// Thread-safety: gRPC calls the methods concurrently from its callback threads; none blocks.
#ifndef GATEWAY_API_MESSAGE_SERVICE_H_
#define GATEWAY_API_MESSAGE_SERVICE_H_

#include "api/message_watch.h"
#include "api/unary_call.h"
#include "model/requests.h"
#include "model/resources.h"
#include "twilio_gateway/v1/message_service.grpc.pb.h"

namespace gateway {

class MessageService final : public twilio_gateway::v1::MessageService::CallbackService {
 public:
  MessageService(Api& api, MessageWatch& watch) : api_(api), watch_(watch) {}

  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* context,
                                 const twilio_gateway::v1::SendMessageRequest* request,
                                 twilio_gateway::v1::Message* response) override;

  grpc::ServerWriteReactor<twilio_gateway::v1::CallMessage>* Watch(
      grpc::CallbackServerContext* context,
      const twilio_gateway::v1::WatchMessagesRequest* request) override {
    return watch_.Begin(context, request);
  }

 private:
  Api& api_;
  MessageWatch& watch_;
};

// Conversions, exposed for unit tests.
SendMessageInput FromProto(const twilio_gateway::v1::SendMessageRequest& request);
void ToProto(const Message& message, absl::string_view idempotency_key,
             twilio_gateway::v1::Message* out);

}  // namespace gateway

#endif  // GATEWAY_API_MESSAGE_SERVICE_H_
