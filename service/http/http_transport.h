// The one way the gateway leaves the process: an asynchronous HTTP client interface.
//
// Usage: fill an HttpRequest, call Send() with a completion callback, keep the returned id to
// Cancel() it. The production implementation is CurlTransport (libcurl multi); unit tests use a
// recording fake.
//
// Thread-safety: Send() and Cancel() may be called from any thread. Callbacks run on the
// transport's own thread, never inline from Send() or Cancel(), and exactly once per Send().
#ifndef GATEWAY_HTTP_HTTP_TRANSPORT_H_
#define GATEWAY_HTTP_HTTP_TRANSPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace gateway {

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  // Full header lines' parts; values may hold secrets (Authorization) and are never logged.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Whole-transfer limit for this attempt, connect included.
  absl::Duration timeout = absl::Seconds(10);
};

struct HttpResponse {
  int status = 0;
  std::string body;
  // The headers the gateway acts on; absent when the server sent none.
  std::optional<std::string> retry_after;
  std::optional<std::string> request_id;  // Twilio-Request-Id, for support tickets.
};

// Why a transfer produced no HTTP response.
enum class TransportFailure {
  kNone,       // A response arrived (any status).
  kConnect,    // Could not resolve, connect or handshake: never sent, unless request_sent says
               // a send on a reused connection went out before (see `sends`).
  kTimeout,    // The attempt's time ran out.
  kIo,         // Connection reset, closed, or unreadable response.
  kCancelled,  // Cancel() was called.
};

struct HttpResult {
  TransportFailure failure = TransportFailure::kNone;
  // Whether any byte of the request went out; when false the server cannot have acted on it.
  bool request_sent = false;
  // How many times the request was sent. Over 1 when the client resent it by itself (libcurl
  // does, after a reused connection died unanswered): an earlier send may have been acted on.
  int sends = 0;
  // Human-readable transport error, free of secrets (libcurl's error buffer).
  std::string error;
  HttpResponse response;
};

class HttpTransport {
 public:
  using TransferId = std::uint64_t;
  using Callback = absl::AnyInvocable<void(HttpResult) &&>;

  virtual ~HttpTransport() = default;
  virtual TransferId Send(HttpRequest request, Callback done) = 0;
  // Abandons a transfer; its callback then runs with kCancelled. No-op once completed.
  virtual void Cancel(TransferId id) = 0;
};

}  // namespace gateway

#endif  // GATEWAY_HTTP_HTTP_TRANSPORT_H_
