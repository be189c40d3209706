// MemoryMessageLog: append once per sid, read after a cursor, and the retention bounds, with a
// FakeClock (the log answers inline, so every callback has run when a call returns).
#include "messages/memory_message_log.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "fakes/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::gateway::testing::FakeClock;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kAccount[] = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kCall[] = "CA0123456789abcdef0123456789abcdef";

CallMessage Message(int n, std::string content = "{}") {
  return CallMessage{.sid = absl::StrFormat("KX%032x", n),
                     .account_sid = kAccount,
                     .call_sid = kCall,
                     .sequence_number = n,
                     .content = std::move(content),
                     .content_type = "application/json",
                     .timestamp = std::nullopt};
}

absl::StatusOr<MessageLog::Appended> Append(MessageLog& log, CallMessage message) {
  std::optional<absl::StatusOr<MessageLog::Appended>> result;
  log.Append(std::move(message),
             [&result](absl::StatusOr<MessageLog::Appended> appended) { result = appended; });
  EXPECT_TRUE(result.has_value()) << "the memory log answers inline";
  return result.value_or(absl::InternalError("no answer"));
}

absl::StatusOr<MessageLog::Batch> Read(MessageLog& log, const std::string& cursor,
                                       size_t max = 100) {
  std::optional<absl::StatusOr<MessageLog::Batch>> result;
  log.Read(cursor, max, [&result](absl::StatusOr<MessageLog::Batch> batch) { result = batch; });
  EXPECT_TRUE(result.has_value()) << "the memory log answers inline";
  return result.value_or(absl::InternalError("no answer"));
}

std::string Tail(MessageLog& log) {
  std::optional<absl::StatusOr<std::string>> result;
  log.Tail([&result](absl::StatusOr<std::string> tail) { result = tail; });
  EXPECT_TRUE(result.has_value() && result->ok());
  return result.has_value() && result->ok() ? **result : "<none>";
}

std::vector<int64_t> Sequences(const MessageLog::Batch& batch) {
  std::vector<int64_t> out;
  for (const LoggedMessage& logged : batch.messages) out.push_back(logged.message.sequence_number);
  return out;
}

// Appends n messages numbered from `first` and returns their cursors.
std::vector<std::string> AppendMany(MessageLog& log, int first, int n) {
  std::vector<std::string> cursors;
  for (int i = first; i < first + n; ++i) {
    absl::StatusOr<MessageLog::Appended> appended = Append(log, Message(i));
    EXPECT_TRUE(appended.ok()) << appended.status();
    cursors.push_back(appended.ok() ? appended->cursor : "");
  }
  return cursors;
}

TEST(MemoryMessageLogTest, AppendsInOrderWithIncreasingCursors) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  const std::vector<std::string> cursors = AppendMany(log, 0, 3);
  // Three appends in the same millisecond: the sequence part counts, as a Redis stream's does.
  const std::string millis = absl::StrCat(absl::ToUnixMillis(clock.Now()));
  EXPECT_THAT(cursors, ElementsAre(millis + "-1", millis + "-2", millis + "-3"));
  clock.Advance(absl::Milliseconds(5));
  EXPECT_EQ(AppendMany(log, 3, 1)[0], absl::StrCat(absl::ToUnixMillis(clock.Now()), "-0"));

  absl::StatusOr<MessageLog::Batch> all = Read(log, "");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Sequences(*all), ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(all->messages[1].cursor, cursors[1]);
  EXPECT_EQ(all->messages[1].message, Message(1));
  EXPECT_TRUE(all->at_end);
  EXPECT_EQ(all->next_cursor, all->messages.back().cursor);
  EXPECT_EQ(Tail(log), all->messages.back().cursor);
  EXPECT_EQ(log.size(), 4u);
}

TEST(MemoryMessageLogTest, CursorsStayIncreasingWhenTheClockStepsBack) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  clock.Advance(absl::Seconds(1));
  const std::string first = AppendMany(log, 0, 1)[0];
  clock.Advance(absl::Seconds(-1));
  const std::string second = AppendMany(log, 1, 1)[0];
  const std::optional<LogPosition> a = LogPosition::Parse(first);
  const std::optional<LogPosition> b = LogPosition::Parse(second);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_LT(*a, *b);
  absl::StatusOr<MessageLog::Batch> after_first = Read(log, first);
  ASSERT_TRUE(after_first.ok()) << after_first.status();
  EXPECT_THAT(Sequences(*after_first), ElementsAre(1));
}

TEST(MemoryMessageLogTest, ARedeliveryIsADuplicateWithTheFirstCursorAndIsNotStored) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  const std::string cursor = AppendMany(log, 7, 1)[0];
  clock.Advance(absl::Seconds(1));
  CallMessage again = Message(7, "{\"different\":true}");
  absl::StatusOr<MessageLog::Appended> duplicate = Append(log, again);
  ASSERT_TRUE(duplicate.ok()) << duplicate.status();
  EXPECT_TRUE(duplicate->duplicate);
  EXPECT_EQ(duplicate->cursor, cursor);
  EXPECT_EQ(log.size(), 1u);
  absl::StatusOr<MessageLog::Batch> all = Read(log, "");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->messages.size(), 1u);
  EXPECT_EQ(all->messages[0].message.content, "{}");  // The first copy is the one kept.
}

TEST(MemoryMessageLogTest, ReadsAfterACursorInBatchesUntilTheEnd) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  const std::vector<std::string> cursors = AppendMany(log, 0, 5);

  absl::StatusOr<MessageLog::Batch> first = Read(log, cursors[0], 2);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Sequences(*first), ElementsAre(1, 2));
  EXPECT_FALSE(first->at_end);
  EXPECT_EQ(first->next_cursor, cursors[2]);

  absl::StatusOr<MessageLog::Batch> second = Read(log, first->next_cursor, 2);
  ASSERT_TRUE(second.ok());
  EXPECT_THAT(Sequences(*second), ElementsAre(3, 4));
  // A full batch that took the newest message is at the end too.
  EXPECT_TRUE(second->at_end);
  EXPECT_EQ(second->next_cursor, cursors[4]);

  absl::StatusOr<MessageLog::Batch> none = Read(log, second->next_cursor, 2);
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(none->messages, IsEmpty());
  EXPECT_TRUE(none->at_end);
  EXPECT_EQ(none->next_cursor, cursors[4]);  // Read after again next time.
}

TEST(MemoryMessageLogTest, EmptyLogReadsNothingAndHasNoTail) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  EXPECT_EQ(Tail(log), "");
  absl::StatusOr<MessageLog::Batch> none = Read(log, "");
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(none->messages, IsEmpty());
  EXPECT_TRUE(none->at_end);
  EXPECT_EQ(none->next_cursor, "");
}

TEST(MemoryMessageLogTest, ACursorThatDoesNotParseIsInvalid) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  for (const char* cursor : {"bad", "1", "1-", "-1", "1-2-3", "+1-0", "1-0 ", "x-0"}) {
    absl::StatusOr<MessageLog::Batch> batch = Read(log, cursor);
    EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument) << cursor;
  }
}

TEST(MemoryMessageLogTest, RetentionByCountDropsTheOldest) {
  FakeClock clock;
  MemoryMessageLog log({.max_messages = 3}, clock);
  const std::vector<std::string> cursors = AppendMany(log, 0, 5);
  EXPECT_EQ(log.size(), 3u);
  absl::StatusOr<MessageLog::Batch> all = Read(log, "");
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(Sequences(*all), ElementsAre(2, 3, 4));
  // A dropped sid may be stored again: the log no longer remembers it.
  absl::StatusOr<MessageLog::Appended> again = Append(log, Message(0));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->duplicate);
}

TEST(MemoryMessageLogTest, RetentionByAgeDropsWhatIsOlderThanMaxAge) {
  FakeClock clock;
  MemoryMessageLog log({.max_age = absl::Minutes(10)}, clock);
  AppendMany(log, 0, 1);
  clock.Advance(absl::Minutes(5));
  AppendMany(log, 1, 1);
  clock.Advance(absl::Minutes(5));  // The first is exactly max_age old: still kept.
  absl::StatusOr<MessageLog::Batch> both = Read(log, "");
  ASSERT_TRUE(both.ok());
  EXPECT_THAT(Sequences(*both), ElementsAre(0, 1));
  clock.Advance(absl::Milliseconds(1));
  absl::StatusOr<MessageLog::Batch> one = Read(log, "");
  ASSERT_TRUE(one.ok());
  EXPECT_THAT(Sequences(*one), ElementsAre(1));
  clock.Advance(absl::Minutes(5));
  absl::StatusOr<MessageLog::Batch> none = Read(log, "");
  ASSERT_TRUE(none.ok());
  EXPECT_THAT(none->messages, IsEmpty());
  EXPECT_EQ(log.size(), 0u);
}

TEST(MemoryMessageLogTest, RetentionByBytesDropsTheOldest) {
  FakeClock clock;
  const std::string big(1000, 'x');
  // Room for two 1,000-byte messages with their fields, not three.
  MemoryMessageLog log({.max_bytes = 2 * (big.size() + 400)}, clock);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Append(log, Message(i, big)).ok());
  absl::StatusOr<MessageLog::Batch> all = Read(log, "");
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(Sequences(*all), ElementsAre(2, 3));
  // Small messages fit many times where the big ones did not.
  for (int i = 4; i < 10; ++i) ASSERT_TRUE(Append(log, Message(i)).ok());
  EXPECT_GT(log.size(), 4u);
}

TEST(MemoryMessageLogTest, ACursorWhoseOwnMessageWasDroppedButNotItsSuccessorIsNotExpired) {
  FakeClock clock;
  MemoryMessageLog log({.max_messages = 3}, clock);
  const std::vector<std::string> cursors = AppendMany(log, 0, 4);  // 0 is dropped.
  absl::StatusOr<MessageLog::Batch> after_dropped = Read(log, cursors[0]);
  ASSERT_TRUE(after_dropped.ok()) << after_dropped.status();
  EXPECT_THAT(Sequences(*after_dropped), ElementsAre(1, 2, 3));
}

TEST(MemoryMessageLogTest, ACursorBeforeADroppedMessageIsExpired) {
  FakeClock clock;
  MemoryMessageLog log({.max_messages = 3}, clock);
  const std::vector<std::string> cursors = AppendMany(log, 0, 5);  // 0 and 1 are dropped.
  absl::StatusOr<MessageLog::Batch> lost = Read(log, cursors[0]);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(lost.status().message()), HasSubstr(cursors[0]));
  // One later: its successor (2) is the oldest retained, so nothing was lost after it.
  absl::StatusOr<MessageLog::Batch> kept = Read(log, cursors[1]);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_THAT(Sequences(*kept), ElementsAre(2, 3, 4));
}

TEST(MemoryMessageLogTest, ACursorExpiresWhenItsSuccessorAgesOut) {
  FakeClock clock;
  MemoryMessageLog log({.max_age = absl::Minutes(1)}, clock);
  const std::string first = AppendMany(log, 0, 1)[0];
  clock.Advance(absl::Seconds(30));
  AppendMany(log, 1, 1);
  clock.Advance(absl::Seconds(31));  // 0 is gone, 1 is not: reading after 0 loses nothing.
  ASSERT_TRUE(Read(log, first).ok());
  clock.Advance(absl::Seconds(30));  // 1 is gone too: after 0 a message was lost.
  EXPECT_EQ(Read(log, first).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(MemoryMessageLogTest, ACursorFromBeforeTheLogStartedIsExpired) {
  FakeClock clock;
  const int64_t start = absl::ToUnixMillis(clock.Now());
  MemoryMessageLog log({}, clock);
  for (const std::string& cursor : {std::string("1-0"), absl::StrCat(start - 1, "-99")}) {
    EXPECT_EQ(Read(log, cursor).status().code(), absl::StatusCode::kOutOfRange) << cursor;
  }
  AppendMany(log, 0, 2);
  EXPECT_EQ(Read(log, absl::StrCat(start - 1, "-0")).status().code(),
            absl::StatusCode::kOutOfRange);
  // The start itself is where this process began: everything after it is here.
  absl::StatusOr<MessageLog::Batch> from_start = Read(log, absl::StrCat(start, "-0"));
  ASSERT_TRUE(from_start.ok()) << from_start.status();
  EXPECT_THAT(Sequences(*from_start), ElementsAre(0, 1));
}

TEST(MemoryMessageLogTest, ACursorFromAnEarlierProcessWithALaterClockIsExpired) {
  // The process before a restart ran on a clock ahead of this one (another node, or NTP stepped
  // it back): its cursors are "newer" than anything here, and reading after one would skip
  // every message this process stores until its clock catches up.
  FakeClock earlier_process_clock(absl::FromUnixSeconds(1700000060));
  MemoryMessageLog earlier({}, earlier_process_clock);
  const std::string cursor = AppendMany(earlier, 0, 1)[0];

  FakeClock clock(absl::FromUnixSeconds(1700000000));
  MemoryMessageLog log({}, clock);
  AppendMany(log, 1, 2);
  absl::StatusOr<MessageLog::Batch> batch = Read(log, cursor);
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kOutOfRange)
      << (batch.ok() ? absl::StrCat(batch->messages.size(), " messages") : "");
}

TEST(MemoryMessageLogTest, ListenersAreCalledAfterAStoredAppendUntilTheHandleIsDestroyed) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  std::atomic<int> calls{0};
  size_t size_seen = 0;
  std::unique_ptr<MessageLog::Listener> handle = log.Listen([&] {
    ++calls;
    size_seen = log.size();  // Called outside the log's lock, once the message is readable.
  });
  AppendMany(log, 0, 1);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(size_seen, 1u);
  // A redelivery stores nothing: nobody is woken.
  ASSERT_TRUE(Append(log, Message(0)).ok());
  EXPECT_EQ(calls.load(), 1);

  std::atomic<int> other_calls{0};
  std::unique_ptr<MessageLog::Listener> other = log.Listen([&] { ++other_calls; });
  AppendMany(log, 1, 1);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(other_calls.load(), 1);

  handle.reset();
  AppendMany(log, 2, 1);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(other_calls.load(), 2);
}

TEST(MemoryMessageLogTest, AListenerMayDestroyItsOwnHandle) {
  FakeClock clock;
  MemoryMessageLog log({}, clock);
  int calls = 0;
  std::unique_ptr<MessageLog::Listener> handle;
  handle = log.Listen([&] {
    ++calls;
    handle.reset();  // As a Watch that ends itself from its listener does.
  });
  AppendMany(log, 0, 2);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace gateway
