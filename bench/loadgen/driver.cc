#include "driver.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <utility>

namespace loadgen {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

}  // namespace

Driver::Driver(DriverOptions options, Target& target, std::vector<ProcessMonitor>& monitors)
    : options_(std::move(options)), target_(target), monitors_(monitors) {
  target_.SetSink(this);
}

void Driver::SleepUntil(int64_t deadline_ns) {
  timespec ts{};
  ts.tv_sec = deadline_ns / kSecond;
  ts.tv_nsec = deadline_ns % kSecond;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

void Driver::Issue(uint64_t seq, int64_t intended_ns, int64_t now_ns, bool measured) {
  if (static_cast<uint64_t>(in_flight_.load(std::memory_order_relaxed)) >= options_.max_in_flight) {
    // The server is so far behind that the client would only queue more: count the refusal.
    absl::MutexLock lock(&mu_);
    if (measured) {
      ++result_.measured;
      ++result_.errors;
      ++result_.codes[kDroppedByClient];
    }
    return;
  }
  const int64_t in_flight = in_flight_.fetch_add(1, std::memory_order_relaxed) + 1;
  uint64_t seen = max_in_flight_.load(std::memory_order_relaxed);
  while (static_cast<uint64_t>(in_flight) > seen &&
         !max_in_flight_.compare_exchange_weak(seen, static_cast<uint64_t>(in_flight))) {
  }
  sent_.fetch_add(1, std::memory_order_relaxed);
  target_.Send(
      Request{.seq = seq, .intended_ns = intended_ns, .sent_ns = now_ns, .measured = measured});
}

void Driver::OnComplete(const Request& request, Outcome outcome) {
  const int64_t now = NowNanos();
  const bool measured =
      Closed() ? now >= window_start_ns_ && now < window_end_ns_ : request.measured;
  const auto micros = [now](int64_t since) {
    return static_cast<uint64_t>(std::max<int64_t>(0, now - since) / 1000);
  };
  {
    absl::MutexLock lock(&mu_);
    phase_.Record(micros(request.intended_ns));
    if (measured) {
      ++result_.measured;
      ++(outcome.ok ? result_.ok : result_.errors);
      ++result_.codes[outcome.code];
      result_.latency.Record(micros(request.intended_ns));
      result_.service_time.Record(micros(request.sent_ns));
    }
  }
  completed_.fetch_add(1, std::memory_order_relaxed);
  if (outcome.ok) ok_total_.fetch_add(1, std::memory_order_relaxed);
  // The replacement is issued before this one stops counting as in flight, so the drain never
  // sees zero while a request is still being started.
  if (Closed() && now < window_end_ns_) {
    Issue(next_seq_.fetch_add(1, std::memory_order_relaxed), now, now, false);
  }
  in_flight_.fetch_sub(1, std::memory_order_acq_rel);
}

int64_t Driver::Housekeeping(int64_t now_ns) {
  if (!window_started_ && now_ns >= window_start_ns_) {
    window_started_ = true;
    cpu_at_window_start_ = OwnCpuSeconds();
    for (ProcessMonitor& m : monitors_) m.StartWindow();
    absl::MutexLock lock(&mu_);
    phase_.Reset();
    phase_is_window_ = true;
  }
  if (window_started_ && !window_ended_ && now_ns >= window_end_ns_) {
    window_ended_ = true;
    const double cpu = OwnCpuSeconds() - cpu_at_window_start_;
    for (ProcessMonitor& m : monitors_) m.EndWindow();
    absl::MutexLock lock(&mu_);
    result_.client_cpu_seconds = cpu;
  }
  if (now_ns >= next_tick_ns_) {
    if (window_started_ && !window_ended_) {
      for (ProcessMonitor& m : monitors_) m.Sample();
    }
    PrintProgress(now_ns);
    next_tick_ns_ += kSecond;
  }
  int64_t wake = next_tick_ns_;
  if (!window_started_) wake = std::min(wake, window_start_ns_);
  if (!window_ended_) wake = std::min(wake, window_end_ns_);
  return wake;
}

void Driver::PrintProgress(int64_t now_ns) {
  const uint64_t completed = completed_.load(std::memory_order_relaxed);
  const double interval = static_cast<double>(now_ns - last_tick_ns_) / kSecond;
  const double rate =
      interval > 0 ? static_cast<double>(completed - completed_at_last_tick_) / interval : 0;
  completed_at_last_tick_ = completed;
  last_tick_ns_ = now_ns;
  if (!options_.progress) return;
  uint64_t p50 = 0;
  uint64_t p99 = 0;
  {
    absl::MutexLock lock(&mu_);
    p50 = phase_.Percentile(50);
    p99 = phase_.Percentile(99);
  }
  const char* phase = now_ns < window_start_ns_ ? "warmup"
                      : now_ns < window_end_ns_ ? "measure"
                                                : "drain";
  const uint64_t ok = ok_total_.load(std::memory_order_relaxed);
  std::fprintf(stderr,
               "[%6.1fs %-7s] sent %llu  ok %llu  errors %llu  in flight %lld  %.0f/s  "
               "p50 %.3f ms  p99 %.3f ms\n",
               static_cast<double>(now_ns - start_ns_) / kSecond, phase,
               static_cast<unsigned long long>(sent_.load(std::memory_order_relaxed)),
               static_cast<unsigned long long>(ok), static_cast<unsigned long long>(completed - ok),
               static_cast<long long>(in_flight_.load(std::memory_order_relaxed)), rate,
               static_cast<double>(p50) / 1000, static_cast<double>(p99) / 1000);
}

RunResult Driver::Run() {
  start_ns_ = NowNanos();
  window_start_ns_ = start_ns_ + options_.warmup.count();
  window_end_ns_ = window_start_ns_ + options_.duration.count();
  next_tick_ns_ = start_ns_ + kSecond;
  last_tick_ns_ = start_ns_;

  if (Closed()) {
    const int64_t now = NowNanos();
    for (int i = 0; i < options_.concurrency; ++i) {
      Issue(next_seq_.fetch_add(1, std::memory_order_relaxed), now, now, false);
    }
  } else {
    const double period_ns = kSecond / options_.rate;
    for (uint64_t seq = 0;;) {
      const int64_t intended =
          start_ns_ + static_cast<int64_t>(static_cast<double>(seq) * period_ns);
      if (intended >= window_end_ns_) break;
      const int64_t now = NowNanos();
      const int64_t wake = Housekeeping(now);
      if (now < intended) {
        SleepUntil(std::min(intended, wake));
        continue;
      }
      max_send_lag_ns_ = std::max(max_send_lag_ns_, now - intended);
      Issue(seq, intended, now, intended >= window_start_ns_);
      ++seq;
    }
  }
  while (!window_ended_) SleepUntil(Housekeeping(NowNanos()));

  const int64_t drain_deadline = window_end_ns_ + options_.drain.count();
  for (int64_t now = NowNanos();
       in_flight_.load(std::memory_order_acquire) > 0 && now < drain_deadline; now = NowNanos()) {
    if (now >= next_tick_ns_) {
      PrintProgress(now);
      next_tick_ns_ += kSecond;
    }
    SleepUntil(std::min({now + 5'000'000, next_tick_ns_, drain_deadline}));
  }

  absl::MutexLock lock(&mu_);
  RunResult result = result_;
  result.sent_total = sent_.load();
  result.unfinished = static_cast<uint64_t>(std::max<int64_t>(0, in_flight_.load()));
  result.max_in_flight = max_in_flight_.load();
  result.window_seconds = static_cast<double>(options_.duration.count()) / kSecond;
  result.max_send_lag_us = max_send_lag_ns_ / 1000;
  return result;
}

}  // namespace loadgen
