// Target that calls the gateway over gRPC with the callback API: SubscriptionService/Create, or
// the standard health check (the floor of "a minimal unary call on the same server").
//
// Calls are spread round-robin over `channels` channels, each with its own subchannel pool and a
// distinct channel argument so that they open separate HTTP/2 connections, as independent
// clients would. No thread is created here: completions run on gRPC's callback threads.
// Thread-safety: Send() is safe from any thread.
#ifndef GATEWAY_BENCH_LOADGEN_GRPC_TARGET_H_
#define GATEWAY_BENCH_LOADGEN_GRPC_TARGET_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "target.h"
#include "twilio_gateway/v1/subscription_service.grpc.pb.h"

namespace loadgen {

struct GrpcTargetOptions {
  enum class Rpc { kCreate, kHealth };
  std::string address;
  int channels = 4;
  Rpc rpc = Rpc::kCreate;
  std::chrono::milliseconds timeout{5000};
  // Create's fields; the idempotency key is key_prefix + sequence number.
  std::string call_sid;
  std::string callback;
  std::string account_sid;
  std::string key_prefix;
};

class GrpcTarget final : public Target {
 public:
  explicit GrpcTarget(GrpcTargetOptions options);
  ~GrpcTarget() override;

  void SetSink(CompletionSink* sink) override { sink_ = sink; }
  void Send(const Request& request) override;

  // Blocks until every channel is connected or `timeout` passes; false on timeout.
  bool WaitForConnected(std::chrono::milliseconds timeout);

 private:
  struct Call;
  void SendCreate(Call* call, size_t channel);
  void SendHealth(Call* call, size_t channel);

  const GrpcTargetOptions options_;
  CompletionSink* sink_ = nullptr;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<twilio_gateway::v1::SubscriptionService::Stub>> stubs_;
  std::vector<std::unique_ptr<grpc::GenericStub>> generic_stubs_;
  grpc::ByteBuffer empty_health_request_;
};

}  // namespace loadgen

#endif  // GATEWAY_BENCH_LOADGEN_GRPC_TARGET_H_
