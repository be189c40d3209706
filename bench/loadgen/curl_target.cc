#include "curl_target.h"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "twilio/twilio_api.h"

namespace loadgen {
namespace {

size_t DiscardBody(char*, size_t size, size_t count, void*) { return size * count; }

struct Transfer {
  Request request;
  std::string body;
  CURL* easy = nullptr;
};

}  // namespace

class CurlTarget::Loop {
 public:
  explicit Loop(CurlTargetOptions options) : options_(std::move(options)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    url_ = absl::StrCat(options_.base_url, "/2010-04-01/Accounts/", options_.account_sid, "/Calls/",
                        options_.call_sid, "/UserDefinedMessageSubscriptions.json");
    // The gateway's own encoder, so the floor sends byte for byte what the gateway sends.
    body_prefix_ = gateway::FormEncode({{"Callback", options_.callback},
                                        {"Method", "POST"},
                                        {"IdempotencyKey", options_.key_prefix}});
    const std::string credentials = absl::StrCat(options_.username, ":", options_.password);
    for (const std::string& header :
         {absl::StrCat("Authorization: Basic ", absl::Base64Escape(credentials)),
          std::string("Accept: application/json"), std::string("Accept-Charset: utf-8"),
          std::string("Content-Type: application/x-www-form-urlencoded"), std::string("Expect:")}) {
      headers_ = curl_slist_append(headers_, header.c_str());
    }
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    wakeup_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wakeup_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, wakeup_, &ev);

    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, options_.max_connections);
    // Socket-driven: libcurl is told which socket is ready, so a wakeup costs O(ready sockets)
    // rather than curl_multi_perform()'s walk over every transfer in flight.
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Loop::OnSocket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Loop::OnTimer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    thread_ = std::thread([this] { Run(); });
  }

  ~Loop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    Wake();
    thread_.join();
    for (Transfer* t : active_) {
      curl_multi_remove_handle(multi_, t->easy);
      curl_easy_cleanup(t->easy);
      delete t;
    }
    for (CURL* easy : spare_) curl_easy_cleanup(easy);
    curl_multi_cleanup(multi_);
    curl_slist_free_all(headers_);
    close(wakeup_);
    close(epoll_);
    curl_global_cleanup();
  }

  void SetSink(CompletionSink* sink) { sink_ = sink; }

  void Send(const Request& request) {
    if (current_loop == this) {
      Start(request);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      incoming_.push_back(request);
    }
    Wake();
  }

 private:
  void Wake() {
    const uint64_t one = 1;
    (void)!write(wakeup_, &one, sizeof one);
  }

  static int OnSocket(CURL*, curl_socket_t fd, int what, void* user, void* socket_data) {
    auto* loop = static_cast<Loop*>(user);
    epoll_event ev{};
    ev.data.fd = fd;
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(loop->epoll_, EPOLL_CTL_DEL, fd, nullptr);
      curl_multi_assign(loop->multi_, fd, nullptr);
      return 0;
    }
    ev.events = ((what & CURL_POLL_IN) != 0 ? uint32_t{EPOLLIN} : 0u) |
                ((what & CURL_POLL_OUT) != 0 ? uint32_t{EPOLLOUT} : 0u);
    if (socket_data == nullptr) {
      epoll_ctl(loop->epoll_, EPOLL_CTL_ADD, fd, &ev);
      curl_multi_assign(loop->multi_, fd, loop);  // any non-null marker: "registered"
    } else {
      epoll_ctl(loop->epoll_, EPOLL_CTL_MOD, fd, &ev);
    }
    return 0;
  }

  static int OnTimer(CURLM*, long timeout_ms, void* user) {
    auto* loop = static_cast<Loop*>(user);
    loop->timer_deadline_ns_ = timeout_ms < 0 ? -1 : NowNanos() + timeout_ms * 1'000'000;
    return 0;
  }

  // Milliseconds epoll may sleep: until libcurl's timer, at most a second.
  int WaitMillis() const {
    if (timer_deadline_ns_ < 0) return 1000;
    const int64_t left = timer_deadline_ns_ - NowNanos();
    return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(1000, (left + 999'999) / 1'000'000));
  }

  void FireTimerIfDue(int* running) {
    while (timer_deadline_ns_ >= 0 && NowNanos() >= timer_deadline_ns_) {
      timer_deadline_ns_ = -1;
      curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, running);
      DrainCompletions();
    }
  }

  void Run() {
    current_loop = this;
    std::vector<Request> incoming;
    epoll_event events[256];
    for (;;) {
      const int n = epoll_wait(epoll_, events, 256, WaitMillis());
      int running = 0;
      bool woken = false;
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wakeup_) {
          woken = true;
          continue;
        }
        int flags = 0;
        if (events[i].events & (EPOLLIN | EPOLLHUP)) flags |= CURL_CSELECT_IN;
        if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
        if (events[i].events & EPOLLERR) flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(multi_, fd, flags, &running);
      }
      DrainCompletions();
      if (woken) {
        uint64_t count = 0;
        (void)!read(wakeup_, &count, sizeof count);
        {
          absl::MutexLock lock(&mu_);
          if (stopping_) break;
          incoming.swap(incoming_);
        }
        for (const Request& r : incoming) Start(r);
        incoming.clear();
      }
      // New transfers (queued or started by completions) ask for a zero timeout: start them now.
      FireTimerIfDue(&running);
    }
    current_loop = nullptr;
  }

  void DrainCompletions() {
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
      if (msg->msg == CURLMSG_DONE) Complete(msg->easy_handle, msg->data.result);
    }
  }

  void Start(const Request& request) {
    auto* t = new Transfer;
    t->request = request;
    t->body = absl::StrCat(body_prefix_, request.seq);
    t->easy = TakeEasy();
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body.data());
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->body.size()));
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    active_.insert(t);
    curl_multi_add_handle(multi_, t->easy);
  }

  void Complete(CURL* easy, CURLcode code) {
    Transfer* t = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t);
    Outcome outcome;
    if (code == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      outcome = {kHttpBase + static_cast<int>(status), status >= 200 && status < 300};
    } else {
      outcome = {kCurlBase + static_cast<int>(code), false};
    }
    curl_multi_remove_handle(multi_, easy);
    spare_.push_back(easy);
    active_.erase(t);
    const Request request = t->request;
    delete t;
    sink_->OnComplete(request, outcome);
  }

  // Easy handles keep their fixed options between requests; only the body changes.
  CURL* TakeEasy() {
    if (!spare_.empty()) {
      CURL* easy = spare_.back();
      spare_.pop_back();
      return easy;
    }
    CURL* easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "gateway-loadgen");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &DiscardBody);
    return easy;
  }

  static thread_local Loop* current_loop;

  const CurlTargetOptions options_;
  std::string url_;
  std::string body_prefix_;
  curl_slist* headers_ = nullptr;
  int epoll_ = -1;
  int wakeup_ = -1;
  CURLM* multi_ = nullptr;
  CompletionSink* sink_ = nullptr;
  std::thread thread_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Request> incoming_ ABSL_GUARDED_BY(mu_);

  // Owned by the loop thread (and by the destructor once it has joined).
  int64_t timer_deadline_ns_ = -1;  // when libcurl wants CURL_SOCKET_TIMEOUT; -1 = never
  std::unordered_set<Transfer*> active_;
  std::vector<CURL*> spare_;
};

thread_local CurlTarget::Loop* CurlTarget::Loop::current_loop = nullptr;

CurlTarget::CurlTarget(CurlTargetOptions options)
    : loop_(std::make_unique<Loop>(std::move(options))) {}

CurlTarget::~CurlTarget() = default;

void CurlTarget::SetSink(CompletionSink* sink) { loop_->SetSink(sink); }

void CurlTarget::Send(const Request& request) { loop_->Send(request); }

}  // namespace loadgen
