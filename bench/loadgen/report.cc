#include "report.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

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

std::string ParseFlags(int argc, char** argv, absl::string_view usage, CommonFlags* flags,
                       OwnFlag own) {
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos && name.rfind("--", 0) == 0) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "--help" || name == "-h") {
      std::cout << usage;
      std::exit(0);
    }
    if (name == "--json" || name == "--quiet") {
      (name == "--json" ? flags->json : flags->quiet) = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) return absl::StrCat(name, " needs a value");
      value = argv[++i];
    }
    auto bad = [&] { return absl::StrCat("bad value for ", name, ": '", value, "'"); };
    auto duration = [&](std::chrono::nanoseconds* out) {
      auto d = ParseDuration(value);
      if (d) *out = *d;
      return d.has_value();
    };
    if (name == "--rate") {
      double rate = 0;
      if (!absl::SimpleAtod(value, &rate) || rate <= 0) return bad();
      flags->rate = rate;
    } else if (name == "--concurrency") {
      int concurrency = 0;
      if (!absl::SimpleAtoi(value, &concurrency) || concurrency < 1) return bad();
      flags->concurrency = concurrency;
    } else if (name == "--duration") {
      if (!duration(&flags->duration) || flags->duration.count() == 0) return bad();
    } else if (name == "--warmup") {
      if (!duration(&flags->warmup)) return bad();
    } else if (name == "--timeout") {
      if (!duration(&flags->timeout) || flags->timeout.count() == 0) return bad();
    } else if (name == "--max-in-flight") {
      if (!absl::SimpleAtoi(value, &flags->max_in_flight) || flags->max_in_flight < 1) return bad();
    } else if (name == "--monitor") {
      std::pair<std::string, std::string> parts = absl::StrSplit(value, absl::MaxSplits('=', 1));
      int pid = 0;
      if (parts.first.empty() || !absl::SimpleAtoi(parts.second, &pid) || pid <= 0) return bad();
      flags->monitors.emplace_back(parts.first, pid);
    } else if (name == "--label") {
      flags->label = value;
    } else if (std::optional<std::string> problem = own(name, value); !problem.has_value()) {
      return absl::StrCat("unknown flag ", name, " (see --help)");
    } else if (!problem->empty()) {
      return *problem;
    }
  }
  if (flags->rate && flags->concurrency) return "give --rate or --concurrency, not both";
  if (!flags->rate && !flags->concurrency) flags->rate = 100;
  return "";
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
