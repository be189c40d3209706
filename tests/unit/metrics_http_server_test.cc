// MetricsHttpServer runs a real thread on loopback sockets, so these are smoke tests in the style
// of timer_thread_test.cc: every client read is bounded by a generous receive timeout, idle
// timeouts are either long (never reached during the test) or short and only awaited, and
// nothing asserts on durations. A server that blocks where it must not makes a read time out.
#include "metrics/metrics_http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/metrics.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kGenerousTimeoutSeconds = 30;

// A blocking client socket whose reads give up after kGenerousTimeoutSeconds.
class Client {
 public:
  // Tries each address of `host` (so "localhost" works whichever family the server bound).
  Client(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* results = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &results) != 0) return;
    for (const addrinfo* ai = results; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
      fd_ = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd_ < 0) continue;
      timeval timeout{kGenerousTimeoutSeconds, 0};
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
      if (connect(fd_, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd_);
        fd_ = -1;
      }
    }
    freeaddrinfo(results);
  }
  explicit Client(int port) : Client("127.0.0.1", port) {}
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { Close(); }

  bool connected() const { return fd_ >= 0; }

  bool Send(absl::string_view data) {
    while (!data.empty()) {
      const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Everything until the server closes; "<timeout>" or "<error>" appended if it did not.
  std::string ReadToEnd() {
    std::string data;
    char buffer[4096];
    while (true) {
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n == 0) return data;
      if (n < 0) return data + (errno == EAGAIN ? "<timeout>" : "<error>");
      data.append(buffer, static_cast<size_t>(n));
    }
  }

  // Closes with a reset instead of a FIN, as a crashed client would.
  void Reset() {
    linger option{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
    Close();
  }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct HttpResponse {
  std::string status_line;
  std::map<std::string, std::string> headers;  // Names lower-cased.
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "<missing>" : it->second;
  }
};

HttpResponse ParseResponse(const std::string& raw) {
  HttpResponse response;
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    response.status_line = "<unparsable> " + raw;
    return response;
  }
  std::vector<std::string> lines = absl::StrSplit(raw.substr(0, head_end), "\r\n");
  response.status_line = lines[0];
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    response.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  response.body = raw.substr(head_end + 4);
  return response;
}

HttpResponse Fetch(int port, absl::string_view request, const std::string& host = "127.0.0.1") {
  Client client(host, port);
  if (!client.connected()) return {"<cannot connect>", {}, ""};
  client.Send(request);
  return ParseResponse(client.ReadToEnd());
}

HttpResponse GetMetrics(int port, const std::string& host = "127.0.0.1") {
  return Fetch(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", host);
}

class MetricsHttpServerTest : public ::testing::Test {
 protected:
  MetricsHttpServerTest() {
    registry_.AddCounter("requests_total", "Requests.", {"code"}).WithLabels({"OK"}).Increment(7);
    registry_.AddGauge("temperature", "A \"gauge\".").WithLabels({}).Set(21.5);
  }

  std::unique_ptr<MetricsHttpServer> StartServer(
      const MetricsHttpServer::Options& options = MetricsHttpServer::Options()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
        MetricsHttpServer::Start("127.0.0.1:0", registry_, options);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static MetricsHttpServer::Options LongIdleTimeout() {
    MetricsHttpServer::Options options;
    options.idle_timeout = absl::Hours(1);
    return options;
  }

  MetricsRegistry registry_;
};

TEST_F(MetricsHttpServerTest, ServesRegistryOnMetricsPath) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  const HttpResponse response = GetMetrics(server->port());
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(response.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response.Header("content-length"), std::to_string(response.body.size()));
  EXPECT_EQ(response.Header("connection"), "close");
  EXPECT_EQ(response.body, registry_.Serialize());
  EXPECT_THAT(response.body, HasSubstr("requests_total{code=\"OK\"} 7\n"));
}

TEST_F(MetricsHttpServerTest, HeadHasHeadersButNoBody) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const HttpResponse response = Fetch(server->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(response.Header("content-length"), std::to_string(registry_.Serialize().size()));
  EXPECT_EQ(response.body, "");
}

TEST_F(MetricsHttpServerTest, IgnoresQueryStringAndAcceptsHttp10AndBareLineFeeds) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Fetch(server->port(), "GET /metrics?x=1 HTTP/1.1\r\n\r\n").status_line,
            "HTTP/1.1 200 OK");
  EXPECT_EQ(Fetch(server->port(), "\r\nGET /metrics HTTP/1.0\n\n").status_line, "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpServerTest, OtherPathsAreNotFound) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  for (const char* path : {"/", "/metricsx", "/metrics/", "/favicon.ico", "*"}) {
    const HttpResponse response =
        Fetch(server->port(), absl::StrCat("GET ", path, " HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(response.status_line, "HTTP/1.1 404 Not Found") << path;
    EXPECT_EQ(response.Header("content-length"), std::to_string(response.body.size()));
  }
}

TEST_F(MetricsHttpServerTest, OtherMethodsAreNotAllowed) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
    const HttpResponse response = Fetch(
        server->port(), absl::StrCat(method, " /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
    EXPECT_EQ(response.status_line, "HTTP/1.1 405 Method Not Allowed") << method;
    EXPECT_EQ(response.Header("allow"), "GET, HEAD");
  }
}

TEST_F(MetricsHttpServerTest, MalformedRequestsAreRejected) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  for (const char* request :
       {"hello\r\n\r\n", "GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics FTP/1.0\r\n\r\n", "G(T /metrics HTTP/1.1\r\n\r\n", "\r\n\r\n"}) {
    EXPECT_EQ(Fetch(server->port(), request).status_line, "HTTP/1.1 400 Bad Request")
        << absl::CEscape(request);
  }
  EXPECT_EQ(Fetch(server->port(), "GET /metrics HTTP/2.0\r\n\r\n").status_line,
            "HTTP/1.1 505 HTTP Version Not Supported");
}

TEST_F(MetricsHttpServerTest, OversizedHeadersAreRejected) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string big(9000, 'a');
  // Unterminated: the server must not wait for the end.
  Client unterminated(server->port());
  ASSERT_TRUE(unterminated.Send("GET /metrics HTTP/1.1\r\nX-Big: " + big));
  EXPECT_THAT(unterminated.ReadToEnd(), StartsWith("HTTP/1.1 431 Request Header Fields Too Large"));
  // Complete, with more sent after it than the server reads.
  const HttpResponse response = Fetch(server->port(), "GET /metrics HTTP/1.1\r\nX-Big: " + big +
                                                          "\r\n\r\n" + std::string(100000, 'b'));
  EXPECT_EQ(response.status_line, "HTTP/1.1 431 Request Header Fields Too Large");
  // Just under the limit is fine.
  const std::string head = "GET /metrics HTTP/1.1\r\nX-Big: ";
  const std::string fits(size_t{8192} - head.size() - 4, 'c');
  EXPECT_EQ(Fetch(server->port(), head + fits + "\r\n\r\n").status_line, "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpServerTest, RequestArrivingByteByByteIsServed) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  for (char c : std::string("GET /metrics HTTP/1.1\r\n\r\n")) {
    ASSERT_TRUE(client.Send(std::string(1, c)));
  }
  EXPECT_EQ(ParseResponse(client.ReadToEnd()).body, registry_.Serialize());
}

TEST_F(MetricsHttpServerTest, SilentAndSlowClientsDoNotBlockOtherScrapes) {
  // Idle clients are never timed out here: a scrape gets through only because it is not queued
  // behind them. The body is larger than socket buffers, so the client that does not read its
  // response leaves the server with a write it cannot finish.
  GaugeFamily& many = registry_.AddGauge("many", "", {"i"});
  for (int i = 0; i < 20000; ++i) many.WithLabels({absl::StrCat("series-number-", i)}).Set(i);
  std::unique_ptr<MetricsHttpServer> server = StartServer(LongIdleTimeout());
  ASSERT_NE(server, nullptr);
  Client silent(server->port());
  Client partial(server->port());
  ASSERT_TRUE(silent.connected());
  ASSERT_TRUE(partial.Send("GET /metr"));
  // A client that asks for the body and never reads it.
  Client not_reading(server->port());
  ASSERT_TRUE(not_reading.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(GetMetrics(server->port()).body, registry_.Serialize());
  }
}

TEST_F(MetricsHttpServerTest, IdleClientIsDisconnected) {
  MetricsHttpServer::Options options;
  options.idle_timeout = absl::Milliseconds(50);
  std::unique_ptr<MetricsHttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  Client silent(server->port());
  EXPECT_EQ(silent.ReadToEnd(), "");  // Closed by the server, not the receive timeout.
  Client trickling(server->port());
  ASSERT_TRUE(trickling.Send("GET /"));
  EXPECT_EQ(trickling.ReadToEnd(), "");
}

TEST_F(MetricsHttpServerTest, ClientsBeyondTheLimitWaitForAFreeSlot) {
  MetricsHttpServer::Options options;
  options.max_connections = 1;
  options.idle_timeout = absl::Milliseconds(50);
  std::unique_ptr<MetricsHttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  Client silent(server->port());
  ASSERT_TRUE(silent.connected());
  // Served once the silent client's slot is reclaimed.
  EXPECT_EQ(GetMetrics(server->port()).status_line, "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpServerTest, SurvivesGarbageResetsAndAbandonedResponses) {
  // Enough series that the response outlasts the socket buffers of a client that goes away.
  GaugeFamily& many = registry_.AddGauge("many", "", {"i"});
  for (int i = 0; i < 20000; ++i) many.WithLabels({absl::StrCat("series-number-", i)}).Set(i);
  std::unique_ptr<MetricsHttpServer> server = StartServer(LongIdleTimeout());
  ASSERT_NE(server, nullptr);
  {
    Client binary(server->port());
    static constexpr char kGarbage[] = "\0\xff\x01GET\r\n\0\0\r\n\r\n";
    binary.Send(absl::string_view(kGarbage, sizeof(kGarbage) - 1));
    EXPECT_THAT(binary.ReadToEnd(), StartsWith("HTTP/1.1 400 "));
  }
  for (int i = 0; i < 3; ++i) {
    Client reset(server->port());
    reset.Send("GET /met");
    reset.Reset();
  }
  for (int i = 0; i < 3; ++i) {
    // The server is mid-response when the reset arrives: only this connection may suffer.
    Client abandoning(server->port());
    abandoning.Send("GET /metrics HTTP/1.1\r\n\r\n");
    abandoning.Reset();
  }
  const HttpResponse response = GetMetrics(server->port());
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(response.body, registry_.Serialize());
}

TEST_F(MetricsHttpServerTest, DestructorReturnsPromptlyAndClosesConnections) {
  std::unique_ptr<MetricsHttpServer> server = StartServer(LongIdleTimeout());
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  Client silent(port);
  Client partial(port);
  ASSERT_TRUE(partial.Send("GET /"));
  ASSERT_EQ(GetMetrics(port).status_line, "HTTP/1.1 200 OK");  // The thread is running.
  auto destroyed = std::async(std::launch::async, [&server] { server.reset(); });
  ASSERT_EQ(destroyed.wait_for(std::chrono::seconds(kGenerousTimeoutSeconds)),
            std::future_status::ready);
  EXPECT_EQ(silent.ReadToEnd(), "");
  EXPECT_EQ(partial.ReadToEnd(), "");
  EXPECT_FALSE(Client(port).connected());
}

TEST_F(MetricsHttpServerTest, AcceptsAddressForms) {
  for (const char* address : {"127.0.0.1:0", "0.0.0.0:0", "localhost:0", ":0"}) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
        MetricsHttpServer::Start(address, registry_);
    ASSERT_TRUE(server.ok()) << address << ": " << server.status();
    const std::string host = absl::StartsWith(address, "localhost") ? "localhost" : "127.0.0.1";
    EXPECT_EQ(GetMetrics((*server)->port(), host).status_line, "HTTP/1.1 200 OK") << address;
  }
}

TEST_F(MetricsHttpServerTest, AcceptsBracketedIpv6Address) {
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("[::1]:0", registry_);
  if (absl::IsUnavailable(server.status())) GTEST_SKIP() << "no IPv6 loopback: " << server.status();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(GetMetrics((*server)->port(), "::1").status_line, "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpServerTest, PortInUseIsUnavailableAndNamesTheAddress) {
  std::unique_ptr<MetricsHttpServer> first = StartServer();
  ASSERT_NE(first, nullptr);
  const std::string address = absl::StrCat("127.0.0.1:", first->port());
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> second =
      MetricsHttpServer::Start(address, registry_);
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();
  EXPECT_THAT(second.status().message(), HasSubstr(address));
}

TEST_F(MetricsHttpServerTest, MalformedAddressIsInvalidArgumentAndNamesTheAddress) {
  for (const char* address :
       {"", "9090", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1",
        "::1:9090", "[::1:9090", "[::1]9090"}) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
        MetricsHttpServer::Start(address, registry_);
    EXPECT_TRUE(absl::IsInvalidArgument(server.status())) << address << ": " << server.status();
    EXPECT_THAT(server.status().message(), HasSubstr(absl::StrCat("\"", address, "\"")));
  }
}

TEST_F(MetricsHttpServerTest, AddressThatIsNotLocalIsUnavailable) {
  // TEST-NET-1 (RFC 5737) is never assigned to a local interface.
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("192.0.2.1:0", registry_);
  EXPECT_TRUE(absl::IsUnavailable(server.status())) << server.status();
  EXPECT_THAT(server.status().message(), HasSubstr("192.0.2.1:0"));
}

}  // namespace
}  // namespace gateway
