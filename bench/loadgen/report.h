// What the load generators share besides the driver: reading a duration flag, and rendering a
// latency histogram and the monitored processes as summary lines and as JSON.
//
// Pure functions; thread-safe.
#ifndef GATEWAY_BENCH_LOADGEN_REPORT_H_
#define GATEWAY_BENCH_LOADGEN_REPORT_H_

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "histogram.h"
#include "process_monitor.h"

namespace loadgen {

using Json = nlohmann::ordered_json;

// "10", "10s", "500ms", "250us", "2m"; nullopt for anything else or a negative value.
std::optional<std::chrono::nanoseconds> ParseDuration(absl::string_view text);

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
