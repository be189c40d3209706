#include "metrics/metrics.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/check_names.h"
#include "prometheus/text_serializer.h"

namespace gateway {

// The callback gauges and counters, collected beside prometheus-cpp's registry: each value is
// read while a scrape collects, so there is no stored copy to go stale and no second writer to
// race with, which updating prometheus::Gauge children before each serialization would have.
class MetricsRegistry::CallbackGauges final {
 public:
  void Add(absl::string_view name, absl::string_view help, prometheus::MetricType type,
           std::function<double()> read) {
    if (!read) throw std::invalid_argument("callback gauge " + std::string(name) + " has none");
    AddEntry(Gauge{std::string(name), std::string(help), type, std::move(read), "", nullptr});
  }

  void AddFamily(absl::string_view name, absl::string_view help, absl::string_view label,
                 std::function<LabelledValues()> read) {
    if (!read) throw std::invalid_argument("callback gauge " + std::string(name) + " has none");
    if (!prometheus::CheckLabelName(std::string(label))) {
      throw std::invalid_argument("invalid label name " + std::string(label));
    }
    AddEntry(Gauge{std::string(name), std::string(help), prometheus::MetricType::Gauge, nullptr,
                   std::string(label), std::move(read)});
  }

  std::vector<prometheus::MetricFamily> Collect() const {
    std::vector<Entry> entries;
    {
      absl::MutexLock lock(&mu_);
      entries = entries_;
    }
    // The callbacks run unlocked: they may take locks of their own.
    std::vector<prometheus::MetricFamily> families;
    families.reserve(entries.size());
    for (const Entry& entry : entries) {
      if (entry->read_family) {
        prometheus::MetricFamily family{
            .name = entry->name, .help = entry->help, .type = entry->type, .metric = {}};
        for (auto& [value, gauge] : entry->read_family()) {
          prometheus::ClientMetric metric;
          metric.label = {{entry->label, std::move(value)}};
          metric.gauge.value = gauge;
          family.metric.push_back(std::move(metric));
        }
        families.push_back(std::move(family));
        continue;
      }
      prometheus::ClientMetric metric;
      if (entry->type == prometheus::MetricType::Counter) {
        metric.counter.value = entry->read();
      } else {
        metric.gauge.value = entry->read();
      }
      families.push_back({.name = entry->name,
                          .help = entry->help,
                          .type = entry->type,
                          .metric = {std::move(metric)}});
    }
    return families;
  }

 private:
  struct Gauge {
    std::string name;
    std::string help;
    prometheus::MetricType type;  // Gauge, or Counter for a total kept elsewhere.
    std::function<double()> read;
    // A labelled family instead: its label's name and the series.
    std::string label;
    std::function<LabelledValues()> read_family;
  };
  using Entry = std::shared_ptr<const Gauge>;

  void AddEntry(Gauge gauge) {
    if (!prometheus::CheckMetricName(gauge.name)) {
      throw std::invalid_argument("invalid metric name " + gauge.name);
    }
    absl::MutexLock lock(&mu_);
    for (const Entry& entry : entries_) {
      if (entry->name == gauge.name) {
        throw std::invalid_argument("callback gauge " + gauge.name + " added twice");
      }
    }
    entries_.push_back(std::make_shared<const Gauge>(std::move(gauge)));
  }

  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

MetricsRegistry::MetricsRegistry()
    : registry_(
          std::make_unique<prometheus::Registry>(prometheus::Registry::InsertBehavior::Throw)),
      callback_gauges_(std::make_unique<CallbackGauges>()) {}

MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::AddCallbackGauge(absl::string_view name, absl::string_view help,
                                       std::function<double()> read) {
  callback_gauges_->Add(name, help, prometheus::MetricType::Gauge, std::move(read));
}

void MetricsRegistry::AddCallbackGaugeFamily(absl::string_view name, absl::string_view help,
                                             absl::string_view label,
                                             std::function<LabelledValues()> read) {
  callback_gauges_->AddFamily(name, help, label, std::move(read));
}

void MetricsRegistry::AddCallbackCounter(absl::string_view name, absl::string_view help,
                                         std::function<double()> read) {
  callback_gauges_->Add(name, help, prometheus::MetricType::Counter, std::move(read));
}

std::vector<prometheus::MetricFamily> MetricsRegistry::Collect() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::vector<prometheus::MetricFamily> callbacks = callback_gauges_->Collect();
  families.insert(families.end(), std::make_move_iterator(callbacks.begin()),
                  std::make_move_iterator(callbacks.end()));
  std::stable_sort(families.begin(), families.end(),
                   [](const prometheus::MetricFamily& a, const prometheus::MetricFamily& b) {
                     return a.name < b.name;
                   });
  for (prometheus::MetricFamily& family : families) {
    // prometheus-cpp lists labels sorted by name, so comparing the lists orders by their values.
    std::stable_sort(family.metric.begin(), family.metric.end(),
                     [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) {
                       return a.label < b.label;
                     });
  }
  return families;
}

std::string MetricsRegistry::Serialize() const {
  return prometheus::TextSerializer().Serialize(Collect());
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

}  // namespace gateway
