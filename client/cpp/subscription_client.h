// C++ client for the gateway: SubscriptionService.Create and Delete and MessageService.Send, one
// call each, with a deadline, and the error's rich details decoded; MessageService.Watch as a
// MessageStream.
//
// Usage:
//   auto channel = grpc::CreateChannel("gateway:50051", grpc::InsecureChannelCredentials());
//   twilio_gateway::client::SubscriptionClient client(channel);
//   twilio_gateway::v1::CreateSubscriptionRequest request;
//   request.set_call_sid("CA...");
//   request.set_callback("https://example.com/messages");
//   auto result = client.Create(request, std::chrono::seconds(10));
//   if (!result.status.ok()) { ... result.details.twilio_error, result.idempotency_key ... }
//   auto deleted = client.Delete(delete_request, std::chrono::seconds(10));   // ZY... from Create
//   auto sent = client.Send(send_request, std::chrono::seconds(10));          // content: JSON text
//   auto stream = client.Watch(watch_request);   // call_sid, cursor or from_oldest
//   twilio_gateway::v1::CallMessage message;
//   while (stream->Next(&message)) { ... message.content(); save message.cursor() ... }
//   auto ended = stream->Finish();  // ended.status, ended.resume_cursor: where to watch again
//
// When a Create or Send request has no idempotency key the client generates one before sending,
// so the caller knows the key even if the RPC times out and can retry the same call safely.
// Delete needs none: deleting again is always safe.
//
// Thread-safety: every call may be made concurrently; the class holds only the stubs. A
// MessageStream is read from one thread; Cancel() may come from any.
#ifndef TWILIO_GATEWAY_CLIENT_SUBSCRIPTION_CLIENT_H_
#define TWILIO_GATEWAY_CLIENT_SUBSCRIPTION_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "twilio_gateway/v1/message_service.grpc.pb.h"
#include "twilio_gateway/v1/subscription_service.grpc.pb.h"

namespace twilio_gateway::client {

// The details of a failed call, decoded from the grpc-status-details-bin trailer.
struct ErrorDetails {
  std::optional<google::rpc::ErrorInfo> error_info;
  std::optional<google::rpc::BadRequest> bad_request;
  std::optional<google::rpc::RetryInfo> retry_info;
  std::optional<v1::TwilioError> twilio_error;
  // Everything, for printing: the full google.rpc.Status (empty when the server sent none).
  google::rpc::Status rich_status;

  // ErrorInfo's metadata value for `key`; empty when absent.
  std::string Metadata(const std::string& key) const;
  // ErrorInfo metadata `attempts`: how many times the gateway called Twilio; 0 when absent.
  int Attempts() const;
  // Whether a failed Create may have created the subscription (`subscription_may_exist`) or a
  // failed Send may have sent the message (`message_may_exist`). False only on the gateway's
  // word: without it (a deadline that ended here, a lost connection) the request may have
  // reached Twilio.
  bool SubscriptionMayExist() const;
  bool MessageMayExist() const;
};

// The call an error came from, for NextStep's advice.
enum class Operation { kCreate, kDelete, kSend, kWatch };

// What to do next after an error, by operation, code and ErrorInfo reason (README, "Exactly
// once: the contract"); for Create and Send it is about the idempotency key, for Watch about the
// cursor to resume from (README, "Receiving messages").
const char* NextStep(Operation operation, grpc::StatusCode code, const std::string& reason);

struct CreateResult {
  grpc::Status status;
  v1::Subscription subscription;  // Set when status.ok().
  ErrorDetails details;           // Set when !status.ok().
  std::string idempotency_key;    // The key this call used, whatever the outcome.
  // True when the gateway replayed the stored outcome of an earlier call with the same key
  // (no new subscription was created).
  bool replayed = false;
  // The gateway's id for this call (x-request-id), as written in its audit log.
  std::string request_id;
};

struct DeleteResult {
  grpc::Status status;   // OK: the subscription is gone (now, or by a lost earlier attempt).
  ErrorDetails details;  // Set when !status.ok().
  std::string request_id;
};

struct SendResult {
  grpc::Status status;
  v1::Message message;          // Set when status.ok().
  ErrorDetails details;         // Set when !status.ok().
  std::string idempotency_key;  // The key this call used, whatever the outcome.
  // True when the gateway replayed the stored outcome of an earlier call with the same key (no
  // second message was sent).
  bool replayed = false;
  std::string request_id;
};

// How a Watch ended.
struct WatchResult {
  // Never OK: a Watch does not end by itself. CANCELLED after MessageStream::Cancel() (then
  // `cancelled` is true); OUT_OF_RANGE (reason CURSOR_EXPIRED) when the cursor left the
  // retention; UNAVAILABLE when the gateway stopped or the connection broke; see the proto.
  grpc::Status status;
  ErrorDetails details;
  bool cancelled = false;
  // Where to watch again (WatchMessagesRequest.cursor): the last message Next() returned, else
  // the cursor the stream started after, else the gateway's details.Metadata("cursor") (where
  // a watch of new messages that got none started); empty when there is none. The gateway's own
  // word (the last message it wrote, which a broken connection may have lost) is that metadata.
  std::string resume_cursor;
  uint64_t messages = 0;  // How many Next() returned.
};

// A Watch in progress: MessageService.Watch's messages, in order, until the stream ends.
class MessageStream {
 public:
  ~MessageStream();  // Cancels the stream if it is still open.
  MessageStream(const MessageStream&) = delete;
  MessageStream& operator=(const MessageStream&) = delete;

  // Blocks for the next message; false once the stream has ended (then call Finish()).
  bool Next(v1::CallMessage* message);
  // Ends the stream from any thread: Next() returns false, Finish() says `cancelled`.
  void Cancel();
  // After Next() returned false: how the stream ended. Call once.
  WatchResult Finish();
  // The cursor of the last message Next() returned, else the one the stream started after.
  const std::string& cursor() const { return cursor_; }

 private:
  friend class SubscriptionClient;
  MessageStream() = default;

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::CallMessage>> reader_;
  std::atomic<bool> cancelled_{false};
  std::string cursor_;
  uint64_t messages_ = 0;
};

// Decodes a status's details; unknown detail types are kept only in rich_status.
ErrorDetails DecodeErrorDetails(const grpc::Status& status);

// "INVALID_ARGUMENT" and so on; "UNKNOWN" for numbers outside the canonical codes.
const char* StatusCodeName(grpc::StatusCode code);

// A random version 4 UUID.
std::string NewIdempotencyKey();

struct ClientOptions {
  // Sent as "authorization: Bearer <token>" on every call; empty: none (mutual TLS or a
  // loopback gateway without caller policy).
  std::string bearer_token;
};

// Channel credentials: plaintext when `ca_file` is empty, else TLS verified against it, with a
// client certificate when `cert_file` and `key_file` are set (mutual TLS). Reads the files; null,
// with `*error` naming the file, when one cannot be read or is empty (an empty CA would make
// gRPC quietly trust the system's roots instead).
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFromFiles(const std::string& ca_file,
                                                                      const std::string& cert_file,
                                                                      const std::string& key_file,
                                                                      std::string* error);

class SubscriptionClient {
 public:
  explicit SubscriptionClient(std::shared_ptr<grpc::ChannelInterface> channel,
                              ClientOptions options = {});

  CreateResult Create(v1::CreateSubscriptionRequest request, std::chrono::milliseconds timeout);
  DeleteResult Delete(const v1::DeleteSubscriptionRequest& request,
                      std::chrono::milliseconds timeout);
  // MessageService.Send over the same channel.
  SendResult Send(v1::SendMessageRequest request, std::chrono::milliseconds timeout);
  // MessageService.Watch: starts the stream (it does not end by itself). `timeout` bounds the
  // whole stream; none: no deadline. Errors, as for the others, come from Finish().
  std::unique_ptr<MessageStream> Watch(
      const v1::WatchMessagesRequest& request,
      std::optional<std::chrono::milliseconds> timeout = std::nullopt);

 private:
  void PrepareContext(grpc::ClientContext& context, std::chrono::milliseconds timeout) const;

  std::unique_ptr<v1::SubscriptionService::Stub> stub_;
  std::unique_ptr<v1::MessageService::Stub> message_stub_;
  const ClientOptions options_;
};

}  // namespace twilio_gateway::client

#endif  // TWILIO_GATEWAY_CLIENT_SUBSCRIPTION_CLIENT_H_
