#include "metrics/metrics.h"

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;

// The sample line of a one-gauge registry holding `value`, without the name.
std::string GaugeText(double value) {
  MetricsRegistry registry;
  registry.AddGauge("g", "").WithLabels({}).Set(value);
  const std::string text = registry.Serialize();
  const std::string prefix = "# TYPE g gauge\ng ";
  EXPECT_TRUE(text.starts_with(prefix)) << text;
  return text.substr(prefix.size());
}

TEST(MetricsRegistryTest, SerializesSmallRegistryExactly) {
  MetricsRegistry registry;
  CounterFamily& requests =
      registry.AddCounter("gateway_requests_total", "RPCs received.", {"method", "code"});
  GaugeFamily& in_flight = registry.AddGauge("gateway_in_flight", "RPCs in progress.");
  registry.AddCallbackGauge("gateway_uptime_seconds", "Seconds since start.", [] { return 12.5; });
  HistogramFamily& latency =
      registry.AddHistogram("gateway_latency_seconds", "RPC latency.", {"method"}, {0.25, 0.5, 1});

  requests.WithLabels({"Create", "OK"}).Increment();
  requests.WithLabels({"Create", "OK"}).Increment(2);
  requests.WithLabels({"Create", "INVALID_ARGUMENT"}).Increment();
  in_flight.WithLabels({}).Set(3);
  Histogram& create_latency = latency.WithLabels({"Create"});
  create_latency.Observe(0.125);
  create_latency.Observe(0.25);  // A bound is inclusive: this is in the 0.25 bucket.
  create_latency.Observe(0.375);
  create_latency.Observe(3);

  EXPECT_EQ(registry.Serialize(),
            "# HELP gateway_requests_total RPCs received.\n"
            "# TYPE gateway_requests_total counter\n"
            "gateway_requests_total{method=\"Create\",code=\"INVALID_ARGUMENT\"} 1\n"
            "gateway_requests_total{method=\"Create\",code=\"OK\"} 3\n"
            "# HELP gateway_in_flight RPCs in progress.\n"
            "# TYPE gateway_in_flight gauge\n"
            "gateway_in_flight 3\n"
            "# HELP gateway_uptime_seconds Seconds since start.\n"
            "# TYPE gateway_uptime_seconds gauge\n"
            "gateway_uptime_seconds 12.5\n"
            "# HELP gateway_latency_seconds RPC latency.\n"
            "# TYPE gateway_latency_seconds histogram\n"
            "gateway_latency_seconds_bucket{method=\"Create\",le=\"0.25\"} 2\n"
            "gateway_latency_seconds_bucket{method=\"Create\",le=\"0.5\"} 3\n"
            "gateway_latency_seconds_bucket{method=\"Create\",le=\"1\"} 3\n"
            "gateway_latency_seconds_bucket{method=\"Create\",le=\"+Inf\"} 4\n"
            "gateway_latency_seconds_sum{method=\"Create\"} 3.75\n"
            "gateway_latency_seconds_count{method=\"Create\"} 4\n");
}

TEST(MetricsRegistryTest, UnlabelledFamiliesAreExportedBeforeFirstUpdate) {
  MetricsRegistry registry;
  registry.AddCounter("a_total", "");
  registry.AddHistogram("h", "", {}, {1});
  EXPECT_EQ(registry.Serialize(),
            "# TYPE a_total counter\n"
            "a_total 0\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\n"
            "h_bucket{le=\"+Inf\"} 0\n"
            "h_sum 0\n"
            "h_count 0\n");
}

TEST(MetricsRegistryTest, LabelledFamilyWithoutChildrenHasOnlyItsHeader) {
  MetricsRegistry registry;
  registry.AddGauge("g", "Help.", {"kind"});
  EXPECT_EQ(registry.Serialize(), "# HELP g Help.\n# TYPE g gauge\n");
}

TEST(MetricsRegistryTest, ChildrenAreOrderedByLabelValues) {
  MetricsRegistry registry;
  GaugeFamily& family = registry.AddGauge("g", "", {"a", "b"});
  family.WithLabels({"y", "1"}).Set(1);
  family.WithLabels({"x", "2"}).Set(2);
  family.WithLabels({"x", "10"}).Set(3);
  EXPECT_EQ(registry.Serialize(),
            "# TYPE g gauge\n"
            "g{a=\"x\",b=\"10\"} 3\n"
            "g{a=\"x\",b=\"2\"} 2\n"
            "g{a=\"y\",b=\"1\"} 1\n");
}

TEST(MetricsRegistryTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  registry.AddCounter("c_total", "Back\\slash, \"quotes\"\nand a new line.", {"v"})
      .WithLabels({"a\\b\"c\nd"})
      .Increment();
  EXPECT_EQ(registry.Serialize(),
            "# HELP c_total Back\\\\slash, \"quotes\"\\nand a new line.\n"
            "# TYPE c_total counter\n"
            "c_total{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsRegistryTest, ReplacesInvalidUtf8InLabelValues) {
  MetricsRegistry registry;
  GaugeFamily& family = registry.AddGauge("g", "", {"v"});
  family.WithLabels({"caf\xC3\xA9"}).Set(1);  // Valid: kept.
  family
      .WithLabels({"a\xFF"
                   "b\xC3"})
      .Set(2);                                 // Stray byte and truncated sequence.
  family.WithLabels({"\xED\xA0\x80"}).Set(3);  // A UTF-16 surrogate.
  family.WithLabels({"\xC0\xAF"}).Set(4);      // Overlong '/'.
  const std::string text = registry.Serialize();
  EXPECT_THAT(text, HasSubstr("g{v=\"caf\xC3\xA9\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("g{v=\"a\xEF\xBF\xBD"
                              "b\xEF\xBF\xBD\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("g{v=\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("g{v=\"\xEF\xBF\xBD\xEF\xBF\xBD\"} 4\n"));
}

TEST(MetricsRegistryTest, FormatsNumbersAsPrometheusParsesThem) {
  EXPECT_EQ(GaugeText(0), "0\n");
  EXPECT_EQ(GaugeText(-0.0), "0\n");
  EXPECT_EQ(GaugeText(7), "7\n");
  EXPECT_EQ(GaugeText(-42), "-42\n");
  EXPECT_EQ(GaugeText(1e6), "1000000\n");
  EXPECT_EQ(GaugeText(123456789012345), "123456789012345\n");
  EXPECT_EQ(GaugeText(1e20), "100000000000000000000\n");
  EXPECT_EQ(GaugeText(1e21), "1e+21\n");
  EXPECT_EQ(GaugeText(0.1), "0.1\n");
  EXPECT_EQ(GaugeText(-2.5), "-2.5\n");
  EXPECT_EQ(GaugeText(0.0005), "0.0005\n");
  EXPECT_EQ(GaugeText(0.0001), "0.0001\n");
  EXPECT_EQ(GaugeText(1234567.25), "1234567.25\n");
  EXPECT_EQ(GaugeText(1.5e-7), "1.5e-07\n");
  EXPECT_EQ(GaugeText(-3e-5), "-3e-05\n");
  EXPECT_EQ(GaugeText(std::numeric_limits<double>::infinity()), "+Inf\n");
  EXPECT_EQ(GaugeText(-std::numeric_limits<double>::infinity()), "-Inf\n");
  EXPECT_EQ(GaugeText(std::numeric_limits<double>::quiet_NaN()), "NaN\n");
}

TEST(MetricsRegistryTest, WrongNumberOfLabelValuesIsDiscardedNotExported) {
  MetricsRegistry registry;
  CounterFamily& family = registry.AddCounter("c_total", "", {"a", "b"});
  Counter& too_few = family.WithLabels({"x"});
  Counter& too_many = family.WithLabels({"x", "y", "z"});
  EXPECT_EQ(&too_few, &too_many);
  too_few.Increment();
  too_many.Increment();
  EXPECT_EQ(too_few.Value(), 2);
  EXPECT_EQ(registry.Serialize(), "# TYPE c_total counter\n");
  family.WithLabels({"x", "y"}).Increment();
  EXPECT_EQ(registry.Serialize(), "# TYPE c_total counter\nc_total{a=\"x\",b=\"y\"} 1\n");
}

TEST(MetricsRegistryTest, WithLabelsReturnsTheSameChildForTheSameValues) {
  MetricsRegistry registry;
  HistogramFamily& family = registry.AddHistogram("h", "", {"route"}, {1});
  Histogram& first = family.WithLabels({"a"});
  for (int i = 0; i < 1000; ++i) family.WithLabels({absl::StrCat("other", i)});
  EXPECT_EQ(&family.WithLabels({"a"}), &first);
  const std::vector<std::string> values = {"a"};
  EXPECT_EQ(&family.WithLabels(values), &first);
}

TEST(MetricsRegistryTest, TrailingInfiniteBoundIsTheImplicitBucket) {
  MetricsRegistry registry;
  registry.AddHistogram("h", "", {}, {1, std::numeric_limits<double>::infinity()})
      .WithLabels({})
      .Observe(5);
  EXPECT_EQ(registry.Serialize(),
            "# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\n"
            "h_bucket{le=\"+Inf\"} 1\n"
            "h_sum 5\n"
            "h_count 1\n");
}

TEST(MetricsRegistryTest, CallbackGaugeIsReadAtEachScrape) {
  MetricsRegistry registry;
  double value = 1;
  registry.AddCallbackGauge("g", "", [&value] { return value; });
  EXPECT_EQ(registry.Serialize(), "# TYPE g gauge\ng 1\n");
  value = 2;
  EXPECT_EQ(registry.Serialize(), "# TYPE g gauge\ng 2\n");
}

TEST(CounterTest, CountsWholeAndFractionalIncrements) {
  Counter counter;
  EXPECT_EQ(counter.Value(), 0);
  counter.Increment();
  counter.Increment(3);
  counter.Increment(0.25);
  counter.Increment(0.5);
  EXPECT_EQ(counter.Value(), 4.75);
}

TEST(CounterTest, IgnoresIncrementsThatAreNotPositive) {
  Counter counter;
  counter.Increment(2);
  counter.Increment(-1);
  counter.Increment(0);
  counter.Increment(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(counter.Value(), 2);
}

TEST(GaugeTest, SetsAndAdds) {
  Gauge gauge;
  gauge.Set(5);
  gauge.Add(-1.5);
  gauge.Add(0.5);
  EXPECT_EQ(gauge.Value(), 4);
}

TEST(HistogramTest, CountsAndSumsObservations) {
  Histogram histogram({1, 2});
  histogram.Observe(0.5);
  histogram.Observe(2);
  histogram.Observe(10);
  histogram.Observe(std::numeric_limits<double>::quiet_NaN());  // Ignored.
  EXPECT_EQ(histogram.Count(), 3u);
  EXPECT_EQ(histogram.Sum(), 12.5);
}

TEST(LatencyBucketsTest, SpanHalfAMillisecondToThirtySecondsInIncreasingOrder) {
  const std::vector<double> buckets = LatencyBuckets();
  ASSERT_FALSE(buckets.empty());
  EXPECT_EQ(buckets.front(), 0.0005);
  EXPECT_EQ(buckets.back(), 30);
  for (size_t i = 1; i < buckets.size(); ++i) EXPECT_LT(buckets[i - 1], buckets[i]);
  MetricsRegistry registry;
  registry.AddHistogram("h", "", {}, buckets);  // Accepted as they are.
  EXPECT_THAT(registry.Serialize(), HasSubstr("h_bucket{le=\"0.0005\"} 0\n"));
}

TEST(MetricsConcurrencyTest, ConcurrentIncrementsAreAllCounted) {
  MetricsRegistry registry;
  CounterFamily& family = registry.AddCounter("c_total", "", {"k"});
  HistogramFamily& histograms = registry.AddHistogram("h", "", {"k"}, {0.5});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&family, &histograms, t] {
      // Each thread looks the children up itself, racing to create them.
      Counter& shared = family.WithLabels({"shared"});
      Counter& halves = family.WithLabels({"halves"});
      Histogram& histogram = histograms.WithLabels({"shared"});
      family.WithLabels({absl::StrCat("thread", t)}).Increment();
      for (int i = 0; i < kPerThread; ++i) {
        shared.Increment();
        halves.Increment(0.5);
        histogram.Observe(i % 2);
      }
    });
  }
  // Scrapes while the writers run must not disturb them.
  for (int i = 0; i < 20; ++i) EXPECT_THAT(registry.Serialize(), HasSubstr("# TYPE h histogram"));
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(family.WithLabels({"shared"}).Value(), kThreads * kPerThread);
  EXPECT_EQ(family.WithLabels({"halves"}).Value(), kThreads * kPerThread / 2);
  EXPECT_EQ(histograms.WithLabels({"shared"}).Count(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(histograms.WithLabels({"shared"}).Sum(), kThreads * kPerThread / 2);
  const std::string text = registry.Serialize();
  EXPECT_THAT(text, HasSubstr("c_total{k=\"shared\"} 800000\n"));
  EXPECT_THAT(text, HasSubstr("h_bucket{k=\"shared\",le=\"0.5\"} 400000\n"));
  EXPECT_THAT(text, HasSubstr("h_count{k=\"shared\"} 800000\n"));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("c_total{k=\"thread", t, "\"} 1\n")));
  }
}

TEST(MetricsRegistryDeathTest, CounterNameMustEndInTotal) {
  MetricsRegistry registry;
  EXPECT_DEATH(registry.AddCounter("requests", ""), "must end in _total");
}

TEST(MetricsRegistryDeathTest, RejectsInvalidMetricName) {
  MetricsRegistry registry;
  EXPECT_DEATH(registry.AddGauge("1st", ""), "invalid metric name");
  EXPECT_DEATH(registry.AddGauge("a-b", ""), "invalid metric name");
  EXPECT_DEATH(registry.AddGauge("", ""), "invalid metric name");
}

TEST(MetricsRegistryDeathTest, RejectsInvalidLabelNames) {
  MetricsRegistry registry;
  EXPECT_DEATH(registry.AddGauge("g", "", {"__reserved"}), "invalid label name");
  EXPECT_DEATH(registry.AddGauge("g", "", {"a:b"}), "invalid label name");
  EXPECT_DEATH(registry.AddGauge("g", "", {"a", "a"}), "duplicate label name");
  EXPECT_DEATH(registry.AddHistogram("h", "", {"le"}, {1}), "label named le");
}

TEST(MetricsRegistryDeathTest, RejectsDuplicateSampleNames) {
  MetricsRegistry registry;
  registry.AddGauge("g", "");
  registry.AddHistogram("rpc_seconds", "", {}, {1});
  EXPECT_DEATH(registry.AddGauge("g", ""), "already registered");
  EXPECT_DEATH(registry.AddCallbackGauge("g", "", [] { return 0.0; }), "already registered");
  EXPECT_DEATH(registry.AddGauge("rpc_seconds_count", ""), "already registered");
}

TEST(MetricsRegistryDeathTest, RejectsBadBucketBounds) {
  MetricsRegistry registry;
  EXPECT_DEATH(registry.AddHistogram("h", "", {}, {2, 1}), "strictly increasing");
  EXPECT_DEATH(registry.AddHistogram("h", "", {}, {1, 1}), "strictly increasing");
  EXPECT_DEATH(registry.AddHistogram("h", "", {}, {std::numeric_limits<double>::quiet_NaN()}),
               "finite");
}

}  // namespace
}  // namespace gateway
