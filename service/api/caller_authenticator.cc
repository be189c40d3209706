#include "api/caller_authenticator.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/error_details.h"

namespace gateway {
namespace {

absl::Status Unauthenticated(absl::string_view message) {
  absl::Status status = absl::UnauthenticatedError(message);
  SetErrorInfo(status, "CALLER_UNAUTHENTICATED");
  return status;
}

std::optional<std::string> FirstProperty(const grpc::AuthContext& auth, const char* name) {
  for (const grpc::string_ref& value : auth.FindPropertyValues(name)) {
    if (value.empty()) continue;
    std::string s(value.data(), value.size());
    if (IsCallerName(s)) return s;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> CertificateIdentity(const grpc::AuthContext& auth) {
  // Properties exist only when gRPC verified the client certificate (mutual TLS).
  if (!auth.IsPeerAuthenticated()) return std::nullopt;
  for (const char* name : {GRPC_PEER_SPIFFE_ID_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME,
                           GRPC_PEER_DNS_PROPERTY_NAME, GRPC_X509_CN_PROPERTY_NAME}) {
    if (std::optional<std::string> identity = FirstProperty(auth, name)) return identity;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> CallerAuthenticator::Authenticate(
    const grpc::ServerContextBase& context) const {
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    absl::string_view value(it->second.data(), it->second.size());
    // RFC 6750: the scheme is case-insensitive.
    if (value.size() < 8 || !absl::EqualsIgnoreCase(value.substr(0, 7), "Bearer ")) {
      return Unauthenticated("authorization metadata must be \"Bearer <token>\"");
    }
    absl::string_view token = absl::StripAsciiWhitespace(value.substr(7));
    std::shared_ptr<const CallerTokens> tokens =
        options_.tokens == nullptr ? nullptr : options_.tokens->Get();
    if (tokens == nullptr) return Unauthenticated("this gateway accepts no bearer tokens");
    if (std::optional<std::string> caller = tokens->Find(token)) return *std::move(caller);
    return Unauthenticated("the bearer token is not known to this gateway");
  }
  if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context()) {
    if (std::optional<std::string> identity = CertificateIdentity(*auth)) return *identity;
  }
  if (options_.required) {
    return Unauthenticated(
        "no caller credentials: send \"authorization: Bearer <token>\" or a client certificate");
  }
  return std::string();
}

}  // namespace gateway
