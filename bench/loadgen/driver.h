// Decides when requests are sent and records what came back.
//
// Open loop: requests are scheduled at fixed intervals (1/rate) whatever happens to earlier ones,
// and latency is measured from each request's intended send time, so a stalled server is charged
// for the requests that queued behind the stall (no coordinated omission). A request is measured
// when its intended time falls in the measurement window.
// Closed loop: `concurrency` requests are kept in flight; each completion sends the next one. A
// request is measured when it completes inside the window, so the completion rate is the
// throughput.
// The window follows a warmup; afterwards no new requests start and in-flight ones are awaited.
//
// Thread-safety: Run() is called once, on one thread; OnComplete() from the target's threads.
#ifndef GATEWAY_BENCH_LOADGEN_DRIVER_H_
#define GATEWAY_BENCH_LOADGEN_DRIVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "histogram.h"
#include "process_monitor.h"
#include "target.h"

namespace loadgen {

struct DriverOptions {
  enum class Mode { kOpenLoop, kClosedLoop };
  Mode mode = Mode::kOpenLoop;
  double rate = 100;     // open loop: requests per second
  int concurrency = 10;  // closed loop: requests in flight
  std::chrono::nanoseconds warmup = std::chrono::seconds(2);
  std::chrono::nanoseconds duration = std::chrono::seconds(10);
  // After the window, how long to wait for requests still in flight.
  std::chrono::nanoseconds drain = std::chrono::seconds(10);
  uint64_t max_in_flight = 100000;
  bool progress = true;  // one line a second on stderr
};

struct RunResult {
  LatencyHistogram latency;       // from intended send time, microseconds
  LatencyHistogram service_time;  // from actual send time
  std::map<int, uint64_t> codes;  // measured requests by result code
  uint64_t measured = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t sent_total = 0;  // including warmup
  uint64_t unfinished = 0;  // still in flight when the drain gave up
  uint64_t max_in_flight = 0;
  double window_seconds = 0;
  double client_cpu_seconds = 0;
  int64_t max_send_lag_us = 0;  // open loop: worst lateness of the sender against its schedule
};

class Driver final : public CompletionSink {
 public:
  Driver(DriverOptions options, Target& target, std::vector<ProcessMonitor>& monitors);

  RunResult Run();
  void OnComplete(const Request& request, Outcome outcome) override;

 private:
  void Issue(uint64_t seq, int64_t intended_ns, int64_t now_ns, bool measured);
  // Starts/ends the window and prints progress when due. Returns the next time it wants to run.
  int64_t Housekeeping(int64_t now_ns);
  void PrintProgress(int64_t now_ns);
  void SleepUntil(int64_t deadline_ns);
  bool Closed() const { return options_.mode == DriverOptions::Mode::kClosedLoop; }

  const DriverOptions options_;
  Target& target_;
  std::vector<ProcessMonitor>& monitors_;

  int64_t start_ns_ = 0;
  int64_t window_start_ns_ = 0;
  int64_t window_end_ns_ = 0;
  int64_t next_tick_ns_ = 0;
  bool window_started_ = false;
  bool window_ended_ = false;
  double cpu_at_window_start_ = 0;
  uint64_t completed_at_last_tick_ = 0;
  int64_t last_tick_ns_ = 0;
  int64_t max_send_lag_ns_ = 0;

  std::atomic<uint64_t> next_seq_{0};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> ok_total_{0};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> max_in_flight_{0};

  absl::Mutex mu_;
  RunResult result_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram phase_ ABSL_GUARDED_BY(mu_);  // progress: everything in the current phase
  bool phase_is_window_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace loadgen

#endif  // GATEWAY_BENCH_LOADGEN_DRIVER_H_
