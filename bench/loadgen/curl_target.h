// Target that sends the gateway's upstream request itself: the same Twilio POST (path, form body,
// Basic auth, headers) straight to the upstream with libcurl multi over HTTP/1.1 keep-alive
// connections. This is the floor the gateway's added latency and CPU are measured against.
//
// One event-loop thread (epoll + curl_multi_socket_action) owns the multi handle, its connection
// cache and a pool of easy handles.
// Thread-safety: Send() is safe from any thread; from the loop thread itself (a closed-loop
// completion) it starts the transfer at once, from others it queues it and wakes the loop.
#ifndef GATEWAY_BENCH_LOADGEN_CURL_TARGET_H_
#define GATEWAY_BENCH_LOADGEN_CURL_TARGET_H_

#include <chrono>
#include <memory>
#include <string>

#include "target.h"

namespace loadgen {

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
