#include "common/host_port.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace gateway {

absl::StatusOr<HostPort> SplitHostPort(absl::string_view address) {
  HostPort out;
  absl::string_view rest = address;
  if (absl::ConsumePrefix(&rest, "[")) {
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("missing ]");
    out.host = std::string(rest.substr(0, close));
    rest.remove_prefix(close + 1);
    if (!absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError("expected [host]:port");
    }
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) return absl::InvalidArgumentError("expected host:port");
    out.host = std::string(rest.substr(0, colon));
    if (absl::StrContains(out.host, ':')) {
      return absl::InvalidArgumentError("an IPv6 host must be in brackets, as in [::1]:9090");
    }
    rest.remove_prefix(colon + 1);
  }
  // Digits only: SimpleAtoi would also take "+80" and " 80".
  if (rest.empty() || rest.size() > 5 ||
      !std::all_of(rest.begin(), rest.end(), [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(rest, &out.port) || out.port > 65535) {
    return absl::InvalidArgumentError("the port must be a number from 0 to 65535");
  }
  return out;
}

std::string JoinHostPort(absl::string_view host, int port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

}  // namespace gateway
