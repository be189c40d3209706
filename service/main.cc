// Parses the configuration, starts the Gateway, and stops it on SIGTERM or SIGINT.
#include <signal.h>
#include <sys/prctl.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "config/config.h"
#include "gateway/gateway.h"
#include "http/http_server.h"

namespace gateway {
namespace {

int Run(int argc, char** argv) {
  // Blocked before any thread starts, so only sigwait() below sees these signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // No core dumps and no ptrace by other users' processes: memory holds the Twilio secret.
  prctl(PR_SET_DUMPABLE, 0);
  // Debian's Abseil keeps a lock graph for deadlock detection on every Mutex acquisition: 2-4%
  // of the CPU of a Create in profiles. The tests (and -fsanitize=thread) catch lock-order bugs.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  absl::StatusOr<GatewayConfig> config =
      ParseConfig(std::vector<std::string>(argv + 1, argv + argc), &ProcessEnvironment);
  if (!config.ok()) {
    if (absl::IsNotFound(config.status())) {
      std::cout << Usage();
      return 0;
    }
    std::cerr << "twilio-gateway: " << config.status().message() << "\n";
    return 2;
  }
  SetLogLevel(config->log_level);
  // The soft descriptor limit (often 1024) only protects select() users, and nothing here uses
  // select(): raised, the metrics port can hold thousands of idle connections (HttpServer takes
  // at most half the limit) and still leave gRPC callers and Twilio connections their share.
  if (absl::StatusOr<size_t> limit = RaiseFileDescriptorLimit(); !limit.ok()) {
    Log(LogLevel::kWarning, "cannot raise the open file limit",
        {{"error", std::string(limit.status().message())}});
  }

  absl::StatusOr<std::unique_ptr<Gateway>> gateway = Gateway::Start(*config);
  if (!gateway.ok()) {
    std::cerr << "twilio-gateway: " << gateway.status().message() << "\n";
    // A bad flag or file is a usage error; a port that cannot be bound is not.
    return absl::IsInvalidArgument(gateway.status()) ? 2 : 1;
  }
  // Tests and scripts read the bound ports from these lines.
  std::printf("twilio-gateway listening on %s\n", (*gateway)->listen_address().c_str());
  if (!(*gateway)->health_address().empty()) {
    std::printf("twilio-gateway health on %s\n", (*gateway)->health_address().c_str());
  }
  if (!(*gateway)->metrics_address().empty()) {
    std::printf("twilio-gateway metrics on %s\n", (*gateway)->metrics_address().c_str());
  }
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(LogLevel::kInfo, "stopping", {{"signal", strsignal(signal_number)}});
  // Drains: NOT_SERVING, no new RPCs, those in flight finish within the grace period (then they
  // are cancelled), resolutions finish or are handed over; then exit 0.
  (*gateway)->Stop();
  Log(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace
}  // namespace gateway

int main(int argc, char** argv) { return gateway::Run(argc, argv); }
