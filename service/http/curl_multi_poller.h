// Drives a libcurl multi handle with epoll, the event-driven way (curl_multi_socket_action):
// libcurl says which sockets to watch and when its next timeout is, and only ready sockets are
// handed back, so a wakeup costs O(ready sockets) rather than curl_multi_perform()'s walk over
// every transfer in flight. Used by the gateway's transport and by the load generator's floor.
//
// Usage (on one loop thread):
//   CurlMultiPoller poller(multi);
//   while (...) {
//     if (poller.Poll()) { ...take work queued by other threads, curl_multi_add_handle()... }
//     ...curl_multi_info_read() for finished transfers...
//   }
//
// Thread-safety: Wake() from any thread; everything else on the thread that owns `multi`.
#ifndef GATEWAY_HTTP_CURL_MULTI_POLLER_H_
#define GATEWAY_HTTP_CURL_MULTI_POLLER_H_

#include <curl/curl.h>

#include "absl/time/time.h"

namespace gateway {

class CurlMultiPoller {
 public:
  // Installs the socket and timer callbacks on `multi`, which must outlive the poller.
  explicit CurlMultiPoller(CURLM* multi);
  ~CurlMultiPoller();
  CurlMultiPoller(const CurlMultiPoller&) = delete;
  CurlMultiPoller& operator=(const CurlMultiPoller&) = delete;

  // Makes the current or next Poll() return promptly with true.
  void Wake();

  // Runs libcurl's timer if due (new handles ask for one at 0 ms) and, if it ran, returns (at
  // most every other call); otherwise sleeps until a socket is ready, the timer is due (at most
  // 1 s) or Wake(), and hands what is ready to libcurl. Returns whether Wake() was called. Read
  // finished transfers after each call.
  bool Poll();

 private:
  static int OnSocket(CURL* easy, curl_socket_t fd, int what, void* user, void* socket_data);
  static int OnTimer(CURLM* multi, long timeout_ms, void* user);
  // Returns whether it ran libcurl's timer.
  bool RunTimerIfDue();

  CURLM* const multi_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  absl::Time timer_due_ = absl::InfiniteFuture();  // One-shot; libcurl re-arms it.
  bool skipped_sockets_ = false;  // The last Poll() returned after the timer, without epoll.
};

}  // namespace gateway

#endif  // GATEWAY_HTTP_CURL_MULTI_POLLER_H_
