#include "metrics/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace gateway {
namespace {

static_assert(std::atomic<double>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Largest double below which every whole number is exact.
constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53

[[noreturn]] void RegistrationError(absl::string_view metric, absl::string_view problem) {
  Log(LogLevel::kError, "invalid metric registration",
      {{"metric", std::string(metric)}, {"problem", std::string(problem)}});
  FlushLogs(absl::Seconds(1));  // Log() only queues the line; abort() would lose it.
  std::abort();
}

bool IsMetricName(absl::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!absl::ascii_isalpha(c) && c != '_' && c != ':' && !(i > 0 && absl::ascii_isdigit(c))) {
      return false;
    }
  }
  return true;
}

bool IsLabelName(absl::string_view name) {
  if (name.empty() || absl::StartsWith(name, "__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!absl::ascii_isalpha(c) && c != '_' && !(i > 0 && absl::ascii_isdigit(c))) return false;
  }
  return true;
}

void ValidateLabelNames(absl::string_view metric, const std::vector<std::string>& names,
                        bool histogram) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (!IsLabelName(names[i])) RegistrationError(metric, "invalid label name " + names[i]);
    if (histogram && names[i] == "le") {
      RegistrationError(metric, "a histogram may not have a label named le");
    }
    for (size_t j = 0; j < i; ++j) {
      if (names[j] == names[i]) RegistrationError(metric, "duplicate label name " + names[i]);
    }
  }
}

// Length of the valid UTF-8 sequence at the start of `s` (whose first byte is >= 0x80), or 0.
size_t Utf8SequenceLength(absl::string_view s) {
  const auto byte = [&s](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char lead = byte(0);
  size_t length = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  // Overlong forms, UTF-16 surrogates and code points above U+10FFFF.
  if ((lead == 0xE0 && byte(1) < 0xA0) || (lead == 0xED && byte(1) > 0x9F) ||
      (lead == 0xF0 && byte(1) < 0x90) || (lead == 0xF4 && byte(1) > 0x8F)) {
    return 0;
  }
  return length;
}

// Escapes as the text format requires: backslash and newline everywhere, the double quote in
// label values. Bytes that are not UTF-8 become U+FFFD, because Prometheus rejects the whole
// scrape over a single invalid label value, and values may come from request data.
void AppendEscaped(absl::string_view text, bool in_label_value, std::string* out) {
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      const size_t length = Utf8SequenceLength(text.substr(i));
      if (length == 0) {
        out->append("\xEF\xBF\xBD");
        ++i;
      } else {
        out->append(text.data() + i, length);
        i += length;
      }
      continue;
    }
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && in_label_value) {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
    ++i;
  }
}

// Prometheus parses values with Go's ParseFloat: it wants +Inf, -Inf and NaN spelled so. Values
// print in the shortest form that reads back to the same double, without exponent from 1e-4 up
// to 1e21 (so whole numbers read naturally) and with one outside it. Below 1e-4 this is Go's own
// choice, which matters for bucket bounds: le="0.0005" is the label value client_golang would
// write, and a dashboard selecting on it should match.
void AppendNumber(double value, std::string* out) {
  if (std::isnan(value)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out->append(value > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (value == 0) {  // Also -0, which would print as "-0".
    out->push_back('0');
    return;
  }
  char buffer[64];
  const double magnitude = std::fabs(value);
  const std::chars_format format = magnitude >= 1e-4 && magnitude < 1e21
                                       ? std::chars_format::fixed
                                       : std::chars_format::scientific;
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value, format);
  out->append(buffer, result.ptr);
}

void AppendHeader(absl::string_view name, absl::string_view help, absl::string_view type,
                  std::string* out) {
  if (!help.empty()) {
    absl::StrAppend(out, "# HELP ", name, " ");
    AppendEscaped(help, /*in_label_value=*/false, out);
    out->push_back('\n');
  }
  absl::StrAppend(out, "# TYPE ", name, " ", type, "\n");
}

// Writes `name` `suffix` {labels,extra_label} and leaves the value to the caller.
void AppendSampleStart(absl::string_view name, absl::string_view suffix, absl::string_view labels,
                       absl::string_view extra_label, std::string* out) {
  absl::StrAppend(out, name, suffix);
  if (!labels.empty() || !extra_label.empty()) {
    absl::StrAppend(out, "{", labels, !labels.empty() && !extra_label.empty() ? "," : "",
                    extra_label, "}");
  }
  out->push_back(' ');
}

void AppendSample(absl::string_view name, absl::string_view labels, double value,
                  std::string* out) {
  AppendSampleStart(name, "", labels, "", out);
  AppendNumber(value, out);
  out->push_back('\n');
}

std::string RenderLabels(const std::vector<std::string>& names,
                         const std::vector<std::string>& values) {
  std::string rendered;
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&rendered, i == 0 ? "" : ",", names[i], "=\"");
    AppendEscaped(values[i], /*in_label_value=*/true, &rendered);
    rendered.push_back('"');
  }
  return rendered;
}

class CallbackGauge final : public metrics_internal::Family {
 public:
  CallbackGauge(std::string name, std::string help, std::function<double()> read)
      : name_(std::move(name)), help_(std::move(help)), read_(std::move(read)) {}

  void AppendText(std::string* out) const override {
    AppendHeader(name_, help_, "gauge", out);
    AppendSample(name_, "", read_(), out);
  }

 private:
  const std::string name_;
  const std::string help_;
  const std::function<double()> read_;
};

}  // namespace

namespace metrics_internal {

LabelledFamily::LabelledFamily(std::string name, std::string help, absl::string_view type,
                               std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

void LabelledFamily::AppendText(std::string* out) const {
  AppendHeader(name_, help_, type_, out);
  absl::MutexLock lock(&mu_);
  for (const auto& [values, child] : children_) {
    child.series->AppendSamples(name_, child.rendered_labels, out);
  }
}

Series& LabelledFamily::Find(absl::Span<const absl::string_view> values) {
  return FindImpl(values);
}

Series& LabelledFamily::Find(absl::Span<const std::string> values) { return FindImpl(values); }

template <typename Value>
Series& LabelledFamily::FindImpl(absl::Span<const Value> values) {
  absl::MutexLock lock(&mu_);
  if (values.size() != label_names_.size()) {
    if (discard_ == nullptr) {
      discard_ = NewSeries();
      Log(LogLevel::kError, "metric updated with the wrong number of label values; discarded",
          {{"metric", name_},
           {"expected", absl::StrCat(label_names_.size())},
           {"got", absl::StrCat(values.size())}});
    }
    return *discard_;
  }
  auto it = children_.find(values);
  if (it == children_.end()) {
    std::vector<std::string> key;
    key.reserve(values.size());
    for (const Value& value : values) key.emplace_back(value);
    std::string rendered = RenderLabels(label_names_, key);
    it = children_.emplace(std::move(key), Child{std::move(rendered), NewSeries()}).first;
  }
  return *it->second.series;
}

}  // namespace metrics_internal

double Counter::Value() const {
  return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
         fraction_.load(std::memory_order_relaxed);
}

void Counter::IncrementSlow(double v) {
  if (!(v > 0)) return;
  if (v < kExactIntegerLimit && std::trunc(v) == v) {
    whole_.fetch_add(static_cast<uint64_t>(v), std::memory_order_relaxed);
  } else {
    fraction_.fetch_add(v, std::memory_order_relaxed);
  }
}

void Counter::AppendSamples(absl::string_view name, absl::string_view labels,
                            std::string* out) const {
  AppendSample(name, labels, Value(), out);
}

void Gauge::AppendSamples(absl::string_view name, absl::string_view labels,
                          std::string* out) const {
  AppendSample(name, labels, Value(), out);
}

Histogram::Histogram(absl::Span<const double> bounds) : bounds_(bounds.begin(), bounds.end()) {
  bounds_.erase(std::remove_if(bounds_.begin(), bounds_.end(),
                               [](double bound) { return !std::isfinite(bound); }),
                bounds_.end());
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

uint64_t Histogram::Count() const {
  uint64_t count = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    count += counts_[i].load(std::memory_order_relaxed);
  }
  return count;
}

void Histogram::AppendSamples(absl::string_view name, absl::string_view labels,
                              std::string* out) const {
  // _count is the +Inf bucket, so the two always agree within one scrape.
  uint64_t cumulative = 0;
  std::string le;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    le = "le=\"";
    if (i < bounds_.size()) {
      AppendNumber(bounds_[i], &le);
    } else {
      le.append("+Inf");
    }
    le.push_back('"');
    AppendSampleStart(name, "_bucket", labels, le, out);
    absl::StrAppend(out, cumulative, "\n");
  }
  AppendSampleStart(name, "_sum", labels, "", out);
  AppendNumber(Sum(), out);
  out->push_back('\n');
  AppendSampleStart(name, "_count", labels, "", out);
  absl::StrAppend(out, cumulative, "\n");
}

CounterFamily::CounterFamily(std::string name, std::string help,
                             std::vector<std::string> label_names)
    : LabelledFamily(std::move(name), std::move(help), "counter", std::move(label_names)) {}

std::unique_ptr<metrics_internal::Series> CounterFamily::NewSeries() const {
  return std::make_unique<Counter>();
}

GaugeFamily::GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names)
    : LabelledFamily(std::move(name), std::move(help), "gauge", std::move(label_names)) {}

std::unique_ptr<metrics_internal::Series> GaugeFamily::NewSeries() const {
  return std::make_unique<Gauge>();
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> bounds)
    : LabelledFamily(std::move(name), std::move(help), "histogram", std::move(label_names)),
      bounds_(std::move(bounds)) {}

std::unique_ptr<metrics_internal::Series> HistogramFamily::NewSeries() const {
  return std::make_unique<Histogram>(bounds_);
}

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::Claim(absl::string_view name,
                            std::initializer_list<absl::string_view> suffixes) {
  if (!IsMetricName(name)) RegistrationError(name, "invalid metric name");
  for (absl::string_view suffix : suffixes) {
    std::string sample_name = absl::StrCat(name, suffix);
    if (sample_names_.contains(sample_name)) {
      RegistrationError(name, "sample name " + sample_name + " is already registered");
    }
  }
  for (absl::string_view suffix : suffixes) sample_names_.insert(absl::StrCat(name, suffix));
}

CounterFamily& MetricsRegistry::AddCounter(absl::string_view name, absl::string_view help,
                                           std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  // The 0.0.4 format does not add the suffix itself, and PromQL users expect it on counters.
  if (!absl::EndsWith(name, "_total")) RegistrationError(name, "a counter name must end in _total");
  Claim(name, {""});
  ValidateLabelNames(name, label_names, /*histogram=*/false);
  const bool unlabelled = label_names.empty();
  auto family = absl::WrapUnique(
      new CounterFamily(std::string(name), std::string(help), std::move(label_names)));
  CounterFamily& added = *family;
  families_.push_back(std::move(family));
  if (unlabelled) added.WithLabels({});
  return added;
}

GaugeFamily& MetricsRegistry::AddGauge(absl::string_view name, absl::string_view help,
                                       std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  Claim(name, {""});
  ValidateLabelNames(name, label_names, /*histogram=*/false);
  const bool unlabelled = label_names.empty();
  auto family = absl::WrapUnique(
      new GaugeFamily(std::string(name), std::string(help), std::move(label_names)));
  GaugeFamily& added = *family;
  families_.push_back(std::move(family));
  if (unlabelled) added.WithLabels({});
  return added;
}

HistogramFamily& MetricsRegistry::AddHistogram(absl::string_view name, absl::string_view help,
                                               std::vector<std::string> label_names,
                                               std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  Claim(name, {"", "_bucket", "_sum", "_count"});
  ValidateLabelNames(name, label_names, /*histogram=*/true);
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) RegistrationError(name, "bucket bounds must be finite");
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      RegistrationError(name, "bucket bounds must be strictly increasing");
    }
  }
  const bool unlabelled = label_names.empty();
  auto family = absl::WrapUnique(new HistogramFamily(std::string(name), std::string(help),
                                                     std::move(label_names), std::move(bounds)));
  HistogramFamily& added = *family;
  families_.push_back(std::move(family));
  if (unlabelled) added.WithLabels({});
  return added;
}

void MetricsRegistry::AddCallbackGauge(absl::string_view name, absl::string_view help,
                                       std::function<double()> read) {
  absl::MutexLock lock(&mu_);
  Claim(name, {""});
  if (!read) RegistrationError(name, "a callback gauge needs a callback");
  families_.push_back(
      std::make_unique<CallbackGauge>(std::string(name), std::string(help), std::move(read)));
}

std::string MetricsRegistry::Serialize() const {
  // Families are never removed, so the pointers outlive the lock; callbacks then run unlocked.
  std::vector<const metrics_internal::Family*> families;
  {
    absl::MutexLock lock(&mu_);
    families.reserve(families_.size());
    for (const auto& family : families_) families.push_back(family.get());
  }
  std::string out;
  for (const auto* family : families) family->AppendText(&out);
  return out;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

}  // namespace gateway
