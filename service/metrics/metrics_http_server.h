// The Prometheus scrape endpoint: a minimal HTTP/1.1 server on its own thread that answers
// GET /metrics (and HEAD) with MetricsRegistry::Serialize(). It is kept apart from the gRPC
// port so that scraping never takes a reactor thread from RPCs, and it is poll() on POSIX
// sockets rather than another dependency because it serves one path to one kind of client.
//
// Usage:
//   absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
//       MetricsHttpServer::Start("0.0.0.0:9090", registry);
//   if (!server.ok()) return server.status();
//
// Behaviour: one response per connection (Connection: close). GET or HEAD /metrics → 200 with
// `text/plain; version=0.0.4`; another path → 404; another method → 405; a malformed request →
// 400; request headers over the limit → 431. A connection that has not sent its whole request
// within the idle timeout, or stops reading its response for that long, is closed, so a slow or
// silent client holds one slot at most and never delays another scrape. Beyond the connection
// limit new clients wait in the listen backlog until a slot frees. SIGPIPE is never raised.
//
// Thread-safety: Start() and the destructor may be called from any thread; port() is constant.
// The registry must outlive the server; Serialize() and any callback gauges run on the server's
// thread.
#ifndef GATEWAY_METRICS_METRICS_HTTP_SERVER_H_
#define GATEWAY_METRICS_METRICS_HTTP_SERVER_H_

#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "metrics/metrics.h"

namespace gateway {

class MetricsHttpServer {
 public:
  struct Options {
    // Clamped to [1 ms, 24 h].
    absl::Duration idle_timeout = absl::Seconds(10);
    int max_connections = 64;
    // Request line and headers, up to and including the blank line.
    size_t max_request_header_bytes = 8192;
  };

  // `address` is "host:port" with an IPv6 host in brackets ("[::1]:9090"); the host may be a
  // name ("localhost:0") or empty for all interfaces (":9090"). Port 0 picks a free port; see
  // port(). When the host resolves to several addresses the first that binds is used.
  // Errors: InvalidArgument for an address that does not parse or resolve, Unavailable when the
  // socket cannot be bound (port taken, address not local); the message names the address.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  const MetricsRegistry& registry);
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  const MetricsRegistry& registry,
                                                                  const Options& options);

  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;
  // Wakes the thread, closes every connection (responses in flight are cut) and joins.
  ~MetricsHttpServer();

  // The bound port, also when 0 was asked for.
  int port() const { return port_; }

 private:
  MetricsHttpServer(int listen_fd, int wake_fd, int port, const MetricsRegistry& registry,
                    const Options& options);
  void Run();

  const int listen_fd_;
  // An eventfd: the destructor writes to it to end Run()'s poll().
  const int wake_fd_;
  const int port_;
  const MetricsRegistry& registry_;
  const Options options_;
  std::thread thread_;
};

}  // namespace gateway

#endif  // GATEWAY_METRICS_METRICS_HTTP_SERVER_H_
