// Listen and connect addresses written "host:port", "[ipv6]:port" or ":port" (any host), and
// URL authorities "host[:port]": one splitter for every flag, server and URL that holds one, so
// they all accept and refuse the same forms.
//
// Usage:
//   absl::StatusOr<HostPort> address = SplitHostPort("[::1]:9090");  // {"::1", 9090}
//   JoinHostPort(address->host, 0);                                   // "[::1]:0"
//   SplitUrlAuthority("example.com");                                 // {"example.com"}
//
// Thread-safety: pure functions.
#ifndef GATEWAY_COMMON_HOST_PORT_H_
#define GATEWAY_COMMON_HOST_PORT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway {

struct HostPort {
  std::string host;  // Without brackets; empty for ":port".
  int port = 0;      // 0 to 65535; 0 asks the kernel for a free port.
};

// INVALID_ARGUMENT, with a message that says what is wrong but not the address (callers name
// it), for: no port, a port that is not 1 to 5 digits up to 65535, an unbracketed IPv6 host
// ("::1:9090" is ambiguous), a bracket that does not close right before ":port", or a bracket
// in an unbracketed host.
absl::StatusOr<HostPort> SplitHostPort(absl::string_view address);

// A URL's authority, after the caller has taken off any user information ("user@").
struct UrlAuthority {
  std::string host;         // Without brackets; never empty.
  bool bracketed = false;   // Written "[...]": an IPv6 (or future IP) literal.
  std::optional<int> port;  // 1 to 65535; none when the authority has no ":port".
};

// INVALID_ARGUMENT, with a message as SplitHostPort's, for: no host, a ":port" that is not 1 to
// 5 digits from 1 to 65535 (nothing connects to port 0), an unbracketed IPv6 host, a bracket
// that does not close right before the end or ":port", or a bracket in an unbracketed host.
absl::StatusOr<UrlAuthority> SplitUrlAuthority(absl::string_view authority);

// "host:port", or "[host]:port" when the host is an IPv6 literal (contains ':').
std::string JoinHostPort(absl::string_view host, int port);

}  // namespace gateway

#endif  // GATEWAY_COMMON_HOST_PORT_H_
