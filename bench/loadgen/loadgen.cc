// gateway-loadgen: drives the gateway (or, for the floor, the upstream directly) at a fixed rate
// or a fixed concurrency and reports latency percentiles, throughput and counts per status code.
// See Usage() below, and bench/run.sh for the scenarios it is used in.
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "curl_target.h"
#include "driver.h"
#include "grpc_target.h"
#include "process_monitor.h"
#include "report.h"

namespace loadgen {
namespace {

constexpr char kUsage[] = R"(gateway-loadgen: load generator for the Twilio subscription gateway

Sends SubscriptionService/Create (or the gRPC health check) to the gateway, or with --direct-url
the same Twilio REST POST straight to an upstream with libcurl (the floor), in one of two modes:
  --rate N          open loop: N requests/s on a fixed schedule; latency is measured from each
                    request's intended send time, so stalls are not hidden (no coordinated omission)
  --concurrency N   closed loop: N requests always in flight
Exactly one of the two (default: --rate 100).

  --target HOST:PORT     gateway address (default 127.0.0.1:50051)
  --rpc create|health    what to call on the gateway (default create)
  --channels N           gRPC channels, each its own connection (default 4)
  --direct-url URL       instead of the gateway: POST to URL/2010-04-01/Accounts/.../
                         UserDefinedMessageSubscriptions.json with libcurl multi (keep-alive)
  --auth USER:SECRET     Basic credentials for --direct-url (default: the simulator's API key)
  --duration D           measurement window (default 10s); D is 10, 10s, 500ms, 2m ...
  --warmup D             before the window, not measured (default 2s)
  --timeout D            per-request deadline (default 5s)
  --call-sid SID         (default CA0123456789abcdef0123456789abcdef)
  --callback URL         (default https://example.com/twilio/messages)
  --account-sid SID      gRPC: sent in the request (default empty: the gateway's account);
                         direct: used in the path (default the simulator's ACaaaa...)
  --key-prefix P         idempotency keys are P + sequence number (default lg-<time>-<pid>-)
  --max-in-flight N      open loop: refuse to send beyond N outstanding (default 100000)
  --monitor NAME=PID     report PID's CPU time, threads and RSS over the window (repeatable)
  --label TEXT           copied into the JSON output
  --json                 print the result as JSON on stdout (the summary goes to stderr)
  --quiet                no progress lines
)";

struct Flags : loadgen::CommonFlags {
  std::string target = "127.0.0.1:50051";
  std::string rpc = "create";
  int channels = 4;
  std::string direct_url;
  std::string auth = "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:simulator-api-secret";
  std::string call_sid = "CA0123456789abcdef0123456789abcdef";
  std::string callback = "https://example.com/twilio/messages";
  std::string account_sid;
  std::string key_prefix;
};

// Returns an error message, or empty on success. --help prints usage and exits.
std::string ParseFlags(int argc, char** argv, Flags* flags) {
  auto bad = [](const std::string& name, const std::string& value) {
    return absl::StrCat("bad value for ", name, ": '", value, "'");
  };
  std::string error = loadgen::ParseFlags(
      argc, argv, kUsage, flags,
      [&](const std::string& name, const std::string& value) -> std::optional<std::string> {
        if (name == "--target") {
          flags->target = value;
        } else if (name == "--rpc") {
          if (value != "create" && value != "health") return bad(name, value);
          flags->rpc = value;
        } else if (name == "--channels") {
          if (!absl::SimpleAtoi(value, &flags->channels) || flags->channels < 1) {
            return bad(name, value);
          }
        } else if (name == "--direct-url") {
          flags->direct_url = value;
        } else if (name == "--auth") {
          if (value.find(':') == std::string::npos) return bad(name, value);
          flags->auth = value;
        } else if (name == "--call-sid") {
          flags->call_sid = value;
        } else if (name == "--callback") {
          flags->callback = value;
        } else if (name == "--account-sid") {
          flags->account_sid = value;
        } else if (name == "--key-prefix") {
          flags->key_prefix = value;
        } else {
          return std::nullopt;
        }
        return "";
      });
  if (!error.empty()) return error;
  if (flags->key_prefix.empty()) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    flags->key_prefix = absl::StrFormat("lg-%x%x-%d-", ts.tv_sec, ts.tv_nsec, getpid());
  }
  return "";
}

std::string Describe(const Flags& flags) {
  std::string what = flags.direct_url.empty()
                         ? absl::StrCat(flags.rpc == "health" ? "Health/Check" : "Create", " on ",
                                        flags.target, " over ", flags.channels, " channel(s)")
                         : absl::StrCat("direct libcurl POST to ", flags.direct_url);
  std::string mode = flags.rate ? absl::StrFormat("open loop at %g/s", *flags.rate)
                                : absl::StrCat("closed loop, ", *flags.concurrency, " in flight");
  return absl::StrCat(what, "; ", mode);
}

int Run(int argc, char** argv) {
  Flags flags;
  if (std::string error = ParseFlags(argc, argv, &flags); !error.empty()) {
    std::cerr << "gateway-loadgen: " << error << "\n";
    return 2;
  }
  // Sleeps end when asked, not up to 50 us later: the open-loop schedule depends on it.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(flags.timeout);
  std::unique_ptr<Target> target;
  if (flags.direct_url.empty()) {
    auto grpc_target = std::make_unique<GrpcTarget>(
        GrpcTargetOptions{.address = flags.target,
                          .channels = flags.channels,
                          .rpc = flags.rpc == "health" ? GrpcTargetOptions::Rpc::kHealth
                                                       : GrpcTargetOptions::Rpc::kCreate,
                          .timeout = timeout,
                          .call_sid = flags.call_sid,
                          .callback = flags.callback,
                          .account_sid = flags.account_sid,
                          .key_prefix = flags.key_prefix});
    if (!grpc_target->WaitForConnected(std::chrono::seconds(10))) {
      std::cerr << "gateway-loadgen: could not connect to " << flags.target << "\n";
      return 1;
    }
    target = std::move(grpc_target);
  } else {
    const size_t colon = flags.auth.find(':');
    const long connections = flags.concurrency
                                 ? std::max(*flags.concurrency + 16, 64)
                                 : std::max<long>(64, static_cast<long>(*flags.rate / 10));
    target = std::make_unique<CurlTarget>(CurlTargetOptions{
        .base_url = flags.direct_url,
        .account_sid =
            flags.account_sid.empty() ? "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" : flags.account_sid,
        .call_sid = flags.call_sid,
        .callback = flags.callback,
        .key_prefix = flags.key_prefix,
        .username = flags.auth.substr(0, colon),
        .password = flags.auth.substr(colon + 1),
        .timeout = timeout,
        .max_connections = connections});
  }

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

  std::cerr << "gateway-loadgen: " << Describe(flags) << ", warmup " << flags.warmup.count() / 1e9
            << " s, window " << flags.duration.count() / 1e9 << " s\n";
  Driver driver(options, *target, monitors);
  const RunResult r = driver.Run();

  const double per_second = r.measured / r.window_seconds;
  const double ok_per_second = r.ok / r.window_seconds;
  std::string summary = absl::StrCat(
      "requests   ", r.measured, " measured: ", r.ok, " ok, ", r.errors, " errors; ",
      absl::StrFormat("%.1f/s completed, %.1f/s ok", per_second, ok_per_second), "\n",
      "latency    ", LatencyLine(r.latency), "   (from intended send time)\n", "service    ",
      LatencyLine(r.service_time), "   (from actual send time)\n", "codes     ");
  for (const auto& [code, count] : r.codes)
    absl::StrAppend(&summary, " ", CodeName(code), " ", count);
  absl::StrAppend(
      &summary, "\n",
      absl::StrFormat("client CPU %.3f s (%.1f us/request), max in flight %d\n",
                      r.client_cpu_seconds,
                      r.measured ? r.client_cpu_seconds * 1e6 / r.measured : 0.0, r.max_in_flight));
  absl::StrAppend(&summary, MonitorLines(monitors, r.measured, "request", r.window_seconds));
  if (r.unfinished > 0) {
    absl::StrAppend(&summary, "WARNING: ", r.unfinished, " requests never completed\n");
  }
  (flags.json ? std::cerr : std::cout) << summary << std::flush;

  if (flags.json) {
    Json j;
    j["label"] = flags.label;
    j["target"] = flags.direct_url.empty() ? "grpc-" + flags.rpc : std::string("direct");
    j["address"] = flags.direct_url.empty() ? flags.target : flags.direct_url;
    j["mode"] = flags.rate ? "open" : "closed";
    j["rate"] = flags.rate ? Json(*flags.rate) : Json(nullptr);
    j["concurrency"] = flags.concurrency ? Json(*flags.concurrency) : Json(nullptr);
    j["channels"] = flags.channels;
    j["warmup_s"] = flags.warmup.count() / 1e9;
    j["duration_s"] = r.window_seconds;
    j["requests"] = r.measured;
    j["ok"] = r.ok;
    j["errors"] = r.errors;
    j["throughput_per_s"] = per_second;
    j["ok_per_s"] = ok_per_second;
    j["latency_us"] = PercentilesJson(r.latency);
    j["service_time_us"] = PercentilesJson(r.service_time);
    Json codes = Json::object();
    for (const auto& [code, count] : r.codes) codes[CodeName(code)] = count;
    j["codes"] = codes;
    j["sent_total"] = r.sent_total;
    j["unfinished"] = r.unfinished;
    j["max_in_flight"] = r.max_in_flight;
    j["max_send_lag_us"] = r.max_send_lag_us;
    j["client_cpu_s"] = r.client_cpu_seconds;
    j["monitored"] = MonitorsJson(monitors);
    std::cout << j.dump() << std::endl;
  }
  if (r.unfinished > 0) {
    // Callbacks may still arrive for requests that never completed; do not tear down under them.
    std::fflush(nullptr);
    std::_Exit(3);
  }
  return 0;
}

}  // namespace
}  // namespace loadgen

int main(int argc, char** argv) { return loadgen::Run(argc, argv); }
