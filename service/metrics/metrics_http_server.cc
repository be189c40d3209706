#include "metrics/metrics_http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/host_port.h"
#include "common/log.h"

namespace gateway {
namespace {

using Clock = std::chrono::steady_clock;

// After the response, how long a client may keep sending before the socket is closed under it.
constexpr Clock::duration kMaxLinger = std::chrono::seconds(1);
// After accept() fails for want of descriptors, the listener stays readable: pause, don't spin.
constexpr Clock::duration kAcceptBackoff = std::chrono::milliseconds(100);
constexpr size_t kReadChunk = 4096;

struct Connection {
  enum class State { kReading, kWriting, kDraining, kClosed };

  int fd = -1;
  State state = State::kReading;
  std::string in;
  std::string out;
  size_t sent = 0;
  Clock::time_point deadline;
};

absl::Status BadAddress(const std::string& address, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("metrics listen address \"", address, "\": ", why));
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
        absl::StrCat("cannot resolve metrics listen address \"", address,
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
        absl::StrCat("cannot listen on metrics address \"", address, "\": ", strerror(last_error)));
  }
  return fd;
}

std::string Response(int code, absl::string_view reason, absl::string_view content_type,
                     absl::string_view body, bool send_body, absl::string_view extra_headers) {
  return absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\n", extra_headers,
                      "Connection: close\r\n\r\n", send_body ? body : "");
}

std::string ErrorResponse(int code, absl::string_view reason, bool send_body,
                          absl::string_view extra_headers = "") {
  return Response(code, reason, "text/plain; charset=utf-8", absl::StrCat(code, " ", reason, "\n"),
                  send_body, extra_headers);
}

bool IsToken(absl::string_view text) {
  static constexpr absl::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isalnum(c) || absl::StrContains(kSymbols, c);
  });
}

// `head` is the request up to the blank line. Headers are not needed: every response closes.
std::string Respond(absl::string_view head, const MetricsRegistry& registry) {
  // RFC 9112 section 2.2: ignore empty lines before the request line.
  while (absl::ConsumePrefix(&head, "\r\n") || absl::ConsumePrefix(&head, "\n")) {
  }
  absl::string_view line = head.substr(0, head.find('\n'));
  absl::ConsumeSuffix(&line, "\r");
  const size_t first_space = line.find(' ');
  const size_t last_space = line.rfind(' ');
  if (first_space == absl::string_view::npos || first_space == last_space) {
    return ErrorResponse(400, "Bad Request", true);
  }
  const absl::string_view method = line.substr(0, first_space);
  const absl::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
  const absl::string_view version = line.substr(last_space + 1);
  if (!IsToken(method) || target.empty() || absl::StrContains(target, ' ') ||
      !absl::StartsWith(version, "HTTP/")) {
    return ErrorResponse(400, "Bad Request", true);
  }
  const bool head_request = method == "HEAD";
  if (version != "HTTP/1.0" && version != "HTTP/1.1") {
    return ErrorResponse(505, "HTTP Version Not Supported", !head_request);
  }
  if (method != "GET" && !head_request) {
    return ErrorResponse(405, "Method Not Allowed", true, "Allow: GET, HEAD\r\n");
  }
  if (target.substr(0, target.find('?')) != "/metrics") {
    return ErrorResponse(404, "Not Found", !head_request);
  }
  return Response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", registry.Serialize(),
                  !head_request, "");
}

void Close(Connection& connection) {
  close(connection.fd);
  connection.fd = -1;
  connection.state = Connection::State::kClosed;
}

void Flush(Connection& connection, Clock::time_point now, Clock::duration idle_timeout) {
  while (connection.sent < connection.out.size()) {
    const ssize_t n = send(connection.fd, connection.out.data() + connection.sent,
                           connection.out.size() - connection.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) Close(connection);
      return;
    }
    connection.sent += static_cast<size_t>(n);
    // A large response to a slow reader is fine as long as it keeps reading.
    connection.deadline = now + idle_timeout;
  }
  // Half-close, then read until the client closes: closing with its unread bytes in our buffer
  // would send a reset that can destroy the response before the client reads it.
  shutdown(connection.fd, SHUT_WR);
  connection.state = Connection::State::kDraining;
  connection.deadline = now + std::min(idle_timeout, kMaxLinger);
  connection.in.clear();
  connection.in.shrink_to_fit();
  connection.out.clear();
  connection.out.shrink_to_fit();
}

// Index just past the blank line that ends the request head, or npos.
size_t HeadEnd(absl::string_view data) {
  const size_t crlf = data.find("\r\n\r\n");
  const size_t lf = data.find("\n\n");
  if (crlf != absl::string_view::npos && (lf == absl::string_view::npos || crlf < lf)) {
    return crlf + 4;
  }
  return lf == absl::string_view::npos ? lf : lf + 2;
}

void Read(Connection& connection, const MetricsRegistry& registry, size_t max_header_bytes,
          Clock::duration idle_timeout, Clock::time_point now) {
  char buffer[kReadChunk];
  const ssize_t n = recv(connection.fd, buffer, sizeof(buffer), 0);
  if (n < 0) {
    if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) Close(connection);
    return;
  }
  if (n == 0) {  // The client is gone, or has finished its half after our response.
    Close(connection);
    return;
  }
  if (connection.state == Connection::State::kDraining) return;
  connection.in.append(buffer, static_cast<size_t>(n));
  const size_t end = HeadEnd(connection.in);
  if (end == absl::string_view::npos && connection.in.size() <= max_header_bytes) return;
  connection.out = end == absl::string_view::npos || end > max_header_bytes
                       ? ErrorResponse(431, "Request Header Fields Too Large", true)
                       : Respond(absl::string_view(connection.in).substr(0, end), registry);
  connection.state = Connection::State::kWriting;
  Flush(connection, now, idle_timeout);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, const MetricsRegistry& registry) {
  return Start(address, registry, Options());
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, const MetricsRegistry& registry, const Options& options) {
  absl::StatusOr<int> listen_fd = Listen(address);
  if (!listen_fd.ok()) return listen_fd.status();
  const int port = BoundPort(*listen_fd);
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (port < 0 || wake_fd < 0) {
    const int error = errno;
    close(*listen_fd);
    if (wake_fd >= 0) close(wake_fd);
    return absl::UnavailableError(
        absl::StrCat("cannot start metrics server on \"", address, "\": ", strerror(error)));
  }
  return absl::WrapUnique(new MetricsHttpServer(*listen_fd, wake_fd, port, registry, options));
}

MetricsHttpServer::MetricsHttpServer(int listen_fd, int wake_fd, int port,
                                     const MetricsRegistry& registry, const Options& options)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port),
      registry_(registry),
      options_(options),
      thread_([this] { Run(); }) {}

MetricsHttpServer::~MetricsHttpServer() {
  const uint64_t one = 1;
  // Cannot fail short of a counter overflow, and an eventfd already readable is woken anyway.
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  close(wake_fd_);
  close(listen_fd_);
}

void MetricsHttpServer::Run() {
  // Bounded so that deadline arithmetic cannot overflow, even for an InfiniteDuration().
  const Clock::duration idle_timeout = absl::ToChronoNanoseconds(
      std::clamp(options_.idle_timeout, absl::Milliseconds(1), absl::Hours(24)));
  const size_t max_connections = static_cast<size_t>(std::max(options_.max_connections, 1));
  std::vector<Connection> connections;
  std::vector<pollfd> fds;
  Clock::time_point accept_paused_until;
  while (true) {
    const Clock::time_point now = Clock::now();
    const bool accepting = connections.size() < max_connections && now >= accept_paused_until;
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    // poll() skips negative descriptors: beyond the limit, new clients wait in the backlog.
    fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});
    bool have_deadline = false;
    Clock::time_point next_deadline;
    const auto consider = [&](Clock::time_point deadline) {
      if (!have_deadline || deadline < next_deadline) next_deadline = deadline;
      have_deadline = true;
    };
    for (const Connection& connection : connections) {
      const short events = connection.state == Connection::State::kWriting ? POLLOUT : POLLIN;
      fds.push_back({connection.fd, events, 0});
      consider(connection.deadline);
    }
    if (connections.size() < max_connections && !accepting) consider(accept_paused_until);
    int timeout_ms = -1;
    if (have_deadline) {
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_deadline - now);
      timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 60000));
    }

    if (poll(fds.data(), fds.size(), timeout_ms) < 0) {
      if (errno != EINTR) {
        Log(LogLevel::kWarning, "metrics server poll failed", {{"error", strerror(errno)}});
      }
      continue;
    }
    if (fds[0].revents != 0) break;

    const Clock::time_point after = Clock::now();
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& connection = connections[i];
      if (fds[i + 2].revents != 0) {
        if (connection.state == Connection::State::kWriting) {
          Flush(connection, after, idle_timeout);
        } else {
          Read(connection, registry_, options_.max_request_header_bytes, idle_timeout, after);
        }
      }
      if (connection.state != Connection::State::kClosed && connection.deadline <= after) {
        Close(connection);
      }
    }
    connections.erase(std::remove_if(connections.begin(), connections.end(),
                                     [](const Connection& connection) {
                                       return connection.state == Connection::State::kClosed;
                                     }),
                      connections.end());

    if (fds[1].revents == 0) continue;
    while (connections.size() < max_connections) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          Log(LogLevel::kWarning, "metrics server cannot accept", {{"error", strerror(errno)}});
          accept_paused_until = after + kAcceptBackoff;
        }
        break;
      }
      Connection& connection = connections.emplace_back();
      connection.fd = fd;
      // Measured from accept, not from the last byte: trickling a header in keeps no slot.
      connection.deadline = after + idle_timeout;
    }
  }
  for (Connection& connection : connections) close(connection.fd);
}

}  // namespace gateway
