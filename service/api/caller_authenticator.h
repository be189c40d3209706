// Who is calling: a bearer token from the "authorization" metadata, or the identity in a
// verified client certificate (mutual TLS). A token, when sent, must be valid even if a
// certificate is also present: a wrong credential is an error, not a fallback.
//
// Certificate identities, in order of preference: the SPIFFE ID, the first URI SAN, the first
// DNS SAN, then the subject's common name.
//
// Thread-safety: Authenticate() is safe from any thread.
#ifndef GATEWAY_API_CALLER_AUTHENTICATOR_H_
#define GATEWAY_API_CALLER_AUTHENTICATOR_H_

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "auth/caller_tokens.h"
#include "common/snapshot.h"

namespace gateway {

struct CallerAuthOptions {
  // Bearer tokens accepted; null: none.
  const Snapshot<CallerTokens>* tokens = nullptr;
  // Refuse callers who present nothing (set whenever a caller policy is in force).
  bool required = false;
};

class CallerAuthenticator {
 public:
  explicit CallerAuthenticator(CallerAuthOptions options) : options_(options) {}

  // The caller's name, or "" for an anonymous caller when authentication is not required.
  // UNAUTHENTICATED (ErrorInfo reason CALLER_UNAUTHENTICATED) otherwise.
  absl::StatusOr<std::string> Authenticate(const grpc::ServerContextBase& context) const;

 private:
  const CallerAuthOptions options_;
};

// The identity in a verified peer certificate, if the connection has one.
std::optional<std::string> CertificateIdentity(const grpc::AuthContext& auth);

}  // namespace gateway

#endif  // GATEWAY_API_CALLER_AUTHENTICATOR_H_
