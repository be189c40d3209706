// Reads another process's CPU time, thread count and resident memory from /proc, so a run can
// report what the server under test spent (the gateway's CPU per request, its RSS at 1,000 in
// flight) over exactly the measurement window.
//
// Usage: Sample() at the window's start and end (and once a second between, for the maxima).
// Thread-safety: none; one thread samples.
#ifndef GATEWAY_BENCH_LOADGEN_PROCESS_MONITOR_H_
#define GATEWAY_BENCH_LOADGEN_PROCESS_MONITOR_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace loadgen {

struct ProcessSample {
  double cpu_seconds = 0;  // utime + stime of every thread
  long threads = 0;
  long rss_kib = 0;
};

// std::nullopt when the process is gone or /proc cannot be read.
std::optional<ProcessSample> SampleProcess(pid_t pid);

// This process's user + system CPU time (getrusage).
double OwnCpuSeconds();

// CPU seconds of each thread of `pid` by thread id, with the thread's name (comm).
struct ThreadCpu {
  std::string name;
  double cpu_seconds = 0;
};
std::map<pid_t, ThreadCpu> SampleThreads(pid_t pid);

class ProcessMonitor {
 public:
  ProcessMonitor(std::string name, pid_t pid) : name_(std::move(name)), pid_(pid) {}

  void StartWindow();
  void Sample();  // between start and end: tracks maxima
  void EndWindow();

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  bool ok() const { return ok_; }
  double cpu_seconds() const { return end_.cpu_seconds - start_.cpu_seconds; }
  const ProcessSample& start() const { return start_; }
  const ProcessSample& end() const { return end_; }
  long max_threads() const { return max_threads_; }
  long max_rss_kib() const { return max_rss_kib_; }
  // Threads by CPU used in the window, busiest first: shows a serial bottleneck (one thread
  // near 100% of a core) that the process total hides.
  std::vector<std::pair<pid_t, ThreadCpu>> BusiestThreads(size_t limit) const;

 private:
  void Track(const ProcessSample& s);

  std::string name_;
  pid_t pid_;
  bool ok_ = true;
  ProcessSample start_;
  ProcessSample end_;
  std::map<pid_t, ThreadCpu> threads_start_;
  std::map<pid_t, ThreadCpu> threads_end_;
  long max_threads_ = 0;
  long max_rss_kib_ = 0;
};

}  // namespace loadgen

#endif  // GATEWAY_BENCH_LOADGEN_PROCESS_MONITOR_H_
