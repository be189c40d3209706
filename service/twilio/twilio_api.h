// Twilio's REST API for user-defined message subscriptions, as plain functions: how a validated
// request becomes an HTTP request, and how an HTTP response becomes a Subscription or a status.
// No I/O here; subscriptions/ sends the request through an HttpTransport.
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
#include "subscriptions/subscription.h"

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
};

struct TwilioEndpoint {
  std::string base_url;  // e.g. "https://api.twilio.com", no trailing slash.
  TwilioCredentials credentials;
};

// "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessageSubscriptions.json".
// Callers pass validated SIDs only; they need no escaping.
std::string SubscriptionsPath(absl::string_view account_sid, absl::string_view call_sid);

// application/x-www-form-urlencoded, as HTML forms and Twilio expect.
std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& fields);

// "Authorization" header value for HTTP Basic.
std::string BasicAuthorization(const TwilioCredentials& credentials);

HttpRequest BuildCreateSubscriptionRequest(const TwilioEndpoint& endpoint,
                                           const CreateSubscriptionRequest& request,
                                           absl::Duration timeout);

// Parses a 2xx body. Twilio marks every property nullable and may add new ones: nulls become
// empty values, unknown properties are ignored, wrong types and truncated JSON are errors.
absl::StatusOr<Subscription> ParseSubscriptionJson(absl::string_view body);

// The one place an HTTP response from Twilio becomes a status. 2xx yields OK; anything else
// yields the code the caller should act on (see the proto and README), Twilio's error as a
// TwilioError detail, an ErrorInfo reason, and RetryInfo when Twilio sent Retry-After.
absl::Status StatusFromHttpResponse(const HttpResponse& response);

// Status for a transfer that produced no response (see TransportFailure).
absl::Status StatusFromTransportFailure(const HttpResult& result);

// Parses Retry-After: delta-seconds or an HTTP date (relative to `now`). Negative or
// unparseable values give std::nullopt; past dates give zero.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

}  // namespace gateway

#endif  // GATEWAY_TWILIO_TWILIO_API_H_
