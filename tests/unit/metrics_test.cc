#include "metrics/metrics.h"

#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/http_transport.h"
#include "metrics/gateway_metrics.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

prometheus::Family<prometheus::Counter>& Counters(MetricsRegistry& registry,
                                                  const std::string& name,
                                                  const std::string& help = "") {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry.registry());
}

prometheus::Family<prometheus::Gauge>& Gauges(MetricsRegistry& registry, const std::string& name,
                                              const std::string& help = "") {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry.registry());
}

prometheus::Family<prometheus::Histogram>& Histograms(MetricsRegistry& registry,
                                                      const std::string& name,
                                                      const std::string& help = "") {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry.registry());
}

// The sample line of a one-gauge registry holding `value`, without the name.
std::string GaugeText(double value) {
  MetricsRegistry registry;
  Gauges(registry, "g").Add({}).Set(value);
  const std::string text = registry.Serialize();
  const std::string prefix = "# TYPE g gauge\ng ";
  EXPECT_TRUE(text.starts_with(prefix)) << text;
  return text.substr(prefix.size());
}

TEST(MetricsRegistryTest, SerializesSmallRegistryExactly) {
  MetricsRegistry registry;
  auto& requests = Counters(registry, "gateway_requests_total", "RPCs received.");
  auto& in_flight = Gauges(registry, "gateway_in_flight", "RPCs in progress.");
  registry.AddCallbackGauge("gateway_uptime_seconds", "Seconds since start.", [] { return 12.5; });
  auto& latency = Histograms(registry, "gateway_latency_seconds", "RPC latency.");

  requests.Add({{"method", "Create"}, {"code", "OK"}}).Increment();
  requests.Add({{"method", "Create"}, {"code", "OK"}}).Increment(2);
  requests.Add({{"method", "Create"}, {"code", "INVALID_ARGUMENT"}}).Increment();
  in_flight.Add({}).Set(3);
  prometheus::Histogram& create_latency =
      latency.Add({{"method", "Create"}}, prometheus::Histogram::BucketBoundaries{0.25, 0.5, 1});
  create_latency.Observe(0.125);
  create_latency.Observe(0.25);  // A bound is inclusive: this is in the 0.25 bucket.
  create_latency.Observe(0.375);
  create_latency.Observe(3);

  // Families by name, series by labels, labels by name: one text for one state.
  EXPECT_EQ(registry.Serialize(),
            "# HELP gateway_in_flight RPCs in progress.\n"
            "# TYPE gateway_in_flight gauge\n"
            "gateway_in_flight 3\n"
            "# HELP gateway_latency_seconds RPC latency.\n"
            "# TYPE gateway_latency_seconds histogram\n"
            "gateway_latency_seconds_count{method=\"Create\"} 4\n"
            "gateway_latency_seconds_sum{method=\"Create\"} 3.75\n"
            "gateway_latency_seconds_bucket{method=\"Create\",le=\"0.25\"} 2\n"
            "gateway_latency_seconds_bucket{method=\"Create\",le=\"0.5\"} 3\n"
            "gateway_latency_seconds_bucket{method=\"Create\",le=\"1\"} 3\n"
            "gateway_latency_seconds_bucket{method=\"Create\",le=\"+Inf\"} 4\n"
            "# HELP gateway_requests_total RPCs received.\n"
            "# TYPE gateway_requests_total counter\n"
            "gateway_requests_total{code=\"INVALID_ARGUMENT\",method=\"Create\"} 1\n"
            "gateway_requests_total{code=\"OK\",method=\"Create\"} 3\n"
            "# HELP gateway_uptime_seconds Seconds since start.\n"
            "# TYPE gateway_uptime_seconds gauge\n"
            "gateway_uptime_seconds 12.5\n");
}

TEST(MetricsRegistryTest, FamilyWithoutChildrenIsNotExported) {
  MetricsRegistry registry;
  Gauges(registry, "g", "Help.");
  EXPECT_EQ(registry.Serialize(), "");
}

TEST(MetricsRegistryTest, ChildrenAreOrderedByLabelValues) {
  MetricsRegistry registry;
  auto& family = Gauges(registry, "g");
  family.Add({{"a", "y"}, {"b", "1"}}).Set(1);
  family.Add({{"a", "x"}, {"b", "2"}}).Set(2);
  family.Add({{"a", "x"}, {"b", "10"}}).Set(3);
  for (int i = 0; i < 50; ++i) family.Add({{"a", absl::StrCat("z", i)}, {"b", ""}});
  const std::string text = registry.Serialize();
  EXPECT_THAT(text, HasSubstr("g{a=\"x\",b=\"10\"} 3\n"
                              "g{a=\"x\",b=\"2\"} 2\n"
                              "g{a=\"y\",b=\"1\"} 1\n"
                              "g{a=\"z0\",b=\"\"} 0\n"
                              "g{a=\"z1\",b=\"\"} 0\n"
                              "g{a=\"z10\",b=\"\"} 0\n"));
  EXPECT_EQ(registry.Serialize(), text);
}

// prometheus-cpp 1.0 escapes label values but writes help text as it is: our help texts have no
// backslash or new line.
TEST(MetricsRegistryTest, EscapesLabelValues) {
  MetricsRegistry registry;
  Counters(registry, "c_total", "Help, with \"quotes\".").Add({{"v", "a\\b\"c\nd"}}).Increment();
  EXPECT_EQ(registry.Serialize(),
            "# HELP c_total Help, with \"quotes\".\n"
            "# TYPE c_total counter\n"
            "c_total{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsRegistryTest, FormatsNumbersAsPrometheusParsesThem) {
  EXPECT_EQ(GaugeText(0), "0\n");
  EXPECT_EQ(GaugeText(7), "7\n");
  EXPECT_EQ(GaugeText(-42), "-42\n");
  EXPECT_EQ(GaugeText(1e6), "1000000\n");
  EXPECT_EQ(GaugeText(123456789012345), "123456789012345\n");
  EXPECT_EQ(GaugeText(0.1), "0.1\n");
  EXPECT_EQ(GaugeText(-2.5), "-2.5\n");
  EXPECT_EQ(GaugeText(0.0005), "0.0005\n");
  EXPECT_EQ(GaugeText(1234567.25), "1234567.25\n");
  EXPECT_EQ(GaugeText(std::numeric_limits<double>::infinity()), "+Inf\n");
  EXPECT_EQ(GaugeText(-std::numeric_limits<double>::infinity()), "-Inf\n");
  // Go's ParseFloat, which Prometheus uses, takes NaN in any case.
  EXPECT_EQ(GaugeText(std::numeric_limits<double>::quiet_NaN()), "Nan\n");
}

TEST(MetricsRegistryTest, CallbackGaugeIsReadAtEachScrape) {
  MetricsRegistry registry;
  double value = 1;
  registry.AddCallbackGauge("g", "", [&value] { return value; });
  EXPECT_EQ(registry.Serialize(), "# TYPE g gauge\ng 1\n");
  value = 2;
  EXPECT_EQ(registry.Serialize(), "# TYPE g gauge\ng 2\n");
}

TEST(MetricsRegistryTest, RegistrationErrorsThrow) {
  MetricsRegistry registry;
  Gauges(registry, "g");
  EXPECT_THROW(Gauges(registry, "g"), std::invalid_argument);
  EXPECT_THROW(Counters(registry, "g"), std::invalid_argument);
  EXPECT_THROW(Gauges(registry, "a-b"), std::invalid_argument);
  registry.AddCallbackGauge("cb", "", [] { return 0.0; });
  EXPECT_THROW(registry.AddCallbackGauge("cb", "", [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(registry.AddCallbackGauge("1st", "", [] { return 0.0; }), std::invalid_argument);
  EXPECT_THROW(registry.AddCallbackGauge("empty", "", nullptr), std::invalid_argument);
}

TEST(LatencyBucketsTest, SpanHalfAMillisecondToThirtySecondsInIncreasingOrder) {
  const std::vector<double> buckets = LatencyBuckets();
  ASSERT_FALSE(buckets.empty());
  EXPECT_EQ(buckets.front(), 0.0005);
  EXPECT_EQ(buckets.back(), 30);
  for (size_t i = 1; i < buckets.size(); ++i) EXPECT_LT(buckets[i - 1], buckets[i]);
}

TEST(LatencyBucketsTest, BoundsAreWrittenAsBefore) {
  // Dashboards select buckets by these le values, written as our own exposition wrote them.
  MetricsRegistry registry;
  Histograms(registry, "h").Add({}, LatencyBuckets());
  const std::string text = registry.Serialize();
  for (const char* le : {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                         "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("h_bucket{le=\"", le, "\"} 0\n")));
  }
}

// Every name, help text and label set of gateway_metrics.h, as dashboards and alerts use them.
TEST(GatewayMetricsTest, ExportsTheDocumentedSeries) {
  MetricsRegistry registry;
  GatewayMetrics metrics(registry);
  const std::string before = registry.Serialize();
  // Unlabelled families are there before their first event.
  for (const char* zero :
       {"gateway_rpcs_in_flight 0\n", "gateway_idempotency_replays_total 0\n",
        "gateway_idempotency_conflicts_total 0\n", "gateway_limiter_rejections_total 0\n",
        "gateway_upstream_attempt_duration_seconds_count 0\n"}) {
    EXPECT_THAT(before, HasSubstr(zero));
  }

  metrics.RpcStarted();
  metrics.RpcStarted();
  metrics.RpcFinished("Create", absl::StatusCode::kOk, "", /*replayed=*/true,
                      absl::Milliseconds(3));
  metrics.RpcFinished("Create", absl::StatusCode::kFailedPrecondition, "IDEMPOTENCY_KEY_REUSED",
                      false, absl::Milliseconds(3));
  metrics.RpcStarted();
  metrics.RpcFinished("Create", absl::StatusCode::kResourceExhausted, "GATEWAY_QUEUE_FULL", false,
                      absl::Milliseconds(3));
  metrics.RpcStarted();
  // Labels as twilio/attempt.h's ClassifyAttempt gives them (tested there).
  metrics.UpstreamAttempt(201, "", absl::Milliseconds(2));
  metrics.UpstreamAttempt(503, "", absl::Milliseconds(2));
  metrics.UpstreamAttempt(0, "timeout", absl::Seconds(1));
  metrics.Retry("server_error");
  metrics.Retry("throttled");
  metrics.Retry("connection_lost");
  metrics.Reload("credentials", "loaded");
  metrics.Resolution("started");
  metrics.SetUpstreamGauges([] { return 4.0; }, [] { return 5.0; });
  metrics.SetCredentialsLoaded([] { return 1.0; });
  metrics.SetLogLinesDropped([] { return 7.0; });

  const std::string text = registry.Serialize();
  for (const char* line : {
           "# HELP gateway_rpcs_total RPCs answered, by method and gRPC code.\n",
           "# TYPE gateway_rpcs_total counter\n",
           "gateway_rpcs_total{code=\"OK\",method=\"Create\"} 1\n",
           "gateway_rpcs_total{code=\"FAILED_PRECONDITION\",method=\"Create\"} 1\n",
           "# HELP gateway_rpc_duration_seconds Time from an RPC's arrival to its answer.\n",
           "# TYPE gateway_rpc_duration_seconds histogram\n",
           "gateway_rpc_duration_seconds_count{method=\"Create\"} 3\n",
           "gateway_rpc_duration_seconds_bucket{method=\"Create\",le=\"0.005\"} 3\n",
           "# HELP gateway_rpcs_in_flight RPCs not yet answered.\n",
           "# TYPE gateway_rpcs_in_flight gauge\n",
           "gateway_rpcs_in_flight 1\n",
           "# HELP gateway_upstream_attempt_duration_seconds One HTTP attempt to Twilio, response "
           "or failure.\n",
           "gateway_upstream_attempt_duration_seconds_count 3\n",
           "gateway_upstream_attempt_duration_seconds_bucket{le=\"0.0025\"} 2\n",
           "# HELP gateway_upstream_responses_total Upstream attempts answered, by HTTP status.\n",
           "gateway_upstream_responses_total{status=\"201\"} 1\n",
           "gateway_upstream_responses_total{status=\"503\"} 1\n",
           "# HELP gateway_upstream_failures_total Upstream attempts that got no response: "
           "connect, timeout or io.\n",
           "gateway_upstream_failures_total{kind=\"timeout\"} 1\n",
           "# HELP gateway_retries_total Upstream attempts repeated, by the reason for the "
           "retry.\n",
           "gateway_retries_total{reason=\"server_error\"} 1\n",
           "gateway_retries_total{reason=\"throttled\"} 1\n",
           "gateway_retries_total{reason=\"connection_lost\"} 1\n",
           "# HELP gateway_idempotency_replays_total RPCs answered from a stored outcome for a "
           "repeated key.\n",
           "gateway_idempotency_replays_total 1\n",
           "# HELP gateway_idempotency_conflicts_total RPCs refused: the key was used before for a "
           "different request.\n",
           "gateway_idempotency_conflicts_total 1\n",
           "# HELP gateway_limiter_rejections_total RPCs shed because the upstream queue was "
           "full.\n",
           "gateway_limiter_rejections_total 1\n",
           "# HELP gateway_reloads_total Changed credential, token and policy files, by outcome.\n",
           "gateway_reloads_total{result=\"loaded\",what=\"credentials\"} 1\n",
           "# HELP gateway_resolutions_total Ambiguous outcomes resolved in the background: "
           "started, resolved (Twilio answered), unknown (given up: the key window closed), "
           "handed_over (to the next claimant).\n",
           "gateway_resolutions_total{event=\"started\"} 1\n",
           "# HELP gateway_upstream_in_flight Upstream requests holding a concurrency permit.\n",
           "# TYPE gateway_upstream_in_flight gauge\n",
           "gateway_upstream_in_flight 4\n",
           "# HELP gateway_upstream_queued Requests waiting for an upstream concurrency permit.\n",
           "gateway_upstream_queued 5\n",
           "# HELP gateway_credentials_loaded 1 while valid Twilio credentials are loaded, else "
           "0.\n",
           "gateway_credentials_loaded 1\n",
           "# TYPE gateway_log_lines_dropped_total counter\n",
           "gateway_log_lines_dropped_total 7\n",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  EXPECT_THAT(text, Not(HasSubstr("IDEMPOTENCY_KEY_REUSED"))) << "reasons are not labels";
}

}  // namespace
}  // namespace gateway
