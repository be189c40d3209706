// The fakes are only useful if they keep the contracts of what they replace; these tests pin that.
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_http_transport.h"
#include "fakes/fake_random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(FakeHttpTransportTest, RecordsRequestsAndNeverCompletesInline) {
  FakeHttpTransport transport;
  int calls = 0;
  HttpRequest request;
  request.url = "https://example.test/a";
  const HttpTransport::TransferId id = transport.Send(request, [&](const HttpResult&) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(transport.sent_count(), 1u);
  EXPECT_EQ(transport.request(0).url, "https://example.test/a");
  EXPECT_EQ(transport.id(0), id);
  EXPECT_TRUE(transport.IsPending(id));
}

TEST(FakeHttpTransportTest, CompletesExactlyOnceWithTheGivenResult) {
  FakeHttpTransport transport;
  std::vector<int> statuses;
  transport.Send({}, [&](const HttpResult& r) { statuses.push_back(r.response.status); });
  EXPECT_TRUE(transport.CompleteNth(0, HttpResponseResult(201, "{}")));
  EXPECT_FALSE(transport.CompleteNth(0, HttpResponseResult(500, "")));
  EXPECT_FALSE(transport.CompleteNth(5, HttpResponseResult(500, "")));
  EXPECT_THAT(statuses, ElementsAre(201));
  EXPECT_THAT(transport.pending(), IsEmpty());
}

TEST(FakeHttpTransportTest, CancelDefersTheCancelledCompletion) {
  FakeHttpTransport transport;
  std::vector<TransportFailure> failures;
  const auto id = transport.Send({}, [&](const HttpResult& r) { failures.push_back(r.failure); });
  transport.Cancel(id);
  EXPECT_THAT(failures, IsEmpty());  // Never inline from Cancel().
  EXPECT_THAT(transport.cancel_calls(), ElementsAre(id));
  EXPECT_EQ(transport.CompleteCancelled(), 1u);
  EXPECT_THAT(failures, ElementsAre(TransportFailure::kCancelled));
  EXPECT_EQ(transport.CompleteCancelled(), 0u);
}

TEST(FakeHttpTransportTest, CallbackMaySendAgain) {
  FakeHttpTransport transport;
  transport.Send({}, [&](const HttpResult&) { transport.Send({}, [](const HttpResult&) {}); });
  EXPECT_TRUE(transport.CompleteNth(0, HttpResponseResult(503, "")));
  EXPECT_EQ(transport.sent_count(), 2u);
}

TEST(FakeClockTest, MovesOnlyWhenTold) {
  FakeClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.Set(absl::FromUnixSeconds(7));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(7));
}

TEST(FakeTimerTest, FiresOnlyDueCallbacksInDueOrder) {
  FakeClock clock(absl::FromUnixSeconds(0));
  FakeTimer timer(clock);
  std::vector<int> ran;
  timer.Schedule(absl::FromUnixSeconds(2), [&] { ran.push_back(2); });
  timer.Schedule(absl::FromUnixSeconds(1), [&] { ran.push_back(1); });
  timer.Schedule(absl::FromUnixSeconds(3), [&] { ran.push_back(3); });
  EXPECT_THAT(ran, IsEmpty());  // Never inline from Schedule().
  EXPECT_EQ(timer.FireDue(), 0u);
  clock.Set(absl::FromUnixSeconds(2));
  EXPECT_EQ(timer.FireDue(), 2u);
  EXPECT_THAT(ran, ElementsAre(1, 2));
  ASSERT_EQ(timer.pending().size(), 1u);
  EXPECT_EQ(timer.pending()[0].when, absl::FromUnixSeconds(3));
  EXPECT_EQ(timer.AdvanceToNextAndFire(clock), 1u);
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(3));
  EXPECT_THAT(ran, ElementsAre(1, 2, 3));
}

TEST(FakeTimerTest, CancelDropsAPendingCallback) {
  FakeClock clock;
  FakeTimer timer(clock);
  bool ran = false;
  const Timer::TimerId id = timer.Schedule(clock.Now(), [&] { ran = true; });
  EXPECT_TRUE(timer.Cancel(id));
  EXPECT_FALSE(timer.Cancel(id));
  EXPECT_EQ(timer.FireDue(), 0u);
  EXPECT_FALSE(ran);
}

TEST(FakeRandomTest, FixedDrawAndNumberedUuids) {
  FakeRandom random(0.25);
  EXPECT_EQ(random.Uniform01(), 0.25);
  random.set_uniform01(0.75);
  EXPECT_EQ(random.Uniform01(), 0.75);
  EXPECT_EQ(random.uniform01_calls(), 2);
  EXPECT_EQ(random.UuidV4(), "00000000-0000-4000-8000-000000000001");
  EXPECT_EQ(random.UuidV4(), "00000000-0000-4000-8000-000000000002");
  EXPECT_EQ(FakeRandom::NthUuid(11), "00000000-0000-4000-8000-00000000000b");
  // Hex ids count on their own, so adding one to a test does not shift its UUIDs.
  EXPECT_EQ(random.HexId128(), "00000000000000000000000000000001");
  EXPECT_EQ(random.UuidV4(), "00000000-0000-4000-8000-000000000003");
  EXPECT_EQ(random.hex_id_calls(), 1);
  EXPECT_EQ(FakeRandom::NthHexId(255), "000000000000000000000000000000ff");
}

}  // namespace
}  // namespace gateway::testing
