#include "reload/reloader.h"

namespace gateway {

absl::string_view ReloadResultName(ReloadResult result) {
  switch (result) {
    case ReloadResult::kUnchanged:
      return "unchanged";
    case ReloadResult::kLoaded:
      return "loaded";
    case ReloadResult::kInvalid:
      return "invalid";
  }
  return "unknown";
}

Reloader::Reloader(absl::Duration interval, Report report)
    : interval_(interval), report_(std::move(report)) {}

Reloader::~Reloader() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Reloader::Add(std::string what, Check check) {
  checks_.emplace_back(std::move(what), std::move(check));
}

void Reloader::CheckAll() {
  for (auto& [what, check] : checks_) {
    std::string error;
    const ReloadResult result = check(&error);
    if (result != ReloadResult::kUnchanged) report_(what, result, error);
  }
}

void Reloader::Start() {
  if (checks_.empty()) return;
  thread_ = std::thread([this] { Run(); });
}

void Reloader::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), interval_)) return;
    }
    CheckAll();
  }
}

}  // namespace gateway
