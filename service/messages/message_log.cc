#include "messages/message_log.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gateway {
MessageLog::~MessageLog() = default;

std::unique_ptr<MessageLog::Listener> MessageLog::Listen(absl::AnyInvocable<void()> listener) {
  absl::MutexLock lock(&listeners_->mu);
  const uint64_t id = listeners_->next_id++;
  listeners_->by_id.emplace(id, std::make_shared<absl::AnyInvocable<void()>>(std::move(listener)));
  return std::unique_ptr<Listener>(new Listener(listeners_, id));
}

MessageLog::Listener::~Listener() {
  absl::MutexLock lock(&listeners_->mu);
  listeners_->by_id.erase(id_);
}

void MessageLog::NotifyAppended() {
  std::vector<std::shared_ptr<absl::AnyInvocable<void()>>> to_call;
  {
    absl::MutexLock lock(&listeners_->mu);
    to_call.reserve(listeners_->by_id.size());
    for (const auto& [id, listener] : listeners_->by_id) to_call.push_back(listener);
  }
  for (const auto& listener : to_call) (*listener)();
}

absl::Status CursorExpired(absl::string_view cursor) {
  return absl::OutOfRangeError(absl::StrCat(
      "cursor ", cursor,
      " is older than the message retention: messages after it may have been dropped; watch "
      "again with from_oldest to take what is retained"));
}

}  // namespace gateway
