// What the load generators share besides the driver: their common flags (the load's shape, what
// to monitor, how to report) and how a command line is read, and rendering a latency histogram
// and the monitored processes as summary lines and as JSON.
//
// Pure functions; thread-safe.
#ifndef GATEWAY_BENCH_LOADGEN_REPORT_H_
#define GATEWAY_BENCH_LOADGEN_REPORT_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "histogram.h"
#include "process_monitor.h"

namespace loadgen {

using Json = nlohmann::ordered_json;

// "10", "10s", "500ms", "250us", "2m"; nullopt for anything else or a negative value.
std::optional<std::chrono::nanoseconds> ParseDuration(absl::string_view text);

// The flags every load generator takes; a tool's own Flags derive from it.
struct CommonFlags {
  std::optional<double> rate;      // --rate: open loop, requests per second
  std::optional<int> concurrency;  // --concurrency: closed loop, in flight
  std::chrono::nanoseconds duration = std::chrono::seconds(10);
  std::chrono::nanoseconds warmup = std::chrono::seconds(2);
  std::chrono::nanoseconds timeout = std::chrono::seconds(5);
  uint64_t max_in_flight = 100000;
  std::vector<std::pair<std::string, pid_t>> monitors;  // --monitor name=pid
  std::string label;
  bool json = false;
  bool quiet = false;
};

// A tool's own flag: nullopt when `name` is not one of its flags, "" when taken, else what is
// wrong with the value.
using OwnFlag = absl::FunctionRef<std::optional<std::string>(const std::string& name,
                                                             const std::string& value)>;

// Reads "--name value" and "--name=value" into `common` or through `own`; --help prints `usage`
// and exits. Returns an error message, or empty on success (with --rate 100 when neither --rate
// nor --concurrency was given).
std::string ParseFlags(int argc, char** argv, absl::string_view usage, CommonFlags* common,
                       OwnFlag own);

// count, min, mean, p50, p90, p99, p99.9, max (microseconds).
Json PercentilesJson(const LatencyHistogram& h);

// "p50 1.234  p90 ...  max ...  mean ... ms".
std::string LatencyLine(const LatencyHistogram& h);

// One line per process (CPU, CPU per `units` of work, threads, RSS) and its busiest threads.
std::string MonitorLines(const std::vector<ProcessMonitor>& monitors, uint64_t units,
                         absl::string_view unit_name, double window_seconds);

// {name: {pid, ok, cpu_s, threads_*, rss_kib_*, busiest_threads}} as gateway-loadgen prints it.
Json MonitorsJson(const std::vector<ProcessMonitor>& monitors);

}  // namespace loadgen

#endif  // GATEWAY_BENCH_LOADGEN_REPORT_H_
