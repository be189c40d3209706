// RedisMessageLog against a real redis-server: what one replica appends, another reads and is
// woken for; redeliveries are recognized; trimming makes old cursors expire; an unreachable
// Redis fails closed.
#include "messages/redis_message_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "harness.h"

namespace gateway::testing {
namespace {

CallMessage Message(int n, const std::string& call = "CA0000000000000000000000000000000a") {
  CallMessage m;
  m.sid = absl::StrCat("KX", std::string(30 - std::to_string(n).size(), '0'), n, "ab");
  m.account_sid = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  m.call_sid = call;
  m.sequence_number = n;
  m.content = absl::StrCat("{\"n\": ", n, ", \"text\": \"caf\xc3\xa9 \\\"quoted\\\"\"}");
  m.content_type = "application/json";
  m.timestamp = absl::FromUnixMillis(1700000000000 + n);
  return m;
}

template <typename T>
absl::StatusOr<T> Await(std::future<absl::StatusOr<T>> future) {
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return absl::DeadlineExceededError("test: no callback within 10 s");
  }
  return future.get();
}

absl::StatusOr<MessageLog::Appended> Append(MessageLog& log, CallMessage message) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<MessageLog::Appended>>>();
  auto future = promise->get_future();
  log.Append(std::move(message), [promise](absl::StatusOr<MessageLog::Appended> r) {
    promise->set_value(std::move(r));
  });
  return Await(std::move(future));
}

absl::StatusOr<MessageLog::Batch> Read(MessageLog& log, const std::string& cursor, size_t max) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<MessageLog::Batch>>>();
  auto future = promise->get_future();
  log.Read(cursor, max,
           [promise](absl::StatusOr<MessageLog::Batch> r) { promise->set_value(std::move(r)); });
  return Await(std::move(future));
}

absl::StatusOr<std::string> Tail(MessageLog& log) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<std::string>>>();
  auto future = promise->get_future();
  log.Tail([promise](absl::StatusOr<std::string> r) { promise->set_value(std::move(r)); });
  return Await(std::move(future));
}

class RedisMessageLogTest : public ::testing::Test {
 protected:
  RedisMessageLogOptions Options(MessageRetention retention = {}) const {
    RedisMessageLogOptions options;
    options.redis.port = redis_.port();
    options.retention = retention;
    return options;
  }

  RedisServer redis_;
};

TEST_F(RedisMessageLogTest, WhatOneReplicaAppendsAnotherReadsInOrderWithEveryField) {
  RedisMessageLog a(Options());
  RedisMessageLog b(Options());
  ASSERT_EQ(Tail(b).value(), "");
  std::vector<std::string> cursors;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<MessageLog::Appended> appended = Append(a, Message(i));
    ASSERT_TRUE(appended.ok()) << appended.status();
    EXPECT_FALSE(appended->duplicate);
    cursors.push_back(appended->cursor);
  }
  EXPECT_EQ(Tail(b).value(), cursors.back());

  absl::StatusOr<MessageLog::Batch> first = Read(b, "", 3);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->messages.size(), 3u);
  EXPECT_FALSE(first->at_end);
  EXPECT_EQ(first->messages[0].message, Message(0));
  EXPECT_EQ(first->messages[2].cursor, cursors[2]);
  EXPECT_EQ(first->next_cursor, cursors[2]);

  absl::StatusOr<MessageLog::Batch> rest = Read(b, first->next_cursor, 10);
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_EQ(rest->messages.size(), 2u);
  EXPECT_TRUE(rest->at_end);
  EXPECT_EQ(rest->messages[1].message, Message(4));

  absl::StatusOr<MessageLog::Batch> none = Read(b, rest->next_cursor, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->messages.empty());
  EXPECT_TRUE(none->at_end);
  EXPECT_EQ(none->next_cursor, cursors.back());
}

TEST_F(RedisMessageLogTest, ARedeliveryOnAnyReplicaIsRecognizedAndNotStoredTwice) {
  RedisMessageLog a(Options());
  RedisMessageLog b(Options());
  absl::StatusOr<MessageLog::Appended> first = Append(a, Message(7));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<MessageLog::Appended> again = Append(b, Message(7));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->cursor, first->cursor);
  EXPECT_EQ(Read(a, "", 10)->messages.size(), 1u);
}

TEST_F(RedisMessageLogTest, ListenersOfOtherReplicasAreWokenByAnAppend) {
  RedisMessageLog writer(Options());
  RedisMessageLog reader(Options());
  std::atomic<int> woken{0};
  std::unique_ptr<MessageLog::Listener> listener = reader.Listen([&woken] { ++woken; });
  // The reader's tailing XREAD starts at "$": give it a moment to be waiting.
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(Append(writer, Message(1)).ok());
  for (int i = 0; i < 100 && woken.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_GE(woken.load(), 1);
  // Gone with the handle.
  listener.reset();
  const int before = woken.load();
  ASSERT_TRUE(Append(writer, Message(2)).ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(woken.load(), before);
}

TEST_F(RedisMessageLogTest, ACursorOlderThanTheRetainedEntriesIsExpired) {
  // MAXLEN ~ trims whole stream nodes (100 entries by default): append well past that.
  RedisMessageLog log(Options({.max_messages = 10, .max_age = absl::Hours(1), .max_bytes = 0}));
  const std::string early = Append(log, Message(0)).value().cursor;
  for (int i = 1; i < 300; ++i) ASSERT_TRUE(Append(log, Message(i)).ok());
  absl::StatusOr<MessageLog::Batch> read = Read(log, early, 10);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kOutOfRange) << read.status();
  // From the oldest retained still works, and the log kept a bounded tail.
  absl::StatusOr<MessageLog::Batch> oldest = Read(log, "", 1000);
  ASSERT_TRUE(oldest.ok()) << oldest.status();
  EXPECT_LT(oldest->messages.size(), 300u);
  EXPECT_EQ(oldest->messages.back().message.sequence_number, 299);
}

TEST_F(RedisMessageLogTest, MessagesOlderThanTheRetentionAgeGoAndTheirCursorsExpire) {
  RedisMessageLog log(
      Options({.max_messages = 100000, .max_age = absl::Milliseconds(300), .max_bytes = 0}));
  const std::string old = Append(log, Message(0)).value().cursor;
  absl::SleepFor(absl::Milliseconds(500));
  // The next append trims by age.
  ASSERT_TRUE(Append(log, Message(1)).ok());
  absl::StatusOr<MessageLog::Batch> read = Read(log, old, 10);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kOutOfRange) << read.status();
  absl::StatusOr<MessageLog::Batch> kept = Read(log, "", 10);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(kept->messages.size(), 1u);
  EXPECT_EQ(kept->messages[0].message.sequence_number, 1);
}

TEST_F(RedisMessageLogTest, AMalformedCursorIsInvalidWithoutARoundTrip) {
  RedisMessageLog log(Options());
  EXPECT_EQ(Read(log, "12-x", 10).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Read(log, "-1-0", 10).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RedisMessageLogTest, AnUnreachableRedisFailsClosed) {
  RedisMessageLog log(Options());
  redis_.Kill();
  absl::StatusOr<MessageLog::Appended> appended = Append(log, Message(1));
  EXPECT_EQ(appended.status().code(), absl::StatusCode::kUnavailable) << appended.status();
  EXPECT_EQ(Read(log, "", 10).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Tail(log).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gateway::testing
