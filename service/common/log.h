// Structured logging: one JSON object per line on stderr, so log pipelines parse it without
// patterns. Values are escaped; callers must never pass secrets.
//
// Log() never waits for stderr: it formats the line on the caller's thread and queues it for one
// writer thread, so a stalled stderr (a full pipe, a stuck log collector) cannot stall the libcurl
// loop or a gRPC reactor. When the queue is full the line is dropped and counted
// (LogLinesDropped()). Lines keep the order in which they were queued; each reaches stderr
// whole, in one write() of at most PIPE_BUF bytes where it fits, so other writers to stderr
// (gRPC's own logging) cannot split it. Queued lines are written at exit (FlushLogs() runs from
// atexit, bounded); a crash loses what is still queued.
//
// Thread-safety: all functions are safe from any thread.
#ifndef GATEWAY_COMMON_LOG_H_
#define GATEWAY_COMMON_LOG_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gateway {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Returns false for an unknown name.
bool ParseLogLevel(absl::string_view name, LogLevel* level);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Views: a value built for the call (absl::StrCat(...)) lives until Log() returns, and a line
// below the log level costs no copies.
using LogField = std::pair<absl::string_view, absl::string_view>;

void Log(LogLevel level, absl::string_view message, std::initializer_list<LogField> fields = {});

// Lines dropped since the process started because the queue was full (stderr not keeping up)
// or stderr refused them (a write error). For a metric such as gateway_log_lines_dropped_total.
uint64_t LogLinesDropped();

// Waits until every line queued before the call has been written (or dropped on a write error),
// at most `timeout`; true when it got there. Runs at exit with a 2s bound.
bool FlushLogs(absl::Duration timeout);

}  // namespace gateway

#endif  // GATEWAY_COMMON_LOG_H_
