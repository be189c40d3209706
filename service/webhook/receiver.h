// The public endpoint Twilio delivers user-defined messages to: it verifies the signature,
// reads the delivery and stores it in the message log, once per message SID, and answers 200
// only when the message is stored where every Watch will find it.
//
// Answers (bodies are fixed text; nothing a client sent is echoed):
//   200  stored, or a redelivery of a message already stored (acknowledged, not stored again)
//   400  signed correctly, but a field is missing or malformed (the body names the field)
//   403  no signature, a bad one, a JSON body that does not match its signed hash, or a
//        delivery for an account other than the gateway's
//   404  another path; 405 another method than POST or GET
//   413  a body over max_body_bytes (the HTTP server answers it, before reading the body)
//   503  the message log could not store it: Twilio retries later
// GET /healthz answers 200 for probes (unless that is the webhook's own path).
//
// The signature is checked against public_url, the URL Twilio was given, plus the query the
// request came with: never against what a proxy forwarded (scheme, host or port may differ).
// Auth Token rotation: after the token changes, the previous one still verifies for
// token_overlap from the reload that brought the new one, since Twilio may sign in-flight
// deliveries with it.
//
// Thread-safety: Handle() is called concurrently by the HTTP server's threads. It never waits
// for the log: the answer goes out through `respond` when the log calls back (the server
// suspends the connection meanwhile). The receiver outlives every append it started.
#ifndef GATEWAY_WEBHOOK_RECEIVER_H_
#define GATEWAY_WEBHOOK_RECEIVER_H_

#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "http/http_server.h"
#include "messages/message_log.h"
#include "model/call_message.h"
#include "webhook/signature.h"

namespace gateway {

// Whose deliveries are accepted, and the token that signs them.
struct WebhookAccount {
  std::string account_sid;
  std::string auth_token;  // Empty: nothing verifies, every delivery is refused.
  // When the credentials holding this token were loaded: a new token's predecessor verifies for
  // the overlap from then (from when the receiver first sees the change, if that is later or
  // this is unknown, InfinitePast).
  absl::Time since = absl::InfinitePast();
};

struct WebhookReceiverOptions {
  // The URL Twilio is given: absolute http(s), no fragment. Its path is the one served.
  std::string public_url;
  absl::Duration token_overlap = absl::Hours(24);
};

class WebhookReceiver {
 public:
  using AccountSource = std::function<WebhookAccount()>;
  // Called with each answer's result label (see the metrics): stored, duplicate, not_found...
  using Observer = std::function<void(absl::string_view result)>;

  // Checks public_url: INVALID_ARGUMENT naming it when it is not an absolute http(s) URL.
  static absl::StatusOr<std::unique_ptr<WebhookReceiver>> Create(WebhookReceiverOptions options,
                                                                 AccountSource account,
                                                                 MessageLog& log,
                                                                 const Clock& clock,
                                                                 Observer observer = nullptr);

  // Answers through `respond`: at once when refused, once the log has answered otherwise.
  void Handle(const HttpServer::Request& request, HttpServer::Respond respond);
  // The same, waiting for the answer (for tests).
  HttpServer::Response Handle(const HttpServer::Request& request);

  // The path served: public_url's.
  const std::string& path() const { return path_; }

 private:
  WebhookReceiver(WebhookReceiverOptions options, std::string base_url, std::string path,
                  AccountSource account, MessageLog& log, const Clock& clock, Observer observer);

  // The request's verdict: the answer when it is refused, else the message to store.
  std::variant<HttpServer::Response, CallMessage> Check(const HttpServer::Request& request);
  // Tokens that verify now: the current one, and the previous within the overlap.
  std::vector<std::string> Tokens(const WebhookAccount& account);
  HttpServer::Response Answer(int status, absl::string_view result, absl::string_view body);

  const WebhookReceiverOptions options_;
  const std::string base_url_;  // public_url without its query.
  const std::string path_;
  const AccountSource account_;
  MessageLog& log_;
  const Clock& clock_;
  const Observer observer_;

  absl::Mutex mu_;
  std::string current_token_ ABSL_GUARDED_BY(mu_);
  std::string previous_token_ ABSL_GUARDED_BY(mu_);
  absl::Time previous_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// A delivery's fields, from its decoded parameters or JSON body: Sid, AccountSid, CallSid,
// SequenceNumber, Content, ContentType, Timestamp. INVALID_ARGUMENT names the field at fault.
// Exposed for unit tests and the fuzz target.
absl::StatusOr<CallMessage> ParseDelivery(const FormParams& params);
absl::StatusOr<CallMessage> ParseJsonDelivery(absl::string_view body);

// application/x-www-form-urlencoded (also a query string): nullopt for a bad escape.
std::optional<FormParams> DecodeForm(absl::string_view text);

}  // namespace gateway

#endif  // GATEWAY_WEBHOOK_RECEIVER_H_
