// An HTTP/1.1 server for traffic that is not trusted (the Prometheus scrape port, the public
// Twilio webhook receiver), on libmicrohttpd. Requests are handed whole to one callback.
//
// Usage:
//   absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(
//       "0.0.0.0:9090", [](const HttpServer::Request& request) {
//         return HttpServer::Response{.status = 200, .body = "hello\n"};
//       });
//   if (!server.ok()) return server.status();
//
// Why libmicrohttpd in this mode: one epoll thread (or a small pool) serves every connection, so
// a connection waiting for the rest of its request costs a little memory and a descriptor, never
// a thread. A thread-per-connection server (civetweb, prometheus-cpp's Exposer) stops answering
// once its threads all wait on clients that send half a request.
//
// What bounds a client:
//   - the request line and headers: at most max_header_bytes, less a few hundred bytes the
//     library keeps in the same per-connection pool. Beyond it the library answers 431 while the
//     head is still arriving, or closes the connection when a complete head does not fit;
//   - the body: at most max_body_bytes. A larger Content-Length is answered 413 before any of
//     it is read; a chunked body that grows past the limit has its connection closed (the
//     library allows no response in the middle of a body);
//   - time: a connection silent for connection_timeout is closed. The timeout is reset by every
//     byte, so a client trickling a request holds its slot longer: that is what the connection
//     limit is for;
//   - connections: at most max_connections at once (beyond it, new ones wait in the listen
//     backlog), and optionally max_connections_per_ip (rejected at once beyond it). Leave the
//     per-IP limit off behind a load balancer, where every client has the balancer's address.
// Malformed requests get 400 or a closed connection from the library (an HTTP/1.1 request
// without Host is malformed); blank lines before a request line are skipped, as RFC 9112 asks,
// so a client sending only those is idle and times out.
// Error bodies are fixed text: nothing a client sent is echoed.
//
// Thread-safety: Start(), Stop() and the destructor may be called from any thread except the
// handler's. The handler runs on the server's threads (one unless `threads` says more), so it
// must be safe to call concurrently when threads > 1, and it should not block: a slow handler
// delays every connection of its thread (an AsyncHandler answers later instead).
#ifndef GATEWAY_HTTP_HTTP_SERVER_H_
#define GATEWAY_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct MHD_Daemon;

namespace gateway {

class HttpServer {
 public:
  struct Request {
    std::string method;  // As sent: methods are case-sensitive.
    std::string path;    // Decoded, without the query string.
    std::string query;   // After the first '?', exactly as sent (not decoded); may be empty.
    std::vector<std::pair<std::string, std::string>> headers;  // In arrival order.
    std::string body;

    // The first header of that name, compared without case.
    std::optional<absl::string_view> Header(absl::string_view name) const;
  };

  struct Response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    // Added as they are, after Content-Type (e.g. {"Allow", "GET, HEAD"}).
    std::vector<std::pair<std::string, std::string>> headers = {};
  };

  using Handler = std::function<Response(const Request&)>;
  // Answers one request, exactly once, from any thread, now or later.
  using Respond = absl::AnyInvocable<void(Response) &&>;
  // A handler that may answer later (after a store's round trip, say) without holding a server
  // thread: the connection is suspended until `respond` runs, and its thread serves the others.
  using AsyncHandler = std::function<void(const Request&, Respond respond)>;

  struct Options {
    // Inactivity before a connection is closed; whole seconds (rounded up), at least 1.
    absl::Duration connection_timeout = absl::Seconds(10);
    // 0: the smaller of 4096 and half the soft RLIMIT_NOFILE. Larger values are lowered to that
    // half too: the other half stays for the rest of the process (gRPC callers, Twilio, Redis,
    // files), so a flood of HTTP clients cannot starve it of descriptors.
    int max_connections = 0;
    // 0: no per-address limit.
    int max_connections_per_ip = 0;
    // Request line and headers (see above), at least 1024.
    size_t max_header_bytes = 8192;
    size_t max_body_bytes = 64 * 1024;
    // Threads that poll connections and run the handler.
    int threads = 1;
  };

  // `address` is "host:port" with an IPv6 host in brackets ("[::1]:9090"); the host may be a
  // name ("localhost:0") or empty for all interfaces (":9090"). Port 0 picks a free port; see
  // port(). When the host resolves to several addresses the first that binds is used.
  // Errors: InvalidArgument for an address that does not parse or resolve, Unavailable when the
  // socket cannot be bound (port taken, address not local) or the server cannot start; the
  // message names the address.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address,
                                                           Handler handler);
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address,
                                                           Handler handler, const Options& options);
  // The same, answering through `respond`. Every request handed over must be answered: Stop()
  // waits for the answers still owed.
  static absl::StatusOr<std::unique_ptr<HttpServer>> StartAsync(const std::string& address,
                                                                AsyncHandler handler,
                                                                const Options& options);

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // Waits for the answers an async handler still owes, then closes the listener and every
  // connection (responses in flight are cut) and joins the threads. Later calls do nothing.
  void Stop();

  // The bound port, also when 0 was asked for.
  int port() const { return port_; }
  // The connection limit in force, after the defaults and the descriptor limit.
  int max_connections() const { return max_connections_; }

 private:
  // libmicrohttpd's callbacks, in http_server.cc.
  friend class HttpServerCallbacks;

  HttpServer(AsyncHandler handler, const Options& options, int port, int max_connections);

  // A suspended connection's answer came: count it, and wake Stop() at the last.
  void AnswerArrived();

  const AsyncHandler handler_;
  const Options options_;
  const int port_;
  const int max_connections_;
  absl::Mutex mu_;
  MHD_Daemon* daemon_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Mutex owed_mu_;
  int owed_ ABSL_GUARDED_BY(owed_mu_) = 0;  // Suspended connections awaiting their answer.
};

// Raises the soft RLIMIT_NOFILE to the hard limit and returns the soft limit now in force. The
// soft default (often 1024) dates from select()'s FD_SETSIZE; this process polls with epoll and
// poll() only, and a scrape or webhook port that should hold thousands of idle connections
// needs the descriptors.
absl::StatusOr<size_t> RaiseFileDescriptorLimit();

}  // namespace gateway

#endif  // GATEWAY_HTTP_HTTP_SERVER_H_
