#include "webhook_delivery.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "webhook/signature.h"

namespace loadgen {

WebhookDeliveries::WebhookDeliveries(WebhookDeliveryOptions options)
    : options_(std::move(options)),
      sid_prefix_(absl::StrFormat("KX%016x", options_.run_id)),
      timestamp_(
          absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", absl::Now(), absl::UTCTimeZone())) {}

HttpPost WebhookDeliveries::Build(const Request& request) const {
  const int64_t sent_ns = NowNanos();
  const nlohmann::json content = {{"seq", request.seq}, {"sent_ns", sent_ns}};
  const nlohmann::json delivery = {{"Sid", absl::StrFormat("%s%016x", sid_prefix_, request.seq)},
                                   {"AccountSid", options_.account_sid},
                                   {"CallSid", options_.call_sid},
                                   {"SequenceNumber", request.seq},
                                   {"Content", content.dump()},
                                   {"ContentType", "application/json"},
                                   {"Timestamp", timestamp_}};
  HttpPost post;
  post.body = delivery.dump();
  // Twilio signs the public URL with the body's hash in its query; the request carries the same
  // query, which the receiver appends to its public URL to check.
  const std::string signed_url = gateway::UrlWithBodySha256(options_.public_url, post.body);
  const size_t query = signed_url.find('?');
  post.url = absl::StrCat(options_.post_url, signed_url.substr(query));
  post.headers = {
      absl::StrCat(gateway::kTwilioSignatureHeader, ": ",
                   gateway::ComputeTwilioSignature(options_.auth_token, signed_url, {})),
      "Content-Type: application/json"};
  return post;
}

}  // namespace loadgen
