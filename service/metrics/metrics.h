// Prometheus metrics on prometheus-cpp's core library: its registry, counters, gauges and
// histograms hold the values, and its text serializer writes the exposition format 0.0.4 for the
// scrape endpoint in metrics_http_server.h. This file adds the two things prometheus-cpp 1.0 does
// not have: gauges read at scrape time, and one deterministic order of the output.
//
// Usage: build every family once at startup on registry(), then keep the children.
//   MetricsRegistry registry;
//   prometheus::Family<prometheus::Counter>& requests = prometheus::BuildCounter()
//       .Name("gateway_requests_total").Help("RPCs received.").Register(registry.registry());
//   prometheus::Counter& created_ok = requests.Add({{"method", "Create"}, {"code", "OK"}});
//   created_ok.Increment();
//
// Registration errors (an invalid metric or label name, a name registered twice, unsorted bucket
// bounds) are programming errors: prometheus-cpp throws, and as nothing catches it at startup the
// process stops there. prometheus-cpp escapes label values but does not repair invalid UTF-8, so
// label values must be fixed strings, never request data (which the gateway's rule already is);
// it writes help text unescaped, so help text has no backslash or new line.
//
// Thread-safety: everything is safe from any thread. Serialize() runs the callback gauges on the
// calling thread, without any lock of the registry held.
#ifndef GATEWAY_METRICS_METRICS_H_
#define GATEWAY_METRICS_METRICS_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace gateway {

class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;
  ~MetricsRegistry();

  // Where families are built (prometheus::BuildCounter() ... .Register(registry())). A second
  // family of the same name throws.
  prometheus::Registry& registry() { return *registry_; }

  // An unlabelled gauge whose value is `read()` at each scrape. `read` must be cheap and safe to
  // call from any thread. A name used twice throws std::invalid_argument.
  void AddCallbackGauge(absl::string_view name, absl::string_view help,
                        std::function<double()> read);
  // The same for a counter whose total another module keeps (it must never decrease).
  void AddCallbackCounter(absl::string_view name, absl::string_view help,
                          std::function<double()> read);
  // Gauges with one label, `label`, whose series are `read()` at each scrape: (value of the
  // label, gauge) pairs. The label values must be valid UTF-8 and few (they become series).
  using LabelledValues = std::vector<std::pair<std::string, double>>;
  void AddCallbackGaugeFamily(absl::string_view name, absl::string_view help,
                              absl::string_view label, std::function<LabelledValues()> read);

  // Every family, sorted by name, each family's series sorted by their labels, so that two
  // scrapes of the same state are the same text (prometheus-cpp's own order follows its
  // unordered_map).
  std::vector<prometheus::MetricFamily> Collect() const;
  // Text format 0.0.4.
  std::string Serialize() const;

 private:
  class CallbackGauges;

  const std::unique_ptr<prometheus::Registry> registry_;
  const std::unique_ptr<CallbackGauges> callback_gauges_;
};

// Upper bounds in seconds, 0.5 ms to 10 s in 1-2.5-5 steps and then 30 s: fine enough for an
// in-process check at the low end, and still bucketing Twilio's slowest answers at the high end.
std::vector<double> LatencyBuckets();

}  // namespace gateway

#endif  // GATEWAY_METRICS_METRICS_H_
