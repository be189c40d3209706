#include "idempotency/idempotency_guard.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/error_details.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_idempotency_store.h"
#include "fakes/fake_random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "idempotency/memory_store.h"
#include "idempotency/outcome_codec.h"

namespace gateway {
namespace {

using ::gateway::testing::FakeClock;
using ::gateway::testing::FakeIdempotencyStore;
using ::gateway::testing::FakeRandom;
using ::gateway::testing::FakeTimer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kAccount[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kCall[] = "CAfedcba9876543210fedcba9876543210";
constexpr char kKey[] = "caller-key";

// The upstream call as the guard sees it: records Cancel() calls; the test ends it (or
// `on_cancel` does).
class RecordingPending final : public PendingCall {
 public:
  void Cancel() override {
    ++cancel_calls;
    if (on_cancel) on_cancel();
  }
  int cancel_calls = 0;
  std::function<void()> on_cancel;
};

Subscription MadeSubscription() {
  Subscription s;
  s.account_sid = kAccount;
  s.call_sid = kCall;
  s.sid = "ZY00112233445566778899aabbccddeeff";
  s.date_created = absl::FromUnixSeconds(1576699321);
  s.uri = "/2010-04-01/Accounts/x.json";
  return s;
}

const Subscription& SubscriptionOf(const Outcome& outcome) {
  static const Subscription kNone;
  if (!outcome.result.ok() || !std::holds_alternative<Subscription>(*outcome.result)) {
    ADD_FAILURE() << "not a subscription: " << outcome.result.status();
    return kNone;
  }
  return std::get<Subscription>(*outcome.result);
}

// The record key Operations builds for an anonymous caller's Create; the guard takes it as is.
std::string RecordKey() { return std::string(kAccount) + "/" + kKey; }

class IdempotencyGuardTest : public ::testing::Test {
 protected:
  IdempotencyGuardTest() {
    options_.retention = absl::Hours(24);
    options_.poll_interval = absl::Milliseconds(50);
    options_.lease = absl::Seconds(2);
  }

  static CreateSubscriptionRequest Request() {
    CreateSubscriptionRequest request;
    request.account_sid = kAccount;
    request.call_sid = kCall;
    request.callback = "https://example.com/hook";
    request.method = CallbackMethod::kPost;
    request.idempotency_key = kKey;
    return request;
  }

  IdempotencyGuard& Guard(IdempotencyStore& store) {
    if (guard_ == nullptr)
      guard_ = std::make_unique<IdempotencyGuard>(options_, store, timer_, clock_);
    return *guard_;
  }

  // Runs the guard over store_ (or `store`) with a fake upstream that records its start.
  std::shared_ptr<PendingCall> Run(absl::Time deadline, IdempotencyStore* store = nullptr) {
    return Guard(store == nullptr ? store_ : *store)
        .Run(
            GuardedRequest{.record_key = RecordKey(),
                           .fingerprint = RequestFingerprint(Request()),
                           .idempotency_key = kKey,
                           .call_sid = kCall,
                           .deadline = deadline},
            [this](const UpstreamPlan& plan,
                   IdempotencyGuard::UpstreamDone done) -> std::shared_ptr<PendingCall> {
              ++upstream_starts_;
              plans_.push_back(plan);
              upstream_done_ = std::move(done);
              upstream_ = std::make_shared<RecordingPending>();
              return upstream_;
            },
            [this](Outcome outcome) { results_.push_back(std::move(outcome)); });
  }

  std::shared_ptr<PendingCall> Run() { return Run(clock_.Now() + absl::Seconds(10)); }

  // Ends the latest run of upstream attempts the guard started. The outcome is settled as the
  // engine marks Twilio's answers: a success, or a rejection of the request (NOT_FOUND,
  // INVALID_ARGUMENT).
  void DeliverUpstream(absl::StatusOr<Resource> outcome, bool may_exist = false,
                       bool window_closed = false) {
    IdempotencyGuard::UpstreamDone done = std::exchange(upstream_done_, nullptr);
    ASSERT_TRUE(done != nullptr) << "upstream already delivered";
    const bool settled = outcome.ok() || absl::IsNotFound(outcome.status()) ||
                         absl::IsInvalidArgument(outcome.status());
    std::move(done)(UpstreamOutcome{.result = std::move(outcome),
                                    .settled = settled,
                                    .may_exist = may_exist,
                                    .window_closed = window_closed,
                                    .attempts = 1});
  }

  // The one result `done` delivered.
  const Outcome& Result() {
    EXPECT_THAT(results_, SizeIs(1));
    static const Outcome kNone = {.result = absl::UnknownError("done never ran"), .report = {}};
    return results_.empty() ? kNone : results_.front();
  }

  IdempotencyOptions options_;
  FakeClock clock_;
  FakeTimer timer_{clock_};
  FakeIdempotencyStore store_;
  std::unique_ptr<IdempotencyGuard> guard_;
  std::vector<Outcome> results_;
  int upstream_starts_ = 0;
  std::vector<UpstreamPlan> plans_;
  IdempotencyGuard::UpstreamDone upstream_done_;
  std::shared_ptr<RecordingPending> upstream_;
};

TEST_F(IdempotencyGuardTest, ClaimsTheScopedKeyWithTheRequestFingerprint) {
  Run();
  ASSERT_EQ(store_.claim_count(), 1u);
  EXPECT_EQ(store_.claim(0).key, RecordKey());
  EXPECT_EQ(store_.claim(0).fingerprint, RequestFingerprint(Request()));
  EXPECT_EQ(upstream_starts_, 0);  // Nothing goes upstream before the claim is won.
  EXPECT_THAT(results_, IsEmpty());
}

TEST_F(IdempotencyGuardTest, ClaimHasAShortLeaseAndARecordKeptForTheRetention) {
  Run(clock_.Now() + absl::Seconds(7));
  ASSERT_EQ(store_.claim_count(), 1u);
  EXPECT_EQ(store_.claim(0).lease, absl::Seconds(2));
  EXPECT_EQ(store_.claim(0).retention, absl::Hours(24));
}

TEST_F(IdempotencyGuardTest, WonClaimStartsUpstreamOnceAndStoresASuccessBeforeAnswering) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  EXPECT_EQ(upstream_starts_, 1);
  EXPECT_THAT(results_, IsEmpty());

  DeliverUpstream(MadeSubscription());
  ASSERT_EQ(store_.complete_count(), 1u);
  const FakeIdempotencyStore::CompleteCall complete = store_.complete(0);
  EXPECT_EQ(complete.key, RecordKey());
  EXPECT_EQ(complete.token, "token-1");
  EXPECT_EQ(complete.outcome, EncodeOutcome(MadeSubscription(), /*may_exist=*/false));
  EXPECT_EQ(complete.retention, absl::Hours(24));
  EXPECT_EQ(store_.release_count(), 0u);
  // The caller hears only once the outcome is stored, so a retry with the key can replay it.
  EXPECT_THAT(results_, IsEmpty());

  ASSERT_TRUE(store_.AnswerComplete(0, absl::OkStatus()));
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_EQ(SubscriptionOf(result).sid, MadeSubscription().sid);
  EXPECT_FALSE(result.report.replayed);
  EXPECT_EQ(upstream_starts_, 1);
}

TEST_F(IdempotencyGuardTest, ReplayableErrorIsStored) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  DeliverUpstream(absl::NotFoundError("no such call"));
  ASSERT_EQ(store_.complete_count(), 1u);
  EXPECT_EQ(store_.release_count(), 0u);
  absl::StatusOr<StoredOutcome> stored = DecodeOutcome(store_.complete(0).outcome);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->result.status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(store_.AnswerComplete(0, absl::OkStatus()));
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(IdempotencyGuardTest, FailureToStoreStillDeliversTheOutcome) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  DeliverUpstream(MadeSubscription());
  ASSERT_TRUE(store_.AnswerComplete(0, absl::FailedPreconditionError("claim lost")));
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_EQ(SubscriptionOf(result).sid, MadeSubscription().sid);
}

class IdempotencyGuardUnknownOutcomeTest : public IdempotencyGuardTest,
                                           public ::testing::WithParamInterface<absl::StatusCode> {
};

TEST_P(IdempotencyGuardUnknownOutcomeTest, ReleasesTheClaimAndStoresNothing) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  DeliverUpstream(absl::Status(GetParam(), "upstream said so"));
  EXPECT_EQ(store_.complete_count(), 0u);
  ASSERT_EQ(store_.release_count(), 1u);
  EXPECT_EQ(store_.release(0).key, RecordKey());
  EXPECT_EQ(store_.release(0).token, "token-1");
  EXPECT_THAT(results_, IsEmpty());

  ASSERT_TRUE(store_.AnswerRelease(0, absl::OkStatus()));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), GetParam());
  EXPECT_EQ(result.result.status().message(), "upstream said so");
}

INSTANTIATE_TEST_SUITE_P(
    NonReplayable, IdempotencyGuardUnknownOutcomeTest,
    ::testing::Values(absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded,
                      absl::StatusCode::kCancelled, absl::StatusCode::kFailedPrecondition,
                      absl::StatusCode::kResourceExhausted, absl::StatusCode::kInternal));

TEST_F(IdempotencyGuardTest, DoneReplaysTheStoredSubscriptionWithoutUpstream) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(
      0, FakeIdempotencyStore::Done(EncodeOutcome(MadeSubscription(), /*may_exist=*/false))));
  EXPECT_EQ(upstream_starts_, 0);
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_TRUE(result.report.replayed);
  EXPECT_EQ(SubscriptionOf(result).sid, MadeSubscription().sid);
  EXPECT_EQ(SubscriptionOf(result).date_created, MadeSubscription().date_created);
  EXPECT_EQ(result.report.idempotency_key, kKey);
  EXPECT_EQ(store_.complete_count(), 0u);
  EXPECT_EQ(store_.release_count(), 0u);
}

TEST_F(IdempotencyGuardTest, DoneReplaysAStoredErrorMarkedReplayed) {
  absl::Status stored = absl::NotFoundError("no such call");
  SetErrorInfo(stored, "TWILIO_NOT_FOUND");
  Run();
  ASSERT_TRUE(store_.AnswerClaim(
      0, FakeIdempotencyStore::Done(EncodeOutcome(stored, /*may_exist=*/false))));
  EXPECT_EQ(upstream_starts_, 0);
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.result.status().message(), "no such call");
  EXPECT_EQ(GetErrorReason(result.result.status()), "TWILIO_NOT_FOUND");
  EXPECT_TRUE(result.report.replayed);
  EXPECT_EQ(result.report.attempts, 0);  // This call made none.
  EXPECT_FALSE(result.report.may_exist);
  EXPECT_EQ(result.report.idempotency_key, kKey);
}

TEST_F(IdempotencyGuardTest, ReplayedErrorKeepsTheStoredMayExist) {
  absl::Status stored = absl::UnknownError("may or may not exist");
  SetErrorInfo(stored, "OUTCOME_UNKNOWN");
  Run();
  ASSERT_TRUE(
      store_.AnswerClaim(0, FakeIdempotencyStore::Done(EncodeOutcome(stored, /*may_exist=*/true))));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnknown);
  EXPECT_TRUE(result.report.replayed);
  EXPECT_TRUE(result.report.may_exist);
}

// Records written before Outcome existed kept may_exist in the error's ErrorInfo metadata.
TEST_F(IdempotencyGuardTest, ReplayedErrorOfAnEarlierVersionKeepsItsMayExist) {
  absl::Status stored = absl::UnknownError("may or may not exist");
  SetErrorInfo(stored, "OUTCOME_UNKNOWN",
               {{"attempts", "3"}, {"idempotency_key", kKey}, {"subscription_may_exist", "true"}});
  std::string old_record = EncodeOutcome(stored, /*may_exist=*/false);
  const std::string field = R"("may_exist":false,)";
  ASSERT_NE(old_record.find(field), std::string::npos);
  old_record.erase(old_record.find(field), field.size());
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Done(old_record)));
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnknown);
  EXPECT_TRUE(result.report.replayed);
  EXPECT_TRUE(result.report.may_exist);
}

TEST_F(IdempotencyGuardTest, UnreadableRecordIsInternalAndMayExist) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Done("not a record")));
  EXPECT_EQ(upstream_starts_, 0);
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(result.report.may_exist);
  EXPECT_EQ(result.report.idempotency_key, kKey);
}

TEST_F(IdempotencyGuardTest, ConflictRefusesTheReusedKeyWithoutUpstream) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Conflict()));
  EXPECT_EQ(upstream_starts_, 0);
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(GetErrorReason(result.result.status()), "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(result.report.idempotency_key, kKey);
  EXPECT_EQ(result.report.attempts, 0);
  EXPECT_FALSE(result.report.may_exist);
  EXPECT_EQ(store_.release_count(), 0u);
}

TEST_F(IdempotencyGuardTest, InFlightPollsAtThePollIntervalThenStartsUpstreamOnceClaimed) {
  const absl::Time deadline = clock_.Now() + absl::Seconds(10);
  Run(deadline);
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::InFlight()));
  ASSERT_THAT(timer_.pending(), SizeIs(1));
  EXPECT_EQ(timer_.pending()[0].when, clock_.Now() + absl::Milliseconds(50));

  clock_.Advance(absl::Milliseconds(49));
  EXPECT_EQ(timer_.FireDue(), 0u);
  EXPECT_EQ(store_.claim_count(), 1u);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(timer_.FireDue(), 1u);
  ASSERT_EQ(store_.claim_count(), 2u);
  EXPECT_EQ(store_.claim(1).key, store_.claim(0).key);
  EXPECT_EQ(upstream_starts_, 0);

  ASSERT_TRUE(store_.AnswerClaim(1, FakeIdempotencyStore::Claimed("token-2")));
  EXPECT_EQ(upstream_starts_, 1);
  DeliverUpstream(MadeSubscription());
  ASSERT_EQ(store_.complete_count(), 1u);
  EXPECT_EQ(store_.complete(0).token, "token-2");
  ASSERT_TRUE(store_.AnswerComplete(0, absl::OkStatus()));
  EXPECT_TRUE(Result().result.ok());
}

TEST_F(IdempotencyGuardTest, InFlightUntilTheDeadlineIsUnavailableWithRetryInfo) {
  for (int i = 0; i < 10; ++i) store_.QueueClaimAnswer(FakeIdempotencyStore::InFlight());
  Run(clock_.Now() + absl::Milliseconds(200));
  // Claims at 0, 50 and 100ms; the caller is answered 50ms before its deadline, so that it
  // hears UNAVAILABLE (retry with the key) rather than its own DEADLINE_EXCEEDED.
  while (timer_.AdvanceToNextAndFire(clock_) > 0) {
  }
  EXPECT_EQ(store_.claim_count(), 3u);
  EXPECT_EQ(upstream_starts_, 0);
  EXPECT_THAT(timer_.pending(), IsEmpty());
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetErrorReason(result.result.status()), "IDEMPOTENCY_KEY_IN_FLIGHT");
  EXPECT_TRUE(GetRetryDelay(result.result.status()).has_value());
  EXPECT_TRUE(result.report.may_exist);
}

TEST_F(IdempotencyGuardTest, UnavailableStoreFailsClosedWithoutUpstream) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, absl::UnavailableError("connection refused")));
  EXPECT_EQ(upstream_starts_, 0);
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(result.result.status().message(), HasSubstr("connection refused"));
  EXPECT_EQ(GetErrorReason(result.result.status()), "IDEMPOTENCY_STORE_UNAVAILABLE");
  EXPECT_FALSE(result.report.may_exist);
  EXPECT_EQ(result.report.attempts, 0);
}

TEST_F(IdempotencyGuardTest, FullStoreKeepsResourceExhaustedWithoutUpstream) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, absl::ResourceExhaustedError("store full")));
  EXPECT_EQ(upstream_starts_, 0);
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(IdempotencyGuardTest, CancelWhileClaimingReleasesALaterWonClaim) {
  std::shared_ptr<PendingCall> pending = Run();
  pending->Cancel();
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(result.report.idempotency_key, kKey);

  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  EXPECT_EQ(upstream_starts_, 0);
  ASSERT_EQ(store_.release_count(), 1u);
  EXPECT_EQ(store_.release(0).token, "token-1");
  ASSERT_TRUE(store_.AnswerRelease(0, absl::OkStatus()));
  EXPECT_THAT(results_, SizeIs(1));
}

TEST_F(IdempotencyGuardTest, CancelWhilePollingStopsPolling) {
  std::shared_ptr<PendingCall> pending = Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::InFlight()));
  ASSERT_THAT(timer_.pending(), SizeIs(1));
  const Timer::TimerId poll = timer_.pending()[0].id;

  pending->Cancel();
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(timer_.cancel_calls(), ElementsAre(poll));
  clock_.Advance(absl::Seconds(1));
  timer_.FireDue();
  EXPECT_EQ(store_.claim_count(), 1u);
  EXPECT_EQ(upstream_starts_, 0);
  EXPECT_THAT(results_, SizeIs(1));
}

TEST_F(IdempotencyGuardTest, CancelWhileUpstreamRunsCancelsUpstreamAndReleases) {
  std::shared_ptr<PendingCall> pending = Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  ASSERT_NE(upstream_, nullptr);

  pending->Cancel();
  EXPECT_EQ(upstream_->cancel_calls, 1);
  EXPECT_THAT(results_, IsEmpty());  // The upstream reports its own CANCELLED.

  DeliverUpstream(absl::CancelledError("the caller cancelled the request"));
  ASSERT_EQ(store_.release_count(), 1u);
  EXPECT_EQ(store_.complete_count(), 0u);
  ASSERT_TRUE(store_.AnswerRelease(0, absl::OkStatus()));
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kCancelled);

  pending->Cancel();  // After the end: harmless.
  EXPECT_EQ(upstream_->cancel_calls, 1);
  EXPECT_THAT(results_, SizeIs(1));
}

TEST_F(IdempotencyGuardTest, CancelAfterReplayIsANoOp) {
  std::shared_ptr<PendingCall> pending = Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Conflict()));
  pending->Cancel();
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_EQ(results_[0].result.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(IdempotencyGuardTest, InlineStoreAnswersRunTheWholeCall) {
  store_.QueueClaimAnswer(FakeIdempotencyStore::Claimed("token-1"));
  store_.set_inline_status(absl::OkStatus());
  Run();
  EXPECT_EQ(upstream_starts_, 1);
  DeliverUpstream(MadeSubscription());
  EXPECT_EQ(store_.complete_count(), 1u);
  EXPECT_TRUE(Result().result.ok());
}

TEST_F(IdempotencyGuardTest, SecondCallWithTheKeyReplaysFromAMemoryStore) {
  FakeRandom random;
  MemoryIdempotencyStore memory(MemoryStoreOptions{}, clock_, random);
  Run(clock_.Now() + absl::Seconds(10), &memory);
  DeliverUpstream(MadeSubscription());
  ASSERT_THAT(results_, SizeIs(1));
  ASSERT_TRUE(results_[0].result.ok()) << results_[0].result.status();
  EXPECT_FALSE(results_[0].report.replayed);

  Run(clock_.Now() + absl::Seconds(10), &memory);
  EXPECT_EQ(upstream_starts_, 1);  // No second upstream call.
  ASSERT_THAT(results_, SizeIs(2));
  ASSERT_TRUE(results_[1].result.ok()) << results_[1].result.status();
  EXPECT_TRUE(results_[1].report.replayed);
  EXPECT_EQ(SubscriptionOf(results_[1]).sid, MadeSubscription().sid);
}

// An attempt may have created the subscription: the record is kept, not released, and the
// guard resolves it with a second run of the same engine, while the caller waits.
TEST_F(IdempotencyGuardTest, AmbiguousOutcomeIsResolvedInTheBackgroundWhileTheCallerWaits) {
  const absl::Time claimed_at = clock_.Now();
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  ASSERT_THAT(plans_, SizeIs(1));
  EXPECT_FALSE(plans_[0].resolution);
  EXPECT_FALSE(plans_[0].may_exist);
  EXPECT_EQ(plans_[0].window_start, claimed_at);

  clock_.Advance(absl::Milliseconds(300));
  DeliverUpstream(absl::UnavailableError("gave up after 5 attempts"), /*may_exist=*/true);
  EXPECT_EQ(store_.release_count(), 0u);
  EXPECT_EQ(store_.complete_count(), 0u);
  ASSERT_THAT(plans_, SizeIs(2));
  EXPECT_TRUE(plans_[1].resolution);
  EXPECT_TRUE(plans_[1].may_exist);
  EXPECT_EQ(plans_[1].window_start, claimed_at);  // Twilio's memory counts from the claim.
  EXPECT_EQ(guard_->resolving(), 1);
  EXPECT_THAT(results_, IsEmpty());  // Waits within its deadline.

  DeliverUpstream(MadeSubscription());
  ASSERT_EQ(store_.complete_count(), 1u);
  EXPECT_EQ(store_.complete(0).token, "token-1");
  EXPECT_EQ(store_.complete(0).outcome, EncodeOutcome(MadeSubscription(), /*may_exist=*/false));
  ASSERT_TRUE(store_.AnswerComplete(0, absl::OkStatus()));
  const Outcome& result = Result();
  ASSERT_TRUE(result.result.ok()) << result.result.status();
  EXPECT_EQ(SubscriptionOf(result).sid, MadeSubscription().sid);
  EXPECT_EQ(guard_->resolving(), 0);
}

TEST_F(IdempotencyGuardTest, CallerWhoseDeadlineComesFirstIsToldToRetryAndTheRecordStillLands) {
  const absl::Time deadline = clock_.Now() + absl::Seconds(1);
  Run(deadline);
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  DeliverUpstream(absl::UnavailableError("retry budget exhausted"), /*may_exist=*/true);
  ASSERT_THAT(plans_, SizeIs(2));

  clock_.Advance(absl::Milliseconds(949));
  timer_.FireDue();
  EXPECT_THAT(results_, IsEmpty());
  clock_.Advance(absl::Milliseconds(1));  // 50ms before the deadline.
  timer_.FireDue();
  const Outcome& result = Result();
  EXPECT_EQ(result.result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetErrorReason(result.result.status()), "OUTCOME_RESOLVING");
  EXPECT_TRUE(GetRetryDelay(result.result.status()).has_value());
  EXPECT_TRUE(result.report.may_exist);
  EXPECT_EQ(result.report.idempotency_key, kKey);

  DeliverUpstream(MadeSubscription());
  ASSERT_EQ(store_.complete_count(), 1u);
  ASSERT_TRUE(store_.AnswerComplete(0, absl::OkStatus()));
  EXPECT_THAT(results_, SizeIs(1));  // Recorded for the caller's retry, not answered twice.
}

TEST_F(IdempotencyGuardTest, ClosedKeyWindowRecordsOutcomeUnknownAndNeverResends) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  DeliverUpstream(absl::UnavailableError("500"), /*may_exist=*/true, /*window_closed=*/true);
  EXPECT_THAT(plans_, SizeIs(1));  // No resolution: a resend could create a second one.
  EXPECT_EQ(store_.release_count(), 0u);
  ASSERT_EQ(store_.complete_count(), 1u);
  absl::StatusOr<StoredOutcome> stored = DecodeOutcome(store_.complete(0).outcome);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->result.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(GetErrorReason(stored->result.status()), "OUTCOME_UNKNOWN");

  ASSERT_TRUE(store_.AnswerComplete(0, absl::OkStatus()));
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kUnknown);
  EXPECT_TRUE(Result().report.may_exist);
}

TEST_F(IdempotencyGuardTest, ResolutionThatRunsOutOfTheWindowRecordsOutcomeUnknown) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  DeliverUpstream(absl::UnavailableError("500"), /*may_exist=*/true);
  DeliverUpstream(absl::UnavailableError("500"), /*may_exist=*/true, /*window_closed=*/true);
  ASSERT_EQ(store_.complete_count(), 1u);
  absl::StatusOr<StoredOutcome> stored = DecodeOutcome(store_.complete(0).outcome);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(GetErrorReason(stored->result.status()), "OUTCOME_UNKNOWN");
}

TEST_F(IdempotencyGuardTest, ResolutionOutOfAttemptsHandsTheRecordOverInsteadOfReleasingIt) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  DeliverUpstream(absl::UnavailableError("500"), /*may_exist=*/true);
  DeliverUpstream(absl::UnavailableError("resolution budget spent"), /*may_exist=*/true);
  EXPECT_EQ(store_.release_count(), 0u);
  EXPECT_EQ(store_.complete_count(), 0u);
  bool handed_over = false;
  for (size_t i = 0; i < store_.renew_count(); ++i) {
    if (store_.renew(i).lease == absl::ZeroDuration() && store_.renew(i).token == "token-1") {
      handed_over = true;
      ASSERT_TRUE(store_.AnswerRenew(i, absl::OkStatus()));
    }
  }
  EXPECT_TRUE(handed_over);
  EXPECT_EQ(guard_->resolving(), 0);
  EXPECT_EQ(GetErrorReason(Result().result.status()), "OUTCOME_RESOLVING");
}

TEST_F(IdempotencyGuardTest, CallerCancelWithARequestOutStillResolves) {
  std::shared_ptr<PendingCall> pending = Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  pending->Cancel();
  EXPECT_EQ(upstream_->cancel_calls, 1);
  // The abandoned request may have reached Twilio.
  DeliverUpstream(absl::CancelledError("the caller cancelled the request"), /*may_exist=*/true);
  EXPECT_EQ(Result().result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(store_.release_count(), 0u);
  ASSERT_THAT(plans_, SizeIs(2));
  EXPECT_TRUE(plans_[1].resolution);
  DeliverUpstream(MadeSubscription());
  EXPECT_EQ(store_.complete_count(), 1u);
  EXPECT_THAT(results_, SizeIs(1));
}

TEST_F(IdempotencyGuardTest, TakenOverRecordCountsTheWindowFromTheFirstClaimAndMayExist) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::TakenOver("token-2", absl::Seconds(3))));
  ASSERT_THAT(plans_, SizeIs(1));
  EXPECT_FALSE(plans_[0].resolution);
  EXPECT_TRUE(plans_[0].may_exist);
  EXPECT_EQ(plans_[0].window_start, clock_.Now() - absl::Seconds(3));
  // Even an answer that says "never sent" cannot release it: the first owner may have sent.
  DeliverUpstream(absl::ResourceExhaustedError("429"), /*may_exist=*/false);
  EXPECT_EQ(store_.release_count(), 0u);
  EXPECT_THAT(plans_, SizeIs(2));
}

TEST_F(IdempotencyGuardTest, LeaseIsRenewedWhileTheCallWorksAndNotAfter) {
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  store_.set_inline_status(absl::OkStatus());
  for (int i = 1; i <= 3; ++i) {
    clock_.Advance(options_.lease / 3);
    timer_.FireDue();
    ASSERT_EQ(store_.renew_count(), static_cast<size_t>(i));
    EXPECT_EQ(store_.renew(i - 1).lease, options_.lease);
    EXPECT_EQ(store_.renew(i - 1).token, "token-1");
  }
  DeliverUpstream(MadeSubscription());
  EXPECT_TRUE(Result().result.ok());
  clock_.Advance(absl::Seconds(10));
  timer_.FireDue();
  EXPECT_EQ(store_.renew_count(), 3u);
}

TEST_F(IdempotencyGuardTest, DrainStopsResolutionsAndHandsTheirRecordsOver) {
  store_.set_inline_status(absl::OkStatus());
  Run();
  ASSERT_TRUE(store_.AnswerClaim(0, FakeIdempotencyStore::Claimed("token-1")));
  DeliverUpstream(absl::UnavailableError("500"), /*may_exist=*/true);
  ASSERT_EQ(guard_->resolving(), 1);
  upstream_->on_cancel = [this] {
    DeliverUpstream(absl::CancelledError("stopping"), /*may_exist=*/true);
  };
  guard_->Drain(absl::Now());
  EXPECT_EQ(upstream_->cancel_calls, 1);
  EXPECT_EQ(guard_->resolving(), 0);
  EXPECT_EQ(store_.release_count(), 0u);
  EXPECT_EQ(store_.complete_count(), 0u);
  ASSERT_GE(store_.renew_count(), 1u);
  EXPECT_EQ(store_.renew(store_.renew_count() - 1).lease, absl::ZeroDuration());
}

TEST_F(IdempotencyGuardTest, MemoryStoreRecordHandedOverIsTakenOverByTheNextCaller) {
  FakeRandom random;
  MemoryIdempotencyStore memory(MemoryStoreOptions{}, clock_, random);
  Run(clock_.Now() + absl::Seconds(10), &memory);
  DeliverUpstream(absl::UnavailableError("500"), /*may_exist=*/true);
  DeliverUpstream(absl::UnavailableError("resolution budget spent"), /*may_exist=*/true);
  ASSERT_THAT(results_, SizeIs(1));
  EXPECT_EQ(GetErrorReason(results_[0].result.status()), "OUTCOME_RESOLVING");

  clock_.Advance(absl::Seconds(1));
  Run(clock_.Now() + absl::Seconds(10), &memory);
  ASSERT_THAT(plans_, SizeIs(3));
  EXPECT_TRUE(plans_[2].may_exist);
  EXPECT_EQ(plans_[2].window_start, clock_.Now() - absl::Seconds(1));
  DeliverUpstream(MadeSubscription());
  ASSERT_THAT(results_, SizeIs(2));
  EXPECT_TRUE(results_[1].result.ok()) << results_[1].result.status();
}

}  // namespace
}  // namespace gateway
