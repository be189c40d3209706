// The gateway's Prometheus metrics, named in one place, with one method per event so the code
// that reports them reads as what happened rather than as metric plumbing.
//
//   gateway_rpcs_total{method,code}                     RPCs answered
//   gateway_rpc_duration_seconds{method}                from arrival to answer
//   gateway_rpcs_in_flight                              RPCs not yet answered
//   gateway_upstream_attempt_duration_seconds           one HTTP attempt to Twilio
//   gateway_upstream_responses_total{status}            Twilio's HTTP status per attempt
//   gateway_upstream_failures_total{kind}               attempts with no response
//   gateway_retries_total{reason}                       attempts repeated, and why
//   gateway_idempotency_replays_total                   stored outcomes answered again
//   gateway_idempotency_conflicts_total                 keys reused for a different request
//   gateway_limiter_rejections_total                    RPCs shed: the upstream queue was full
//   gateway_upstream_in_flight / gateway_upstream_queued  upstream permits held / waited for
//   gateway_account_limit{account}                     permits this replica may hold for an
//                                                       account now (its adaptive limit, or its
//                                                       lease of the fleet's)
//   gateway_reloads_total{what,result}                  credential, token and policy reloads
//   gateway_credentials_loaded                          1 while Twilio credentials are loaded
//   gateway_log_lines_dropped_total                     log lines dropped: stderr was stalled
//   gateway_resolutions_total{event}                    background resolutions of ambiguous
//                                                       outcomes: started, resolved, unknown,
//                                                       handed_over
//
// Labels hold only bounded values: method names, status codes, fixed reasons. Never a caller,
// key, SID or anything a request chose. The one exception is gateway_account_limit's account: a
// validated account SID (AC and 32 hex digits) that the caller policy allowed, present only while
// the limiter tracks it (idle accounts are dropped after a minute).
//
// Thread-safety: every method is safe from any thread.
#ifndef GATEWAY_METRICS_GATEWAY_METRICS_H_
#define GATEWAY_METRICS_GATEWAY_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "metrics/metrics.h"

namespace gateway {

class GatewayMetrics {
 public:
  explicit GatewayMetrics(MetricsRegistry& registry);

  void RpcStarted();
  // `reason` is the ErrorInfo reason of a failed RPC ("" when OK or none).
  void RpcFinished(absl::string_view method, absl::StatusCode code, absl::string_view reason,
                   bool replayed, absl::Duration latency);

  // One attempt ended: with Twilio's `http_status`, or with none (0) and the `failure` kind
  // (connect, timeout, io, cancelled). Labels come from twilio/attempt.h's classification.
  void UpstreamAttempt(int http_status, absl::string_view failure, absl::Duration latency);
  // An attempt is repeated, for `reason` (throttled, server_error, timeout, ...).
  void Retry(absl::string_view reason);

  void Reload(absl::string_view what, absl::string_view result);

  // `event`: started, resolved, unknown or handed_over.
  void Resolution(absl::string_view event);

  // A webhook request answered: `result` is stored, duplicate, or why it was refused (a fixed
  // label from the receiver: bad_signature, malformed, unknown_account, too_large, ...).
  void WebhookDelivery(absl::string_view result);
  // Watch streams: messages written to subscribers.
  void WatchMessagesSent(int count);
  void SetWatchers(std::function<double()> watchers);

  // Gauges read at scrape time.
  void SetUpstreamGauges(std::function<double()> in_flight, std::function<double()> queued);
  void SetCredentialsLoaded(std::function<double()> loaded);
  void SetAccountLimits(std::function<MetricsRegistry::LabelledValues()> limits);
  // Read at scrape time too: log lines dropped because stderr could not keep up.
  void SetLogLinesDropped(std::function<double()> dropped);

 private:
  // A family's children by a small index, each found once: prometheus-cpp's Family::Add builds
  // a label map, hashes it and takes the family's lock on every call, which made the three
  // labelled updates of a Create cost 4,000 instructions (callgrind) instead of 600.
  template <typename T, size_t N>
  class Children {
   public:
    // The child at `index` (< N), added by `add` the first time; a race adds it twice, and
    // Family::Add returns the same child both times.
    template <typename Add>
    T& Get(size_t index, Add add) {
      T* child = children_[index].load(std::memory_order_acquire);
      if (child == nullptr) {
        child = &add();
        children_[index].store(child, std::memory_order_release);
      }
      return *child;
    }

   private:
    std::array<std::atomic<T*>, N> children_{};
  };
  static constexpr size_t kMethods = 3;  // Create, Delete, Send; others go uncached.
  static constexpr size_t kCodes = 17;   // absl::StatusCode 0..16.
  static constexpr size_t kStatuses = 600;

  MetricsRegistry& registry_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Gauge& rpcs_in_flight_;
  prometheus::Histogram& attempt_duration_;
  prometheus::Family<prometheus::Counter>& upstream_responses_;
  prometheus::Family<prometheus::Counter>& upstream_failures_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Counter& replays_;
  prometheus::Counter& conflicts_;
  prometheus::Counter& limiter_rejections_;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Family<prometheus::Counter>& resolutions_;
  prometheus::Family<prometheus::Counter>& webhook_deliveries_;
  prometheus::Counter& watch_messages_;
  Children<prometheus::Counter, kMethods * kCodes> rpc_counts_;
  Children<prometheus::Histogram, kMethods> rpc_durations_;
  Children<prometheus::Counter, kStatuses> response_counts_;
};

}  // namespace gateway

#endif  // GATEWAY_METRICS_GATEWAY_METRICS_H_
