#include "api/message_watch.h"

#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "api/grpc_status.h"
#include "common/error_details.h"
#include "common/log.h"
#include "model/requests.h"

namespace gateway {

namespace pb = twilio_gateway::v1;

// One Watch. Owned by itself (self_) from Begin until gRPC's OnDone(); the log's callbacks and
// listener hold weak pointers, so a late one finds nothing to do.
class WatchStream final : public grpc::ServerWriteReactor<pb::CallMessage>,
                          public std::enable_shared_from_this<WatchStream> {
 public:
  WatchStream(MessageWatch& owner, uint64_t id) : owner_(owner), id_(id) {}

  // Authenticates and authorizes, then starts reading; the stream ends with the first error.
  void Start(grpc::CallbackServerContext* context, const pb::WatchMessagesRequest& request,
             std::shared_ptr<WatchStream> self) {
    self_ = std::move(self);
    absl::StatusOr<std::string> caller = std::string();
    if (owner_.api_.authenticator() != nullptr) {
      caller = owner_.api_.authenticator()->Authenticate(*context);
    }
    if (!caller.ok()) {
      End(caller.status());
      return;
    }
    caller_ = *caller;
    WatchInput input;
    input.caller = caller_;
    input.account_sid = request.account_sid();
    input.call_sid = request.call_sid();
    input.cursor = request.cursor();
    input.from_oldest = request.from_oldest();
    absl::StatusOr<WatchRequest> scope = owner_.api_.operations().AuthorizeWatch(input);
    if (!scope.ok()) {
      End(scope.status());
      return;
    }
    {
      // Written once, here; End() may read it meanwhile, from EndAll() on another thread.
      absl::MutexLock lock(&mu_);
      scope_ = *std::move(scope);
    }
    std::weak_ptr<WatchStream> weak = weak_from_this();
    std::unique_ptr<MessageLog::Listener> listener = owner_.log_->Listen([weak] {
      if (std::shared_ptr<WatchStream> stream = weak.lock()) stream->Wake();
    });
    {
      absl::MutexLock lock(&mu_);
      if (state_ == State::kFinished || finish_.has_value()) return;  // Ended meanwhile.
      listener_ = std::move(listener);
    }
    if (!scope_.cursor.empty() || scope_.from_oldest) {
      BeginReading(scope_.cursor);
      return;
    }
    owner_.log_->Tail([weak](absl::StatusOr<std::string> tail) {
      std::shared_ptr<WatchStream> stream = weak.lock();
      if (stream == nullptr) return;
      if (!tail.ok()) {
        stream->End(tail.status());
      } else {
        stream->BeginReading(*std::move(tail));
      }
    });
  }

  // A stream refused before it starts (no log, too many streams, shutting down).
  void Refuse(absl::Status status, std::shared_ptr<WatchStream> self) {
    self_ = std::move(self);
    End(std::move(status));
  }

  // Ends the stream (once): at once, or when the write in flight completes.
  void End(absl::Status status) {
    std::unique_ptr<MessageLog::Listener> listener;
    {
      absl::MutexLock lock(&mu_);
      if (state_ == State::kFinished || finish_.has_value()) return;
      if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument &&
          status.code() != absl::StatusCode::kPermissionDenied &&
          status.code() != absl::StatusCode::kUnauthenticated) {
        // Where to resume: the last message delivered, else where the stream started (the log's
        // tail for a Watch of new messages, so that one ended before any message loses none),
        // else the cursor asked for.
        const std::string& resume = !delivered_.empty()    ? delivered_
                                    : !started_at_.empty() ? started_at_
                                                           : scope_.cursor;
        if (!resume.empty()) SetErrorInfo(status, "", {{"cursor", resume}});
      }
      code_ = status.code();
      if (state_ == State::kWriting) {
        finish_ = std::move(status);
        return;
      }
      state_ = State::kFinished;
      listener = std::move(listener_);
    }
    listener.reset();  // Outside the lock: it waits for nothing, but takes the log's.
    Finish(ToGrpcStatus(status));
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(absl::CancelledError("the subscriber went away"));
    }
    std::optional<absl::Status> finish;
    std::unique_ptr<MessageLog::Listener> listener;
    {
      absl::MutexLock lock(&mu_);
      if (state_ == State::kFinished) return;
      if (finish_.has_value()) {
        finish = std::move(finish_);
        state_ = State::kFinished;
        listener = std::move(listener_);
      } else if (!pending_.empty()) {
        WriteFrontLocked();
        return;
      } else {
        // Read again, at least once: more may have come while writing.
        state_ = State::kReading;
      }
    }
    if (finish.has_value()) {
      listener.reset();
      Finish(ToGrpcStatus(*finish));
      return;
    }
    ReadMore();
  }

  void OnCancel() override { End(absl::CancelledError("the subscriber cancelled the Watch")); }

  void OnDone() override {
    absl::StatusCode code;
    uint64_t sent;
    {
      absl::MutexLock lock(&mu_);
      code = code_;
      sent = sent_;
    }
    Log(LogLevel::kInfo, "audit",
        {{"rpc", "Watch"},
         {"caller", caller_.empty() ? "anonymous" : caller_},
         {"account_sid", scope_.account_sid.empty() ? "default" : scope_.account_sid},
         {"call_sid", scope_.call_sid},
         {"code", absl::StatusCodeToString(code)},
         {"messages", absl::StrCat(sent)},
         {"duration_s", absl::StrFormat("%.3f", absl::ToDoubleSeconds(absl::Now() - started_))}});
    // A stream refused (id 0) was never registered and never held the API.
    if (id_ != 0) owner_.Remove(id_);
    self_.reset();  // Last: may destroy this.
  }

 private:
  enum class State { kReading, kWriting, kIdle, kFinished };

  void BeginReading(std::string cursor) {
    {
      absl::MutexLock lock(&mu_);
      if (state_ == State::kFinished) return;
      started_at_ = cursor;
      read_after_ = std::move(cursor);
      state_ = State::kReading;
    }
    Log(LogLevel::kDebug, "watch started",
        {{"call_sid", scope_.call_sid}, {"after", started_at_.empty() ? "oldest" : started_at_}});
    ReadMore();
  }

  void Wake() {
    {
      absl::MutexLock lock(&mu_);
      if (state_ == State::kReading) {
        wake_pending_ = true;
        return;
      }
      if (state_ != State::kIdle) return;  // Writing reads again afterwards; finished is done.
      state_ = State::kReading;
    }
    ReadMore();
  }

  // Reads until there is something to write or nothing new. The memory log answers inline: a
  // read answered inside the call only asks for another, which this loop makes, so a long
  // catch-up does not recurse.
  void ReadMore() {
    std::string after;
    {
      absl::MutexLock lock(&mu_);
      if (in_read_) {
        read_again_ = true;
        return;
      }
      in_read_ = true;
    }
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        read_again_ = false;
        after = read_after_;
      }
      std::weak_ptr<WatchStream> weak = weak_from_this();
      owner_.log_->Read(after, owner_.options_.batch,
                        [weak](absl::StatusOr<MessageLog::Batch> batch) {
                          if (std::shared_ptr<WatchStream> stream = weak.lock()) {
                            stream->OnRead(std::move(batch));
                          }
                        });
      absl::MutexLock lock(&mu_);
      if (!read_again_) {
        in_read_ = false;
        return;
      }
    }
  }

  void OnRead(absl::StatusOr<MessageLog::Batch> batch) {
    if (!batch.ok()) {
      absl::Status status = batch.status();
      if (status.code() == absl::StatusCode::kOutOfRange) SetErrorInfo(status, "CURSOR_EXPIRED");
      End(std::move(status));
      return;
    }
    bool read_again = false;
    {
      absl::MutexLock lock(&mu_);
      if (state_ != State::kReading) return;
      read_after_ = std::move(batch->next_cursor);
      for (LoggedMessage& logged : batch->messages) {
        if (Matches(logged.message)) pending_.push_back(std::move(logged));
      }
      if (!pending_.empty()) {
        WriteFrontLocked();
        return;
      }
      if (!batch->at_end || wake_pending_) {
        wake_pending_ = false;
        read_again = true;
      } else {
        state_ = State::kIdle;
      }
    }
    if (read_again) ReadMore();
  }

  bool Matches(const CallMessage& message) const {
    return message.account_sid == scope_.account_sid &&
           (scope_.call_sid.empty() || message.call_sid == scope_.call_sid);
  }

  void WriteFrontLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    state_ = State::kWriting;
    LoggedMessage logged = std::move(pending_.front());
    pending_.pop_front();
    CallMessage& message = logged.message;
    out_.Clear();
    out_.set_sid(std::move(message.sid));
    out_.set_account_sid(std::move(message.account_sid));
    out_.set_call_sid(std::move(message.call_sid));
    out_.set_sequence_number(message.sequence_number);
    out_.set_content(std::move(message.content));
    out_.set_content_type(std::move(message.content_type));
    if (message.timestamp.has_value()) ToTimestamp(*message.timestamp, out_.mutable_timestamp());
    out_.set_cursor(logged.cursor);
    delivered_ = std::move(logged.cursor);
    ++sent_;
    if (GatewayMetrics* metrics = owner_.api_.metrics()) metrics->WatchMessagesSent(1);
    // gRPC copies nothing and calls nothing inline here: safe under the lock.
    StartWrite(&out_);
  }

  MessageWatch& owner_;
  const uint64_t id_;
  const absl::Time started_ = absl::Now();
  std::shared_ptr<WatchStream> self_;
  std::string caller_;
  WatchRequest scope_;

  absl::Mutex mu_;
  std::unique_ptr<MessageLog::Listener> listener_ ABSL_GUARDED_BY(mu_);
  State state_ ABSL_GUARDED_BY(mu_) = State::kReading;
  bool in_read_ ABSL_GUARDED_BY(mu_) = false;
  bool read_again_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
  std::string read_after_ ABSL_GUARDED_BY(mu_);
  std::deque<LoggedMessage> pending_ ABSL_GUARDED_BY(mu_);
  std::string delivered_ ABSL_GUARDED_BY(mu_);
  std::string started_at_ ABSL_GUARDED_BY(mu_);  // The cursor the first read was after.
  std::optional<absl::Status> finish_ ABSL_GUARDED_BY(mu_);
  absl::StatusCode code_ ABSL_GUARDED_BY(mu_) = absl::StatusCode::kOk;
  uint64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  pb::CallMessage out_;  // The message being written; gRPC reads it until OnWriteDone.
};

MessageWatch::MessageWatch(Api& api, MessageLog* log, MessageWatchOptions options)
    : api_(api), log_(log), options_(options) {
  if (GatewayMetrics* metrics = api_.metrics()) {
    metrics->SetWatchers([this] { return static_cast<double>(streams()); });
  }
}

MessageWatch::~MessageWatch() = default;

grpc::ServerWriteReactor<pb::CallMessage>* MessageWatch::Begin(
    grpc::CallbackServerContext* context, const pb::WatchMessagesRequest* request) {
  absl::Status refused;
  std::shared_ptr<WatchStream> stream;
  {
    // Checked, counted (Api::Enter()) and registered in one step, so that EndAll() either ends
    // a stream or it is refused: none slips past the drain.
    absl::MutexLock lock(&mu_);
    if (log_ == nullptr) {
      refused = absl::FailedPreconditionError(
          "the gateway has no webhook receiver configured (--webhook-listen), so it receives no "
          "messages to watch");
    } else if (ended_) {
      refused = absl::UnavailableError("the gateway is shutting down; watch on another replica");
    } else if (streams_.size() >= options_.max_streams) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("the gateway serves its maximum of ", options_.max_streams,
                       " Watch streams; retry later or on another replica"));
    } else if (!api_.Enter()) {
      refused = absl::UnavailableError("the gateway is shutting down; watch on another replica");
    } else {
      const uint64_t id = next_id_++;
      stream = std::make_shared<WatchStream>(*this, id);
      streams_.emplace(id, stream);
    }
  }
  if (stream == nullptr) {
    stream = std::make_shared<WatchStream>(*this, 0);
    stream->Refuse(std::move(refused), stream);
    return stream.get();
  }
  stream->Start(context, *request, stream);
  return stream.get();
}

void MessageWatch::EndAll() {
  std::vector<std::shared_ptr<WatchStream>> open;
  {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    for (const auto& [id, weak] : streams_) {
      if (std::shared_ptr<WatchStream> stream = weak.lock()) open.push_back(std::move(stream));
    }
  }
  for (const auto& stream : open) {
    stream->End(absl::UnavailableError(
        "the gateway is shutting down: watch again on another replica with the cursor"));
  }
}

size_t MessageWatch::streams() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

void MessageWatch::Remove(uint64_t id) {
  {
    absl::MutexLock lock(&mu_);
    streams_.erase(id);
  }
  api_.Exit();
}

}  // namespace gateway
