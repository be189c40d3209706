// IdempotencyStore in process memory: the default for a single replica. Bounded by entry count
// and bytes; records expire after their retention. Records die with the process, so a
// restarted gateway cannot know what its predecessor may have sent: that needs the redis store.
// When full, the oldest done records are evicted first; if only in-flight claims remain, new
// claims fail with RESOURCE_EXHAUSTED rather than forget a claim (which could duplicate).
//
// Thread-safety: safe from any thread; callbacks run inline, after the lock is released.
#ifndef GATEWAY_IDEMPOTENCY_MEMORY_STORE_H_
#define GATEWAY_IDEMPOTENCY_MEMORY_STORE_H_

#include <cstdint>
#include <list>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/random.h"
#include "idempotency/idempotency_store.h"

namespace gateway {

struct MemoryStoreOptions {
  size_t max_entries = 100000;
  size_t max_bytes = 64 << 20;
};

class MemoryIdempotencyStore final : public IdempotencyStore {
 public:
  MemoryIdempotencyStore(MemoryStoreOptions options, const Clock& clock, Random& random);

  void Claim(const std::string& key, const std::string& fingerprint, absl::Duration lease,
             absl::Duration retention, ClaimCallback done) override;
  void Renew(const std::string& key, const std::string& token, absl::Duration lease,
             DoneCallback done) override;
  void Complete(const std::string& key, const std::string& token, const std::string& outcome,
                absl::Duration retention, DoneCallback done) override;
  void Release(const std::string& key, const std::string& token, DoneCallback done) override;

  size_t size() const;
  size_t bytes() const;

 private:
  struct Entry {
    bool done = false;
    std::string fingerprint;
    std::string token;
    std::string outcome;
    absl::Time claimed;                    // First claim; kept across takeovers.
    absl::Time lease_until;                // In flight: the owner's lease.
    absl::Time expires;                    // The whole record: the retention.
    std::list<std::string>::iterator age;  // Position in claims_ or done_ (oldest first).
  };

  static size_t Cost(const std::string& key, const Entry& entry);
  void EraseLocked(absl::flat_hash_map<std::string, Entry>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::list<std::string>& AgeListLocked(const Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return entry.done ? done_ : claims_;
  }
  // Drops expired entries from the heads of both lists and, past the bounds, the oldest done
  // records. Never evicts a live claim. False if still full.
  bool MakeRoomLocked(size_t incoming) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const MemoryStoreOptions options_;
  const Clock& clock_;
  Random& random_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Keys by age, claims and done records apart, so eviction never walks past live claims.
  // Retention is one setting, so done_ is also in expiry order; claims_ nearly is.
  std::list<std::string> claims_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> done_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gateway

#endif  // GATEWAY_IDEMPOTENCY_MEMORY_STORE_H_
