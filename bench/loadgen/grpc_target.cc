#include "grpc_target.h"

#include <grpc/grpc.h>

#include <utility>

namespace loadgen {
namespace {

namespace pb = twilio_gateway::v1;

// HealthCheckRequest{service: ""} serializes to zero bytes.
const std::string kHealthMethod = "/grpc.health.v1.Health/Check";

}  // namespace

// One RPC in flight: everything gRPC needs to outlive the call.
struct GrpcTarget::Call {
  Request request;
  grpc::ClientContext context;
  pb::CreateSubscriptionRequest create_request;
  pb::Subscription create_response;
  grpc::ByteBuffer health_response;
};

GrpcTarget::GrpcTarget(GrpcTargetOptions options) : options_(std::move(options)) {
  grpc::Slice empty;
  empty_health_request_ = grpc::ByteBuffer(&empty, 1);
  for (int i = 0; i < std::max(1, options_.channels); ++i) {
    grpc::ChannelArguments args;
    // Without these, channels to one target share a subchannel, i.e. one TCP connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("grpc.channel_id", i);
    auto channel =
        grpc::CreateCustomChannel(options_.address, grpc::InsecureChannelCredentials(), args);
    stubs_.push_back(pb::SubscriptionService::NewStub(channel));
    generic_stubs_.push_back(std::make_unique<grpc::GenericStub>(channel));
    channels_.push_back(std::move(channel));
  }
}

GrpcTarget::~GrpcTarget() = default;

bool GrpcTarget::WaitForConnected(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::system_clock::now() + timeout;
  for (auto& channel : channels_) {
    if (!channel->WaitForConnected(deadline)) return false;
  }
  return true;
}

void GrpcTarget::Send(const Request& request) {
  auto* call = new Call;
  call->request = request;
  call->context.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  const size_t channel = request.seq % channels_.size();
  if (options_.rpc == GrpcTargetOptions::Rpc::kHealth) {
    SendHealth(call, channel);
  } else {
    SendCreate(call, channel);
  }
}

void GrpcTarget::SendCreate(Call* call, size_t channel) {
  pb::CreateSubscriptionRequest& r = call->create_request;
  r.set_call_sid(options_.call_sid);
  r.set_callback(options_.callback);
  if (!options_.account_sid.empty()) r.set_account_sid(options_.account_sid);
  r.set_idempotency_key(options_.key_prefix + std::to_string(call->request.seq));
  stubs_[channel]->async()->Create(
      &call->context, &r, &call->create_response, [this, call](grpc::Status status) {
        sink_->OnComplete(call->request, {static_cast<int>(status.error_code()), status.ok()});
        delete call;
      });
}

void GrpcTarget::SendHealth(Call* call, size_t channel) {
  generic_stubs_[channel]->UnaryCall(
      &call->context, kHealthMethod, grpc::StubOptions(), &empty_health_request_,
      &call->health_response, [this, call](grpc::Status status) {
        sink_->OnComplete(call->request, {static_cast<int>(status.error_code()), status.ok()});
        delete call;
      });
}

}  // namespace loadgen
