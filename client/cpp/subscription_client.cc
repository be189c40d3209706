#include "subscription_client.h"

#include <fstream>
#include <sstream>

#include "common/random_ids.h"

namespace twilio_gateway::client {

ErrorDetails DecodeErrorDetails(const grpc::Status& status) {
  ErrorDetails out;
  if (status.error_details().empty() || !out.rich_status.ParseFromString(status.error_details())) {
    return out;
  }
  for (const google::protobuf::Any& any : out.rich_status.details()) {
    if (any.Is<google::rpc::ErrorInfo>()) {
      any.UnpackTo(&out.error_info.emplace());
    } else if (any.Is<google::rpc::BadRequest>()) {
      any.UnpackTo(&out.bad_request.emplace());
    } else if (any.Is<google::rpc::RetryInfo>()) {
      any.UnpackTo(&out.retry_info.emplace());
    } else if (any.Is<v1::TwilioError>()) {
      any.UnpackTo(&out.twilio_error.emplace());
    }
  }
  return out;
}

const char* StatusCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "UNKNOWN";
}

// The gateway's own UUID writer, so keys from the client and the server look alike.
std::string NewIdempotencyKey() { return gateway::NewUuidV4(); }

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFromFiles(const std::string& ca_file,
                                                                      const std::string& cert_file,
                                                                      const std::string& key_file,
                                                                      std::string* error) {
  if (ca_file.empty()) return grpc::InsecureChannelCredentials();
  auto read = [error](const std::string& path, std::string* out) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    *out = contents.str();
    if (in.bad() || out->empty()) {
      *error = "cannot read " + path + " (or it is empty)";
      return false;
    }
    return true;
  };
  grpc::SslCredentialsOptions options;
  if (!read(ca_file, &options.pem_root_certs)) return nullptr;
  if (!cert_file.empty() &&
      (!read(cert_file, &options.pem_cert_chain) || !read(key_file, &options.pem_private_key))) {
    return nullptr;
  }
  return grpc::SslCredentials(options);
}

std::string ErrorDetails::Metadata(const std::string& key) const {
  if (!error_info.has_value()) return "";
  auto it = error_info->metadata().find(key);
  return it == error_info->metadata().end() ? "" : it->second;
}

int ErrorDetails::Attempts() const {
  const std::string value = Metadata("attempts");
  int attempts = 0;
  for (char c : value) {
    if (c < '0' || c > '9' || attempts > 1000000) return 0;  // Not a count the gateway sends.
    attempts = attempts * 10 + (c - '0');
  }
  return attempts;
}

bool ErrorDetails::SubscriptionMayExist() const {
  return Metadata("subscription_may_exist") != "false";
}

bool ErrorDetails::MessageMayExist() const { return Metadata("message_may_exist") != "false"; }

const char* NextStep(Operation operation, grpc::StatusCode code, const std::string& reason) {
  if (operation == Operation::kWatch) {
    // No key either: a Watch resumes after the last message received.
    switch (code) {
      case grpc::StatusCode::OUT_OF_RANGE:
        return "messages after the cursor may be lost: watch again without it (from_oldest for "
               "what is still kept)";
      case grpc::StatusCode::INVALID_ARGUMENT:
        return "fix the request: retrying it unchanged cannot succeed";
      case grpc::StatusCode::PERMISSION_DENIED:
      case grpc::StatusCode::UNAUTHENTICATED:
        return "retrying changes nothing until the cause is fixed";
      case grpc::StatusCode::FAILED_PRECONDITION:
        return "the gateway receives no messages: ask its operator to configure its webhook";
      default:
        return "watch again with the resume cursor: nothing it still keeps after it is lost";
    }
  }
  if (operation == Operation::kDelete) {
    // No key: a Delete is repeated as it is, and repeating it is always safe.
    switch (code) {
      case grpc::StatusCode::INVALID_ARGUMENT:
        return "fix the request: retrying it unchanged cannot succeed";
      case grpc::StatusCode::NOT_FOUND:
        return "there is no such subscription, call or account: do not retry";
      case grpc::StatusCode::PERMISSION_DENIED:
      case grpc::StatusCode::UNAUTHENTICATED:
        return "retrying changes nothing until the cause is fixed";
      default:
        return "retry the delete: deleting again is always safe";
    }
  }
  const bool send = operation == Operation::kSend;
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "fix the request and use a new key: retrying this one cannot succeed";
    case grpc::StatusCode::UNKNOWN:
      if (reason == "OUTCOME_UNKNOWN") {
        return send ? "the message may or may not have been sent and the gateway will not send "
                      "this key again; a new key may send it a second time"
                    : "the subscription may or may not exist and the gateway will not send this "
                      "key again; a new key may create a second one";
      }
      return send ? "retry with it to repeat this send safely"
                  : "retry with it to repeat this create safely";
    case grpc::StatusCode::FAILED_PRECONDITION:
      if (reason == "IDEMPOTENCY_KEY_REUSED")
        return "this key belongs to another request: use a new key";
      return "retrying with it is safe once the cause is fixed";
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return "retrying with it changes nothing until the cause is fixed";
    default:
      return send ? "retry with it to repeat this send safely"
                  : "retry with it to repeat this create safely";
  }
}

namespace {

// The gateway's request id (initial metadata) and whether it replayed a stored outcome: trailing
// metadata `idempotent-replay` on success, ErrorInfo metadata `replayed` on an error.
void ReadCallMetadata(const grpc::ClientContext& context, const grpc::Status& status,
                      const ErrorDetails& details, std::string* request_id, bool* replayed) {
  const auto& initial = context.GetServerInitialMetadata();
  if (auto id = initial.find("x-request-id"); id != initial.end()) {
    request_id->assign(id->second.data(), id->second.size());
  }
  if (replayed == nullptr) return;
  if (status.ok()) {
    const auto& trailers = context.GetServerTrailingMetadata();
    auto replay = trailers.find("idempotent-replay");
    *replayed = replay != trailers.end() && replay->second == "true";
  } else {
    *replayed = details.Metadata("replayed") == "true";
  }
}

}  // namespace

SubscriptionClient::SubscriptionClient(std::shared_ptr<grpc::ChannelInterface> channel,
                                       ClientOptions options)
    : stub_(v1::SubscriptionService::NewStub(channel)),
      message_stub_(v1::MessageService::NewStub(channel)),
      options_(std::move(options)) {}

void SubscriptionClient::PrepareContext(grpc::ClientContext& context,
                                        std::chrono::milliseconds timeout) const {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  if (!options_.bearer_token.empty()) {
    context.AddMetadata("authorization", "Bearer " + options_.bearer_token);
  }
}

CreateResult SubscriptionClient::Create(v1::CreateSubscriptionRequest request,
                                        std::chrono::milliseconds timeout) {
  if (request.idempotency_key().empty()) request.set_idempotency_key(NewIdempotencyKey());
  CreateResult result;
  result.idempotency_key = request.idempotency_key();
  grpc::ClientContext context;
  PrepareContext(context, timeout);
  result.status = stub_->Create(&context, request, &result.subscription);
  if (!result.status.ok()) result.details = DecodeErrorDetails(result.status);
  ReadCallMetadata(context, result.status, result.details, &result.request_id, &result.replayed);
  return result;
}

DeleteResult SubscriptionClient::Delete(const v1::DeleteSubscriptionRequest& request,
                                        std::chrono::milliseconds timeout) {
  DeleteResult result;
  grpc::ClientContext context;
  PrepareContext(context, timeout);
  v1::DeleteSubscriptionResponse response;
  result.status = stub_->Delete(&context, request, &response);
  if (!result.status.ok()) result.details = DecodeErrorDetails(result.status);
  ReadCallMetadata(context, result.status, result.details, &result.request_id, nullptr);
  return result;
}

SendResult SubscriptionClient::Send(v1::SendMessageRequest request,
                                    std::chrono::milliseconds timeout) {
  if (request.idempotency_key().empty()) request.set_idempotency_key(NewIdempotencyKey());
  SendResult result;
  result.idempotency_key = request.idempotency_key();
  grpc::ClientContext context;
  PrepareContext(context, timeout);
  result.status = message_stub_->Send(&context, request, &result.message);
  if (!result.status.ok()) result.details = DecodeErrorDetails(result.status);
  ReadCallMetadata(context, result.status, result.details, &result.request_id, &result.replayed);
  return result;
}

std::unique_ptr<MessageStream> SubscriptionClient::Watch(
    const v1::WatchMessagesRequest& request, std::optional<std::chrono::milliseconds> timeout) {
  std::unique_ptr<MessageStream> stream(new MessageStream());
  if (timeout.has_value()) {
    stream->context_.set_deadline(std::chrono::system_clock::now() + *timeout);
  }
  if (!options_.bearer_token.empty()) {
    stream->context_.AddMetadata("authorization", "Bearer " + options_.bearer_token);
  }
  stream->cursor_ = request.cursor();
  stream->reader_ = message_stub_->Watch(&stream->context_, request);
  return stream;
}

MessageStream::~MessageStream() {
  if (reader_ != nullptr) {
    // gRPC wants every stream finished; cancelling first makes that immediate.
    context_.TryCancel();
    reader_->Finish().IgnoreError();
  }
}

bool MessageStream::Next(v1::CallMessage* message) {
  if (reader_ == nullptr || !reader_->Read(message)) return false;
  cursor_ = message->cursor();
  ++messages_;
  return true;
}

void MessageStream::Cancel() {
  cancelled_ = true;
  context_.TryCancel();
}

WatchResult MessageStream::Finish() {
  WatchResult result;
  if (reader_ == nullptr) {
    result.status = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "Finish() called twice");
    return result;
  }
  result.status = reader_->Finish();
  reader_.reset();
  result.cancelled = cancelled_ && result.status.error_code() == grpc::StatusCode::CANCELLED;
  if (!result.status.ok()) result.details = DecodeErrorDetails(result.status);
  // This stream's own word first; without one (no message yet, a watch of new ones) the
  // gateway's says where the stream started.
  result.resume_cursor = cursor_.empty() ? result.details.Metadata("cursor") : cursor_;
  result.messages = messages_;
  return result;
}

}  // namespace twilio_gateway::client
