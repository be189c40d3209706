#include "common/host_port.h"

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;

struct Split {
  const char* address;
  const char* host;
  int port;
};

TEST(SplitHostPortTest, AcceptsNamesIpv4BracketedIpv6AndAnyHost) {
  for (const Split& want :
       {Split{"127.0.0.1:50051", "127.0.0.1", 50051}, Split{"localhost:0", "localhost", 0},
        Split{"redis.internal:6379", "redis.internal", 6379}, Split{"[::1]:9090", "::1", 9090},
        Split{"[::]:65535", "::", 65535}, Split{"[fe80::1%eth0]:80", "fe80::1%eth0", 80},
        Split{":8081", "", 8081}, Split{"[]:1", "", 1}, Split{"host:00080", "host", 80}}) {
    absl::StatusOr<HostPort> got = SplitHostPort(want.address);
    ASSERT_TRUE(got.ok()) << want.address << ": " << got.status();
    EXPECT_EQ(got->host, want.host) << want.address;
    EXPECT_EQ(got->port, want.port) << want.address;
  }
}

TEST(SplitHostPortTest, MissingPortIsInvalid) {
  for (const char* address : {"", "9090", "127.0.0.1", "localhost", "[::1]", "[::1]9090"}) {
    absl::StatusOr<HostPort> got = SplitHostPort(address);
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << address << ": " << got.status();
  }
}

TEST(SplitHostPortTest, PortMustBeDigitsUpTo65535) {
  for (const char* address :
       {"127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80",
        "127.0.0.1: 80", "127.0.0.1:80 ", "h:123456", "[::1]:", "[::1]:99999", "[::1]:0x50"}) {
    absl::StatusOr<HostPort> got = SplitHostPort(address);
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << address << ": " << got.status();
    EXPECT_THAT(got.status().message(), HasSubstr("port")) << address;
  }
}

TEST(SplitHostPortTest, UnbracketedOrUnclosedIpv6IsInvalid) {
  absl::StatusOr<HostPort> bare = SplitHostPort("::1:9090");
  EXPECT_TRUE(absl::IsInvalidArgument(bare.status()));
  EXPECT_THAT(bare.status().message(), HasSubstr("brackets"));
  absl::StatusOr<HostPort> unclosed = SplitHostPort("[::1:9090");
  EXPECT_TRUE(absl::IsInvalidArgument(unclosed.status()));
  EXPECT_THAT(unclosed.status().message(), HasSubstr("missing ]"));
  EXPECT_FALSE(SplitHostPort("[::1]x:9090").ok());
}

TEST(SplitHostPortTest, BracketsOnlyAroundTheWholeHost) {
  for (const char* address : {"a]:80", "a[b:80", "8::1]:80"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(SplitHostPort(address).status())) << address;
  }
}

struct Authority {
  const char* authority;
  const char* host;
  bool bracketed;
  std::optional<int> port;
};

TEST(SplitUrlAuthorityTest, PortIsOptional) {
  for (const Authority& want :
       {Authority{"example.com", "example.com", false, std::nullopt},
        Authority{"example.com:8443", "example.com", false, 8443},
        Authority{"127.0.0.1", "127.0.0.1", false, std::nullopt},
        Authority{"[::1]", "::1", true, std::nullopt},
        Authority{"[2001:db8::1]:443", "2001:db8::1", true, 443},
        Authority{"h:65535", "h", false, 65535}, Authority{"h:00080", "h", false, 80}}) {
    absl::StatusOr<UrlAuthority> got = SplitUrlAuthority(want.authority);
    ASSERT_TRUE(got.ok()) << want.authority << ": " << got.status();
    EXPECT_EQ(got->host, want.host) << want.authority;
    EXPECT_EQ(got->bracketed, want.bracketed) << want.authority;
    EXPECT_EQ(got->port, want.port) << want.authority;
  }
}

TEST(SplitUrlAuthorityTest, PortMustBeDigitsFrom1To65535) {
  for (const char* authority : {"h:", "h:0", "h:65536", "h:-1", "h:+80", "h:8o", "h:123456",
                                "[::1]:", "[::1]:0", "[::1]:44a"}) {
    absl::StatusOr<UrlAuthority> got = SplitUrlAuthority(authority);
    EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << authority << ": " << got.status();
    EXPECT_THAT(got.status().message(), HasSubstr("1 to 65535")) << authority;
  }
}

TEST(SplitUrlAuthorityTest, RefusesNoHostAndMisplacedBracketsOrColons) {
  for (const char* authority :
       {"", ":443", "[]", "[]:443", "[::1", "[::1]x", "::1", "a:b:443", "8::1]:80", "a]:80"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(SplitUrlAuthority(authority).status())) << authority;
  }
  EXPECT_THAT(SplitUrlAuthority(":443").status().message(), HasSubstr("host"));
  EXPECT_THAT(SplitUrlAuthority("a:b:443").status().message(), HasSubstr("brackets"));
}

TEST(JoinHostPortTest, BracketsIpv6HostsOnly) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 50051), "127.0.0.1:50051");
  EXPECT_EQ(JoinHostPort("::1", 9090), "[::1]:9090");
  EXPECT_EQ(JoinHostPort("", 8081), ":8081");
}

TEST(JoinHostPortTest, RoundTripsThroughSplit) {
  for (const char* address : {"127.0.0.1:1", "[::1]:9090", ":0", "example.com:443"}) {
    absl::StatusOr<HostPort> split = SplitHostPort(address);
    ASSERT_TRUE(split.ok()) << address;
    EXPECT_EQ(JoinHostPort(split->host, split->port), address);
  }
}

}  // namespace
}  // namespace gateway
