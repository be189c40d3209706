// HttpServer on loopback sockets: what a handler is given, and the bounds an untrusted client
// meets (body, head, time, connections). Reads are bounded by the client's receive timeout.
#include "http/http_server.h"

#include <sys/resource.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "unit/http_test_client.h"

namespace gateway {
namespace {

using ::gateway::testing::Fetch;
using ::gateway::testing::HttpReplyText;
using ::gateway::testing::TestClient;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

// Records the last request and counts calls; answers 201 with the body's size, never the body.
class RecordingHandler {
 public:
  HttpServer::Handler AsHandler() {
    return [this](const HttpServer::Request& request) {
      absl::MutexLock lock(&mu_);
      ++calls_;
      last_ = request;
      return HttpServer::Response{.status = 201,
                                  .content_type = "application/json",
                                  .body = absl::StrCat("{\"bytes\":", request.body.size(), "}"),
                                  .headers = {{"X-Seen", "yes"}}};
    };
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  HttpServer::Request last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

 private:
  absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  HttpServer::Request last_ ABSL_GUARDED_BY(mu_);
};

class HttpServerTest : public ::testing::Test {
 protected:
  std::unique_ptr<HttpServer> StartServer(const HttpServer::Options& options = {}) {
    absl::StatusOr<std::unique_ptr<HttpServer>> server =
        HttpServer::Start("127.0.0.1:0", handler_.AsHandler(), options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  RecordingHandler handler_;
};

TEST_F(HttpServerTest, HandlerGetsMethodPathHeadersAndBody) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const HttpReplyText reply =
      Fetch(server->port(),
            "POST /hooks/status?AccountSid=AC1 HTTP/1.1\r\nHost: example.com\r\n"
            "X-Twilio-Signature: abc=\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: 11\r\n\r\nCallSid=CA1");
  EXPECT_EQ(reply.status_line, "HTTP/1.1 201 Created");
  EXPECT_EQ(reply.Header("content-type"), "application/json");
  EXPECT_EQ(reply.Header("x-seen"), "yes");
  EXPECT_EQ(reply.body, "{\"bytes\":11}");
  const HttpServer::Request request = handler_.last();
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, "/hooks/status");
  EXPECT_EQ(request.body, "CallSid=CA1");
  EXPECT_EQ(request.Header("x-twilio-signature"), "abc=");
  EXPECT_EQ(request.Header("HOST"), "example.com");
  EXPECT_EQ(request.Header("missing"), std::nullopt);
  EXPECT_THAT(request.headers, ::testing::Contains(Pair("Content-Length", "11")));
}

// A signed URL needs the query exactly as the client sent it: escapes, '+', empty pairs and
// repeats kept, while the path is decoded.
TEST_F(HttpServerTest, HandlerGetsTheRawQueryAsSent) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/hook?tenant=a%2Fb&x=%7e+y&&z&x=2&bodySHA256=0a1f",
       "tenant=a%2Fb&x=%7e+y&&z&x=2&bodySHA256=0a1f"},
      {"/hook?%3F=%26%3D&q=a?b", "%3F=%26%3D&q=a?b"},
      {"/hook?", ""},
      {"/hook", ""},
  };
  for (const auto& [target, query] : cases) {
    const HttpReplyText reply =
        Fetch(server->port(), absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(reply.status_line, "HTTP/1.1 201 Created") << target;
    EXPECT_EQ(handler_.last().query, query) << target;
    EXPECT_EQ(handler_.last().path, "/hook") << target;
  }
  Fetch(server->port(), "GET /a%20b?q=%20 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(handler_.last().path, "/a b");
  EXPECT_EQ(handler_.last().query, "q=%20");
}

TEST_F(HttpServerTest, ChunkedBodyWithinTheLimitIsReassembled) {
  std::unique_ptr<HttpServer> server = StartServer({.max_body_bytes = 10});
  ASSERT_NE(server, nullptr);
  const HttpReplyText reply = Fetch(server->port(),
                                    "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                    "\r\n4\r\nabcd\r\n6\r\nefghij\r\n0\r\n\r\n");
  EXPECT_EQ(reply.status_line, "HTTP/1.1 201 Created");
  EXPECT_EQ(handler_.last().body, "abcdefghij");
}

TEST_F(HttpServerTest, AnnouncedBodyOverTheLimitIsRefusedBeforeItIsRead) {
  std::unique_ptr<HttpServer> server = StartServer({.max_body_bytes = 10});
  ASSERT_NE(server, nullptr);
  // Exactly the limit is fine.
  EXPECT_EQ(Fetch(server->port(),
                  "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
                  "0123456789")
                .status_line,
            "HTTP/1.1 201 Created");
  // Over it: answered without the client sending a byte of the body.
  TestClient client(server->port());
  ASSERT_TRUE(client.Send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"));
  const std::string raw = client.ReadToEnd();
  EXPECT_THAT(raw, StartsWith("HTTP/1.1 413 "));
  EXPECT_EQ(handler_.calls(), 1);
  // Expect: 100-continue gets the refusal instead of the go-ahead.
  TestClient expecting(server->port());
  ASSERT_TRUE(expecting.Send(
      "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_THAT(expecting.ReadToEnd(), StartsWith("HTTP/1.1 413 "));
}

TEST_F(HttpServerTest, ChunkedBodyGrowingPastTheLimitClosesTheConnection) {
  std::unique_ptr<HttpServer> server = StartServer({.max_body_bytes = 10});
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(
      client.Send("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "8\r\nabcdefgh\r\n8\r\nabcdefgh\r\n0\r\n\r\n"));
  EXPECT_THAT(client.ReadToEnd(), Not(HasSubstr(" 201 ")));
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(HttpServerTest, HeadOverTheLimitIsRefused) {
  std::unique_ptr<HttpServer> server = StartServer({.max_header_bytes = 2048});
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send("GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(5000, 'a')));
  const std::string raw = client.ReadToEnd();
  EXPECT_THAT(raw, StartsWith("HTTP/1.1 431 "));
  EXPECT_THAT(raw, Not(HasSubstr("aaaa"))) << "nothing sent is echoed";
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(HttpServerTest, RequestWithoutHostIsMalformed) {
  std::unique_ptr<HttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send("GET /x HTTP/1.1\r\n\r\n"));
  EXPECT_THAT(client.ReadToEnd(), StartsWith("HTTP/1.1 400 "));
  EXPECT_EQ(handler_.calls(), 0);
}

TEST_F(HttpServerTest, SilentConnectionIsClosedAfterTheTimeout) {
  std::unique_ptr<HttpServer> server = StartServer({.connection_timeout = absl::Seconds(1)});
  ASSERT_NE(server, nullptr);
  TestClient silent(server->port());
  TestClient half(server->port());
  ASSERT_TRUE(half.Send("GET /x HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_EQ(silent.ReadToEnd(), "");  // Closed by the server, not the client's receive timeout.
  EXPECT_EQ(half.ReadToEnd(), "");
}

TEST_F(HttpServerTest, ConnectionsFromOneAddressBeyondItsLimitAreRefused) {
  std::unique_ptr<HttpServer> server = StartServer({.max_connections_per_ip = 2});
  ASSERT_NE(server, nullptr);
  TestClient first(server->port());
  TestClient second(server->port());
  ASSERT_TRUE(first.connected() && second.connected());
  TestClient third(server->port());
  third.Send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(third.ReadToEnd(), Not(HasSubstr(" 201 ")));
  first.Close();
  // The slot comes back once the server has seen the close; retry briefly until it has.
  HttpReplyText reply;
  for (int i = 0; i < 100 && reply.status_line != "HTTP/1.1 201 Created"; ++i) {
    reply = Fetch(server->port(), "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  EXPECT_EQ(reply.status_line, "HTTP/1.1 201 Created");
}

TEST_F(HttpServerTest, ConnectionLimitStaysUnderHalfTheDescriptorLimit) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  std::unique_ptr<HttpServer> server = StartServer({.max_connections = 1 << 30});
  ASSERT_NE(server, nullptr);
  EXPECT_LE(static_cast<rlim_t>(server->max_connections()), limit.rlim_cur / 2);
  std::unique_ptr<HttpServer> defaulted = StartServer();
  ASSERT_NE(defaulted, nullptr);
  EXPECT_LE(defaulted->max_connections(), 4096);
  EXPECT_GT(defaulted->max_connections(), 0);
}

TEST_F(HttpServerTest, StopClosesConnectionsAndCanBeRepeated) {
  std::unique_ptr<HttpServer> server = StartServer({.connection_timeout = absl::Hours(1)});
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  TestClient half(port);
  ASSERT_TRUE(half.Send("GET /x HTTP/1.1\r\nHost: x\r\n"));
  ASSERT_EQ(Fetch(port, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n").status_line, "HTTP/1.1 201 Created");
  server->Stop();
  server->Stop();
  EXPECT_EQ(half.ReadToEnd(), "");
  EXPECT_FALSE(TestClient(port).connected());
}

// An async handler's answer comes later, from another thread; meanwhile the server's only thread
// serves other connections, and Stop() waits for the answer still owed.
TEST(HttpServerAsyncTest, ALaterAnswerHoldsNoThreadAndStopWaitsForIt) {
  absl::Mutex mu;
  std::vector<HttpServer::Respond> owed;
  absl::StatusOr<std::unique_ptr<HttpServer>> started = HttpServer::StartAsync(
      "127.0.0.1:0",
      [&](const HttpServer::Request& request, HttpServer::Respond respond) {
        if (request.path == "/later") {
          absl::MutexLock lock(&mu);
          owed.push_back(std::move(respond));
          return;
        }
        std::move(respond)(HttpServer::Response{.status = 200, .body = "now\n"});
      },
      {.threads = 1});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<HttpServer> server = *std::move(started);
  const int port = server->port();

  TestClient later(port);
  ASSERT_TRUE(later.Send("GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto handed_over = [&] {
    absl::MutexLock lock(&mu);
    return owed.size() == 1;
  };
  for (int i = 0; i < 200 && !handed_over(); ++i) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(handed_over());
  // The one thread is free: another connection is answered while /later waits.
  EXPECT_EQ(Fetch(port, "GET /now HTTP/1.1\r\nHost: x\r\n\r\n").status_line, "HTTP/1.1 200 OK");

  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server->Stop();
    stopped = true;
  });
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(stopped.load());  // It waits for the answer owed to /later.
  {
    absl::MutexLock lock(&mu);
    std::move(owed[0])(HttpServer::Response{.status = 202, .body = "later\n"});
  }
  stopper.join();
  EXPECT_TRUE(stopped.load());
}

TEST(RaiseFileDescriptorLimitTest, SoftLimitBecomesTheHardLimit) {
  absl::StatusOr<size_t> raised = RaiseFileDescriptorLimit();
  ASSERT_TRUE(raised.ok()) << raised.status();
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(limit.rlim_cur, limit.rlim_max);
  EXPECT_EQ(*raised, static_cast<size_t>(limit.rlim_cur));
}

}  // namespace
}  // namespace gateway
