// A raw HTTP/1.1 client on a blocking loopback socket, for the tests of HttpServer and
// MetricsHttpServer: it sends exactly the bytes a test gives it (half requests, garbage,
// oversized heads) and every read gives up after a receive timeout, so a server that blocks
// where it must not makes a read time out instead of hanging the test.
#ifndef GATEWAY_TESTS_UNIT_HTTP_TEST_CLIENT_H_
#define GATEWAY_TESTS_UNIT_HTTP_TEST_CLIENT_H_

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gateway::testing {

inline constexpr absl::Duration kGenerousTimeout = absl::Seconds(30);

struct HttpReplyText {
  std::string status_line;
  std::map<std::string, std::string> headers;  // Names lower-cased.
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "<missing>" : it->second;
  }
};

class TestClient {
 public:
  // Tries each address of `host` (so "localhost" works whichever family the server bound).
  TestClient(const std::string& host, int port, absl::Duration timeout = kGenerousTimeout) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* results = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &results) != 0) return;
    for (const addrinfo* ai = results; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
      fd_ = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd_ < 0) continue;
      timeval tv = absl::ToTimeval(timeout);
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      if (connect(fd_, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd_);
        fd_ = -1;
      }
    }
    freeaddrinfo(results);
  }
  explicit TestClient(int port, absl::Duration timeout = kGenerousTimeout)
      : TestClient("127.0.0.1", port, timeout) {}
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;
  ~TestClient() { Close(); }

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
    while (true) {
      const ssize_t n = Receive(data);
      if (n == 0) return data;
      if (n < 0) return data + (errno == EAGAIN ? "<timeout>" : "<error>");
    }
  }

  // One response: its head, then Content-Length bytes of body (none for a HEAD request, whose
  // Content-Length describes the GET). The connection may stay open for the next request.
  HttpReplyText ReadResponse(bool head_request = false) {
    std::string data;
    size_t head_end = std::string::npos;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = Receive(data);
      if (n <= 0) return {"<no response> " + data + (n < 0 ? "<timeout>" : "<closed>"), {}, ""};
    }
    HttpReplyText reply;
    std::vector<std::string> lines = absl::StrSplit(data.substr(0, head_end), "\r\n");
    reply.status_line = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      reply.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    reply.body = data.substr(head_end + 4);
    size_t length = 0;
    if (head_request || !absl::SimpleAtoi(reply.Header("content-length"), &length)) return reply;
    while (reply.body.size() < length) {
      const ssize_t n = Receive(reply.body);
      if (n <= 0) {
        reply.body += n < 0 ? "<timeout>" : "<closed>";
        return reply;
      }
    }
    return reply;
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
  ssize_t Receive(std::string& into) {
    char buffer[16384];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n > 0) into.append(buffer, static_cast<size_t>(n));
    return n;
  }

  int fd_ = -1;
};

// Sends `request` on a new connection and reads one response.
inline HttpReplyText Fetch(int port, absl::string_view request,
                           const std::string& host = "127.0.0.1") {
  TestClient client(host, port);
  if (!client.connected()) return {"<cannot connect>", {}, ""};
  client.Send(request);
  return client.ReadResponse(absl::StartsWith(request, "HEAD "));
}

}  // namespace gateway::testing

#endif  // GATEWAY_TESTS_UNIT_HTTP_TEST_CLIENT_H_
