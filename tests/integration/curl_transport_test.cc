// CurlTransport against real sockets: the Twilio simulator, and a listener that never answers.
// These pin the transport's contract (every callback exactly once, one at a time, never inside
// Send() or Cancel()) on both of its completion paths: a lone completion runs on the loop thread,
// a burst goes to the completion thread.
#include "http/curl_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "harness.h"

namespace gateway {
namespace {

using ::gateway::testing::LogDir;
using ::gateway::testing::Simulator;

thread_local bool t_inside_send = false;

// Checks each callback against the contract and counts them.
class CallbackChecker {
 public:
  explicit CallbackChecker(int expected) : expected_(expected), calls_(expected) {}

  HttpTransport::Callback For(int index, std::function<void(HttpResult)> then = nullptr) {
    return [this, index, then = std::move(then)](HttpResult result) mutable {
      EXPECT_FALSE(t_inside_send) << "callback ran inside Send() or Cancel()";
      EXPECT_EQ(running_.fetch_add(1), 0) << "two callbacks ran at once";
      // Long enough that an overlapping callback would be caught.
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      EXPECT_EQ(calls_[index].fetch_add(1), 0) << "callback " << index << " ran twice";
      running_.fetch_sub(1);
      if (then) then(std::move(result));
      absl::MutexLock lock(&mu_);
      results_.push_back(std::move(result));
      if (static_cast<int>(results_.size()) == expected_) all_done_.Notify();
    };
  }

  bool WaitAll() { return all_done_.WaitForNotificationWithTimeout(absl::Seconds(30)); }

  std::vector<HttpResult> results() {
    absl::MutexLock lock(&mu_);
    return results_;
  }

 private:
  const int expected_;
  std::vector<std::atomic<int>> calls_;
  std::atomic<int> running_{0};
  absl::Mutex mu_;
  std::vector<HttpResult> results_ ABSL_GUARDED_BY(mu_);
  absl::Notification all_done_;
};

HttpTransport::TransferId SendChecked(CurlTransport& transport, HttpRequest request,
                                      HttpTransport::Callback done) {
  t_inside_send = true;
  const HttpTransport::TransferId id = transport.Send(std::move(request), std::move(done));
  t_inside_send = false;
  return id;
}

HttpRequest Get(const std::string& url) {
  HttpRequest request;
  request.method = "GET";
  request.url = url;
  request.timeout = absl::Seconds(20);
  return request;
}

class CurlTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { sim_ = new Simulator(LogDir()); }
  static void TearDownTestSuite() {
    delete sim_;
    sim_ = nullptr;
  }
  // Any path outside the API: the simulator answers 404 at once.
  static std::string Url() { return sim_->base_url() + "/transport-test"; }

  static Simulator* sim_;
};
Simulator* CurlTransportTest::sim_ = nullptr;

TEST_F(CurlTransportTest, OneAtATimeCompletionsRunEachCallbackOnce) {
  CurlTransport transport({});
  constexpr int kCount = 20;
  CallbackChecker checker(kCount);
  for (int i = 0; i < kCount; ++i) {
    absl::Notification done;
    SendChecked(transport, Get(Url()),
                checker.For(i, [&done](const HttpResult&) { done.Notify(); }));
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  ASSERT_TRUE(checker.WaitAll());
  for (const HttpResult& r : checker.results()) {
    EXPECT_EQ(r.failure, TransportFailure::kNone) << r.error;
    EXPECT_EQ(r.response.status, 404);
  }
}

TEST_F(CurlTransportTest, BurstFromManyThreadsRunsEachCallbackOnceAndOneAtATime) {
  CurlTransport transport({});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100;
  CallbackChecker checker(kThreads * kPerThread);
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        SendChecked(transport, Get(Url()), checker.For(t * kPerThread + i));
      }
    });
  }
  for (std::thread& s : senders) s.join();
  ASSERT_TRUE(checker.WaitAll());
  for (const HttpResult& r : checker.results()) {
    EXPECT_EQ(r.failure, TransportFailure::kNone) << r.error;
    EXPECT_EQ(r.response.status, 404);
  }
}

// Retries send from inside a callback, which may be running on the loop thread itself.
TEST_F(CurlTransportTest, CallbackCanSendTheNextRequest) {
  CurlTransport transport({});
  constexpr int kChain = 30;
  CallbackChecker checker(kChain);
  std::function<void(int)> send_next = [&](int i) {
    SendChecked(transport, Get(Url()), checker.For(i, [&send_next, i](const HttpResult&) {
      if (i + 1 < kChain) send_next(i + 1);
    }));
  };
  send_next(0);
  ASSERT_TRUE(checker.WaitAll());
  EXPECT_EQ(checker.results().back().response.status, 404);
}

// A listener whose backlog completes the handshake but which never reads or answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 64);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    url_ = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/never";
  }
  ~SilentListener() { close(fd_); }
  const std::string& url() const { return url_; }

 private:
  int fd_ = -1;
  std::string url_;
};

TEST_F(CurlTransportTest, CancelAndShutdownCompleteTransfersInFlightWithCancelled) {
  SilentListener silent;
  auto transport = std::make_unique<CurlTransport>(CurlTransportOptions{});
  constexpr int kCount = 3;
  CallbackChecker checker(kCount);
  std::vector<HttpTransport::TransferId> ids;
  for (int i = 0; i < kCount; ++i) {
    ids.push_back(SendChecked(*transport, Get(silent.url()), checker.For(i)));
  }
  // Written at once on loopback (the kernel completes the handshake); generous for sanitizers.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  t_inside_send = true;
  transport->Cancel(ids[0]);
  t_inside_send = false;
  for (int i = 0; i < 1000 && checker.results().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(checker.results().size(), 1u);
  transport->Shutdown();  // The other two complete before it returns.
  const std::vector<HttpResult> results = checker.results();
  ASSERT_EQ(results.size(), 3u);
  for (const HttpResult& r : results) {
    EXPECT_EQ(r.failure, TransportFailure::kCancelled);
    EXPECT_TRUE(r.request_sent);
  }
  EXPECT_EQ(results[0].error, "cancelled");
  EXPECT_EQ(results[1].error, "transport stopped");
  EXPECT_FALSE(transport->Running());
  transport.reset();
}

// Answers the first request on its first connection and keeps it alive, then reads the second
// request on that connection and closes it unanswered, as a server that acted and died would;
// every later connection gets its request answered.
class DyingKeepAliveServer {
 public:
  // `refuse_after_death`: the listening socket closes with the first connection, so libcurl's
  // resend on a fresh connection is refused.
  explicit DyingKeepAliveServer(bool refuse_after_death = false)
      : refuse_after_death_(refuse_after_death) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 8);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    url_ = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/once";
    thread_ = std::thread([this] { Serve(); });
  }
  ~DyingKeepAliveServer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  const std::string& url() const { return url_; }
  int requests_seen() const { return requests_.load(); }

 private:
  // Reads one request head (no bodies here); false when the peer closed.
  bool ReadRequest(int conn) {
    std::string head;
    char buffer[1024];
    while (head.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = read(conn, buffer, sizeof buffer);
      if (n <= 0) return false;
      head.append(buffer, static_cast<size_t>(n));
    }
    ++requests_;
    return true;
  }

  static void Answer(int conn) {
    constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ASSERT_EQ(write(conn, kOk, sizeof kOk - 1), static_cast<ssize_t>(sizeof kOk - 1));
  }

  void Serve() {
    for (int connection = 0;; ++connection) {
      const int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) return;
      if (ReadRequest(conn)) Answer(conn);
      if (connection == 0) {
        if (refuse_after_death_) shutdown(fd_, SHUT_RDWR);
        ReadRequest(conn);  // The second request dies with the connection.
      }
      close(conn);
      if (connection == 0 && refuse_after_death_) return;
    }
  }

  const bool refuse_after_death_;
  int fd_ = -1;
  std::string url_;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// Two DELETEs one after the other, so the second can go on the first's kept connection.
std::vector<HttpResult> TwoDeletesInARow(const std::string& url) {
  CurlTransport transport({});
  std::vector<HttpResult> results;
  for (int i = 0; i < 2; ++i) {
    absl::Notification done;
    HttpRequest request = Get(url);
    request.method = "DELETE";
    transport.Send(std::move(request), [&](HttpResult result) {
      results.push_back(std::move(result));
      done.Notify();
    });
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(10))) break;
  }
  return results;
}

// libcurl resends a request by itself when a reused connection dies unanswered, for every
// method; the result must say so, because the first send may have been acted on.
TEST_F(CurlTransportTest, ResendOnAFreshConnectionIsCounted) {
  DyingKeepAliveServer server;
  const std::vector<HttpResult> results = TwoDeletesInARow(server.url());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].response.status, 200);
  EXPECT_EQ(results[0].sends, 1);
  EXPECT_EQ(results[1].failure, TransportFailure::kNone) << results[1].error;
  EXPECT_EQ(results[1].response.status, 200);
  EXPECT_EQ(results[1].sends, 2) << "the resend on a fresh connection went uncounted";
  EXPECT_EQ(server.requests_seen(), 3);
}

// The same, but libcurl's resend cannot connect: a connect failure that still sent once.
TEST_F(CurlTransportTest, ResendThatCannotConnectStillSaysTheRequestWasSent) {
  DyingKeepAliveServer server(/*refuse_after_death=*/true);
  const std::vector<HttpResult> results = TwoDeletesInARow(server.url());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].response.status, 200);
  EXPECT_EQ(results[1].failure, TransportFailure::kConnect) << results[1].error;
  EXPECT_EQ(results[1].sends, 1);
  EXPECT_TRUE(results[1].request_sent) << "a send on the dead connection was forgotten";
  EXPECT_EQ(server.requests_seen(), 2);
}

}  // namespace
}  // namespace gateway
