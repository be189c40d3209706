// Structured logging: one JSON object per line on stderr, so log pipelines parse it without
// patterns. Values are escaped; callers must never pass secrets.
//
// Thread-safety: safe from any thread; a line is written with one write() call.
#ifndef GATEWAY_COMMON_LOG_H_
#define GATEWAY_COMMON_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace gateway {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Returns false for an unknown name.
bool ParseLogLevel(absl::string_view name, LogLevel* level);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

using LogField = std::pair<absl::string_view, std::string>;

void Log(LogLevel level, absl::string_view message, std::initializer_list<LogField> fields = {});

}  // namespace gateway

#endif  // GATEWAY_COMMON_LOG_H_
