// Receiving messages across a fleet: two gateway replicas sharing a real Redis, the simulator
// delivering signed messages (each twice) to whichever replica a subscription's callback names,
// and Watch streams on the other replica. Shipped defaults except the webhook's own flags.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "harness.h"
#include "twilio_gateway/v1/message_service.grpc.pb.h"
#include "twilio_gateway/v1/subscription_service.grpc.pb.h"

namespace gateway::testing {
namespace {

namespace pb = twilio_gateway::v1;

constexpr char kCallA[] = "CA0000000000000000000000000000000a";
constexpr char kCallB[] = "CA0000000000000000000000000000000b";

class Replica {
 public:
  Replica(Simulator& sim, const RedisServer& redis, const std::string& name) {
    const int port = FreeLoopbackPort();
    url_ = "http://127.0.0.1:" + std::to_string(port) + "/twilio/messages";
    gateway_ = std::make_unique<Gateway>(
        sim.base_url(),
        std::vector<std::string>{"--idempotency-store", "redis", "--redis-address",
                                 "127.0.0.1:" + std::to_string(redis.port()), "--webhook-listen",
                                 "127.0.0.1:" + std::to_string(port), "--public-webhook-url", url_},
        std::map<std::string, std::string>{}, LogDir() + "/gateway-webhook-" + name + ".log");
    channel_ = grpc::CreateChannel(gateway_->target(), grpc::InsecureChannelCredentials());
  }

  const std::string& url() const { return url_; }

  // Create with no callback: the subscription's callback is this replica's public URL.
  pb::Subscription Subscribe(const std::string& call_sid) {
    pb::CreateSubscriptionRequest request;
    request.set_call_sid(call_sid);
    pb::Subscription subscription;
    grpc::ClientContext context;
    const grpc::Status status =
        pb::SubscriptionService::NewStub(channel_)->Create(&context, request, &subscription);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return subscription;
  }

  std::unique_ptr<pb::MessageService::Stub> Messages() {
    return pb::MessageService::NewStub(channel_);
  }

 private:
  std::string url_;
  std::unique_ptr<Gateway> gateway_;
  std::shared_ptr<grpc::Channel> channel_;
};

// `count` messages for each call, interleaved, each delivered twice; every answer must be 200.
void Deliver(Simulator& sim, int count) {
  for (int i = 0; i < count; ++i) {
    for (const char* call : {kCallA, kCallB}) {
      const nlohmann::json request = {{"call_sid", call}, {"count", 1}, {"duplicate", 1}};
      const HttpReply reply = HttpCall("POST", sim.base_url() + "/_sim/deliver", request.dump());
      ASSERT_EQ(reply.status, 200) << reply.body;
      // Kept in a variable: a range-for over a member of a temporary outlives the temporary.
      const nlohmann::json answer = nlohmann::json::parse(reply.body);
      for (const auto& delivery : answer["deliveries"]) {
        ASSERT_EQ(delivery["status"], 200) << delivery.dump();
      }
    }
  }
}

struct Received {
  std::vector<int64_t> sequence;
  std::vector<std::string> sids;
  std::string last_cursor;
};

// Reads `want` messages from a Watch, then cancels it.
Received Watch(pb::MessageService::Stub& stub, pb::WatchMessagesRequest request, int want) {
  Received received;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::unique_ptr<grpc::ClientReader<pb::CallMessage>> reader = stub.Watch(&context, request);
  pb::CallMessage message;
  while (static_cast<int>(received.sequence.size()) < want && reader->Read(&message)) {
    EXPECT_EQ(message.call_sid(), request.call_sid());
    received.sequence.push_back(message.sequence_number());
    received.sids.push_back(message.sid());
    received.last_cursor = message.cursor();
  }
  context.TryCancel();
  reader->Finish();
  return received;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i < to; ++i) out.push_back(i);
  return out;
}

TEST(WebhookFleetTest, AWatchOnOneReplicaGetsWhatAnotherReceivedInOrderOnceAndResumes) {
  Simulator sim(LogDir());
  RedisServer redis;
  Replica a(sim, redis, "a");
  Replica b(sim, redis, "b");
  // Twilio calls A for call A's messages and B for call B's.
  EXPECT_EQ(a.Subscribe(kCallA).sid().substr(0, 2), "ZY");
  EXPECT_EQ(b.Subscribe(kCallB).sid().substr(0, 2), "ZY");
  for (const auto& subscription : sim.Subscriptions()) {
    EXPECT_EQ(subscription["callback"], subscription["call_sid"] == kCallA ? a.url() : b.url());
  }

  // 60 of each call's 100 messages (120 deliveries, 240 requests with the copies) before anyone
  // watches; the rest while the subscriber is away.
  Deliver(sim, 60);
  pb::WatchMessagesRequest on_b;
  on_b.set_call_sid(kCallA);
  on_b.set_from_oldest(true);
  auto b_stub = b.Messages();
  const Received first = Watch(*b_stub, on_b, 50);
  EXPECT_EQ(first.sequence, Range(0, 50));

  Deliver(sim, 40);
  on_b.set_from_oldest(false);
  on_b.set_cursor(first.last_cursor);
  const Received rest = Watch(*b_stub, on_b, 50);
  EXPECT_EQ(rest.sequence, Range(50, 100));
  // Nothing repeated: 100 distinct message SIDs across the two streams.
  std::set<std::string> sids(first.sids.begin(), first.sids.end());
  sids.insert(rest.sids.begin(), rest.sids.end());
  EXPECT_EQ(sids.size(), 100u);

  // And the other way round: call B's messages, received by B, watched on A.
  pb::WatchMessagesRequest on_a;
  on_a.set_call_sid(kCallB);
  on_a.set_from_oldest(true);
  EXPECT_EQ(Watch(*a.Messages(), on_a, 100).sequence, Range(0, 100));

  // No more than that: a stream at the end of call A's messages waits, and gets the next one
  // as soon as it is delivered.
  pb::WatchMessagesRequest tail;
  tail.set_call_sid(kCallA);
  tail.set_cursor(rest.last_cursor);
  auto a_stub = a.Messages();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  std::unique_ptr<grpc::ClientReader<pb::CallMessage>> reader = a_stub->Watch(&context, tail);
  Deliver(sim, 1);
  pb::CallMessage next;
  ASSERT_TRUE(reader->Read(&next));
  EXPECT_EQ(next.sequence_number(), 100);
  context.TryCancel();
  reader->Finish();
}

}  // namespace
}  // namespace gateway::testing
