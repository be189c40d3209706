#include "process_monitor.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace loadgen {

namespace {

// Reads utime + stime (seconds) and the name from a /proc/.../stat file.
bool ReadStat(const std::string& path, double* cpu_seconds, std::string* name) {
  std::ifstream stat(path);
  std::string line;
  if (!std::getline(stat, line)) return false;
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const size_t open = line.find('(');
  const size_t close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  if (name != nullptr) *name = line.substr(open + 1, close - open - 1);
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  // Fields 3.. : state(3) ... utime(14) stime(15).
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  *cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return true;
}

}  // namespace

std::map<pid_t, ThreadCpu> SampleThreads(pid_t pid) {
  std::map<pid_t, ThreadCpu> threads;
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", error)) {
    ThreadCpu thread;
    if (ReadStat(entry.path().string() + "/stat", &thread.cpu_seconds, &thread.name)) {
      threads[static_cast<pid_t>(std::stol(entry.path().filename().string()))] = thread;
    }
  }
  return threads;
}

std::optional<ProcessSample> SampleProcess(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  ProcessSample sample;
  if (!ReadStat(dir + "/stat", &sample.cpu_seconds, nullptr)) return std::nullopt;
  std::string line;
  std::ifstream status(dir + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) sample.threads = std::stol(line.substr(8));
    if (line.rfind("VmRSS:", 0) == 0) sample.rss_kib = std::stol(line.substr(6));
  }
  return sample;
}

double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void ProcessMonitor::Track(const ProcessSample& s) {
  max_threads_ = std::max(max_threads_, s.threads);
  max_rss_kib_ = std::max(max_rss_kib_, s.rss_kib);
}

void ProcessMonitor::StartWindow() {
  auto s = SampleProcess(pid_);
  if (!s) {
    ok_ = false;
    return;
  }
  start_ = *s;
  threads_start_ = SampleThreads(pid_);
  Track(*s);
}

void ProcessMonitor::Sample() {
  if (auto s = SampleProcess(pid_)) Track(*s);
}

void ProcessMonitor::EndWindow() {
  auto s = SampleProcess(pid_);
  if (!s) {
    ok_ = false;
    return;
  }
  end_ = *s;
  threads_end_ = SampleThreads(pid_);
  Track(*s);
}

std::vector<std::pair<pid_t, ThreadCpu>> ProcessMonitor::BusiestThreads(size_t limit) const {
  std::vector<std::pair<pid_t, ThreadCpu>> used;
  for (const auto& [tid, end] : threads_end_) {
    ThreadCpu delta = end;
    if (auto it = threads_start_.find(tid); it != threads_start_.end()) {
      delta.cpu_seconds -= it->second.cpu_seconds;
    }
    used.emplace_back(tid, delta);
  }
  std::sort(used.begin(), used.end(), [](const auto& a, const auto& b) {
    return a.second.cpu_seconds > b.second.cpu_seconds;
  });
  if (used.size() > limit) used.resize(limit);
  return used;
}

}  // namespace loadgen
