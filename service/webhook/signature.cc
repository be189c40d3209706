#include "webhook/signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/host_port.h"
#include "common/sha256.h"

namespace gateway {
namespace {

// base64 of a 20-byte SHA-1 digest: 27 characters and one '=' of padding.
constexpr size_t kSignatureLength = 28;

// Where the authority's port sits in a URL, and the scheme's default port.
struct UrlPort {
  size_t authority_end = 0;                     // index just past the authority (host[:port])
  size_t port_colon = absl::string_view::npos;  // index of the port's ':', npos if none
  absl::string_view default_port;               // "443" or "80"
};

std::optional<UrlPort> ParseUrlPort(absl::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return std::nullopt;
  UrlPort parsed;
  const absl::string_view scheme = url.substr(0, scheme_end);
  if (absl::EqualsIgnoreCase(scheme, "https")) {
    parsed.default_port = "443";
  } else if (absl::EqualsIgnoreCase(scheme, "http")) {
    parsed.default_port = "80";
  } else {
    return std::nullopt;
  }
  const size_t authority_start = scheme_end + 3;
  parsed.authority_end = std::min(url.find_first_of("/?#", authority_start), url.size());
  absl::string_view authority = url.substr(authority_start, parsed.authority_end - authority_start);
  // User information (user:password@) may precede the host; its ':' is not a port.
  size_t host_start = authority_start;
  if (const size_t at = authority.rfind('@'); at != absl::string_view::npos) {
    host_start += at + 1;
    authority.remove_prefix(at + 1);
  }
  // Only a well-formed host[:port] is toggled, so that toggling twice gives back the same URL.
  absl::StatusOr<UrlAuthority> split = SplitUrlAuthority(authority);
  if (!split.ok()) return std::nullopt;
  if (split->port.has_value()) parsed.port_colon = host_start + authority.rfind(':');
  return parsed;
}

std::string ToggleDefaultPort(absl::string_view url, const UrlPort& port) {
  if (port.port_colon == absl::string_view::npos) {
    return absl::StrCat(url.substr(0, port.authority_end), ":", port.default_port,
                        url.substr(port.authority_end));
  }
  const absl::string_view digits =
      url.substr(port.port_colon + 1, port.authority_end - port.port_colon - 1);
  if (digits != port.default_port) return "";
  return absl::StrCat(url.substr(0, port.port_colon), url.substr(port.authority_end));
}

// What Twilio's helper libraries sign: the URL, then each distinct (name, value) pair sorted by
// name and then value, with no separators. Values are sorted too so that the order in which a
// repeated name's values arrive cannot change the signature.
std::string SignedData(absl::string_view url, const FormParams& params) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(params.size());
  size_t size = url.size();
  for (const auto& param : params) {
    sorted.push_back(&param);
    size += param.first.size() + param.second.size();
  }
  // std::string compares bytes as unsigned char, which is the code point order Twilio uses.
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });
  sorted.erase(std::unique(sorted.begin(), sorted.end(),
                           [](const auto* a, const auto* b) { return *a == *b; }),
               sorted.end());
  std::string data;
  data.reserve(size);
  data.append(url.data(), url.size());
  for (const auto* param : sorted) {
    data += param->first;
    data += param->second;
  }
  return data;
}

std::string SignData(absl::string_view auth_token, absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha1(), auth_token.data(), static_cast<int>(auth_token.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest,
           &length) == nullptr) {
    return "";  // matches no well-formed signature
  }
  const std::string signature =
      absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(digest), length));
  OPENSSL_cleanse(digest, sizeof(digest));
  return signature;
}

bool IsBase64Char(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
}

bool IsWellFormedSignature(absl::string_view signature) {
  if (signature.size() != kSignatureLength || signature.back() != '=') return false;
  return std::all_of(signature.begin(), signature.end() - 1, IsBase64Char);
}

// The first value of `name` in the URL's query, or nullopt. The URL is signed, so a second
// occurrence could only have been put there by Twilio.
std::optional<absl::string_view> QueryParameter(absl::string_view url, absl::string_view name) {
  size_t start = url.find('?');
  if (start == absl::string_view::npos) return std::nullopt;
  absl::string_view query = url.substr(start + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const absl::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == absl::string_view::npos ? absl::string_view() : pair.substr(eq + 1);
    }
    if (amp == absl::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// Checks shared by both variants, before any HMAC is computed.
SignatureError Precheck(absl::Span<const std::string> auth_tokens, absl::string_view url,
                        absl::string_view signature, std::optional<UrlPort>& port) {
  if (std::all_of(auth_tokens.begin(), auth_tokens.end(),
                  [](const std::string& token) { return token.empty(); })) {
    return SignatureError::kNoToken;
  }
  if (signature.empty()) return SignatureError::kMissingSignature;
  if (!IsWellFormedSignature(signature)) return SignatureError::kMalformedSignature;
  port = ParseUrlPort(url);
  if (!port.has_value()) return SignatureError::kMalformedUrl;
  return SignatureError::kNone;
}

// Tries every token against the URL as given and with its default port toggled. Every
// combination is computed, so the time taken says nothing about which one matched.
SignatureVerdict Match(absl::Span<const std::string> auth_tokens, absl::string_view url,
                       const UrlPort& port, const FormParams& params, absl::string_view signature) {
  std::vector<std::string> data = {SignedData(url, params)};
  if (std::string toggled = ToggleDefaultPort(url, port); !toggled.empty()) {
    data.push_back(SignedData(toggled, params));
  }
  std::optional<size_t> matched;
  for (size_t i = 0; i < auth_tokens.size(); ++i) {
    if (auth_tokens[i].empty()) continue;  // an unset slot, never a key
    for (const std::string& signed_data : data) {
      if (ConstantTimeEquals(SignData(auth_tokens[i], signed_data), signature) &&
          !matched.has_value()) {
        matched = i;
      }
    }
  }
  if (!matched.has_value()) return {SignatureError::kMismatch, 0};
  return {SignatureError::kNone, *matched};
}

}  // namespace

absl::string_view SignatureErrorName(SignatureError error) {
  switch (error) {
    case SignatureError::kNone:
      return "ok";
    case SignatureError::kNoToken:
      return "no_token";
    case SignatureError::kMissingSignature:
      return "missing_signature";
    case SignatureError::kMalformedSignature:
      return "malformed_signature";
    case SignatureError::kMalformedUrl:
      return "malformed_url";
    case SignatureError::kMismatch:
      return "mismatch";
    case SignatureError::kMissingBodyHash:
      return "missing_body_hash";
    case SignatureError::kBodyHashMismatch:
      return "body_hash_mismatch";
  }
  return "unknown";
}

std::string ComputeTwilioSignature(absl::string_view auth_token, absl::string_view url,
                                   const FormParams& params) {
  return SignData(auth_token, SignedData(url, params));
}

std::string UrlWithBodySha256(absl::string_view url, absl::string_view body) {
  const size_t fragment = std::min(url.find('#'), url.size());
  const absl::string_view before = url.substr(0, fragment);
  const char* separator = before.find('?') == absl::string_view::npos ? "?" : "&";
  return absl::StrCat(before, separator, kBodySha256Parameter, "=", Sha256Hex(body),
                      url.substr(fragment));
}

SignatureVerdict VerifyFormSignature(absl::Span<const std::string> auth_tokens,
                                     absl::string_view url, const FormParams& params,
                                     absl::string_view signature) {
  std::optional<UrlPort> port;
  if (SignatureError error = Precheck(auth_tokens, url, signature, port);
      error != SignatureError::kNone) {
    return {error, 0};
  }
  return Match(auth_tokens, url, *port, params, signature);
}

SignatureVerdict VerifyBodySignature(absl::Span<const std::string> auth_tokens,
                                     absl::string_view url, absl::string_view body,
                                     absl::string_view signature) {
  std::optional<UrlPort> port;
  if (SignatureError error = Precheck(auth_tokens, url, signature, port);
      error != SignatureError::kNone) {
    return {error, 0};
  }
  // Without bodySHA256 the signature covers the URL only, and any body would pass with it.
  const std::optional<absl::string_view> body_hash = QueryParameter(url, kBodySha256Parameter);
  if (!body_hash.has_value()) return {SignatureError::kMissingBodyHash, 0};
  SignatureVerdict verdict = Match(auth_tokens, url, *port, FormParams(), signature);
  if (!verdict.ok()) return verdict;
  // Only now, for a URL Twilio signed: a body that does not hash to it was altered on the way.
  if (!ConstantTimeEquals(Sha256Hex(body), *body_hash)) {
    return {SignatureError::kBodyHashMismatch, 0};
  }
  return verdict;
}

std::string UrlWithDefaultPortToggled(absl::string_view url) {
  const std::optional<UrlPort> port = ParseUrlPort(url);
  if (!port.has_value()) return "";
  return ToggleDefaultPort(url, *port);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Lengths are public (a signature is always 28 characters); only the bytes are compared in
  // constant time.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace gateway
