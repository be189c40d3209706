#include "http/curl_multi_poller.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "absl/time/clock.h"

namespace gateway {

CurlMultiPoller::CurlMultiPoller(CURLM* multi) : multi_(multi) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMultiPoller::OnSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMultiPoller::OnTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

CurlMultiPoller::~CurlMultiPoller() {
  close(wake_fd_);
  close(epoll_fd_);
}

void CurlMultiPoller::Wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

// libcurl: watch `fd` for `what` (CURL_POLL_IN/OUT/INOUT), or stop (CURL_POLL_REMOVE).
// `socket_data` is what curl_multi_assign() stored: non-null once the fd is registered.
int CurlMultiPoller::OnSocket(CURL*, curl_socket_t fd, int what, void* user, void* socket_data) {
  auto* poller = static_cast<CurlMultiPoller*>(user);
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(poller->epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    curl_multi_assign(poller->multi_, fd, nullptr);
    return 0;
  }
  epoll_event event{};
  event.data.fd = fd;
  if (what & CURL_POLL_IN) event.events |= EPOLLIN;
  if (what & CURL_POLL_OUT) event.events |= EPOLLOUT;
  if (socket_data == nullptr) {
    epoll_ctl(poller->epoll_fd_, EPOLL_CTL_ADD, fd, &event);
    curl_multi_assign(poller->multi_, fd, poller);
  } else {
    epoll_ctl(poller->epoll_fd_, EPOLL_CTL_MOD, fd, &event);
  }
  return 0;
}

int CurlMultiPoller::OnTimer(CURLM*, long timeout_ms, void* user) {
  auto* poller = static_cast<CurlMultiPoller*>(user);
  poller->timer_due_ =
      timeout_ms < 0 ? absl::InfiniteFuture() : absl::Now() + absl::Milliseconds(timeout_ms);
  return 0;
}

bool CurlMultiPoller::RunTimerIfDue() {
  bool ran = false;
  while (absl::Now() >= timer_due_) {
    timer_due_ = absl::InfiniteFuture();
    int running = 0;
    curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    ran = true;
  }
  return ran;
}

bool CurlMultiPoller::Poll() {
  // A timer that just ran may have finished transfers: the owner collects them before we sleep.
  // The timer runs whenever transfers start, so returning at once spares a zero-timeout
  // epoll_wait per request; every other call still looks at the sockets, so a timer libcurl keeps
  // re-arming at 0 ms cannot starve them. A pending Wake() is seen by the next call.
  const bool ran_timer = RunTimerIfDue();
  if (ran_timer && !skipped_sockets_) {
    skipped_sockets_ = true;
    return false;
  }
  skipped_sockets_ = false;
  const absl::Duration until_timer = timer_due_ - absl::Now();
  int wait_ms = 1000;
  if (ran_timer) {
    wait_ms = 0;
  } else if (until_timer < absl::Seconds(1)) {
    wait_ms = static_cast<int>(
        std::max<int64_t>(0, absl::ToInt64Milliseconds(until_timer + absl::Microseconds(999))));
  }
  epoll_event events[64];
  const int ready = epoll_wait(epoll_fd_, events, 64, wait_ms);
  bool woken = false;
  for (int i = 0; i < ready; ++i) {
    const int fd = events[i].data.fd;
    if (fd == wake_fd_) {
      uint64_t count;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof count);
      woken = true;
      continue;
    }
    int mask = 0;
    // A hang-up is read as end of file, which is how libcurl learns the peer closed.
    if (events[i].events & (EPOLLIN | EPOLLHUP)) mask |= CURL_CSELECT_IN;
    if (events[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
    if (events[i].events & EPOLLERR) mask |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action(multi_, fd, mask, &running);
  }
  RunTimerIfDue();
  return woken;
}

}  // namespace gateway
