#include "metrics/gateway_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gateway {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Histogram;

Family<Counter>& CounterFamily(MetricsRegistry& registry, const std::string& name,
                               const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry.registry());
}

// A family without labels gets its one child now, so it is exported as 0 before the first
// update rather than appearing out of nowhere.
Counter& UnlabelledCounter(MetricsRegistry& registry, const std::string& name,
                           const std::string& help) {
  return CounterFamily(registry, name, help).Add({});
}

Family<Histogram>& HistogramFamily(MetricsRegistry& registry, const std::string& name,
                                   const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry.registry());
}

// Label values are views of fixed strings; prometheus-cpp keys its children by a map of copies.
prometheus::Labels Label(const char* name, absl::string_view value) {
  return {{name, std::string(value)}};
}

// The RPCs' index in the caches, or -1.
int MethodIndex(absl::string_view method) {
  if (method == "Create") return 0;
  if (method == "Delete") return 1;
  if (method == "Send") return 2;
  return -1;
}

}  // namespace

GatewayMetrics::GatewayMetrics(MetricsRegistry& registry)
    : registry_(registry),
      rpcs_(
          CounterFamily(registry, "gateway_rpcs_total", "RPCs answered, by method and gRPC code.")),
      rpc_duration_(HistogramFamily(registry, "gateway_rpc_duration_seconds",
                                    "Time from an RPC's arrival to its answer.")),
      rpcs_in_flight_(prometheus::BuildGauge()
                          .Name("gateway_rpcs_in_flight")
                          .Help("RPCs not yet answered.")
                          .Register(registry.registry())
                          .Add({})),
      attempt_duration_(HistogramFamily(registry, "gateway_upstream_attempt_duration_seconds",
                                        "One HTTP attempt to Twilio, response or failure.")
                            .Add({}, LatencyBuckets())),
      upstream_responses_(CounterFamily(registry, "gateway_upstream_responses_total",
                                        "Upstream attempts answered, by HTTP status.")),
      upstream_failures_(
          CounterFamily(registry, "gateway_upstream_failures_total",
                        "Upstream attempts that got no response: connect, timeout or io.")),
      retries_(CounterFamily(registry, "gateway_retries_total",
                             "Upstream attempts repeated, by the reason for the retry.")),
      replays_(UnlabelledCounter(registry, "gateway_idempotency_replays_total",
                                 "RPCs answered from a stored outcome for a repeated key.")),
      conflicts_(
          UnlabelledCounter(registry, "gateway_idempotency_conflicts_total",
                            "RPCs refused: the key was used before for a different request.")),
      limiter_rejections_(UnlabelledCounter(registry, "gateway_limiter_rejections_total",
                                            "RPCs shed because the upstream queue was full.")),
      reloads_(CounterFamily(registry, "gateway_reloads_total",
                             "Changed credential, token and policy files, by outcome.")),
      resolutions_(CounterFamily(
          registry, "gateway_resolutions_total",
          "Ambiguous outcomes resolved in the background: started, resolved (Twilio answered), "
          "unknown (given up: the key window closed), handed_over (to the next claimant).")),
      webhook_deliveries_(CounterFamily(
          registry, "gateway_webhook_requests_total",
          "Requests to the Twilio webhook receiver, by result: stored, duplicate, or the reason "
          "refused.")),
      watch_messages_(CounterFamily(registry, "gateway_watch_messages_sent_total",
                                    "Messages written to Watch streams.")
                          .Add({})) {}

void GatewayMetrics::WebhookDelivery(absl::string_view result) {
  webhook_deliveries_.Add(Label("result", result)).Increment();
}

void GatewayMetrics::WatchMessagesSent(int count) { watch_messages_.Increment(count); }

void GatewayMetrics::SetWatchers(std::function<double()> watchers) {
  registry_.AddCallbackGauge("gateway_watch_streams", "Watch streams open.", std::move(watchers));
}

void GatewayMetrics::Resolution(absl::string_view event) {
  resolutions_.Add(Label("event", event)).Increment();
}

void GatewayMetrics::RpcStarted() { rpcs_in_flight_.Increment(); }

void GatewayMetrics::RpcFinished(absl::string_view method, absl::StatusCode code,
                                 absl::string_view reason, bool replayed, absl::Duration latency) {
  rpcs_in_flight_.Decrement();
  auto count = [&]() -> Counter& {
    return rpcs_.Add({{"method", std::string(method)}, {"code", absl::StatusCodeToString(code)}});
  };
  auto duration = [&]() -> Histogram& {
    return rpc_duration_.Add(Label("method", method), LatencyBuckets());
  };
  const int index = MethodIndex(method);
  const auto code_index = static_cast<size_t>(code);
  if (index >= 0 && code_index < kCodes) {
    rpc_counts_.Get(index * kCodes + code_index, count).Increment();
    rpc_durations_.Get(index, duration).Observe(absl::ToDoubleSeconds(latency));
  } else {
    count().Increment();
    duration().Observe(absl::ToDoubleSeconds(latency));
  }
  if (replayed) replays_.Increment();
  if (reason == "IDEMPOTENCY_KEY_REUSED") conflicts_.Increment();
  if (reason == "GATEWAY_QUEUE_FULL") limiter_rejections_.Increment();
}

void GatewayMetrics::UpstreamAttempt(int http_status, absl::string_view failure,
                                     absl::Duration latency) {
  attempt_duration_.Observe(absl::ToDoubleSeconds(latency));
  if (http_status != 0) {
    auto count = [&]() -> Counter& {
      return upstream_responses_.Add(Label("status", absl::StrCat(http_status)));
    };
    if (http_status > 0 && static_cast<size_t>(http_status) < kStatuses) {
      response_counts_.Get(http_status, count).Increment();
    } else {
      count().Increment();
    }
  } else {
    upstream_failures_.Add(Label("kind", failure)).Increment();
  }
}

void GatewayMetrics::Retry(absl::string_view reason) {
  retries_.Add(Label("reason", reason)).Increment();
}

void GatewayMetrics::Reload(absl::string_view what, absl::string_view result) {
  reloads_.Add({{"what", std::string(what)}, {"result", std::string(result)}}).Increment();
}

void GatewayMetrics::SetUpstreamGauges(std::function<double()> in_flight,
                                       std::function<double()> queued) {
  registry_.AddCallbackGauge("gateway_upstream_in_flight",
                             "Upstream requests holding a concurrency permit.",
                             std::move(in_flight));
  registry_.AddCallbackGauge("gateway_upstream_queued",
                             "Requests waiting for an upstream concurrency permit.",
                             std::move(queued));
}

void GatewayMetrics::SetAccountLimits(std::function<MetricsRegistry::LabelledValues()> limits) {
  registry_.AddCallbackGaugeFamily("gateway_account_limit",
                                   "Upstream permits this replica may hold for the account now.",
                                   "account", std::move(limits));
}

void GatewayMetrics::SetCredentialsLoaded(std::function<double()> loaded) {
  registry_.AddCallbackGauge("gateway_credentials_loaded",
                             "1 while valid Twilio credentials are loaded, else 0.",
                             std::move(loaded));
}

void GatewayMetrics::SetLogLinesDropped(std::function<double()> dropped) {
  registry_.AddCallbackCounter("gateway_log_lines_dropped_total",
                               "Log lines dropped because stderr could not keep up.",
                               std::move(dropped));
}

}  // namespace gateway
