// The one corridor every unary RPC takes through the api/ floor, whatever the operation:
//   request id -> caller authentication -> Operations (with the RPC's deadline and
//   cancellation) -> the typed Outcome rendered once: the response or the gRPC status with its
//   details, one audit line, the RPC metrics.
// A service method describes its RPC (RpcInfo), how to start it and how to fill its response;
// UnaryCall does the rest.
//
// Thread-safety: gRPC drives the reactor; the operation's completion and gRPC's OnCancel() may
// race, and the operation guarantees its `done` runs once, where Finish() is called.
#ifndef GATEWAY_API_UNARY_CALL_H_
#define GATEWAY_API_UNARY_CALL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/caller_authenticator.h"
#include "common/random.h"
#include "google/protobuf/timestamp.pb.h"
#include "metrics/gateway_metrics.h"
#include "model/outcome.h"
#include "operations/operations.h"

namespace gateway {

// What the services share: the operations, who is calling, the metrics, and the count of RPCs
// in flight that the drain waits on.
class Api {
 public:
  // `authenticator` null: every caller is anonymous (tests, loopback runs without a policy).
  // `metrics` null: none recorded.
  // `random` draws request ids.
  Api(Operations& operations, Random& random, const CallerAuthenticator* authenticator = nullptr,
      GatewayMetrics* metrics = nullptr)
      : operations_(operations),
        random_(random),
        authenticator_(authenticator),
        metrics_(metrics) {}

  Operations& operations() { return operations_; }
  const CallerAuthenticator* authenticator() const { return authenticator_; }
  GatewayMetrics* metrics() const { return metrics_; }
  Random& random() { return random_; }

  // An RPC the gateway serves (unary, or a Watch it takes) holds the API from its start until
  // gRPC's OnDone(). Enter() is false once the API is closed: the RPC is then answered
  // UNAVAILABLE and starts nothing. Exit() once for each true Enter().
  bool Enter();
  void Exit();

  // For the drain: waits until no RPC is in flight, and closes the API in the same step, so that
  // none begins after the wait; at `deadline`, closes it anyway. True when it closed idle.
  bool CloseWhenIdle(absl::Time deadline);

 private:
  friend class UnaryCall;

  Operations& operations_;
  Random& random_;
  const CallerAuthenticator* const authenticator_;
  GatewayMetrics* const metrics_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// What the audit line and the error details say of one RPC.
struct RpcInfo {
  absl::string_view method;  // "Create", "Delete", "Send": also the metrics label.
  // The ErrorInfo metadata name for Report::may_exist, e.g. "subscription_may_exist"; empty for
  // an operation without an idempotency key (neither key nor may_exist is then rendered).
  absl::string_view may_exist_key;
  // The request's fields as sent, valid or not (bounded when written). Views into the request
  // message, which gRPC keeps until OnDone().
  absl::string_view account_sid;
  absl::string_view call_sid;
  // The subscription a Delete names: a Delete has no idempotency key, so without it the audit
  // could not say what was deleted. Empty for Create and Send.
  absl::string_view sid;
  absl::string_view idempotency_key;
};

class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // One of Operations' methods: Create, Delete or Send.
  template <typename Input>
  using Operation = std::shared_ptr<PendingCall> (Operations::*)(const Input&, absl::Time,
                                                                 Operations::Done);
  // Fills the response from a successful outcome.
  using Render = absl::AnyInvocable<void(const Outcome&)>;

  // Starts the RPC: `operation` runs on `input` once the caller is known (and written into
  // it). gRPC owns the reactor until OnDone().
  template <typename Input>
  static grpc::ServerUnaryReactor* Begin(Api& api, grpc::CallbackServerContext* context,
                                         RpcInfo info, Input input, Operation<Input> operation,
                                         Render render) {
    return Begin(
        api, context, info,
        [&](const std::string& caller, absl::Time deadline, Operations::Done done) {
          input.caller = caller;
          return (api.operations().*operation)(input, deadline, std::move(done));
        },
        std::move(render));
  }

  void OnCancel() override;
  void OnDone() override;

 private:
  // Called once, inside Begin().
  using Start = absl::FunctionRef<std::shared_ptr<PendingCall>(
      const std::string& caller, absl::Time deadline, Operations::Done done)>;

  static grpc::ServerUnaryReactor* Begin(Api& api, grpc::CallbackServerContext* context,
                                         RpcInfo info, Start start, Render render);

  UnaryCall(Api& api, grpc::CallbackServerContext* context, RpcInfo info, Render render);

  void Complete(const Outcome& outcome);

  Api& api_;
  grpc::CallbackServerContext* const context_;
  const RpcInfo info_;
  const std::string request_id_;
  const absl::Time started_;
  std::string caller_;  // Written before the operation starts.
  Render render_;
  bool entered_ = false;  // Holds the API (Api::Enter()).
  absl::Mutex mu_;
  std::shared_ptr<PendingCall> pending_ ABSL_GUARDED_BY(mu_);
};

// The gRPC status for an outcome: its status with the report's fields as ErrorInfo metadata
// (idempotency_key, attempts, `may_exist_key`, replayed). Exposed for unit tests.
grpc::Status RenderStatus(const Outcome& outcome, absl::string_view may_exist_key);

// A google.protobuf.Timestamp from an absl::Time.
void ToTimestamp(absl::Time time, google::protobuf::Timestamp* out);

}  // namespace gateway

#endif  // GATEWAY_API_UNARY_CALL_H_
