#include "metrics/gateway_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gateway {

GatewayMetrics::GatewayMetrics(MetricsRegistry& registry)
    : registry_(registry),
      rpcs_(registry.AddCounter("gateway_rpcs_total", "RPCs answered, by method and gRPC code.",
                                {"method", "code"})),
      rpc_duration_(registry.AddHistogram("gateway_rpc_duration_seconds",
                                          "Time from an RPC's arrival to its answer.", {"method"},
                                          LatencyBuckets())),
      rpcs_in_flight_(
          registry.AddGauge("gateway_rpcs_in_flight", "RPCs not yet answered.").Unlabelled()),
      attempt_duration_(registry
                            .AddHistogram("gateway_upstream_attempt_duration_seconds",
                                          "One HTTP attempt to Twilio, response or failure.", {},
                                          LatencyBuckets())
                            .Unlabelled()),
      upstream_responses_(registry.AddCounter("gateway_upstream_responses_total",
                                              "Upstream attempts answered, by HTTP status.",
                                              {"status"})),
      upstream_failures_(registry.AddCounter(
          "gateway_upstream_failures_total",
          "Upstream attempts that got no response: connect, timeout or io.", {"kind"})),
      retries_(registry.AddCounter("gateway_retries_total",
                                   "Upstream attempts repeated, by the reason for the retry.",
                                   {"reason"})),
      replays_(registry
                   .AddCounter("gateway_idempotency_replays_total",
                               "RPCs answered from a stored outcome for a repeated key.")
                   .Unlabelled()),
      conflicts_(registry
                     .AddCounter("gateway_idempotency_conflicts_total",
                                 "RPCs refused: the key was used before for a different request.")
                     .Unlabelled()),
      limiter_rejections_(registry
                              .AddCounter("gateway_limiter_rejections_total",
                                          "RPCs shed because the upstream queue was full.")
                              .Unlabelled()),
      reloads_(registry.AddCounter("gateway_reloads_total",
                                   "Changed credential, token and policy files, by outcome.",
                                   {"what", "result"})),
      resolutions_(registry.AddCounter(
          "gateway_resolutions_total",
          "Ambiguous outcomes resolved in the background: started, resolved (Twilio answered), "
          "unknown (given up: the key window closed), handed_over (to the next claimant).",
          {"event"})) {}

void GatewayMetrics::Resolution(absl::string_view event) {
  resolutions_.WithLabels({event}).Increment();
}

void GatewayMetrics::RpcStarted() { rpcs_in_flight_.Add(1); }

void GatewayMetrics::RpcFinished(absl::string_view method, absl::StatusCode code,
                                 absl::string_view reason, bool replayed, absl::Duration latency) {
  rpcs_in_flight_.Add(-1);
  rpcs_.WithLabels({method, absl::StatusCodeToString(code)}).Increment();
  rpc_duration_.WithLabels({method}).Observe(absl::ToDoubleSeconds(latency));
  if (replayed) replays_.Increment();
  if (reason == "IDEMPOTENCY_KEY_REUSED") conflicts_.Increment();
  if (reason == "GATEWAY_QUEUE_FULL") limiter_rejections_.Increment();
}

void GatewayMetrics::UpstreamAttempt(int http_status, absl::string_view failure,
                                     absl::Duration latency) {
  attempt_duration_.Observe(absl::ToDoubleSeconds(latency));
  if (http_status != 0) {
    upstream_responses_.WithLabels({absl::StrCat(http_status)}).Increment();
  } else {
    upstream_failures_.WithLabels({failure}).Increment();
  }
}

void GatewayMetrics::Retry(absl::string_view reason) { retries_.WithLabels({reason}).Increment(); }

void GatewayMetrics::Reload(absl::string_view what, absl::string_view result) {
  reloads_.WithLabels({what, result}).Increment();
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

void GatewayMetrics::SetCredentialsLoaded(std::function<double()> loaded) {
  registry_.AddCallbackGauge("gateway_credentials_loaded",
                             "1 while valid Twilio credentials are loaded, else 0.",
                             std::move(loaded));
}

}  // namespace gateway
