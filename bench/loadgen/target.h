// What the load generator sends requests to: the gateway over gRPC, or Twilio's REST route
// directly with libcurl (the floor). The driver decides when to send; a Target only sends.
//
// Usage: the driver calls Send() with a Request; the target completes it exactly once by calling
// CompletionSink::OnComplete(), never inline from Send(), on a thread the target owns.
// Thread-safety: Send() may be called from any thread, including from inside OnComplete().
#ifndef GATEWAY_BENCH_LOADGEN_TARGET_H_
#define GATEWAY_BENCH_LOADGEN_TARGET_H_

#include <cstdint>
#include <string>

namespace loadgen {

// Nanoseconds on CLOCK_MONOTONIC.
int64_t NowNanos();

struct Request {
  uint64_t seq = 0;
  int64_t intended_ns = 0;  // when the schedule wanted it sent (latency is measured from here)
  int64_t sent_ns = 0;      // when it was actually handed to the target
  bool measured = false;    // inside the measurement window (open loop)
};

// A result code in one number space for every target, so counting needs no strings:
// gRPC status codes are 0..16, HTTP statuses kHttpBase + status, libcurl errors kCurlBase + code.
inline constexpr int kHttpBase = 1000;
inline constexpr int kCurlBase = 2000;
// A request the client refused to send because --max-in-flight were already outstanding.
inline constexpr int kDroppedByClient = 3000;

struct Outcome {
  int code = 0;
  bool ok = false;
};

// "OK", "DEADLINE_EXCEEDED", "HTTP_201", "CURL_28" ...
std::string CodeName(int code);

class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  virtual void OnComplete(const Request& request, Outcome outcome) = 0;
};

class Target {
 public:
  virtual ~Target() = default;
  virtual void Send(const Request& request) = 0;
  // Called once before the first Send().
  virtual void SetSink(CompletionSink* sink) = 0;
};

}  // namespace loadgen

#endif  // GATEWAY_BENCH_LOADGEN_TARGET_H_
