// HttpTransport on a libcurl multi handle driven by one event-loop thread, with a second thread
// that runs the completion callbacks under load.
//
// One thread does the I/O of every transfer: no thread per request, and the multi handle's
// connection cache keeps connections alive and reuses them (HTTP/2 multiplexing where the server
// offers it over TLS). TLS peer and host verification are always on.
//
// Thread-safety: Send() and Cancel() are safe from any thread; callbacks run one at a time, on
// the completion thread or the loop thread, never inside Send() or Cancel(), and must not block.
#ifndef GATEWAY_HTTP_CURL_TRANSPORT_H_
#define GATEWAY_HTTP_CURL_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "http/http_transport.h"

namespace gateway {

struct CurlTransportOptions {
  std::string user_agent;
  absl::Duration connect_timeout = absl::Seconds(3);
  // Upper bound on connections to one host; 0 means no limit.
  long max_host_connections = 0;
  // Responses larger than this are cut off and reported as kIo.
  size_t max_response_bytes = 1 << 20;
  // CA bundle used instead of the system one for TLS peer verification; empty = system.
  std::string ca_file;
};

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(CurlTransportOptions options);
  // Stops the loop; transfers still running complete with kCancelled before it returns.
  ~CurlTransport() override;

  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  TransferId Send(HttpRequest request, Callback done) override;
  void Cancel(TransferId id) override;

  // True while the event loop runs (for health checks).
  bool Running() const;

  // Ends the transfers in flight (their callbacks run, with kCancelled, before this returns)
  // and stops the threads. For an orderly exit while the callbacks' targets still exist; the
  // destructor does the same if it was not called.
  void Shutdown();

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace gateway

#endif  // GATEWAY_HTTP_CURL_TRANSPORT_H_
