// Re-reads files that may change under a running gateway (a rotated Secret, a new token list,
// an edited policy) on one background thread, every `interval`. Polling rather than inotify:
// Kubernetes updates mounted volumes by swapping a symlink, which polling sees without any
// special case, and a few small reads every few seconds cost nothing.
//
// Usage:
//   Reloader reloader(absl::Seconds(5), report);
//   reloader.Add("credentials", [&](std::string* error) { return directory.Check(error); });
//   reloader.CheckAll();  // at start, on the caller's thread
//   reloader.Start();     // then periodically until destruction
//
// Thread-safety: Add() before Start(); checks run on the reloader thread one at a time.
#ifndef GATEWAY_RELOAD_RELOADER_H_
#define GATEWAY_RELOAD_RELOADER_H_

#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gateway {

enum class ReloadResult {
  kUnchanged,  // Same content as at the last check.
  kLoaded,     // New content, valid, now in use.
  kInvalid,    // New content, rejected; the previous value stays in use.
};

absl::string_view ReloadResultName(ReloadResult result);

class Reloader {
 public:
  using Check = std::function<ReloadResult(std::string* error)>;
  using Report =
      std::function<void(absl::string_view what, ReloadResult result, const std::string& error)>;

  // `report` sees every check that did not return kUnchanged.
  Reloader(absl::Duration interval, Report report);
  ~Reloader();
  Reloader(const Reloader&) = delete;
  Reloader& operator=(const Reloader&) = delete;

  void Add(std::string what, Check check);
  void CheckAll();
  void Start();

 private:
  void Run();

  const absl::Duration interval_;
  const Report report_;
  std::vector<std::pair<std::string, Check>> checks_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace gateway

#endif  // GATEWAY_RELOAD_RELOADER_H_
