#include "target.h"

#include <time.h>

#include <string>

#include "subscription_client.h"

namespace loadgen {

int64_t NowNanos() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string CodeName(int code) {
  if (code >= 0 && code <= 16) {
    return twilio_gateway::client::StatusCodeName(static_cast<grpc::StatusCode>(code));
  }
  if (code == kDroppedByClient) return "DROPPED_CLIENT_LIMIT";
  if (code >= kCurlBase) return "CURL_" + std::to_string(code - kCurlBase);
  if (code >= kHttpBase) return "HTTP_" + std::to_string(code - kHttpBase);
  return "CODE_" + std::to_string(code);
}

}  // namespace loadgen
