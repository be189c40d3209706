// Target that sends the gateway's upstream request itself: the same Twilio POST (path, form body,
// Basic auth, headers) straight to the upstream with libcurl multi over HTTP/1.1 keep-alive
// connections. This is the floor the gateway's added latency and CPU are measured against.
// With `build` set it posts whatever that builds instead (the webhook load generator's signed
// deliveries), over the same loop and connection cache.
//
// One event-loop thread (epoll + curl_multi_socket_action) owns the multi handle, its connection
// cache and a pool of easy handles.
// Thread-safety: Send() is safe from any thread; from the loop thread itself (a closed-loop
// completion) it starts the transfer at once, from others it queues it and wakes the loop.
#ifndef GATEWAY_BENCH_LOADGEN_CURL_TARGET_H_
#define GATEWAY_BENCH_LOADGEN_CURL_TARGET_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "target.h"

namespace loadgen {

// One POST as built for a request: where to, the body, and its headers ("Name: value").
struct HttpPost {
  std::string url;
  std::string body;
  std::vector<std::string> headers;
};

struct CurlTargetOptions {
  std::string base_url;  // e.g. http://127.0.0.1:8080
  std::string account_sid;
  std::string call_sid;
  std::string callback;
  std::string key_prefix;
  std::string username;  // Basic auth (the simulator checks it; nginx ignores it)
  std::string password;
  std::chrono::milliseconds timeout{5000};
  // Connections kept in the cache; at least the concurrency, so none is closed and reopened.
  long max_connections = 1024;
  // When set, each request is this POST instead of the Twilio one (the fields above but the
  // timeout and max_connections are then unused). Called on the loop thread just before the
  // request is handed to libcurl, so a timestamp it takes is the send time.
  std::function<HttpPost(const Request&)> build = nullptr;
};

class CurlTarget final : public Target {
 public:
  explicit CurlTarget(CurlTargetOptions options);
  // Stops the loop; transfers still running are dropped without completion.
  ~CurlTarget() override;

  CurlTarget(const CurlTarget&) = delete;
  CurlTarget& operator=(const CurlTarget&) = delete;

  void SetSink(CompletionSink* sink) override;
  void Send(const Request& request) override;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace loadgen

#endif  // GATEWAY_BENCH_LOADGEN_CURL_TARGET_H_
