// FakeHttpTransport: a recording HttpTransport for unit tests. It records every request and
// completes nothing on its own: the test decides when, and with what HttpResult, each transfer
// completes.
//
// Usage:
//   FakeHttpTransport transport;
//   ... code under test calls transport.Send(request, callback) ...
//   EXPECT_EQ(transport.request(0).url, "...");
//   transport.CompleteNth(0, HttpResponseResult(201, body));  // runs the callback here
//
// It honours the HttpTransport contract: callbacks never run inline from Send() or Cancel(), and
// at most once per Send(). Cancel() only marks the transfer; CompleteCancelled() then delivers
// kCancelled, as a real transport would later on its own thread.
//
// Thread-safety: every method may be called from any thread; callbacks run on the thread that
// calls Complete*(), with no internal lock held (so they may Send() or Cancel()).
#ifndef GATEWAY_TESTS_FAKES_FAKE_HTTP_TRANSPORT_H_
#define GATEWAY_TESTS_FAKES_FAKE_HTTP_TRANSPORT_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "http/http_transport.h"

namespace gateway::testing {

// A result carrying an HTTP response (the request went out).
HttpResult HttpResponseResult(int status, std::string body,
                              std::optional<std::string> retry_after = std::nullopt);

// A result with no response.
HttpResult TransportFailureResult(TransportFailure failure, bool request_sent,
                                  std::string error = "fake transport failure");

class FakeHttpTransport final : public HttpTransport {
 public:
  TransferId Send(HttpRequest request, Callback done) override;
  void Cancel(TransferId id) override;

  // Number of Send() calls so far.
  size_t sent_count() const;
  // The request of the `index`th Send() (from 0), and its transfer id.
  HttpRequest request(size_t index) const;
  TransferId id(size_t index) const;
  // Every id passed to Cancel(), in call order (including no-op calls).
  std::vector<TransferId> cancel_calls() const;
  // Transfers whose callback has not run yet, in sending order.
  std::vector<TransferId> pending() const;
  bool IsPending(TransferId id) const;

  // Runs the callback of transfer `id` with `result` on this thread. Returns false, running
  // nothing, when the transfer is unknown or already completed (the exactly-once rule).
  bool Complete(TransferId id, HttpResult result);
  bool CompleteNth(size_t index, HttpResult result);
  // Completes every cancelled transfer still pending with kCancelled; returns how many.
  size_t CompleteCancelled();

 private:
  struct Transfer {
    TransferId id;
    HttpRequest request;
    Callback callback;
    bool cancel_requested = false;
    bool completed = false;
  };

  mutable absl::Mutex mu_;
  std::vector<Transfer> transfers_ ABSL_GUARDED_BY(mu_);
  std::vector<TransferId> cancel_calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway::testing

#endif  // GATEWAY_TESTS_FAKES_FAKE_HTTP_TRANSPORT_H_
