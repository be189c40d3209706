#include "fakes/fake_http_transport.h"

#include <utility>

namespace gateway::testing {

HttpResult HttpResponseResult(int status, std::string body,
                              std::optional<std::string> retry_after) {
  HttpResult result;
  result.failure = TransportFailure::kNone;
  result.request_sent = true;
  result.response.status = status;
  result.response.body = std::move(body);
  result.response.retry_after = std::move(retry_after);
  return result;
}

HttpResult TransportFailureResult(TransportFailure failure, bool request_sent, std::string error) {
  HttpResult result;
  result.failure = failure;
  result.request_sent = request_sent;
  result.error = std::move(error);
  return result;
}

HttpTransport::TransferId FakeHttpTransport::Send(HttpRequest request, Callback done) {
  absl::MutexLock lock(&mu_);
  const TransferId id = transfers_.size() + 1;
  transfers_.push_back({id, std::move(request), std::move(done)});
  return id;
}

void FakeHttpTransport::Cancel(TransferId id) {
  absl::MutexLock lock(&mu_);
  cancel_calls_.push_back(id);
  if (id >= 1 && id <= transfers_.size()) {
    transfers_[id - 1].cancel_requested = true;
  }
}

size_t FakeHttpTransport::sent_count() const {
  absl::MutexLock lock(&mu_);
  return transfers_.size();
}

HttpRequest FakeHttpTransport::request(size_t index) const {
  absl::MutexLock lock(&mu_);
  if (index >= transfers_.size()) {
    return HttpRequest{};
  }
  return transfers_[index].request;
}

HttpTransport::TransferId FakeHttpTransport::id(size_t index) const {
  absl::MutexLock lock(&mu_);
  return index < transfers_.size() ? transfers_[index].id : 0;
}

std::vector<HttpTransport::TransferId> FakeHttpTransport::cancel_calls() const {
  absl::MutexLock lock(&mu_);
  return cancel_calls_;
}

std::vector<HttpTransport::TransferId> FakeHttpTransport::pending() const {
  absl::MutexLock lock(&mu_);
  std::vector<TransferId> out;
  for (const Transfer& t : transfers_) {
    if (!t.completed) {
      out.push_back(t.id);
    }
  }
  return out;
}

bool FakeHttpTransport::IsPending(TransferId id) const {
  absl::MutexLock lock(&mu_);
  return id >= 1 && id <= transfers_.size() && !transfers_[id - 1].completed;
}

bool FakeHttpTransport::Complete(TransferId id, HttpResult result) {
  Callback callback;
  {
    absl::MutexLock lock(&mu_);
    if (id < 1 || id > transfers_.size() || transfers_[id - 1].completed) {
      return false;
    }
    transfers_[id - 1].completed = true;
    callback = std::move(transfers_[id - 1].callback);
  }
  std::move(callback)(std::move(result));
  return true;
}

bool FakeHttpTransport::CompleteNth(size_t index, HttpResult result) {
  return Complete(id(index), std::move(result));
}

size_t FakeHttpTransport::CompleteCancelled() {
  std::vector<TransferId> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const Transfer& t : transfers_) {
      if (t.cancel_requested && !t.completed) {
        ids.push_back(t.id);
      }
    }
  }
  size_t completed = 0;
  for (TransferId id : ids) {
    if (Complete(id, TransportFailureResult(TransportFailure::kCancelled, /*request_sent=*/true,
                                            "cancelled"))) {
      ++completed;
    }
  }
  return completed;
}

}  // namespace gateway::testing
