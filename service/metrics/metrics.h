// Prometheus metrics without a dependency (Debian 12 has no prometheus-cpp): counters, gauges and
// histograms in labelled families, written out in the text exposition format 0.0.4 for the scrape
// endpoint in metrics_http_server.h.
//
// Usage: register every family once at startup, then look up children and keep the references.
//   MetricsRegistry registry;
//   CounterFamily& requests =
//       registry.AddCounter("gateway_requests_total", "RPCs received.", {"method", "code"});
//   Counter& created_ok = requests.WithLabels({"CreateSubscription", "OK"});  // cache this
//   created_ok.Increment();
//
// Naming, checked at registration: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
// match [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__" (reserved by Prometheus), counter names
// end in "_total", histograms have no "le" label, bucket bounds are finite and strictly
// increasing (a trailing +Inf is accepted and ignored: that bucket is always there), and no two
// families use the same name (a histogram "x" claims x, x_bucket, x_sum and x_count).
// A violation is a programming error that would otherwise corrupt every scrape, so it is logged
// and the process aborts, like prometheus-cpp's exception and client_golang's MustRegister panic.
//
// Label values are data and never abort: a WithLabels() call with the wrong number of values
// returns the family's "discard" child, which counts like any other but is never exported, and
// the first such call per family logs an error naming the family.
//
// Thread-safety: everything is safe from any thread. Counter, Gauge and Histogram updates are
// lock-free atomics; WithLabels() takes the family's mutex, so hot paths should cache the
// reference (it stays valid for the registry's lifetime). Serialize() reads the atomics without
// stopping writers, so a histogram's _sum may lag its _count by an observation in flight.
#ifndef GATEWAY_METRICS_METRICS_H_
#define GATEWAY_METRICS_METRICS_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace gateway {

namespace metrics_internal {

// One labelled series of a family. The family renders the label set once, at creation, and hands
// it back on every scrape.
class Series {
 public:
  Series() = default;
  Series(const Series&) = delete;
  Series& operator=(const Series&) = delete;
  virtual ~Series() = default;

 private:
  friend class LabelledFamily;
  // `labels` is the escaped `a="x",b="y"` list without braces, empty for an unlabelled series.
  virtual void AppendSamples(absl::string_view name, absl::string_view labels,
                             std::string* out) const = 0;
};

// Any registered family: what the registry needs to write it out.
class Family {
 public:
  Family() = default;
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;
  virtual ~Family() = default;

  virtual void AppendText(std::string* out) const = 0;
};

// Orders label-value lists lexicographically; transparent so a lookup needs no allocation.
struct LabelValuesLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](absl::string_view x, absl::string_view y) { return x < y; });
  }
};

// The children of a family, keyed by label values. Children are never removed, which is what
// keeps the references returned to callers valid.
class LabelledFamily : public Family {
 public:
  void AppendText(std::string* out) const final;

 protected:
  LabelledFamily(std::string name, std::string help, absl::string_view type,
                 std::vector<std::string> label_names);

  Series& Find(absl::Span<const absl::string_view> values);
  Series& Find(absl::Span<const std::string> values);

 private:
  struct Child {
    std::string rendered_labels;
    std::unique_ptr<Series> series;
  };

  virtual std::unique_ptr<Series> NewSeries() const = 0;
  template <typename Value>
  Series& FindImpl(absl::Span<const Value> values);

  const std::string name_;
  const std::string help_;
  const absl::string_view type_;  // A string literal.
  const std::vector<std::string> label_names_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, Child, LabelValuesLess> children_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Series> discard_ ABSL_GUARDED_BY(mu_);
};

}  // namespace metrics_internal

// Monotonic count. Increments that are not positive (negative, zero, NaN) are ignored, since a
// counter that goes down reads as a process restart to Prometheus' rate().
class Counter final : public metrics_internal::Series {
 public:
  Counter() = default;

  void Increment(double v = 1) {
    if (v == 1) {
      // The common case is one lock-prefixed add, not a compare-and-swap loop on a double.
      whole_.fetch_add(1, std::memory_order_relaxed);
    } else {
      IncrementSlow(v);
    }
  }
  double Value() const;

 private:
  void IncrementSlow(double v);
  void AppendSamples(absl::string_view name, absl::string_view labels,
                     std::string* out) const override;

  // Whole-number increments are kept exactly apart from fractional ones.
  std::atomic<uint64_t> whole_{0};
  std::atomic<double> fraction_{0};
};

// A value that goes up and down.
class Gauge final : public metrics_internal::Series {
 public:
  Gauge() = default;

  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  void AppendSamples(absl::string_view name, absl::string_view labels,
                     std::string* out) const override;

  std::atomic<double> value_{0};
};

// Distribution over fixed buckets: an observation v lands in the first bucket whose upper bound
// is >= v, and the implicit last bucket (+Inf) takes the rest. NaN observations are ignored so
// one bad value cannot turn _sum into NaN for the life of the process.
class Histogram final : public metrics_internal::Series {
 public:
  // `bounds` are the finite upper bounds; they are sorted and de-duplicated, and non-finite
  // values dropped, so that a standalone Histogram is well-formed whatever it is given.
  explicit Histogram(absl::Span<const double> bounds);

  void Observe(double value);
  uint64_t Count() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  void AppendSamples(absl::string_view name, absl::string_view labels,
                     std::string* out) const override;

  std::vector<double> bounds_;
  // Per bucket, not cumulative: one increment per observation. bounds_.size() + 1 entries.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

class CounterFamily final : public metrics_internal::LabelledFamily {
 public:
  // Values are given in the order of the family's label names.
  Counter& WithLabels(std::initializer_list<absl::string_view> values) {
    return static_cast<Counter&>(Find(absl::MakeConstSpan(values.begin(), values.size())));
  }
  Counter& WithLabels(absl::Span<const std::string> values) {
    return static_cast<Counter&>(Find(values));
  }
  // The one child of a family without labels.
  Counter& Unlabelled() { return WithLabels(absl::Span<const std::string>()); }

 private:
  friend class MetricsRegistry;
  CounterFamily(std::string name, std::string help, std::vector<std::string> label_names);
  std::unique_ptr<metrics_internal::Series> NewSeries() const override;
};

class GaugeFamily final : public metrics_internal::LabelledFamily {
 public:
  Gauge& WithLabels(std::initializer_list<absl::string_view> values) {
    return static_cast<Gauge&>(Find(absl::MakeConstSpan(values.begin(), values.size())));
  }
  Gauge& WithLabels(absl::Span<const std::string> values) {
    return static_cast<Gauge&>(Find(values));
  }
  // The one child of a family without labels.
  Gauge& Unlabelled() { return WithLabels(absl::Span<const std::string>()); }

 private:
  friend class MetricsRegistry;
  GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names);
  std::unique_ptr<metrics_internal::Series> NewSeries() const override;
};

class HistogramFamily final : public metrics_internal::LabelledFamily {
 public:
  Histogram& WithLabels(std::initializer_list<absl::string_view> values) {
    return static_cast<Histogram&>(Find(absl::MakeConstSpan(values.begin(), values.size())));
  }
  Histogram& WithLabels(absl::Span<const std::string> values) {
    return static_cast<Histogram&>(Find(values));
  }
  // The one child of a family without labels.
  Histogram& Unlabelled() { return WithLabels(absl::Span<const std::string>()); }

 private:
  friend class MetricsRegistry;
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds);
  std::unique_ptr<metrics_internal::Series> NewSeries() const override;

  const std::vector<double> bounds_;
};

// Owns every family; Serialize() is the body of a scrape.
class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;
  ~MetricsRegistry();

  // A family without labels has its one child from the start, so it is exported as 0 before the
  // first update rather than appearing out of nowhere.
  CounterFamily& AddCounter(absl::string_view name, absl::string_view help,
                            std::vector<std::string> label_names = {});
  GaugeFamily& AddGauge(absl::string_view name, absl::string_view help,
                        std::vector<std::string> label_names = {});
  HistogramFamily& AddHistogram(absl::string_view name, absl::string_view help,
                                std::vector<std::string> label_names, std::vector<double> bounds);
  // An unlabelled gauge whose value is read at scrape time, on the scraping thread, without any
  // registry lock held. `read` must be cheap and safe to call from any thread.
  void AddCallbackGauge(absl::string_view name, absl::string_view help,
                        std::function<double()> read);

  // Text format 0.0.4: families in registration order, children ordered by label values.
  std::string Serialize() const;

 private:
  // Aborts on a name that breaks the rules in the file comment; claims the sample names.
  void Claim(absl::string_view name, std::initializer_list<absl::string_view> suffixes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<metrics_internal::Family>> families_ ABSL_GUARDED_BY(mu_);
  std::set<std::string, std::less<>> sample_names_ ABSL_GUARDED_BY(mu_);
};

// Upper bounds in seconds, 0.5 ms to 10 s in 1-2.5-5 steps and then 30 s: fine enough for an
// in-process check at the low end, and still bucketing Twilio's slowest answers at the high end.
std::vector<double> LatencyBuckets();

}  // namespace gateway

#endif  // GATEWAY_METRICS_METRICS_H_
