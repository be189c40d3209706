#include "metrics/metrics_http_server.h"

#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"

namespace gateway {
namespace {

// A scrape is a GET: a body has no use, so the smallest limit that still accepts an empty one.
constexpr size_t kMaxBodyBytes = 1024;

HttpServer::Response Respond(const MetricsRegistry& registry, const HttpServer::Request& request) {
  if (request.method != "GET" && request.method != "HEAD") {
    return {.status = 405, .body = "405 Method Not Allowed\n", .headers = {{"Allow", "GET, HEAD"}}};
  }
  if (request.path != "/metrics") return {.status = 404, .body = "404 Not Found\n"};
  // The body of a HEAD is dropped by the server, after its length went into Content-Length.
  return {.status = 200,
          .content_type = "text/plain; version=0.0.4; charset=utf-8",
          .body = registry.Serialize()};
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, const MetricsRegistry& registry) {
  return Start(address, registry, Options());
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, const MetricsRegistry& registry, const Options& options) {
  absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(
      address,
      [&registry](const HttpServer::Request& request) { return Respond(registry, request); },
      {.connection_timeout = options.idle_timeout,
       .max_connections = options.max_connections,
       .max_header_bytes = options.max_request_header_bytes,
       .max_body_bytes = kMaxBodyBytes});
  if (!server.ok()) {
    return absl::Status(server.status().code(),
                        absl::StrCat("metrics: ", server.status().message()));
  }
  return absl::WrapUnique(new MetricsHttpServer(*std::move(server)));
}

}  // namespace gateway
