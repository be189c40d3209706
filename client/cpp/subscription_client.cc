#include "subscription_client.h"

#include <fstream>
#include <random>
#include <sstream>

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

std::string NewIdempotencyKey() {
  static constexpr char kHex[] = "0123456789abcdef";
  thread_local std::mt19937_64 gen{std::random_device{}()};
  unsigned char bytes[16];
  for (int i = 0; i < 16; i += 8) {
    const uint64_t r = gen();
    for (int j = 0; j < 8; ++j) bytes[i + j] = static_cast<unsigned char>(r >> (8 * j));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
  std::string key;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) key.push_back('-');
    key.push_back(kHex[bytes[i] >> 4]);
    key.push_back(kHex[bytes[i] & 0xf]);
  }
  return key;
}

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
