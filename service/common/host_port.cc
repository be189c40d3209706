#include "common/host_port.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace gateway {
namespace {

// The shape both forms share: "[host]" or "host", then ":port" if any (`port` unset without).
struct Parts {
  absl::string_view host;
  bool bracketed = false;
  std::optional<absl::string_view> port;
};

absl::StatusOr<Parts> SplitParts(absl::string_view text) {
  Parts out;
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("missing ]");
    out.host = rest.substr(0, close);
    out.bracketed = true;
    rest.remove_prefix(close + 1);
    if (rest.empty()) return out;
    if (!absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError("expected [host]:port");
    }
    out.port = rest;
    return out;
  }
  const size_t colon = rest.rfind(':');
  out.host = rest.substr(0, colon);
  if (absl::StrContains(out.host, ':')) {
    return absl::InvalidArgumentError("an IPv6 host must be in brackets, as in [::1]:9090");
  }
  if (out.host.find_first_of("[]") != absl::string_view::npos) {
    return absl::InvalidArgumentError("brackets may only enclose a whole IPv6 host");
  }
  if (colon != absl::string_view::npos) out.port = rest.substr(colon + 1);
  return out;
}

// Digits only: SimpleAtoi would also take "+80" and " 80".
bool ParsePort(absl::string_view text, int* port) {
  return !text.empty() && text.size() <= 5 &&
         std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); }) &&
         absl::SimpleAtoi(text, port) && *port <= 65535;
}

}  // namespace

absl::StatusOr<HostPort> SplitHostPort(absl::string_view address) {
  absl::StatusOr<Parts> parts = SplitParts(address);
  if (!parts.ok()) return parts.status();
  if (!parts->port.has_value()) {
    return absl::InvalidArgumentError(parts->bracketed ? "expected [host]:port"
                                                       : "expected host:port");
  }
  HostPort out;
  out.host = std::string(parts->host);
  if (!ParsePort(*parts->port, &out.port)) {
    return absl::InvalidArgumentError("the port must be a number from 0 to 65535");
  }
  return out;
}

absl::StatusOr<UrlAuthority> SplitUrlAuthority(absl::string_view authority) {
  absl::StatusOr<Parts> parts = SplitParts(authority);
  if (!parts.ok()) return parts.status();
  if (parts->host.empty()) return absl::InvalidArgumentError("the host is missing");
  UrlAuthority out;
  out.host = std::string(parts->host);
  out.bracketed = parts->bracketed;
  if (parts->port.has_value()) {
    int port = 0;
    if (!ParsePort(*parts->port, &port) || port == 0) {
      return absl::InvalidArgumentError("the port must be a number from 1 to 65535");
    }
    out.port = port;
  }
  return out;
}

std::string JoinHostPort(absl::string_view host, int port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

}  // namespace gateway
