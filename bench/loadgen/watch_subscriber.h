// A MessageService.Watch subscriber that checks what the webhook load generator delivered: it
// counts every message of the run it receives, by the sequence number in its SID, and records
// each message's delivery latency, receive time minus the send time the sender wrote into its
// Content (CLOCK_MONOTONIC of this process, so sender and subscriber share a clock).
//
// Usage:
//   WatchSubscriber watcher({.address = "127.0.0.1:50051", .call_sid = ..., .sid_prefix = ...});
//   watcher.Start();  // from the oldest message retained: nothing of the run can be missed
//   ... send ...; watcher.WaitFor(acked, deadline);
//   WatchResult r = watcher.Stop(acked);  // lost, duplicated, latency
// Thread-safety: Start, WaitFor and Stop from one thread; the stream runs on gRPC's threads.
#ifndef GATEWAY_BENCH_LOADGEN_WATCH_SUBSCRIBER_H_
#define GATEWAY_BENCH_LOADGEN_WATCH_SUBSCRIBER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "histogram.h"
#include "twilio_gateway/v1/message_service.grpc.pb.h"

namespace loadgen {

struct WatchSubscriberOptions {
  std::string address;     // the gateway's gRPC address
  std::string call_sid;    // the Watch's filter: the run's call
  std::string sid_prefix;  // "KX" + the run's 16 hex digits; the rest is the sequence number
  // Messages sent in [window_start_ns, window_end_ns) (CLOCK_MONOTONIC) are the measured ones.
  int64_t window_start_ns = 0;
  int64_t window_end_ns = INT64_MAX;
};

struct WatchResult {
  std::string address;
  uint64_t received = 0;         // messages of the run, copies included
  uint64_t lost = 0;             // acknowledged with 200 and never received
  uint64_t duplicated = 0;       // copies beyond the first
  uint64_t unacked = 0;          // received although the sender got no 200 (timeout, 503)
  uint64_t foreign = 0;          // messages of the call whose SID is not the run's, or malformed
  LatencyHistogram latency;      // measured messages, send -> receive, microseconds
  LatencyHistogram latency_all;  // every message of the run, warmup and drain included
  std::string end_status;        // how the stream ended ("" if it was still open)
};

class WatchSubscriber {
 public:
  explicit WatchSubscriber(WatchSubscriberOptions options);
  ~WatchSubscriber();

  WatchSubscriber(const WatchSubscriber&) = delete;
  WatchSubscriber& operator=(const WatchSubscriber&) = delete;

  // Opens the stream; false if the gateway cannot be reached within `timeout`.
  bool Start(std::chrono::milliseconds timeout);
  void SetWindow(int64_t start_ns, int64_t end_ns);
  // Waits until every sequence number in `acked` (true: expected) was received, the stream
  // ended, or `deadline_ns` passed. True when everything expected arrived.
  bool WaitFor(const std::vector<bool>& acked, int64_t deadline_ns);
  // Cancels the stream and counts against `acked`.
  WatchResult Stop(const std::vector<bool>& acked);

 private:
  class Reader;
  void OnMessage(const std::string& sid, const std::string& content, int64_t now_ns);
  void OnEnd(const grpc::Status& status);
  bool AllArrivedLocked(const std::vector<bool>& acked) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  WatchSubscriberOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<twilio_gateway::v1::MessageService::Stub> stub_;
  std::unique_ptr<Reader> reader_;

  mutable absl::Mutex mu_;
  std::vector<uint8_t> copies_ ABSL_GUARDED_BY(mu_);  // by sequence number, saturating at 255
  uint64_t received_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t foreign_ ABSL_GUARDED_BY(mu_) = 0;
  LatencyHistogram latency_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram latency_all_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::string end_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace loadgen

#endif  // GATEWAY_BENCH_LOADGEN_WATCH_SUBSCRIBER_H_
