// Twilio's REST API for user-defined messages, as plain functions: how a validated request
// becomes a TwilioCall and an HTTP request, and how an HTTP response becomes a resource or a
// status. No I/O here; upstream/ sends the request through an HttpTransport.
//
// Thread-safety: pure functions; TwilioEndpoint is immutable once built.
#ifndef GATEWAY_TWILIO_TWILIO_API_H_
#define GATEWAY_TWILIO_TWILIO_API_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "http/http_transport.h"
#include "model/requests.h"
#include "model/resources.h"

namespace gateway {

// HTTP Basic credentials: Account SID + Auth Token, or API Key SID (SK...) + secret.
struct TwilioCredentials {
  std::string username;
  std::string password;
};

// The credentials in use and the account requests default to. Replaced as a whole on reload.
struct TwilioAccount {
  std::string account_sid;  // AC...
  TwilioCredentials credentials;
  bool api_key = false;  // credentials.username is an API Key SID (SK...), not the account.
  // The Auth Token, which alone verifies Twilio's webhook signatures: credentials.password
  // without an API key, else TWILIO_AUTH_TOKEN when given beside the key (empty when not).
  std::string auth_token = {};
};

// One Twilio REST operation, described as data: the upstream engine sends any of them the same
// way. Built from a validated request by the functions below.
struct TwilioCall {
  enum class Kind { kCreateSubscription, kDeleteSubscription, kSendMessage };
  Kind kind = Kind::kCreateSubscription;
  std::string method;  // "POST" or "DELETE".
  std::string path;    // From the API root, e.g. "/2010-04-01/Accounts/AC.../Calls/CA.../...".
  std::vector<std::pair<std::string, std::string>> form;  // The body; empty for DELETE.
  std::string account_sid;                                // Whose concurrency limit it counts to.
  std::string call_sid;
  // Sent as IdempotencyKey; empty for Delete, which needs none.
  std::string idempotency_key;
  // Repeating it leaves the same state (Delete): it may be resent at any time, with no key and
  // no key window.
  bool naturally_idempotent = false;
  // Twilio's 404 after an attempt that may have acted means that attempt did act (Delete: the
  // subscription is gone, as asked), so the run succeeds with an empty answer.
  bool not_found_after_effect_is_success = false;
};

// Operation name for logs and metrics: "Create", "Delete" or "Send".
absl::string_view OperationName(TwilioCall::Kind kind);

// Callers pass validated SIDs only; they need no escaping.
TwilioCall CreateSubscriptionCall(const CreateSubscriptionRequest& request);
TwilioCall DeleteSubscriptionCall(const DeleteSubscriptionRequest& request);
TwilioCall SendMessageCall(const SendMessageRequest& request);

// `base_url` e.g. "https://api.twilio.com", no trailing slash.
HttpRequest BuildHttpRequest(absl::string_view base_url, const TwilioCredentials& credentials,
                             const TwilioCall& call, absl::Duration timeout);

// application/x-www-form-urlencoded, as HTML forms and Twilio expect.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);

// "Authorization" header value for HTTP Basic.
std::string BasicAuthorization(const TwilioCredentials& credentials);

// Reads a 2xx body as the resource `kind` yields. Twilio marks every property nullable and may
// add new ones: nulls become empty values, unknown properties are ignored, wrong types and
// truncated JSON are errors. A Delete's 204 has no body to read.
absl::StatusOr<Resource> ParseResource(TwilioCall::Kind kind, absl::string_view body);

// The one place an HTTP error from Twilio becomes a status: the code the caller should act on
// (see the proto and README), Twilio's error as a TwilioError detail and an ErrorInfo reason
// (ClassifyAttempt adds RetryInfo from Retry-After); and whether the error settles the operation
// for its key: a rejection of the request itself (400, 404, 413, 422, 31212), which the same
// request would get again.
struct HttpError {
  absl::Status status;
  bool settled = false;
};
HttpError ReadHttpError(TwilioCall::Kind kind, const HttpResponse& response);

// Status for a transfer that produced no response (see TransportFailure).
absl::Status StatusFromTransportFailure(const HttpResult& result);

// Parses Retry-After: delta-seconds or an HTTP date (relative to `now`). Negative or
// unparseable values give std::nullopt; past dates give zero.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

}  // namespace gateway

#endif  // GATEWAY_TWILIO_TWILIO_API_H_
