// The Prometheus scrape endpoint: GET /metrics (and HEAD) answered with
// MetricsRegistry::Serialize(), on an HttpServer (http/http_server.h) of its own, so that
// scraping never takes a reactor thread from RPCs and a flood of idle or half-sent connections
// to the scrape port never stops a scrape from being answered.
//
// Usage:
//   absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
//       MetricsHttpServer::Start("0.0.0.0:9090", registry);
//   if (!server.ok()) return server.status();
//
// Behaviour: GET or HEAD /metrics (any query string) → 200 with
// `text/plain; version=0.0.4; charset=utf-8`; another path → 404; another method → 405 with
// `Allow: GET, HEAD`. Connections are kept alive between scrapes. Malformed requests, oversized
// heads and idle connections are handled by HttpServer (400, 431, closed after idle_timeout).
//
// Thread-safety: Start() and the destructor may be called from any thread; port() is constant.
// The registry must outlive the server; Serialize() and any callback gauges run on the server's
// thread.
#ifndef GATEWAY_METRICS_METRICS_HTTP_SERVER_H_
#define GATEWAY_METRICS_METRICS_HTTP_SERVER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "http/http_server.h"
#include "metrics/metrics.h"

namespace gateway {

class MetricsHttpServer {
 public:
  struct Options {
    // Whole seconds, at least one (see HttpServer::Options::connection_timeout).
    absl::Duration idle_timeout = absl::Seconds(10);
    // 0: HttpServer's default (4096, and at most half the descriptor limit).
    int max_connections = 0;
    // Request line and headers.
    size_t max_request_header_bytes = 8192;
  };

  // `address` as for HttpServer::Start(); errors too, with the message naming the address.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  const MetricsRegistry& registry);
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address,
                                                                  const MetricsRegistry& registry,
                                                                  const Options& options);

  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;
  // Closes every connection (responses in flight are cut) and joins the server's thread.
  ~MetricsHttpServer() = default;

  // The bound port, also when 0 was asked for.
  int port() const { return server_->port(); }

 private:
  explicit MetricsHttpServer(std::unique_ptr<HttpServer> server) : server_(std::move(server)) {}

  const std::unique_ptr<HttpServer> server_;
};

}  // namespace gateway

#endif  // GATEWAY_METRICS_METRICS_HTTP_SERVER_H_
