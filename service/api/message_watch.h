// MessageService.Watch: a server stream that follows the message log for one caller.
//
// Each stream pulls from the log in batches: it reads after its cursor, writes the messages its
// filters match one at a time (the next only when gRPC has taken the last), and reads again;
// with nothing new it waits for the log to say something was appended. So a stream holds at
// most one batch, whatever the flow of messages, and a subscriber slower than the flow only
// lags: it reads later from the log, until its cursor leaves the retention (OUT_OF_RANGE).
//
// Thread-safety: gRPC, the log's callbacks and its append listener drive a stream from any
// thread; each stream's state is behind its own mutex, and no lock is held while calling gRPC
// or the log.
#ifndef GATEWAY_API_MESSAGE_WATCH_H_
#define GATEWAY_API_MESSAGE_WATCH_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "api/unary_call.h"
#include "messages/message_log.h"
#include "twilio_gateway/v1/message_service.pb.h"

namespace gateway {

struct MessageWatchOptions {
  size_t max_streams = 1000;  // Beyond it, a new Watch is RESOURCE_EXHAUSTED.
  size_t batch = 64;          // Messages read from the log at once.
};

class WatchStream;

class MessageWatch {
 public:
  // `log` null: no receiver is configured, and Watch is FAILED_PRECONDITION.
  MessageWatch(Api& api, MessageLog* log, MessageWatchOptions options = {});
  ~MessageWatch();

  grpc::ServerWriteReactor<twilio_gateway::v1::CallMessage>* Begin(
      grpc::CallbackServerContext* context,
      const twilio_gateway::v1::WatchMessagesRequest* request);

  // Ends every stream with UNAVAILABLE ("shutting down", and its cursor to resume from), and
  // refuses new ones. For the drain: a Watch never ends by itself.
  void EndAll();

  size_t streams() const;

 private:
  friend class WatchStream;
  // At the stream's OnDone(): forgets it and lets go of the API (Api::Enter()).
  void Remove(uint64_t id);

  Api& api_;
  MessageLog* const log_;
  const MessageWatchOptions options_;
  mutable absl::Mutex mu_;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::weak_ptr<WatchStream>> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gateway

#endif  // GATEWAY_API_MESSAGE_WATCH_H_
