// Cost of one Log() call as its caller sees it (the libcurl loop thread logs the audit line), and
// the time until every line has reached stderr. Point stderr where you want to measure:
//   build/bench/log-bench 200000 1 2>/dev/null
//   build/bench/log-bench 200000 2 2> >(cat >/dev/null)   # a pipe, like a container's stderr
// Usage: log-bench [lines per thread, default 200000] [threads, default 1]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/log.h"

int main(int argc, char** argv) {
  const int lines = argc > 1 ? std::atoi(argv[1]) : 200000;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  if (lines <= 0 || threads <= 0) {
    std::fprintf(stdout, "usage: log-bench [lines per thread] [threads]\n");
    return 2;
  }
  const uint64_t dropped_before = gateway::LogLinesDropped();
  std::vector<absl::Duration> caller_time(threads);
  const absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&caller_time, lines, t] {
      const absl::Time begin = absl::Now();
      for (int i = 0; i < lines; ++i) {
        // The shape of the audit line.
        gateway::Log(gateway::LogLevel::kInfo, "audit",
                     {{"request_id", "0123456789abcdef0123456789abcdef"},
                      {"rpc", "Create"},
                      {"caller", "billing-worker"},
                      {"account_sid", "default"},
                      {"call_sid", "CA0123456789abcdef0123456789abcdef"},
                      {"idempotency_key", "3f0c1a2b-4d5e-4f60-8a7b-9c0d1e2f3a4b"},
                      {"code", "OK"},
                      {"reason", ""},
                      {"attempts", absl::StrCat(i % 3 + 1)},
                      {"replayed", "false"},
                      {"latency_ms", "201.532"}});
      }
      caller_time[t] = absl::Now() - begin;
    });
  }
  for (std::thread& worker : workers) worker.join();
  absl::Duration slowest = absl::ZeroDuration();
  for (absl::Duration d : caller_time) slowest = std::max(slowest, d);
  const bool flushed = gateway::FlushLogs(absl::Seconds(60));
  const absl::Duration total = absl::Now() - start;
  const double all_lines = static_cast<double>(lines) * threads;
  std::fprintf(stdout,
               "%d thread(s) x %d lines: %.0f ns per Log() call (slowest thread), %.0f ns per "
               "line until flushed%s, %llu dropped\n",
               threads, lines, absl::ToDoubleNanoseconds(slowest) / lines,
               absl::ToDoubleNanoseconds(total) / all_lines, flushed ? "" : " (flush timed out)",
               static_cast<unsigned long long>(gateway::LogLinesDropped() - dropped_before));
  return 0;
}
