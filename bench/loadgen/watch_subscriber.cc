#include "watch_subscriber.h"

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "target.h"
#include "twilio_gateway/v1/message_service.grpc.pb.h"

namespace loadgen {
namespace {

namespace pb = twilio_gateway::v1;

}  // namespace

// The stream: one read outstanding at a time, the next started as soon as one completes.
class WatchSubscriber::Reader final : public grpc::ClientReadReactor<pb::CallMessage> {
 public:
  Reader(WatchSubscriber& owner, pb::MessageService::Stub& stub, pb::WatchMessagesRequest request)
      : owner_(owner), request_(std::move(request)) {
    stub.async()->Watch(&context_, &request_, this);
    StartRead(&message_);
    StartCall();
  }

  void Cancel() { context_.TryCancel(); }

  void WaitDone() { finished_.wait(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows with the status.
    owner_.OnMessage(message_.sid(), message_.content(), NowNanos());
    StartRead(&message_);
  }

  void OnDone(const grpc::Status& status) override {
    owner_.OnEnd(status);
    done_.set_value();  // Last: the owner may destroy this once it is set.
  }

 private:
  WatchSubscriber& owner_;
  grpc::ClientContext context_;
  pb::WatchMessagesRequest request_;
  pb::CallMessage message_;
  std::promise<void> done_;
  std::future<void> finished_ = done_.get_future();
};

WatchSubscriber::WatchSubscriber(WatchSubscriberOptions options) : options_(std::move(options)) {
  channel_ = grpc::CreateChannel(options_.address, grpc::InsecureChannelCredentials());
}

WatchSubscriber::~WatchSubscriber() {
  if (reader_ != nullptr) {
    reader_->Cancel();
    reader_->WaitDone();
  }
}

bool WatchSubscriber::Start(std::chrono::milliseconds timeout) {
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + timeout)) return false;
  pb::WatchMessagesRequest request;
  request.set_call_sid(options_.call_sid);
  // The run's call is new, so from the oldest retained is from the run's first message, with no
  // race against the first deliveries (an empty cursor would start wherever the log's tail is
  // when the gateway gets to it).
  request.set_from_oldest(true);
  stub_ = pb::MessageService::NewStub(channel_);
  reader_ = std::make_unique<Reader>(*this, *stub_, std::move(request));
  return true;
}

void WatchSubscriber::SetWindow(int64_t start_ns, int64_t end_ns) {
  absl::MutexLock lock(&mu_);
  options_.window_start_ns = start_ns;
  options_.window_end_ns = end_ns;
}

void WatchSubscriber::OnMessage(const std::string& sid, const std::string& content,
                                int64_t now_ns) {
  uint64_t seq = 0;
  int64_t sent_ns = -1;
  const bool ours =
      absl::StartsWith(sid, options_.sid_prefix) && sid.size() == options_.sid_prefix.size() + 16 &&
      absl::SimpleHexAtoi(absl::string_view(sid).substr(options_.sid_prefix.size()), &seq) &&
      seq < (uint64_t{1} << 32);
  if (ours) {
    const nlohmann::json json = nlohmann::json::parse(content, nullptr, false);
    if (json.is_object() && json.contains("sent_ns") && json["sent_ns"].is_number_integer()) {
      sent_ns = json["sent_ns"].get<int64_t>();
    }
  }
  absl::MutexLock lock(&mu_);
  if (!ours || sent_ns < 0) {
    ++foreign_;
    return;
  }
  ++received_;
  if (copies_.size() <= seq) copies_.resize(std::max<size_t>(seq + 1, copies_.size() * 2), 0);
  if (copies_[seq] < 255) ++copies_[seq];
  const uint64_t micros = static_cast<uint64_t>(std::max<int64_t>(0, now_ns - sent_ns) / 1000);
  latency_all_.Record(micros);
  if (sent_ns >= options_.window_start_ns && sent_ns < options_.window_end_ns) {
    latency_.Record(micros);
  }
}

void WatchSubscriber::OnEnd(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  ended_ = true;
  end_status_ = absl::StrCat(status.error_code(), " ", status.error_message());
}

bool WatchSubscriber::AllArrivedLocked(const std::vector<bool>& acked) const {
  for (size_t seq = 0; seq < acked.size(); ++seq) {
    if (acked[seq] && (seq >= copies_.size() || copies_[seq] == 0)) return false;
  }
  return true;
}

bool WatchSubscriber::WaitFor(const std::vector<bool>& acked, int64_t deadline_ns) {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (AllArrivedLocked(acked)) return true;
      if (ended_ || NowNanos() >= deadline_ns) return false;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

WatchResult WatchSubscriber::Stop(const std::vector<bool>& acked) {
  if (reader_ != nullptr) {
    reader_->Cancel();
    reader_->WaitDone();
    reader_.reset();
  }
  absl::MutexLock lock(&mu_);
  WatchResult r;
  r.address = options_.address;
  r.received = received_;
  r.foreign = foreign_;
  r.latency = latency_;
  r.latency_all = latency_all_;
  r.end_status = end_status_;
  for (size_t seq = 0; seq < std::max(acked.size(), copies_.size()); ++seq) {
    const uint8_t copies = seq < copies_.size() ? copies_[seq] : 0;
    const bool expected = seq < acked.size() && acked[seq];
    if (expected && copies == 0) ++r.lost;
    if (!expected && copies > 0) ++r.unacked;
    if (copies > 1) r.duplicated += copies - 1;
  }
  return r;
}

}  // namespace loadgen
