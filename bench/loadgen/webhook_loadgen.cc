// webhook-loadgen: posts signed Twilio message deliveries to the gateway's webhook receiver at a
// fixed rate or a fixed concurrency, and checks them at the other end: Watch subscribers on one
// or more replicas report each message's delivery latency and that every acknowledged message
// arrived exactly once. See Usage below, and bench/webhook.sh for the scenarios.
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/distributions.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/random_ids.h"
#include "curl_target.h"
#include "driver.h"
#include "process_monitor.h"
#include "report.h"
#include "watch_subscriber.h"
#include "webhook_delivery.h"

namespace loadgen {
namespace {

constexpr char kUsage[] =
    R"(webhook-loadgen: load generator for the gateway's Twilio webhook receiver

Posts signed JSON message deliveries (X-Twilio-Signature, bodySHA256), each with a new Sid, to
--url over keep-alive connections (libcurl multi), and measures the acknowledgement (request
sent -> 200). With --watch, a MessageService.Watch on each address given receives the run's
messages and measures send -> receive; every message acknowledged with 200 must arrive exactly
once at every watcher (lost and duplicated are counted; the exit status is 4 if any).
  --rate N          open loop: N deliveries/s on a fixed schedule (latency from intended time)
  --concurrency N   closed loop: N deliveries always in flight
Exactly one of the two (default: --rate 100).

  --url URL              the receiver, e.g. http://127.0.0.1:8443/twilio/messages (required)
  --public-url URL       the URL signed, the gateway's --public-webhook-url (default: --url)
  --auth-token T         the token that signs (default: $TWILIO_AUTH_TOKEN)
  --account-sid SID      AccountSid of the deliveries (default: $TWILIO_ACCOUNT_SID)
  --call-sid SID         CallSid (default: a new one for the run, CA + run id)
  --watch HOST:PORT      a gateway's gRPC address to Watch the run's call on (repeatable)
  --watch-grace D        after the last acknowledgement, how long to wait for watchers (10s)
  --duration D           measurement window (default 10s); D is 10, 10s, 500ms, 2m ...
  --warmup D             before the window, not measured (default 2s)
  --timeout D            per-request deadline (default 5s)
  --max-in-flight N      open loop: refuse to send beyond N outstanding (default 100000)
  --monitor NAME=PID     report PID's CPU time, threads and RSS over the window (repeatable)
  --label TEXT           copied into the JSON output
  --json                 print the result as JSON on stdout (the summary goes to stderr)
  --quiet                no progress lines
)";

struct Flags : loadgen::CommonFlags {
  std::string url;
  std::string public_url;
  std::string auth_token;
  std::string account_sid;
  std::string call_sid;
  std::vector<std::string> watch;
  std::chrono::nanoseconds watch_grace = std::chrono::seconds(10);
};

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

// Returns an error message, or empty on success. --help prints usage and exits.
std::string ParseFlags(int argc, char** argv, Flags* flags) {
  auto bad = [](const std::string& name, const std::string& value) {
    return absl::StrCat("bad value for ", name, ": '", value, "'");
  };
  std::string error = loadgen::ParseFlags(
      argc, argv, kUsage, flags,
      [&](const std::string& name, const std::string& value) -> std::optional<std::string> {
        if (name == "--url") {
          flags->url = value;
        } else if (name == "--public-url") {
          flags->public_url = value;
        } else if (name == "--auth-token") {
          flags->auth_token = value;
        } else if (name == "--account-sid") {
          flags->account_sid = value;
        } else if (name == "--call-sid") {
          flags->call_sid = value;
        } else if (name == "--watch") {
          flags->watch.push_back(value);
        } else if (name == "--watch-grace") {
          std::optional<std::chrono::nanoseconds> grace = loadgen::ParseDuration(value);
          if (!grace.has_value()) return bad(name, value);
          flags->watch_grace = *grace;
        } else {
          return std::nullopt;
        }
        return "";
      });
  if (!error.empty()) return error;
  if (flags->url.empty()) return "--url is required";
  if (flags->public_url.empty()) flags->public_url = flags->url;
  if (flags->auth_token.empty()) flags->auth_token = Env("TWILIO_AUTH_TOKEN");
  if (flags->account_sid.empty()) flags->account_sid = Env("TWILIO_ACCOUNT_SID");
  if (flags->auth_token.empty()) return "no --auth-token (nor TWILIO_AUTH_TOKEN)";
  if (flags->account_sid.empty()) return "no --account-sid (nor TWILIO_ACCOUNT_SID)";
  return "";
}

// Between the driver and the libcurl target: notes which deliveries were acknowledged with 200,
// by sequence number, which is what the watchers must each receive exactly once.
class AckLedger final : public Target, public CompletionSink {
 public:
  explicit AckLedger(Target& inner) : inner_(inner) { inner_.SetSink(this); }

  void SetSink(CompletionSink* sink) override { sink_ = sink; }
  void Send(const Request& request) override { inner_.Send(request); }

  void OnComplete(const Request& request, Outcome outcome) override {
    {
      absl::MutexLock lock(&mu_);
      if (acked_.size() <= request.seq) acked_.resize(request.seq + 1, false);
      if (outcome.ok) acked_[request.seq] = true;
    }
    sink_->OnComplete(request, outcome);
  }

  std::vector<bool> acked() const {
    absl::MutexLock lock(&mu_);
    return acked_;
  }

 private:
  Target& inner_;
  CompletionSink* sink_ = nullptr;
  mutable absl::Mutex mu_;
  std::vector<bool> acked_ ABSL_GUARDED_BY(mu_);
};

int Run(int argc, char** argv) {
  Flags flags;
  if (std::string error = ParseFlags(argc, argv, &flags); !error.empty()) {
    std::cerr << "webhook-loadgen: " << error << "\n";
    return 2;
  }
  // Sleeps end when asked, not up to 50 us later: the open-loop schedule depends on it.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  const uint64_t run_id = absl::Uniform<uint64_t>(gateway::ThreadBitGen());
  if (flags.call_sid.empty()) flags.call_sid = absl::StrFormat("CA%016x%016x", run_id, 0);
  auto deliveries = std::make_shared<const WebhookDeliveries>(
      WebhookDeliveryOptions{.post_url = flags.url,
                             .public_url = flags.public_url,
                             .auth_token = flags.auth_token,
                             .account_sid = flags.account_sid,
                             .call_sid = flags.call_sid,
                             .run_id = run_id});

  // Subscribers first: each reads from the oldest retained message of the run's new call, so
  // it misses nothing however long its stream takes to start.
  std::vector<std::unique_ptr<WatchSubscriber>> watchers;
  for (const std::string& address : flags.watch) {
    watchers.push_back(std::make_unique<WatchSubscriber>(WatchSubscriberOptions{
        .address = address, .call_sid = flags.call_sid, .sid_prefix = deliveries->sid_prefix()}));
    if (!watchers.back()->Start(std::chrono::seconds(10))) {
      std::cerr << "webhook-loadgen: could not connect to " << address << "\n";
      return 1;
    }
  }

  const long connections = flags.concurrency
                               ? std::max(*flags.concurrency + 16, 64)
                               : std::max<long>(64, static_cast<long>(*flags.rate / 10));
  CurlTargetOptions curl_options;
  curl_options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(flags.timeout);
  curl_options.max_connections = connections;
  curl_options.build = [deliveries](const Request& request) { return deliveries->Build(request); };
  CurlTarget curl(std::move(curl_options));
  AckLedger ledger(curl);

  std::vector<ProcessMonitor> monitors;
  for (const auto& [name, pid] : flags.monitors) monitors.emplace_back(name, pid);

  DriverOptions options;
  options.mode = flags.rate ? DriverOptions::Mode::kOpenLoop : DriverOptions::Mode::kClosedLoop;
  if (flags.rate) options.rate = *flags.rate;
  if (flags.concurrency) options.concurrency = *flags.concurrency;
  options.warmup = flags.warmup;
  options.duration = flags.duration;
  options.drain = flags.timeout + std::chrono::seconds(5);
  options.max_in_flight = flags.max_in_flight;
  options.progress = !flags.quiet;

  const std::string mode = flags.rate
                               ? absl::StrFormat("open loop at %g/s", *flags.rate)
                               : absl::StrCat("closed loop, ", *flags.concurrency, " in flight");
  std::cerr << "webhook-loadgen: signed deliveries to " << flags.url << "; " << mode << "; "
            << watchers.size() << " watcher(s); warmup " << flags.warmup.count() / 1e9
            << " s, window " << flags.duration.count() / 1e9 << " s\n";
  Driver driver(options, ledger, monitors);
  // The driver's window starts within microseconds of this: the watchers measure the messages
  // sent inside it.
  const int64_t start_ns = NowNanos();
  for (auto& w : watchers) {
    w->SetWindow(start_ns + flags.warmup.count(),
                 start_ns + flags.warmup.count() + flags.duration.count());
  }
  const RunResult r = driver.Run();

  const std::vector<bool> acked = ledger.acked();
  const int64_t grace_end = NowNanos() + flags.watch_grace.count();
  std::vector<WatchResult> watched;
  for (auto& w : watchers) {
    w->WaitFor(acked, grace_end);
    watched.push_back(w->Stop(acked));
  }
  const uint64_t acked_total = static_cast<uint64_t>(std::count(acked.begin(), acked.end(), true));

  const double ok_per_second = r.ok / r.window_seconds;
  std::string summary =
      absl::StrCat("deliveries ", r.measured, " measured: ", r.ok, " ok, ", r.errors, " errors; ",
                   absl::StrFormat("%.1f/s ok", ok_per_second), "; ", acked_total,
                   " acknowledged of ", r.sent_total, " sent in all\n", "ack        ",
                   LatencyLine(r.latency), "   (from intended send time)\n", "ack svc    ",
                   LatencyLine(r.service_time), "   (from actual send time)\n", "codes     ");
  for (const auto& [code, count] : r.codes) {
    absl::StrAppend(&summary, " ", CodeName(code), " ", count);
  }
  absl::StrAppend(&summary, "\n");
  bool clean = true;
  for (const WatchResult& w : watched) {
    absl::StrAppend(
        &summary,
        absl::StrFormat("watch %s: received %d, lost %d, duplicated %d, without 200 "
                        "%d, foreign %d%s\n",
                        w.address, w.received, w.lost, w.duplicated, w.unacked, w.foreign,
                        w.end_status.empty() || w.end_status.rfind("1 ", 0) == 0
                            ? ""
                            : absl::StrCat("; stream ended: ", w.end_status)),
        "  delivery ", LatencyLine(w.latency), "   (send -> Watch, measured)\n");
    clean = clean && w.lost == 0 && w.duplicated == 0;
  }
  absl::StrAppend(
      &summary,
      absl::StrFormat("client CPU %.3f s (%.1f us/delivery), max in flight %d\n",
                      r.client_cpu_seconds,
                      r.measured ? r.client_cpu_seconds * 1e6 / r.measured : 0.0, r.max_in_flight),
      MonitorLines(monitors, r.measured, "delivery", r.window_seconds));
  if (r.unfinished > 0) {
    absl::StrAppend(&summary, "WARNING: ", r.unfinished, " deliveries never completed\n");
  }
  (flags.json ? std::cerr : std::cout) << summary << std::flush;

  if (flags.json) {
    Json j;
    j["label"] = flags.label;
    j["target"] = "webhook";
    j["url"] = flags.url;
    j["mode"] = flags.rate ? "open" : "closed";
    j["rate"] = flags.rate ? Json(*flags.rate) : Json(nullptr);
    j["concurrency"] = flags.concurrency ? Json(*flags.concurrency) : Json(nullptr);
    j["warmup_s"] = flags.warmup.count() / 1e9;
    j["duration_s"] = r.window_seconds;
    j["requests"] = r.measured;
    j["ok"] = r.ok;
    j["errors"] = r.errors;
    j["ok_per_s"] = ok_per_second;
    j["latency_us"] = PercentilesJson(r.latency);
    j["service_time_us"] = PercentilesJson(r.service_time);
    Json codes = Json::object();
    for (const auto& [code, count] : r.codes) codes[CodeName(code)] = count;
    j["codes"] = codes;
    j["sent_total"] = r.sent_total;
    j["acked_total"] = acked_total;
    j["unfinished"] = r.unfinished;
    j["max_in_flight"] = r.max_in_flight;
    j["max_send_lag_us"] = r.max_send_lag_us;
    j["client_cpu_s"] = r.client_cpu_seconds;
    Json watches = Json::array();
    for (const WatchResult& w : watched) {
      watches.push_back({{"address", w.address},
                         {"received", w.received},
                         {"lost", w.lost},
                         {"duplicated", w.duplicated},
                         {"without_200", w.unacked},
                         {"foreign", w.foreign},
                         {"end_status", w.end_status},
                         {"delivery_us", PercentilesJson(w.latency)},
                         {"delivery_all_us", PercentilesJson(w.latency_all)}});
    }
    j["watchers"] = watches;
    j["monitored"] = MonitorsJson(monitors);
    std::cout << j.dump() << std::endl;
  }
  if (r.unfinished > 0) {
    // Callbacks may still arrive for requests that never completed; do not tear down under them.
    std::fflush(nullptr);
    std::_Exit(3);
  }
  return clean ? 0 : 4;
}

}  // namespace
}  // namespace loadgen

int main(int argc, char** argv) { return loadgen::Run(argc, argv); }
