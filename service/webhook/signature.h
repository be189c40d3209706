// Twilio's webhook signature (`X-Twilio-Signature`): computing it and verifying a delivery
// against one or more Auth Tokens, so the receiver delivers only what Twilio sent.
//
// The signature is base64(HMAC-SHA1(auth token, data)) where, for a form-encoded POST, data is
// the full URL Twilio was given (scheme to end of query) followed by every parameter's name and
// value, sorted by name; for a JSON body, data is the URL alone, and that URL carries a
// `bodySHA256` query parameter (lowercase hex SHA-256 of the raw body) that binds the body.
//
// Usage (the receiver):
//   const std::string tokens[] = {current_token, previous_token};  // previous may be absent
//   SignatureVerdict verdict =
//       VerifyFormSignature(tokens, public_url_with_query, decoded_params, header_value);
//   if (!verdict.ok()) { 403, log SignatureErrorName(verdict.error) }
// `url` must be the URL Twilio was configured with (the gateway's public URL plus the request's
// query string), never one rebuilt from what a proxy forwarded: the proxy may change scheme, host
// or port. Parameters are the decoded form fields (names and values after percent-decoding).
//
// Choices, following the facts file and Twilio's helper libraries (twilio-python's
// RequestValidator, twilio-node's webhooks.ts), and why:
// - Repeated names: the (name, value) pairs are sorted by name, then by value, and identical
//   pairs count once, as both helper libraries do (they sort each name's set of values).
// - Port: Twilio's signing is inconsistent about a default port, so a URL is tried as given and
//   with its default port toggled (`:443` for https, `:80` for http: added when absent, removed
//   when present). A non-default port is never removed: the helper libraries strip any port, but
//   then a signature for `https://host/x` would also admit a delivery to `https://host:8443/x`,
//   a different endpoint.
// - Several tokens: during an Auth Token rotation Twilio may still sign with the old token, so
//   every token given is tried (all of them, to keep the work independent of which matched) and
//   the verdict says which one did.
// - The header must be exactly the 28-character base64 of a SHA-1 digest; anything else is
//   malformed, so no other spelling of a valid signature is accepted.
// - Comparisons of signatures run in constant time (CRYPTO_memcmp over equal lengths).
// Verdicts and error names never contain a token or an expected signature.
//
// Pure functions; thread-safe.
#ifndef GATEWAY_WEBHOOK_SIGNATURE_H_
#define GATEWAY_WEBHOOK_SIGNATURE_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace gateway {

inline constexpr absl::string_view kTwilioSignatureHeader = "X-Twilio-Signature";
inline constexpr absl::string_view kBodySha256Parameter = "bodySHA256";

// Decoded form fields in the order received; repeats allowed.
using FormParams = std::vector<std::pair<std::string, std::string>>;

enum class SignatureError {
  kNone,
  kNoToken,             // no non-empty token configured: nothing can verify
  kMissingSignature,    // the header is absent or empty
  kMalformedSignature,  // not the 28-character base64 of a 20-byte digest
  kMalformedUrl,        // not an absolute http(s) URL with a host
  kMismatch,            // no token and no port variant of the URL gives this signature
  kMissingBodyHash,     // JSON body, but the URL has no bodySHA256 parameter
  kBodyHashMismatch,    // signed URL, but its bodySHA256 is not the body's hash
};

// A short fixed label ("mismatch", "body_hash_mismatch"...), safe for logs and metric labels.
absl::string_view SignatureErrorName(SignatureError error);

struct SignatureVerdict {
  SignatureError error = SignatureError::kNone;
  // When ok(): the index into the tokens given of the one that matched (the first, if several).
  size_t token_index = 0;

  bool ok() const { return error == SignatureError::kNone; }
};

// The signature Twilio sends for a form POST of `params` to `url`, exactly over `url` as given
// (no port variant). With no params it is the JSON variant's signature of `url`.
std::string ComputeTwilioSignature(absl::string_view auth_token, absl::string_view url,
                                   const FormParams& params);

// `url` with `bodySHA256=<hex sha256 of body>` appended to its query, as Twilio builds the URL it
// signs for a JSON body (for the simulator and tests).
std::string UrlWithBodySha256(absl::string_view url, absl::string_view body);

// `signature` is the header's value, empty when absent.
SignatureVerdict VerifyFormSignature(absl::Span<const std::string> auth_tokens,
                                     absl::string_view url, const FormParams& params,
                                     absl::string_view signature);

// For a JSON (or any raw) body: the signature over `url`, and the body against its bodySHA256.
SignatureVerdict VerifyBodySignature(absl::Span<const std::string> auth_tokens,
                                     absl::string_view url, absl::string_view body,
                                     absl::string_view signature);

// `url` with its default port toggled (see above), or empty if it has a non-default port or
// cannot be parsed as an absolute http(s) URL with a host.
std::string UrlWithDefaultPortToggled(absl::string_view url);

// Whether a and b are equal, in time that depends only on their lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace gateway

#endif  // GATEWAY_WEBHOOK_SIGNATURE_H_
