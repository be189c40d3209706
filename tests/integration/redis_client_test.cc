// RedisClient on its own against a real redis-server on a loopback port: plain commands and
// scripts in one pipeline, and which error replies reach the caller as replies.
#include "redis/redis_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "harness.h"

namespace gateway::testing {
namespace {

// The reply, or its status; a call that never calls back becomes DEADLINE_EXCEEDED.
struct Answer {
  absl::Status status;
  int type = 0;
  std::string text;
  long long integer = 0;
};

Answer Read(absl::StatusOr<RedisReply> reply) {
  if (!reply.ok()) return Answer{.status = reply.status(), .type = 0, .text = {}, .integer = 0};
  return Answer{.status = absl::OkStatus(),
                .type = (*reply)->type,
                .text = std::string(RedisReplyText(**reply)),
                .integer = (*reply)->integer};
}

std::future<Answer> Send(RedisClient& client, std::vector<std::string> argv,
                         RedisAccess access = RedisAccess::kWrite) {
  auto promise = std::make_shared<std::promise<Answer>>();
  auto future = promise->get_future();
  client.Command(
      std::move(argv),
      [promise](absl::StatusOr<RedisReply> reply) { promise->set_value(Read(std::move(reply))); },
      access);
  return future;
}

std::future<Answer> SendEval(RedisClient& client, int script, std::vector<std::string> keys,
                             std::vector<std::string> args) {
  auto promise = std::make_shared<std::promise<Answer>>();
  auto future = promise->get_future();
  client.Eval(
      script, std::move(keys), std::move(args),
      [promise](absl::StatusOr<RedisReply> reply) { promise->set_value(Read(std::move(reply))); });
  return future;
}

Answer Get(std::future<Answer> future) {
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return Answer{.status = absl::DeadlineExceededError("test: no callback"),
                  .type = 0,
                  .text = {},
                  .integer = 0};
  }
  return future.get();
}

class RedisClientTest : public ::testing::Test {
 protected:
  RedisClientOptions Options() const {
    RedisClientOptions options;
    options.port = redis_.port();
    options.name = "test client";
    return options;
  }

  RedisServer redis_;
};

TEST_F(RedisClientTest, CommandsAndScriptsInOnePipelineEachGetTheirReply) {
  RedisClient client(Options());
  const int incr_by = client.AddScript("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  std::vector<std::future<Answer>> answers;
  for (int i = 0; i < 50; ++i) {
    answers.push_back(SendEval(client, incr_by, {"counter"}, {"2"}));
    answers.push_back(Send(client, {"INCR", "counter"}));
  }
  for (int i = 0; i < 50; ++i) {
    const Answer by_script = Get(std::move(answers[2 * i]));
    ASSERT_TRUE(by_script.status.ok()) << by_script.status;
    EXPECT_EQ(by_script.integer, 3 * i + 2);
    const Answer by_command = Get(std::move(answers[2 * i + 1]));
    ASSERT_TRUE(by_command.status.ok()) << by_command.status;
    EXPECT_EQ(by_command.integer, 3 * i + 3);
  }
}

// BUSYGROUP, WRONGTYPE and the like are answers the caller reads, not outages.
TEST_F(RedisClientTest, CommandErrorReplyIsDeliveredAsTheReply) {
  RedisClient client(Options());
  ASSERT_TRUE(Get(Send(client, {"SET", "plain", "v"})).status.ok());
  const Answer wrong = Get(Send(client, {"XADD", "plain", "*", "f", "v"}));
  ASSERT_TRUE(wrong.status.ok()) << wrong.status;
  EXPECT_EQ(wrong.type, REDIS_REPLY_ERROR);
  EXPECT_TRUE(absl::StartsWith(wrong.text, "WRONGTYPE")) << wrong.text;
  // The connection goes on.
  EXPECT_EQ(Get(Send(client, {"GET", "plain"})).text, "v");
}

TEST_F(RedisClientTest, ScriptErrorIsUnavailable) {
  RedisClient client(Options());
  const int failing = client.AddScript("return redis.error_reply('BROKEN on purpose')");
  const Answer answer = Get(SendEval(client, failing, {}, {}));
  EXPECT_TRUE(absl::IsUnavailable(answer.status)) << answer.status;
  EXPECT_TRUE(absl::StrContains(answer.status.message(), "test client (redis at 127.0.0.1:"))
      << answer.status;
  EXPECT_TRUE(absl::StrContains(answer.status.message(), "BROKEN on purpose")) << answer.status;
}

TEST_F(RedisClientTest, ServerStateErrorIsUnavailableForACommand) {
  RedisClient client(Options());
  ASSERT_TRUE(Get(Send(client, {"CONFIG", "SET", "maxmemory", "1"})).status.ok());
  const Answer full = Get(Send(client, {"SET", "k", std::string(1000, 'x')}));
  EXPECT_TRUE(absl::IsUnavailable(full.status)) << full.status;
  EXPECT_TRUE(absl::StrContains(full.status.message(), "OOM")) << full.status;
}

// A demoted master (or a replica reached by mistake) answers writes READONLY: UNAVAILABLE, and the
// connection is dropped so that the next call connects (with Sentinel: asks) afresh.
TEST_F(RedisClientTest, ReadOnlyReplicaIsUnavailable) {
  RedisNode replica("client-replica", {"--replicaof", "127.0.0.1", std::to_string(redis_.port())});
  RedisClientOptions options = Options();
  options.port = replica.port();
  options.reconnect_interval = absl::ZeroDuration();
  RedisClient client(std::move(options));
  for (int i = 0; i < 2; ++i) {
    const Answer refused = Get(Send(client, {"SET", "k", "v"}));
    EXPECT_TRUE(absl::IsUnavailable(refused.status)) << refused.status;
    EXPECT_TRUE(absl::StrContains(refused.status.message(), "SET failed: READONLY"))
        << refused.status;
  }
  // Reads still work there.
  EXPECT_TRUE(Get(Send(client, {"GET", "k"}, RedisAccess::kRead)).status.ok());
}

TEST_F(RedisClientTest, UnknownScriptHandleIsInvalidArgument) {
  RedisClient client(Options());
  EXPECT_EQ(Get(SendEval(client, 7, {"k"}, {})).status.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gateway::testing
