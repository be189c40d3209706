#include "common/log.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/json_text.h"

namespace gateway {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<uint64_t> g_dropped{0};
// Set in the child of a fork() (a death test, a helper before exec): the writer thread was not
// copied and its lock may be held forever, so the child writes its lines itself.
std::atomic<bool> g_forked_child{false};

constexpr absl::string_view kNames[] = {"debug", "info", "warning", "error"};

// Bytes queued and not yet taken by the writer: about 10,000 audit lines, several seconds of a
// busy gateway's logging, so a short stall of the log collector loses nothing.
constexpr size_t kMaxQueuedBytes = size_t{4} << 20;
// How long a line may wait for others to share its write; far below what log readers notice.
// At 1 ms the writer woke for nearly every audit line at 1,000 RPCs/s, and those wakeups cost
// more CPU per Create than the synchronous write(2) they replaced (bench/ab.sh).
constexpr absl::Duration kLinger = absl::Milliseconds(10);

// Writes `data` whole, retrying short writes and EINTR, and waiting out EAGAIN on a
// non-blocking stderr. False on any other error.
bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      (void)poll(&p, 1, -1);
    } else {
      return false;
    }
  }
  return true;
}

// One writer thread behind a bounded queue. Never destroyed (see Writer()), so the thread is
// never joined and there is no destruction order to get wrong at exit.
class LogWriter {
 public:
  LogWriter() : thread_([this] { Run(); }) {}

  void Enqueue(std::string line) {
    absl::MutexLock lock(&mu_);
    if (queued_bytes_ + line.size() > kMaxQueuedBytes) {
      g_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queued_bytes_ += line.size();
    queue_.push_back(std::move(line));
    ++queued_lines_;
  }

  bool Flush(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const uint64_t target = queued_lines_;
    auto done = [this, target] { return done_lines_ >= target; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }

 private:
  void Run() {
    std::vector<std::string> batch;
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](std::vector<std::string>* queue) { return !queue->empty(); }, &queue_));
      }
      // Woken by the first line, let a burst gather: callers that find this thread not waiting
      // unlock without waking anyone, which is most of a Log() call's cost otherwise.
      absl::SleepFor(kLinger);
      {
        absl::MutexLock lock(&mu_);
        // The callers' queue is free again at once; the batch is written outside the lock.
        batch.swap(queue_);
        queued_bytes_ = 0;
      }
      WriteBatch(batch);
      absl::MutexLock lock(&mu_);
      done_lines_ += batch.size();
      batch.clear();
    }
  }

  // Whole lines in writes of at most PIPE_BUF bytes (atomic on a pipe, so gRPC's own stderr
  // output cannot land inside a line); a longer line goes alone, as one write() before.
  static void WriteBatch(const std::vector<std::string>& batch) {
    std::string chunk;
    size_t chunk_lines = 0;
    auto write_chunk = [&] {
      if (!chunk.empty() && !WriteAll(STDERR_FILENO, chunk.data(), chunk.size())) {
        g_dropped.fetch_add(chunk_lines, std::memory_order_relaxed);
      }
      chunk.clear();
      chunk_lines = 0;
    };
    for (const std::string& line : batch) {
      if (chunk.size() + line.size() > PIPE_BUF) write_chunk();
      if (line.size() > PIPE_BUF) {
        if (!WriteAll(STDERR_FILENO, line.data(), line.size())) {
          g_dropped.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      chunk.append(line);
      ++chunk_lines;
    }
    write_chunk();
  }

  absl::Mutex mu_;
  std::vector<std::string> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t queued_lines_ ABSL_GUARDED_BY(mu_) = 0;  // Ever accepted.
  uint64_t done_lines_ ABSL_GUARDED_BY(mu_) = 0;    // Ever written, or failed to write.
  std::thread thread_;                              // Last: starts once the rest exists.
};

// "2026-11-30T19:24:30.123Z" (RFC 3339, UTC, milliseconds), digit by digit: absl::FormatTime
// costs several allocations, and every audit line has a timestamp.
void AppendTimestamp(std::string* out, absl::Time now) {
  const absl::TimeZone::CivilInfo civil = absl::UTCTimeZone().At(now);
  const auto milliseconds = static_cast<int>(absl::ToInt64Milliseconds(civil.subsecond));
  char text[32];
  auto put = [&text](int at, int64_t value, int digits) {
    for (int k = digits - 1; k >= 0; --k, value /= 10)
      text[at + k] = static_cast<char>('0' + value % 10);
  };
  const int64_t year = civil.cs.year();
  if (year < 0 || year > 9999) {
    out->append(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone()));
    return;
  }
  put(0, year, 4);
  text[4] = '-';
  put(5, civil.cs.month(), 2);
  text[7] = '-';
  put(8, civil.cs.day(), 2);
  text[10] = 'T';
  put(11, civil.cs.hour(), 2);
  text[13] = ':';
  put(14, civil.cs.minute(), 2);
  text[16] = ':';
  put(17, civil.cs.second(), 2);
  text[19] = '.';
  put(20, milliseconds, 3);
  text[23] = 'Z';
  out->append(text, 24);
}

void FlushAtExit() { FlushLogs(absl::Seconds(2)); }

LogWriter& Writer() {
  // Leaked on purpose: lines logged from other threads during exit still find it.
  static LogWriter* const writer = [] {
    auto* w = new LogWriter();
    std::atexit(&FlushAtExit);
    pthread_atfork(nullptr, nullptr, [] { g_forked_child.store(true); });
    return w;
  }();
  return *writer;
}

}  // namespace

bool ParseLogLevel(absl::string_view name, LogLevel* level) {
  for (int i = 0; i < 4; ++i) {
    if (absl::EqualsIgnoreCase(name, kNames[i])) {
      *level = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, absl::string_view message, std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  std::string line;
  line.reserve(512);  // An audit line's size: one allocation, not a doubling series.
  line.append("{\"time\":\"");
  AppendTimestamp(&line, absl::Now());
  line.append("\",\"level\":");
  AppendJsonString(&line, kNames[static_cast<int>(level)]);
  line.append(",\"msg\":");
  AppendJsonString(&line, message);
  for (const auto& [key, value] : fields) {
    line.push_back(',');
    AppendJsonString(&line, key);
    line.push_back(':');
    AppendJsonString(&line, value);
  }
  line.append("}\n");
  if (g_forked_child.load(std::memory_order_relaxed)) {
    if (!WriteAll(STDERR_FILENO, line.data(), line.size())) {
      g_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  Writer().Enqueue(std::move(line));
}

uint64_t LogLinesDropped() { return g_dropped.load(std::memory_order_relaxed); }

bool FlushLogs(absl::Duration timeout) {
  // A forked child wrote its own lines; the parent's queue is the parent's to write.
  if (g_forked_child.load(std::memory_order_relaxed)) return true;
  return Writer().Flush(timeout);
}

}  // namespace gateway
