// MetricsHttpServer runs real threads on loopback sockets. Every client read is bounded by a
// receive timeout; idle timeouts are either long (never reached during the test) or short and
// only awaited. A server that blocks where it must not makes a read time out.
#include "metrics/metrics_http_server.h"

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/http_server.h"
#include "metrics/metrics.h"
#include "unit/http_test_client.h"

namespace gateway {
namespace {

using ::gateway::testing::Fetch;
using ::gateway::testing::HttpReplyText;
using ::gateway::testing::kGenerousTimeout;
using ::gateway::testing::TestClient;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr absl::string_view kScrape = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

HttpReplyText GetMetrics(int port, const std::string& host = "127.0.0.1") {
  return Fetch(port, kScrape, host);
}

class MetricsHttpServerTest : public ::testing::Test {
 protected:
  MetricsHttpServerTest() {
    prometheus::BuildCounter()
        .Name("requests_total")
        .Help("Requests.")
        .Register(registry_.registry())
        .Add({{"code", "OK"}})
        .Increment(7);
    prometheus::BuildGauge()
        .Name("temperature")
        .Help("A \"gauge\".")
        .Register(registry_.registry())
        .Add({})
        .Set(21.5);
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

  // Enough series that a response outlasts the socket buffers of a client that does not read.
  void AddManySeries() {
    auto& many = prometheus::BuildGauge().Name("many").Register(registry_.registry());
    for (int i = 0; i < 20000; ++i) many.Add({{"i", absl::StrCat("series-number-", i)}}).Set(i);
  }

  MetricsRegistry registry_;
};

TEST_F(MetricsHttpServerTest, ServesRegistryOnMetricsPath) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  const HttpReplyText response = GetMetrics(server->port());
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(response.Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response.Header("content-length"), std::to_string(response.body.size()));
  EXPECT_EQ(response.body, registry_.Serialize());
  EXPECT_THAT(response.body, HasSubstr("requests_total{code=\"OK\"} 7\n"));
}

TEST_F(MetricsHttpServerTest, KeepsTheConnectionForTheNextScrape) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.Send(kScrape));
    EXPECT_EQ(client.ReadResponse().body, registry_.Serialize()) << i;
  }
}

TEST_F(MetricsHttpServerTest, HeadHasHeadersButNoBody) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send("HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string raw = client.ReadToEnd();
  EXPECT_THAT(raw, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(raw, HasSubstr(absl::StrCat("Content-Length: ", registry_.Serialize().size())));
  EXPECT_TRUE(absl::EndsWith(raw, "\r\n\r\n")) << "no body after the head: " << raw;
}

TEST_F(MetricsHttpServerTest, IgnoresQueryStringAndAcceptsHttp10) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Fetch(server->port(), "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").status_line,
            "HTTP/1.1 200 OK");
  // An HTTP/1.0 request needs no Host.
  EXPECT_THAT(Fetch(server->port(), "GET /metrics HTTP/1.0\r\n\r\n").status_line,
              HasSubstr(" 200 OK"));
}

TEST_F(MetricsHttpServerTest, OtherPathsAreNotFound) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  for (const char* path : {"/", "/metricsx", "/metrics/", "/favicon.ico"}) {
    const HttpReplyText response =
        Fetch(server->port(), absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(response.status_line, "HTTP/1.1 404 Not Found") << path;
    EXPECT_EQ(response.Header("content-length"), std::to_string(response.body.size()));
    EXPECT_THAT(response.body, Not(HasSubstr(path))) << "the path is not echoed";
  }
}

TEST_F(MetricsHttpServerTest, OtherMethodsAreNotAllowed) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "get"}) {
    const HttpReplyText response =
        Fetch(server->port(),
              absl::StrCat(method, " /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
    EXPECT_EQ(response.status_line, "HTTP/1.1 405 Method Not Allowed") << method;
    EXPECT_EQ(response.Header("allow"), "GET, HEAD");
  }
}

// Refused means a 400 or a close, and promptly: well before the 10 s idle timeout.
void ExpectRefusedPromptly(int port, const std::string& request) {
  TestClient client(port, absl::Seconds(5));
  ASSERT_TRUE(client.Send(request));
  const std::string raw = client.ReadToEnd();
  EXPECT_THAT(raw, Not(HasSubstr(" 200 OK"))) << absl::CEscape(request);
  EXPECT_THAT(raw, Not(HasSubstr("<timeout>"))) << absl::CEscape(request);
  if (!raw.empty()) {
    EXPECT_THAT(raw, StartsWith("HTTP/1.1 4")) << absl::CEscape(request);
  }
}

TEST_F(MetricsHttpServerTest, MalformedRequestsAreRejected) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  for (const char* request : {"hello\r\n\r\n", "GET /metrics FTP/1.0\r\nHost: x\r\n\r\n",
                              "GET /metrics HTTP/1.1\r\n\r\n" /* no Host */}) {
    ExpectRefusedPromptly(server->port(), request);
  }
}

TEST_F(MetricsHttpServerTest, OversizedHeadersAreRejected) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  const std::string big(9000, 'a');
  // Unterminated: the server must not wait for the end.
  TestClient unterminated(server->port(), absl::Seconds(5));
  ASSERT_TRUE(unterminated.Send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + big));
  EXPECT_THAT(unterminated.ReadToEnd(), StartsWith("HTTP/1.1 431 "));
  // Complete.
  ExpectRefusedPromptly(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + big +
                                            "\r\n\r\n" + std::string(100000, 'b'));
  // A large head under the limit is fine.
  EXPECT_EQ(Fetch(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                      std::string(7000, 'c') + "\r\n\r\n")
                .status_line,
            "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpServerTest, OversizedBodyIsRefusedUnread) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  ASSERT_TRUE(client.Send("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" +
                          std::string(100000, 'b')));
  EXPECT_THAT(client.ReadToEnd(), StartsWith("HTTP/1.1 413 "));
}

TEST_F(MetricsHttpServerTest, RequestArrivingByteByByteIsServed) {
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);
  TestClient client(server->port());
  for (char c : kScrape) ASSERT_TRUE(client.Send(std::string(1, c)));
  EXPECT_EQ(client.ReadResponse().body, registry_.Serialize());
}

// The regression this server was rebuilt for: with the poll() server of our own, the 65th and
// later connections waited in the listen backlog until the first 64 timed out (10 s), so a scrape
// behind 1,000 half-sent requests timed out. The idle timeout stays at its default (10 s), longer
// than the 2 s the scrape is given, so the held connections are still open when it is answered.
// 2 s is not a performance goal: it only tells "answered" from "answered once the others time
// out".
TEST_F(MetricsHttpServerTest, ScrapeIsAnsweredWhileAThousandClientsHoldHalfARequest) {
  constexpr int kHalfOpen = 1000;
  constexpr int kSilent = 100;
  // The soft limit goes up to the hard one first; only a hard limit too low skips the test.
  absl::StatusOr<size_t> descriptors = RaiseFileDescriptorLimit();
  ASSERT_TRUE(descriptors.ok()) << descriptors.status();
  // Both ends of every connection are in this process, and the server keeps half the limit.
  constexpr size_t kNeeded = 4 * (kHalfOpen + kSilent) + 256;
  if (*descriptors < kNeeded) {
    GTEST_SKIP() << "needs " << kNeeded << " open files, but the RLIMIT_NOFILE hard limit is "
                 << *descriptors << "; raise the hard limit to run it";
  }
  std::unique_ptr<MetricsHttpServer> server = StartServer();
  ASSERT_NE(server, nullptr);

  std::vector<std::unique_ptr<TestClient>> held;
  held.reserve(kHalfOpen + kSilent);
  for (int i = 0; i < kHalfOpen; ++i) {
    held.push_back(std::make_unique<TestClient>(server->port()));
    ASSERT_TRUE(held.back()->connected()) << i;
    ASSERT_TRUE(held.back()->Send("GET /metrics HTTP/1.1\r\nHost: x\r\n")) << i;
  }
  for (int i = 0; i < kSilent; ++i) {
    held.push_back(std::make_unique<TestClient>(server->port()));
    ASSERT_TRUE(held.back()->connected()) << i;
  }

  const absl::Time start = absl::Now();
  TestClient scrape(server->port(), absl::Seconds(2));
  ASSERT_TRUE(scrape.connected());
  ASSERT_TRUE(scrape.Send(kScrape));
  const HttpReplyText response = scrape.ReadResponse();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK") << "after " << took;
  EXPECT_EQ(response.body, registry_.Serialize());
  RecordProperty("scrape_ms", static_cast<int>(absl::ToInt64Milliseconds(took)));

  // The held connections were open all along: one of them can still finish its request.
  ASSERT_TRUE(held.front()->Send("\r\n"));
  EXPECT_EQ(held.front()->ReadResponse().status_line, "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpServerTest, SlowAndNonReadingClientsDoNotBlockOtherScrapes) {
  AddManySeries();
  std::unique_ptr<MetricsHttpServer> server = StartServer(LongIdleTimeout());
  ASSERT_NE(server, nullptr);
  TestClient silent(server->port());
  TestClient partial(server->port());
  ASSERT_TRUE(silent.connected());
  ASSERT_TRUE(partial.Send("GET /metr"));
  // A client that asks for the body and never reads it.
  TestClient not_reading(server->port());
  ASSERT_TRUE(not_reading.Send(kScrape));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(GetMetrics(server->port()).body, registry_.Serialize());
  }
}

TEST_F(MetricsHttpServerTest, IdleClientIsDisconnected) {
  MetricsHttpServer::Options options;
  options.idle_timeout = absl::Seconds(1);
  std::unique_ptr<MetricsHttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  TestClient silent(server->port());
  TestClient trickling(server->port());
  ASSERT_TRUE(trickling.Send("GET /"));
  EXPECT_EQ(silent.ReadToEnd(), "");  // Closed by the server, not the receive timeout.
  EXPECT_EQ(trickling.ReadToEnd(), "");
}

TEST_F(MetricsHttpServerTest, ClientsBeyondTheLimitWaitForAFreeSlot) {
  MetricsHttpServer::Options options;
  options.max_connections = 1;
  options.idle_timeout = absl::Seconds(1);
  std::unique_ptr<MetricsHttpServer> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  TestClient silent(server->port());
  ASSERT_TRUE(silent.connected());
  // Served once the silent client's slot is reclaimed.
  EXPECT_EQ(GetMetrics(server->port()).status_line, "HTTP/1.1 200 OK");
}

TEST_F(MetricsHttpServerTest, SurvivesGarbageResetsAndAbandonedResponses) {
  AddManySeries();
  std::unique_ptr<MetricsHttpServer> server = StartServer(LongIdleTimeout());
  ASSERT_NE(server, nullptr);
  // libmicrohttpd reads lines with NULs as blank ones, so this client is idle, not answered.
  TestClient binary(server->port(), absl::Seconds(1));
  static constexpr char kGarbage[] = "\0\xff\x01GET\r\n\0\0\r\n\r\n";
  binary.Send(absl::string_view(kGarbage, sizeof(kGarbage) - 1));
  EXPECT_THAT(binary.ReadToEnd(), Not(HasSubstr(" 200 OK")));
  ExpectRefusedPromptly(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n");
  for (int i = 0; i < 3; ++i) {
    TestClient reset(server->port());
    reset.Send("GET /met");
    reset.Reset();
  }
  for (int i = 0; i < 3; ++i) {
    // The server is mid-response when the reset arrives: only this connection may suffer.
    TestClient abandoning(server->port());
    abandoning.Send(kScrape);
    abandoning.Reset();
  }
  const HttpReplyText response = GetMetrics(server->port());
  EXPECT_EQ(response.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(response.body, registry_.Serialize());
}

TEST_F(MetricsHttpServerTest, DestructorReturnsPromptlyAndClosesConnections) {
  std::unique_ptr<MetricsHttpServer> server = StartServer(LongIdleTimeout());
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  TestClient silent(port);
  TestClient partial(port);
  ASSERT_TRUE(partial.Send("GET /"));
  ASSERT_EQ(GetMetrics(port).status_line, "HTTP/1.1 200 OK");  // The thread is running.
  auto destroyed = std::async(std::launch::async, [&server] { server.reset(); });
  ASSERT_EQ(destroyed.wait_for(absl::ToChronoSeconds(kGenerousTimeout)), std::future_status::ready);
  EXPECT_EQ(silent.ReadToEnd(), "");
  EXPECT_EQ(partial.ReadToEnd(), "");
  EXPECT_FALSE(TestClient(port).connected());
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
