// Log() against a real stderr replaced by a pipe: the line format, whole lines in order, and that
// a stderr nobody reads costs callers nothing but dropped (and counted) lines.
#include "common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace gateway {
namespace {

using ::testing::MatchesRegex;

// Points fd 2 at a pipe until destroyed. `stalled`: the pipe is shrunk to one page and filled,
// and nothing reads it until Drain().
class StderrPipe {
 public:
  explicit StderrPipe(bool stalled) {
    EXPECT_TRUE(FlushLogs(absl::Seconds(10)));  // Earlier tests' lines go to the real stderr.
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    if (stalled) {
      fcntl(write_fd_, F_SETPIPE_SZ, 4096);
      const int flags = fcntl(write_fd_, F_GETFL);
      fcntl(write_fd_, F_SETFL, flags | O_NONBLOCK);
      const std::string newlines(4096, '\n');  // Empty lines, skipped by Lines().
      while (write(write_fd_, newlines.data(), newlines.size()) > 0) {
      }
      fcntl(write_fd_, F_SETFL, flags);  // Full, and blocking like a real stderr.
    }
    saved_stderr_ = dup(STDERR_FILENO);
    dup2(write_fd_, STDERR_FILENO);
    if (!stalled) Drain();
  }

  ~StderrPipe() { Finish(); }

  // Starts reading everything written so far and from now on.
  void Drain() {
    if (reader_.joinable()) return;
    reader_ = std::thread([this] {
      char buffer[65536];
      ssize_t n;
      while ((n = read(read_fd_, buffer, sizeof(buffer))) > 0) {
        received_.append(buffer, static_cast<size_t>(n));
      }
    });
  }

  // Flushes, restores stderr and returns the non-empty lines written to the pipe.
  std::vector<std::string> Finish() {
    if (saved_stderr_ < 0) return lines_;
    Drain();
    EXPECT_TRUE(FlushLogs(absl::Seconds(10)));
    dup2(saved_stderr_, STDERR_FILENO);
    close(saved_stderr_);
    saved_stderr_ = -1;
    close(write_fd_);  // Last write end: the reader sees end of file.
    reader_.join();
    close(read_fd_);
    EXPECT_TRUE(received_.empty() || received_.back() == '\n') << "a line was cut";
    lines_ = absl::StrSplit(received_, '\n', absl::SkipEmpty());
    return lines_;
  }

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
  int saved_stderr_ = -1;
  std::thread reader_;
  std::string received_;  // Written by reader_ until it is joined.
  std::vector<std::string> lines_;
};

TEST(LogTest, WritesOneJsonObjectPerLineWithEscapedFields) {
  StderrPipe pipe(/*stalled=*/false);
  Log(LogLevel::kWarning, "upstream \"slow\"", {{"account_sid", "AC1"}, {"note", "a\nb\\c"}});
  Log(LogLevel::kDebug, "below the level");  // Default level info: not written.
  const std::vector<std::string> lines = pipe.Finish();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], MatchesRegex(R"(\{"time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:)"
                                     R"([0-9]{2}\.[0-9]{3}Z","level":"warning",)"
                                     R"("msg":"upstream \\"slow\\"","account_sid":"AC1",)"
                                     R"("note":"a\\nb\\\\c"\})"));
}

// Several threads at once, some lines longer than a pipe's atomic write: every line arrives
// whole and parses, each thread's lines in the order it logged them, and every line is either
// written or counted as dropped.
TEST(LogTest, LinesFromManyThreadsStayWholeAndInOrder) {
  constexpr int kThreads = 4;
  constexpr int kLinesPerThread = 5000;
  const uint64_t dropped_before = LogLinesDropped();
  StderrPipe pipe(/*stalled=*/false);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kLinesPerThread; ++i) {
        // Every 100th line is over PIPE_BUF (4096 bytes on Linux).
        const std::string padding(i % 100 == 0 ? 6000 : 200, static_cast<char>('a' + t));
        Log(LogLevel::kInfo, "order",
            {{"thread", absl::StrCat(t)}, {"seq", absl::StrCat(i)}, {"padding", padding}});
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const std::vector<std::string> lines = pipe.Finish();

  std::map<int, int> last_seq;
  for (const std::string& line : lines) {
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(object.is_object()) << line.substr(0, 200);
    ASSERT_EQ(object.value("msg", ""), "order");
    const int thread = std::stoi(object.value("thread", "-1"));
    const int seq = std::stoi(object.value("seq", "-1"));
    const std::string padding = object.value("padding", "");
    EXPECT_EQ(padding, std::string(padding.size(), static_cast<char>('a' + thread)));
    auto [it, first] = last_seq.try_emplace(thread, seq);
    if (!first) {
      EXPECT_GT(seq, it->second) << "thread " << thread;
      it->second = seq;
    }
  }
  EXPECT_EQ(lines.size() + (LogLinesDropped() - dropped_before),
            static_cast<size_t>(kThreads * kLinesPerThread));
}

// The libcurl loop thread logs the audit line: a stderr nobody reads must not stall it. A caller
// blocked on the pipe would never finish, so the bound below only tells "blocked" from "not".
TEST(LogTest, FullStderrPipeDoesNotBlockCallersAndCountsDroppedLines) {
  constexpr int kLines = 100000;
  const uint64_t dropped_before = LogLinesDropped();
  StderrPipe pipe(/*stalled=*/true);
  std::future<absl::Duration> logging = std::async(std::launch::async, [] {
    const absl::Time start = absl::Now();
    for (int i = 0; i < kLines; ++i) {
      Log(LogLevel::kInfo, "stalled", {{"seq", absl::StrCat(i)}});
    }
    return absl::Now() - start;
  });
  const bool finished = logging.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  EXPECT_TRUE(finished) << "Log() blocked on a full stderr";
  const uint64_t dropped = LogLinesDropped() - dropped_before;
  pipe.Drain();  // Unblocks the writer (and a blocked caller, so the test ends either way).
  const absl::Duration took = logging.get();
  std::printf("%d lines to a full pipe: %s (%.0f ns a line), %llu dropped\n", kLines,
              absl::FormatDuration(took).c_str(), absl::ToDoubleNanoseconds(took) / kLines,
              static_cast<unsigned long long>(dropped));
  EXPECT_GT(dropped, 0u);

  const std::vector<std::string> lines = pipe.Finish();
  int previous = -1;
  for (const std::string& line : lines) {
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(object.is_object()) << line;
    const int seq = std::stoi(object.value("seq", "-1"));
    EXPECT_GT(seq, previous);
    previous = seq;
  }
  EXPECT_EQ(lines.size() + (LogLinesDropped() - dropped_before), static_cast<size_t>(kLines));
}

}  // namespace
}  // namespace gateway
