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

SubscriptionClient::SubscriptionClient(std::shared_ptr<grpc::ChannelInterface> channel,
                                       ClientOptions options)
    : stub_(v1::SubscriptionService::NewStub(std::move(channel))), options_(std::move(options)) {}

CreateResult SubscriptionClient::Create(v1::CreateSubscriptionRequest request,
                                        std::chrono::milliseconds timeout) {
  if (request.idempotency_key().empty()) request.set_idempotency_key(NewIdempotencyKey());
  CreateResult result;
  result.idempotency_key = request.idempotency_key();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  if (!options_.bearer_token.empty()) {
    context.AddMetadata("authorization", "Bearer " + options_.bearer_token);
  }
  result.status = stub_->Create(&context, request, &result.subscription);
  if (!result.status.ok()) result.details = DecodeErrorDetails(result.status);
  const auto& initial = context.GetServerInitialMetadata();
  if (auto id = initial.find("x-request-id"); id != initial.end()) {
    result.request_id.assign(id->second.data(), id->second.size());
  }
  const auto& trailers = context.GetServerTrailingMetadata();
  auto replay = trailers.find("idempotent-replay");
  result.replayed = replay != trailers.end() && replay->second == "true";
  if (!result.status.ok() && result.details.error_info.has_value()) {
    auto it = result.details.error_info->metadata().find("replayed");
    result.replayed = it != result.details.error_info->metadata().end() && it->second == "true";
  }
  return result;
}

}  // namespace twilio_gateway::client
