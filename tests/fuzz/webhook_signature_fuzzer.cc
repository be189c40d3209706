// Fuzzes the webhook signature (webhook/signature.h). Every input is verified as a form POST and
// as a JSON body, which must not crash and must give a defined verdict. Then the code signs the
// input itself, and traps unless that signature verifies (by the right token during a rotation,
// and with the default port toggled), unless reordering the parameters keeps it valid, and
// unless a flipped signature byte, an altered body or a wrong token is refused.
//
// Input format (stable, so seeds can be written by hand): fields separated by '\n' in the order
// token, url, signature; the rest (newlines included) is the body. The body is also read as
// form parameters: '&'-separated, each split at its first '=' (no percent-decoding: the
// verifier takes decoded fields, so any bytes are fair).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "webhook/signature.h"

namespace gateway {
namespace {

void Require(bool holds, const char* invariant) {
  if (holds) return;
  std::fprintf(stderr, "invariant violated: %s\n", invariant);
  __builtin_trap();
}

absl::string_view NextField(absl::string_view& rest) {
  const size_t newline = rest.find('\n');
  const absl::string_view field = rest.substr(0, newline);
  rest.remove_prefix(newline == absl::string_view::npos ? rest.size() : newline + 1);
  return field;
}

FormParams ParseParams(absl::string_view body) {
  FormParams params;
  while (!body.empty()) {
    const size_t amp = body.find('&');
    const absl::string_view pair = body.substr(0, amp);
    const size_t eq = pair.find('=');
    params.emplace_back(std::string(pair.substr(0, eq)),
                        eq == absl::string_view::npos ? "" : std::string(pair.substr(eq + 1)));
    if (amp == absl::string_view::npos) break;
    body.remove_prefix(amp + 1);
  }
  return params;
}

bool IsKnown(SignatureError error) {
  switch (error) {
    case SignatureError::kNone:
    case SignatureError::kNoToken:
    case SignatureError::kMissingSignature:
    case SignatureError::kMalformedSignature:
    case SignatureError::kMalformedUrl:
    case SignatureError::kMismatch:
    case SignatureError::kMissingBodyHash:
    case SignatureError::kBodyHashMismatch:
      return true;
  }
  return false;
}

std::string Flip(std::string signature) {
  signature[0] = signature[0] == 'A' ? 'B' : 'A';
  return signature;
}

}  // namespace
}  // namespace gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gateway;  // NOLINT(build/namespaces): a fuzz entry point, not a header
  absl::string_view rest(reinterpret_cast<const char*>(data), size);
  const std::string token(NextField(rest));
  const std::string url(NextField(rest));
  const std::string signature(NextField(rest));
  const absl::string_view body = rest;
  const FormParams params = ParseParams(body);
  const std::string tokens[] = {token};

  // Arbitrary input: a defined verdict, and never a match against a malformed header.
  const SignatureVerdict form = VerifyFormSignature(tokens, url, params, signature);
  const SignatureVerdict json = VerifyBodySignature(tokens, url, body, signature);
  Require(IsKnown(form.error) && IsKnown(json.error), "a defined verdict");
  Require(SignatureErrorName(form.error) != "unknown", "every verdict has a name");
  Require(!form.ok() || form.token_index == 0, "only token 0 exists");
  if (form.ok() || json.ok()) Require(signature.size() == 28, "a match is 28 characters");

  // The code's own signature: always well formed, independent of parameter order.
  const std::string signed_form = ComputeTwilioSignature(token, url, params);
  Require(signed_form.size() == 28 && signed_form.back() == '=', "base64 of 20 bytes");
  FormParams reversed = params;
  std::reverse(reversed.begin(), reversed.end());
  Require(ComputeTwilioSignature(token, url, reversed) == signed_form,
          "parameter order does not matter");

  const SignatureVerdict own = VerifyFormSignature(tokens, url, params, signed_form);
  if (token.empty()) {
    Require(own.error == SignatureError::kNoToken, "no token, no verification");
    return 0;
  }
  if (own.error == SignatureError::kMalformedUrl) return 0;
  Require(own.ok() && own.token_index == 0, "a computed signature verifies");
  Require(VerifyFormSignature(tokens, url, reversed, signed_form).ok(), "reordered verifies");
  Require(!VerifyFormSignature(tokens, url, params, Flip(signed_form)).ok(),
          "a flipped byte is refused");

  // Rotation: the token in the second slot verifies and is reported, unless the decoy is the
  // same HMAC key (HMAC pads short keys with zeros, so "k" and "k\0" are one key).
  const std::string decoy = "decoy-token";
  const std::string rotation[] = {decoy, token};
  const SignatureVerdict rotated = VerifyFormSignature(rotation, url, params, signed_form);
  Require(rotated.ok(), "the previous token verifies during a rotation");
  Require(rotated.token_index == 1 || ComputeTwilioSignature(decoy, url, params) == signed_form,
          "the verdict names the token that matched");
  const std::string only_decoy[] = {decoy};
  if (ComputeTwilioSignature(decoy, url, params) != signed_form) {
    Require(!VerifyFormSignature(only_decoy, url, params, signed_form).ok(),
            "a wrong token is refused");
  }

  // Twilio may sign with or without the default port; both forms verify each other's signature.
  const std::string toggled = UrlWithDefaultPortToggled(url);
  if (!toggled.empty()) {
    Require(VerifyFormSignature(tokens, toggled, params, signed_form).ok(),
            "the default-port variant verifies");
    Require(UrlWithDefaultPortToggled(toggled) == url, "toggling twice is the identity");
  }

  // JSON body: the URL with bodySHA256 verifies with this body, and not with another.
  const std::string body_url = UrlWithBodySha256(url, body);
  const std::string signed_body = ComputeTwilioSignature(token, body_url, {});
  const SignatureVerdict own_body = VerifyBodySignature(tokens, body_url, body, signed_body);
  // The first bodySHA256 counts (the URL is signed, so only Twilio could have put one there).
  if (absl::StrContains(url, kBodySha256Parameter)) return 0;
  Require(own_body.ok() && own_body.token_index == 0, "a computed body signature verifies");
  const std::string other_body = std::string(body) + "x";
  Require(VerifyBodySignature(tokens, body_url, other_body, signed_body).error ==
              SignatureError::kBodyHashMismatch,
          "an altered body is refused");
  return 0;
}
