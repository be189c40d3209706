#include "curl_target.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "http/curl_multi_poller.h"
#include "twilio/twilio_api.h"

namespace loadgen {
namespace {

size_t DiscardBody(char*, size_t size, size_t count, void*) { return size * count; }

struct Transfer {
  Request request;
  std::string url;  // Built requests only; libcurl copies the URL, but not the headers.
  std::string body;
  curl_slist* headers = nullptr;  // Built requests only.
  CURL* easy = nullptr;
};

void FreeTransfer(Transfer* t) {
  curl_slist_free_all(t->headers);
  delete t;
}

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
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, options_.max_connections);
    // The gateway's own event-driven driver, so the floor pays what the gateway's transport pays.
    poller_ = std::make_unique<gateway::CurlMultiPoller>(multi_);
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
      FreeTransfer(t);
    }
    for (CURL* easy : spare_) curl_easy_cleanup(easy);
    curl_multi_cleanup(multi_);
    poller_.reset();
    curl_slist_free_all(headers_);
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
  void Wake() { poller_->Wake(); }

  void Run() {
    current_loop = this;
    std::vector<Request> incoming;
    for (;;) {
      const bool woken = poller_->Poll();
      DrainCompletions();
      if (woken) {
        {
          absl::MutexLock lock(&mu_);
          if (stopping_) break;
          incoming.swap(incoming_);
        }
        for (const Request& r : incoming) Start(r);
        incoming.clear();
      }
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
    t->easy = TakeEasy();
    if (options_.build) {
      HttpPost post = options_.build(request);
      t->url = std::move(post.url);
      t->body = std::move(post.body);
      for (const std::string& header : post.headers) {
        t->headers = curl_slist_append(t->headers, header.c_str());
      }
      t->headers = curl_slist_append(t->headers, "Expect:");
      curl_easy_setopt(t->easy, CURLOPT_URL, t->url.c_str());
      curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    } else {
      t->body = absl::StrCat(body_prefix_, request.seq);
    }
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
    FreeTransfer(t);
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
  CURLM* multi_ = nullptr;
  std::unique_ptr<gateway::CurlMultiPoller> poller_;
  CompletionSink* sink_ = nullptr;
  std::thread thread_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Request> incoming_ ABSL_GUARDED_BY(mu_);

  // Owned by the loop thread (and by the destructor once it has joined).
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
