#include "http/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
// After the system headers it relies on.
#include <microhttpd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/host_port.h"
#include "common/log.h"

namespace gateway {
namespace {

constexpr int kMaxDefaultConnections = 4096;

absl::Status BadAddress(const std::string& address, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("listen address \"", address, "\": ", why));
}

int BoundPort(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return -1;
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return -1;
}

// Binds and listens ourselves, so that names, brackets and dual-stack binding behave the same
// whatever the library supports; libmicrohttpd takes the socket over.
absl::StatusOr<int> Listen(const std::string& address) {
  absl::StatusOr<HostPort> split = SplitHostPort(address);
  if (!split.ok()) return BadAddress(address, split.status().message());
  const std::string& host = split->host;
  const std::string port = std::to_string(split->port);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* results = nullptr;
  const int resolved =
      getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &results);
  if (resolved != 0) {
    const std::string message =
        absl::StrCat("cannot resolve listen address \"", address,
                     "\": ", resolved == EAI_SYSTEM ? strerror(errno) : gai_strerror(resolved));
    // A resolver that is down may come back; a name that does not exist is a config error.
    return resolved == EAI_AGAIN ? absl::UnavailableError(message)
                                 : absl::InvalidArgumentError(message);
  }
  int last_error = 0;
  int fd = -1;
  for (const addrinfo* ai = results; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = errno;
      continue;
    }
    // A restarted server must not wait out TIME_WAIT connections from its last life.
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6) {
      // "[::]:port" and ":port" should take IPv4 too, whatever the net.ipv6.bindv6only sysctl.
      const int zero = 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      last_error = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(results);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on address \"", address, "\": ", strerror(last_error)));
  }
  return fd;
}

int ConnectionLimit(int asked) {
  int ceiling = kMaxDefaultConnections;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    ceiling = static_cast<int>(std::min<rlim_t>(limit.rlim_cur / 2, 1 << 30));
    if (asked <= 0) ceiling = std::min(ceiling, kMaxDefaultConnections);
  }
  return std::max(1, asked <= 0 ? ceiling : std::min(asked, ceiling));
}

// libmicrohttpd's error log: what it refuses and why (connection limit reached, accept failed).
// Debug level, since a client can cause a line per connection.
void LogFromLibrary(void*, const char* format, va_list args) {
  char line[512];
  vsnprintf(line, sizeof(line), format, args);
  Log(LogLevel::kDebug, "http server",
      {{"detail", std::string(absl::StripTrailingAsciiWhitespace(line))}});
}

MHD_Result CollectHeader(void* request, MHD_ValueKind, const char* name, const char* value) {
  static_cast<HttpServer::Request*>(request)->headers.emplace_back(name,
                                                                   value == nullptr ? "" : value);
  return MHD_YES;
}

MHD_Result Queue(MHD_Connection* connection, const HttpServer::Response& response) {
  MHD_Response* reply = MHD_create_response_from_buffer(
      response.body.size(), const_cast<char*>(response.body.data()), MHD_RESPMEM_MUST_COPY);
  if (reply == nullptr) return MHD_NO;
  MHD_add_response_header(reply, MHD_HTTP_HEADER_CONTENT_TYPE, response.content_type.c_str());
  for (const auto& [name, value] : response.headers) {
    MHD_add_response_header(reply, name.c_str(), value.c_str());
  }
  const MHD_Result queued =
      MHD_queue_response(connection, static_cast<unsigned int>(response.status), reply);
  MHD_destroy_response(reply);
  return queued;
}

HttpServer::Response PayloadTooLarge() {
  return {.status = 413, .body = "413 Content Too Large\n"};
}

}  // namespace

// The request being read, from its request line to its completion.
struct PendingRequest {
  HttpServer::Request request;
  bool headers_read = false;
  bool handed_over = false;  // To the handler, once.
  // The answer, and whether the connection waits for it suspended; set by `respond` on any
  // thread, read by the library's thread after a resume.
  absl::Mutex mu;
  std::optional<HttpServer::Response> response ABSL_GUARDED_BY(mu);
  bool suspended ABSL_GUARDED_BY(mu) = false;
};

class HttpServerCallbacks {
 public:
  static MHD_Result OnRequest(void* cls, MHD_Connection* connection, const char* url,
                              const char* method, const char*, const char* upload_data,
                              size_t* upload_data_size, void** state) {
    HttpServer& server = *static_cast<HttpServer*>(cls);
    auto* pending = static_cast<PendingRequest*>(*state);
    if (pending == nullptr) return MHD_NO;  // OnRequestLine always makes one.
    if (!pending->headers_read) {
      // The headers are in. Refuse a body announced too large before reading it; answering now
      // also keeps the library from sending 100 Continue.
      const char* length =
          MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
      uint64_t announced = 0;
      if (length != nullptr && absl::SimpleAtoi(length, &announced) &&
          announced > server.options_.max_body_bytes) {
        return Queue(connection, PayloadTooLarge());
      }
      pending->headers_read = true;
      pending->request.method = method;
      pending->request.path = url;
      MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectHeader, &pending->request);
      return MHD_YES;
    }
    if (*upload_data_size > 0) {
      std::string& body = pending->request.body;
      if (*upload_data_size > server.options_.max_body_bytes - body.size()) {
        // No response may be queued in the middle of a body: close the connection.
        return MHD_NO;
      }
      body.append(upload_data, *upload_data_size);
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (pending->handed_over) {
      // Resumed: the answer is in.
      absl::MutexLock lock(&pending->mu);
      return pending->response.has_value() ? Queue(connection, *pending->response) : MHD_NO;
    }
    pending->handed_over = true;
    server.handler_(pending->request,
                    [&server, connection, pending](HttpServer::Response response) {
                      absl::MutexLock lock(&pending->mu);
                      pending->response = std::move(response);
                      if (pending->suspended) {
                        // Under the lock, as the suspension was: the library sees suspend, then
                        // resume.
                        MHD_resume_connection(connection);
                        server.AnswerArrived();
                      }
                    });
    absl::MutexLock lock(&pending->mu);
    if (pending->response.has_value()) return Queue(connection, *pending->response);
    // Not answered yet: free this thread for the other connections until it is.
    {
      absl::MutexLock owed(&server.owed_mu_);
      ++server.owed_;
    }
    pending->suspended = true;
    MHD_suspend_connection(connection);
    return MHD_YES;
  }

  // The library's only view of the request target before it decodes the path and splits the
  // query into arguments; a signed URL needs the query as sent. Its result becomes `state`.
  static void* OnRequestLine(void*, const char* uri, MHD_Connection*) {
    auto* pending = new PendingRequest;
    if (const char* query = uri == nullptr ? nullptr : std::strchr(uri, '?')) {
      pending->request.query = query + 1;
    }
    return pending;
  }

  static void OnCompleted(void*, MHD_Connection*, void** state, MHD_RequestTerminationCode) {
    delete static_cast<PendingRequest*>(*state);
    *state = nullptr;
  }
};

std::optional<absl::string_view> HttpServer::Request::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address,
                                                              Handler handler) {
  return Start(address, std::move(handler), Options());
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address,
                                                              Handler handler,
                                                              const Options& options) {
  // A synchronous handler is an async one that answers before it returns.
  return StartAsync(
      address,
      [handler = std::move(handler)](const Request& request, Respond respond) {
        std::move(respond)(handler(request));
      },
      options);
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::StartAsync(const std::string& address,
                                                                   AsyncHandler handler,
                                                                   const Options& options) {
  absl::StatusOr<int> listen_fd = Listen(address);
  if (!listen_fd.ok()) return listen_fd.status();
  const int port = BoundPort(*listen_fd);
  if (port < 0) {
    const int error = errno;
    close(*listen_fd);
    return absl::UnavailableError(
        absl::StrCat("cannot start HTTP server on \"", address, "\": ", strerror(error)));
  }
  const int max_connections = ConnectionLimit(options.max_connections);
  auto server =
      absl::WrapUnique(new HttpServer(std::move(handler), options, port, max_connections));

  const int64_t timeout_seconds = std::max<int64_t>(
      1, absl::ToInt64Seconds(absl::Ceil(options.connection_timeout, absl::Seconds(1))));
  // The per-connection pool holds the request head as it is read; measured with 0.9.75, a head
  // up to the pool size less about 300 bytes of the library's own is accepted.
  const size_t pool_bytes = std::max<size_t>(options.max_header_bytes, 1024);
  const unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_TURBO |
                             MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
  MHD_Daemon* daemon = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &HttpServerCallbacks::OnRequest, server.get(),
      MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(*listen_fd), MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned int>(max_connections), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      static_cast<unsigned int>(std::max(options.max_connections_per_ip, 0)),
      MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned int>(std::min<int64_t>(timeout_seconds, 86400)),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool_bytes, MHD_OPTION_THREAD_POOL_SIZE,
      static_cast<unsigned int>(std::max(options.threads, 1)), MHD_OPTION_STRICT_FOR_CLIENT, 1,
      MHD_OPTION_NOTIFY_COMPLETED, &HttpServerCallbacks::OnCompleted, nullptr,
      MHD_OPTION_URI_LOG_CALLBACK, &HttpServerCallbacks::OnRequestLine, nullptr,
      MHD_OPTION_EXTERNAL_LOGGER, &LogFromLibrary, nullptr, MHD_OPTION_END);
  if (daemon == nullptr) {
    close(*listen_fd);
    return absl::UnavailableError(
        absl::StrCat("cannot start HTTP server on \"", address, "\": libmicrohttpd refused"));
  }
  absl::MutexLock lock(&server->mu_);
  server->daemon_ = daemon;
  return server;
}

HttpServer::HttpServer(AsyncHandler handler, const Options& options, int port, int max_connections)
    : handler_(std::move(handler)),
      options_(options),
      port_(port),
      max_connections_(max_connections) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::AnswerArrived() {
  absl::MutexLock lock(&owed_mu_);
  --owed_;
}

void HttpServer::Stop() {
  {
    // A suspended connection holds its request for a `respond` still to come: stopping the
    // library now would free what that call writes to.
    absl::MutexLock lock(&owed_mu_);
    auto settled = [this]() ABSL_SHARED_LOCKS_REQUIRED(owed_mu_) { return owed_ == 0; };
    owed_mu_.Await(absl::Condition(&settled));
  }
  absl::MutexLock lock(&mu_);
  if (daemon_ == nullptr) return;
  // Closes the listening socket too: it was handed over with MHD_OPTION_LISTEN_SOCKET.
  MHD_stop_daemon(daemon_);
  daemon_ = nullptr;
}

absl::StatusOr<size_t> RaiseFileDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", strerror(errno)));
  }
  if (limit.rlim_cur != limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return absl::InternalError(absl::StrCat("setrlimit(RLIMIT_NOFILE): ", strerror(errno)));
    }
  }
  return static_cast<size_t>(limit.rlim_cur);
}

}  // namespace gateway
