#include "api/unary_call.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "api/grpc_status.h"
#include "common/error_details.h"
#include "common/log.h"

namespace gateway {
namespace {

absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// The audit line: one per RPC, whatever its outcome. Never holds a secret.
void Audit(const std::string& request_id, const RpcInfo& info, const std::string& caller,
           const Outcome& outcome, absl::Duration latency) {
  const Report& report = outcome.report;
  // Raw input, valid or not, is bounded: a caller must not size our log lines.
  const absl::string_view key =
      report.idempotency_key.empty() ? info.idempotency_key : report.idempotency_key;
  const absl::Status& status = outcome.result.status();
  Log(LogLevel::kInfo, "audit",
      {{"request_id", request_id},
       {"rpc", info.method},
       {"caller", caller.empty() ? absl::string_view("anonymous") : absl::string_view(caller)},
       {"account_sid", info.account_sid.empty() ? "default" : info.account_sid.substr(0, 64)},
       {"call_sid", info.call_sid.substr(0, 64)},
       {"sid", info.sid.substr(0, 64)},
       {"idempotency_key", key.substr(0, 255)},
       {"code", absl::StatusCodeToString(status.code())},
       {"reason", status.ok() ? "" : GetErrorReason(status).value_or("")},
       {"attempts", absl::StrCat(report.attempts)},
       {"replayed", report.replayed ? "true" : "false"},
       {"latency_ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(latency))}});
}

}  // namespace

bool Api::Enter() {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  ++in_flight_;
  return true;
}

void Api::Exit() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

bool Api::CloseWhenIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  const bool idle_in_time = mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
  closed_ = true;
  return idle_in_time;
}

grpc::Status RenderStatus(const Outcome& outcome, absl::string_view may_exist_key) {
  if (outcome.result.ok()) return grpc::Status::OK;
  absl::Status status = outcome.result.status();
  const Report& report = outcome.report;
  std::map<std::string, std::string> metadata = {{"attempts", absl::StrCat(report.attempts)}};
  if (!may_exist_key.empty()) {
    metadata["idempotency_key"] = report.idempotency_key;
    metadata[std::string(may_exist_key)] = report.may_exist ? "true" : "false";
  }
  if (report.replayed) metadata["replayed"] = "true";
  SetErrorInfo(status, "", metadata);
  return ToGrpcStatus(status);
}

void ToTimestamp(absl::Time time, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(time);
  out->set_seconds(seconds);
  out->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
}

UnaryCall::UnaryCall(Api& api, grpc::CallbackServerContext* context, RpcInfo info, Render render)
    : api_(api),
      context_(context),
      info_(std::move(info)),
      request_id_(api.random_.HexId128()),
      started_(absl::Now()),
      render_(std::move(render)) {}

grpc::ServerUnaryReactor* UnaryCall::Begin(Api& api, grpc::CallbackServerContext* context,
                                           RpcInfo info, Start start, Render render) {
  auto* call = new UnaryCall(api, context, std::move(info), std::move(render));
  call->entered_ = api.Enter();
  if (api.metrics_ != nullptr) api.metrics_->RpcStarted();
  // Returned to the caller, and in the audit line, so one request can be traced across both.
  context->AddInitialMetadata("x-request-id", call->request_id_);
  if (!call->entered_) {
    // Accepted by gRPC just before the drain's GOAWAY: nothing is started, so it is safe to retry.
    call->Complete(NothingSent(absl::UnavailableError("the gateway is shutting down; retry on "
                                                      "another replica"),
                               call->info_.idempotency_key));
    return call;
  }
  if (api.authenticator_ != nullptr) {
    absl::StatusOr<std::string> caller = api.authenticator_->Authenticate(*context);
    if (!caller.ok()) {
      call->Complete(NothingSent(caller.status(), call->info_.idempotency_key));
      return call;
    }
    call->caller_ = *std::move(caller);
  }
  std::shared_ptr<PendingCall> pending =
      start(call->caller_, DeadlineOf(*context), [call](Outcome outcome) {
        if (outcome.result.ok()) {
          call->render_(outcome);
          // Tells the caller nothing new was done: this is the stored outcome.
          if (outcome.report.replayed) {
            call->context_->AddTrailingMetadata("idempotent-replay", "true");
          }
        }
        call->Complete(outcome);
      });
  absl::MutexLock lock(&call->mu_);
  call->pending_ = std::move(pending);
  return call;
}

void UnaryCall::OnCancel() {
  std::shared_ptr<PendingCall> pending;
  {
    absl::MutexLock lock(&mu_);
    pending = pending_;
  }
  if (pending) pending->Cancel();
}

void UnaryCall::OnDone() {
  if (entered_) api_.Exit();
  delete this;
}

// Called once per RPC, with its outcome.
void UnaryCall::Complete(const Outcome& outcome) {
  const absl::Status& status = outcome.result.status();
  const absl::Duration latency = absl::Now() - started_;
  Audit(request_id_, info_, caller_, outcome, latency);
  if (api_.metrics_ != nullptr) {
    api_.metrics_->RpcFinished(info_.method, status.code(),
                               status.ok() ? "" : GetErrorReason(status).value_or(""),
                               outcome.report.replayed, latency);
  }
  Finish(RenderStatus(outcome, info_.may_exist_key));
}

}  // namespace gateway
