#include "report.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace loadgen {

std::optional<std::chrono::nanoseconds> ParseDuration(absl::string_view text) {
  struct Unit {
    absl::string_view suffix;
    double nanos;
  };
  static constexpr Unit kUnits[] = {{"ms", 1e6}, {"us", 1e3}, {"s", 1e9}, {"m", 60e9}, {"", 1e9}};
  for (const Unit& unit : kUnits) {
    if (!absl::EndsWith(text, unit.suffix)) continue;
    double value = 0;
    if (!absl::SimpleAtod(text.substr(0, text.size() - unit.suffix.size()), &value) || value < 0) {
      return std::nullopt;
    }
    return std::chrono::nanoseconds(static_cast<int64_t>(value * unit.nanos));
  }
  return std::nullopt;
}

Json PercentilesJson(const LatencyHistogram& h) {
  Json j;
  j["count"] = h.count();
  j["min"] = h.min();
  j["mean"] = h.mean();
  j["p50"] = h.Percentile(50);
  j["p90"] = h.Percentile(90);
  j["p99"] = h.Percentile(99);
  j["p99.9"] = h.Percentile(99.9);
  j["max"] = h.max();
  return j;
}

namespace {

std::string Millis(uint64_t micros) { return absl::StrFormat("%.3f", micros / 1000.0); }

}  // namespace

std::string LatencyLine(const LatencyHistogram& h) {
  return absl::StrCat("p50 ", Millis(h.Percentile(50)), "  p90 ", Millis(h.Percentile(90)),
                      "  p99 ", Millis(h.Percentile(99)), "  p99.9 ", Millis(h.Percentile(99.9)),
                      "  max ", Millis(h.max()), "  mean ",
                      absl::StrFormat("%.3f", h.mean() / 1000), " ms");
}

std::string MonitorLines(const std::vector<ProcessMonitor>& monitors, uint64_t units,
                         absl::string_view unit_name, double window_seconds) {
  std::string lines;
  for (const ProcessMonitor& m : monitors) {
    absl::StrAppend(
        &lines, absl::StrFormat("%-10s pid %d: CPU %.2f s (%.1f us/%s), threads %d (max %d), RSS "
                                "%.1f MiB (max %.1f, at window start %.1f)\n",
                                m.name(), m.pid(), m.cpu_seconds(),
                                units ? m.cpu_seconds() * 1e6 / units : 0.0, unit_name,
                                m.end().threads, m.max_threads(), m.end().rss_kib / 1024.0,
                                m.max_rss_kib() / 1024.0, m.start().rss_kib / 1024.0));
    std::string busiest;
    for (const auto& [tid, thread] : m.BusiestThreads(4)) {
      absl::StrAppendFormat(&busiest, "  %s/%d %.0f%%", thread.name, tid,
                            100 * thread.cpu_seconds / window_seconds);
    }
    absl::StrAppend(&lines, "           busiest threads (% of a core):", busiest, "\n");
  }
  return lines;
}

Json MonitorsJson(const std::vector<ProcessMonitor>& monitors) {
  Json monitored = Json::object();
  for (const ProcessMonitor& m : monitors) {
    Json p;
    p["pid"] = m.pid();
    p["ok"] = m.ok();
    p["cpu_s"] = m.cpu_seconds();
    p["threads_start"] = m.start().threads;
    p["threads_end"] = m.end().threads;
    p["threads_max"] = m.max_threads();
    p["rss_kib_start"] = m.start().rss_kib;
    p["rss_kib_end"] = m.end().rss_kib;
    p["rss_kib_max"] = m.max_rss_kib();
    Json busiest = Json::array();
    for (const auto& [tid, thread] : m.BusiestThreads(6)) {
      busiest.push_back({{"tid", tid}, {"name", thread.name}, {"cpu_s", thread.cpu_seconds}});
    }
    p["busiest_threads"] = busiest;
    monitored[m.name()] = p;
  }
  return monitored;
}

}  // namespace loadgen
