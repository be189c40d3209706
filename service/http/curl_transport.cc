#include "http/curl_transport.h"

#include <curl/curl.h>
#include <pthread.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "http/curl_multi_poller.h"

namespace gateway {
namespace {

// libcurl needs one global init per process before any thread uses it.
void GlobalInitOnce() {
  static const bool initialized = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)initialized;
}

struct Transfer {
  HttpTransport::TransferId id = 0;
  HttpRequest request;
  HttpTransport::Callback done;
  CURL* easy = nullptr;
  // The request's header lines, NUL-terminated one after the other, and the list libcurl reads
  // them through: built here rather than by curl_slist_append(), which would allocate twice per
  // line (the node and a copy) besides the line itself.
  std::string header_text;
  std::vector<curl_slist> headers;
  HttpResponse response;
  size_t max_response_bytes = 0;
  bool too_large = false;
  int sends = 0;
  char error[CURL_ERROR_SIZE] = {};
};

// Called each time libcurl is about to send the request. More than once means libcurl resent
// it on a fresh connection after a reused one died with no answer, which it does for every
// method and which no option turns off: the first send may have reached the server.
int OnPrereq(void* user, char*, char*, int, int) {
  ++static_cast<Transfer*>(user)->sends;
  return CURL_PREREQFUNC_OK;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->response.body.size() + n > t->max_response_bytes) {
    t->too_large = true;
    return 0;  // Aborts the transfer with CURLE_WRITE_ERROR.
  }
  t->response.body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  absl::string_view line(data, n);
  // A new status line (after 100-continue or on a redirect) starts a fresh header set.
  if (absl::StartsWith(line, "HTTP/")) {
    t->response.retry_after.reset();
    t->response.request_id.reset();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return n;
  absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, colon));
  // Copied only for the headers kept: this runs for every header of every response.
  auto value = [&] { return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))); };
  if (absl::EqualsIgnoreCase(name, "Retry-After")) {
    t->response.retry_after = value();
  } else if (absl::EqualsIgnoreCase(name, "Twilio-Request-Id")) {
    t->response.request_id = value();
  }
  return n;
}

TransportFailure FailureFor(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return TransportFailure::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportFailure::kTimeout;
    default:
      return TransportFailure::kIo;
  }
}

}  // namespace

class CurlTransport::Loop {
 public:
  explicit Loop(CurlTransportOptions options) : options_(std::move(options)) {
    GlobalInitOnce();
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    if (options_.max_host_connections > 0) {
      curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_host_connections);
    }
    poller_ = std::make_unique<CurlMultiPoller>(multi_);
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "curl-loop");
      Run();
    });
    completion_thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "curl-callbacks");
      RunCompletions();
    });
  }

  ~Loop() {
    Stop();
    for (CURL* easy : spare_) curl_easy_cleanup(easy);
    // Cleanup closes cached connections, which tells the poller to forget their sockets.
    curl_multi_cleanup(multi_);
    poller_.reset();
  }

  // Ends every transfer (callbacks get kCancelled) and stops both threads. Idempotent.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    Wake();
    thread_.join();
    // The loop has handed over every transfer; the callbacks still queued run before this ends.
    {
      absl::MutexLock lock(&done_mu_);
      done_stopping_ = true;
    }
    done_cv_.Signal();
    completion_thread_.join();
  }

  TransferId Send(HttpRequest request, Callback done) {
    auto transfer = std::make_unique<Transfer>();
    transfer->request = std::move(request);
    transfer->done = std::move(done);
    transfer->max_response_bytes = options_.max_response_bytes;
    TransferId id;
    bool wake = false;
    {
      absl::MutexLock lock(&mu_);
      id = next_id_++;
      transfer->id = id;
      // The loop takes the whole queue at once: one wakeup per batch, not per request.
      wake = incoming_.empty();
      incoming_.push_back(std::move(transfer));
    }
    if (wake) Wake();
    return id;
  }

  void Cancel(TransferId id) {
    {
      absl::MutexLock lock(&mu_);
      cancels_.push_back(id);
    }
    Wake();
  }

  bool Running() const { return running_.load(std::memory_order_relaxed); }

 private:
  void Wake() { poller_->Wake(); }

  void Run() {
    running_ = true;
    std::vector<std::unique_ptr<Transfer>> incoming;
    std::vector<TransferId> cancels;
    bool stopping = false;
    while (!stopping) {
      {
        absl::MutexLock lock(&mu_);
        incoming.swap(incoming_);
        cancels.swap(cancels_);
        stopping = stopping_;
      }
      for (auto& t : incoming) Start(std::move(t));
      incoming.clear();
      for (TransferId id : cancels) Abandon(id, "cancelled");
      cancels.clear();
      HandOver();
      if (stopping) break;

      // Sleeps until a socket is ready, libcurl's timer is due, or Send()/Cancel() wakes us.
      poller_->Poll();
      CompleteFinished();
      HandOver();
    }
    // Drop everything still in flight or queued.
    {
      absl::MutexLock lock(&mu_);
      incoming.swap(incoming_);
    }
    for (auto& t : incoming) Finish(std::move(t), CancelledResult("transport stopped"));
    std::vector<TransferId> ids;
    for (auto& [id, t] : active_) ids.push_back(id);
    for (TransferId id : ids) Abandon(id, "transport stopped");
    HandOver();
    running_ = false;
  }

  void CompleteFinished() {
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
      if (msg->msg == CURLMSG_DONE) Complete(msg->easy_handle, msg->data.result);
    }
  }

  static HttpResult CancelledResult(std::string why) {
    HttpResult result;
    result.failure = TransportFailure::kCancelled;
    result.error = std::move(why);
    return result;
  }

  void Start(std::unique_ptr<Transfer> t) {
    CURL* easy = TakeEasy();
    t->easy = easy;
    const HttpRequest& r = t->request;
    curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    // HTTP/2 when TLS negotiates it; HTTP/1.1 in the clear (libcurl 7.88 mishandles h2c reuse).
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    // Waiting for a connection that may multiplex only pays off over TLS (HTTP/2); in the clear
    // libcurl would queue every transfer behind one busy HTTP/1.1 connection.
    if (absl::StartsWith(r.url, "https://")) curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    // Twilio's answers are about 1 KiB: a 4 KiB receive buffer instead of the default 16 KiB
    // saves 12 KiB per request in flight.
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     std::max<long>(1, absl::ToInt64Milliseconds(r.timeout)));
    if (!options_.user_agent.empty()) {
      curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
    }
    if (r.method == "POST") {
      curl_easy_setopt(easy, CURLOPT_POST, 1L);
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r.body.data());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    } else {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    // No "Expect: 100-continue": it costs a round trip for a body this small.
    size_t size = sizeof("Expect:");
    for (const auto& [name, value] : r.headers) size += name.size() + 2 + value.size() + 1;
    t->header_text.reserve(size);
    t->header_text.append("Expect:", sizeof("Expect:"));  // With its NUL.
    absl::InlinedVector<size_t, 8> starts = {0};
    for (const auto& [name, value] : r.headers) {
      starts.push_back(t->header_text.size());
      absl::StrAppend(&t->header_text, name, ": ", value);
      t->header_text.push_back('\0');
    }
    // Linked once the text no longer moves.
    t->headers.resize(starts.size());
    for (size_t k = 0; k < starts.size(); ++k) {
      t->headers[k].data = t->header_text.data() + starts[k];
      t->headers[k].next = k + 1 < starts.size() ? &t->headers[k + 1] : nullptr;
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers.data());
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, &OnPrereq);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());
    curl_multi_add_handle(multi_, easy);
    active_.emplace(t->id, std::move(t));
  }

  void Complete(CURL* easy, CURLcode code) {
    Transfer* raw = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &raw);
    auto it = active_.find(raw->id);
    std::unique_ptr<Transfer> t = std::move(it->second);
    active_.erase(it);

    HttpResult result;
    long request_size = 0;
    curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &request_size);
    result.request_sent = request_size > 0;
    result.sends = t->sends;
    if (code == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      result.response = std::move(t->response);
      result.response.status = static_cast<int>(status);
      result.request_sent = true;
    } else {
      result.failure = FailureFor(code);
      // A connect failure means nothing was sent, unless libcurl had sent on a reused connection
      // that died and its own resend then failed to connect: then the first send may have acted.
      if (result.failure == TransportFailure::kConnect) result.request_sent = t->sends > 0;
      result.error = t->too_large  ? std::string("response body too large")
                     : t->error[0] ? std::string(t->error)
                                   : std::string(curl_easy_strerror(code));
    }
    Finish(std::move(t), std::move(result));
  }

  void Abandon(TransferId id, const char* why) {
    auto it = active_.find(id);
    if (it == active_.end()) return;  // Already completed.
    std::unique_ptr<Transfer> t = std::move(it->second);
    active_.erase(it);
    HttpResult result = CancelledResult(why);
    long request_size = 0;
    curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &request_size);
    result.request_sent = request_size > 0;
    Finish(std::move(t), std::move(result));
  }

  void Finish(std::unique_ptr<Transfer> t, HttpResult result) {
    if (t->easy != nullptr) {
      curl_multi_remove_handle(multi_, t->easy);
      ReturnEasy(t->easy);
    }
    finished_.emplace_back(std::move(t), std::move(result));
  }

  // Gives this round's finished transfers to their callbacks (parse, idempotency record, gRPC
  // Finish). Under load they go to the completion thread, so the loop only does I/O and the two
  // share the second core. A lone completion while that thread is idle runs here instead: at low
  // load, waking a second thread per request (a futex and a context switch, tens of
  // microseconds on a VM) costs more than the callback does.
  void HandOver() {
    if (finished_.empty()) return;
    bool run_here = false;
    bool wake = false;
    {
      absl::MutexLock lock(&done_mu_);
      if (finished_.size() == 1 && completions_.empty() && !completing_) {
        completing_ = true;  // Callbacks still run one at a time.
        run_here = true;
      } else {
        wake = completions_.empty();
        for (auto& item : finished_) completions_.push_back(std::move(item));
      }
    }
    if (run_here) {
      auto& [t, result] = finished_.front();
      std::move(t->done)(std::move(result));
      absl::MutexLock lock(&done_mu_);
      completing_ = false;
    } else if (wake) {
      done_cv_.Signal();
    }
    finished_.clear();
  }

  void RunCompletions() {
    std::vector<std::pair<std::unique_ptr<Transfer>, HttpResult>> batch;
    while (true) {
      {
        absl::MutexLock lock(&done_mu_);
        while (completions_.empty() && !done_stopping_) done_cv_.Wait(&done_mu_);
        if (completions_.empty()) return;
        batch.swap(completions_);
        completing_ = true;
      }
      for (auto& [t, result] : batch) std::move(t->done)(std::move(result));
      batch.clear();
      absl::MutexLock lock(&done_mu_);
      completing_ = false;
    }
  }

  // Easy handles are recycled: creating one allocates several buffers.
  CURL* TakeEasy() {
    if (spare_.empty()) return curl_easy_init();
    CURL* easy = spare_.back();
    spare_.pop_back();
    return easy;
  }

  void ReturnEasy(CURL* easy) {
    curl_easy_reset(easy);
    if (spare_.size() < 256) {
      spare_.push_back(easy);
    } else {
      curl_easy_cleanup(easy);
    }
  }

  const CurlTransportOptions options_;
  CURLM* multi_ = nullptr;
  std::unique_ptr<CurlMultiPoller> poller_;
  std::thread thread_;
  std::atomic<bool> running_{false};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  TransferId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::unique_ptr<Transfer>> incoming_ ABSL_GUARDED_BY(mu_);
  std::vector<TransferId> cancels_ ABSL_GUARDED_BY(mu_);

  // Finished transfers, from the loop to the completion thread.
  std::thread completion_thread_;
  absl::Mutex done_mu_;
  absl::CondVar done_cv_;
  bool done_stopping_ ABSL_GUARDED_BY(done_mu_) = false;
  bool completing_ ABSL_GUARDED_BY(done_mu_) = false;  // A callback batch is running.
  std::vector<std::pair<std::unique_ptr<Transfer>, HttpResult>> completions_
      ABSL_GUARDED_BY(done_mu_);

  // Owned by the loop thread.
  std::unordered_map<TransferId, std::unique_ptr<Transfer>> active_;
  std::vector<std::pair<std::unique_ptr<Transfer>, HttpResult>> finished_;  // This round's.
  std::vector<CURL*> spare_;
};

CurlTransport::CurlTransport(CurlTransportOptions options)
    : loop_(std::make_unique<Loop>(std::move(options))) {}

CurlTransport::~CurlTransport() { loop_.reset(); }

HttpTransport::TransferId CurlTransport::Send(HttpRequest request, Callback done) {
  return loop_->Send(std::move(request), std::move(done));
}

void CurlTransport::Cancel(TransferId id) { loop_->Cancel(id); }

bool CurlTransport::Running() const { return loop_->Running(); }

void CurlTransport::Shutdown() { loop_->Stop(); }

}  // namespace gateway
