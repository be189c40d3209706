// subscription-cli: calls SubscriptionService.Create on a gateway and prints the result as JSON.
#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>

#include "subscription_client.h"

namespace {

constexpr char kUsage[] =
    R"(subscription-cli: subscribe a live Voice SDK call to Twilio user-defined messages
through the gateway, which holds the Twilio credentials.

Usage:
  subscription-cli --call-sid CA... --callback https://example.com/messages [options]

Options:
  --target HOST:PORT       gateway address (default localhost:50051)
  --call-sid SID           the call to subscribe: CA followed by 32 hex digits (required)
  --callback URL           where Twilio sends the messages, http or https (required)
  --method POST|GET        how Twilio calls the callback (default POST)
  --idempotency-key KEY    reuse a key to retry a create safely; generated when omitted
  --account-sid SID        a subaccount (AC...); default: the gateway's account
  --timeout SECONDS        deadline for the whole call, retries included (default 10)
  --tls-ca FILE            connect with TLS, verifying the gateway against this CA bundle
  --tls-cert FILE          client certificate for mutual TLS (with --tls-key)
  --tls-key FILE           its private key
  --help                   this text

A bearer token, when the gateway wants one, is read from the environment variable
SUBSCRIPTION_CLI_TOKEN (never a flag: command lines are visible to every user).

On success prints the subscription as JSON and exits 0. On failure prints the gRPC status,
its details (which field is wrong, what Twilio said, the idempotency key to retry with) as
JSON on stderr, and exits 1. Usage errors exit 2.

Example:
  subscription-cli --target localhost:50051 \
    --call-sid CA0123456789abcdef0123456789abcdef \
    --callback https://example.com/twilio/messages
)";

int UsageError(const std::string& message) {
  std::cerr << "subscription-cli: " << message << "\n(see --help)\n";
  return 2;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return message.ShortDebugString();
  }
  return out;
}

}  // namespace

// What to do with the key next, by the code (README, "Exactly once: the contract").
const char* NextStep(grpc::StatusCode code, const std::string& reason) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "fix the request and use a new key: retrying this one cannot succeed";
    case grpc::StatusCode::UNKNOWN:
      if (reason == "OUTCOME_UNKNOWN") {
        return "the subscription may or may not exist and the gateway will not send this key "
               "again; a new key may create a second one";
      }
      return "retry with it to repeat this create safely";
    case grpc::StatusCode::FAILED_PRECONDITION:
      if (reason == "IDEMPOTENCY_KEY_REUSED")
        return "this key belongs to another request: use a new key";
      return "retrying with it is safe once the cause is fixed";
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return "retrying with it changes nothing until the cause is fixed";
    default:
      return "retry with it to repeat this create safely";
  }
}

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags = {{"target", "localhost:50051"}, {"timeout", "10"}};
  static const char* const kKnown[] = {"target",          "call-sid",    "callback", "method",
                                       "idempotency-key", "account-sid", "timeout",  "tls-ca",
                                       "tls-cert",        "tls-key"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg.rfind("--", 0) != 0) return UsageError("unexpected argument \"" + arg + "\"");
    std::string name = arg.substr(2);
    std::string value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return UsageError("--" + name + " needs a value");
    }
    bool known = false;
    for (const char* k : kKnown) known = known || name == k;
    if (!known) return UsageError("unknown flag --" + name);
    flags[name] = value;
  }
  if (!flags.count("call-sid")) return UsageError("--call-sid is required");
  if (!flags.count("callback")) return UsageError("--callback is required");

  twilio_gateway::v1::CreateSubscriptionRequest request;
  request.set_call_sid(flags["call-sid"]);
  request.set_callback(flags["callback"]);
  if (flags.count("method")) {
    const std::string& m = flags["method"];
    if (m == "POST" || m == "post") {
      request.set_method(twilio_gateway::v1::CALLBACK_METHOD_POST);
    } else if (m == "GET" || m == "get") {
      request.set_method(twilio_gateway::v1::CALLBACK_METHOD_GET);
    } else {
      return UsageError("--method must be POST or GET");
    }
  }
  if (flags.count("idempotency-key")) request.set_idempotency_key(flags["idempotency-key"]);
  if (flags.count("account-sid")) request.set_account_sid(flags["account-sid"]);
  char* end = nullptr;
  const double seconds = std::strtod(flags["timeout"].c_str(), &end);
  if (end == flags["timeout"].c_str() || *end != '\0' || !(seconds > 0) || seconds > 3600) {
    return UsageError("--timeout must be a number of seconds between 0 and 3600");
  }

  if (flags.count("tls-cert") != flags.count("tls-key")) {
    return UsageError("--tls-cert and --tls-key go together");
  }
  if (flags.count("tls-cert") && !flags.count("tls-ca")) {
    return UsageError("--tls-cert needs --tls-ca");
  }
  twilio_gateway::client::ClientOptions options;
  if (const char* token = std::getenv("SUBSCRIPTION_CLI_TOKEN")) options.bearer_token = token;
  std::string error;
  auto credentials = twilio_gateway::client::ChannelCredentialsFromFiles(
      flags["tls-ca"], flags["tls-cert"], flags["tls-key"], &error);
  if (credentials == nullptr) return UsageError(error);
  twilio_gateway::client::SubscriptionClient client(
      grpc::CreateChannel(flags["target"], std::move(credentials)), std::move(options));
  const auto result =
      client.Create(request, std::chrono::milliseconds(static_cast<long long>(seconds * 1000)));
  if (result.status.ok()) {
    std::cout << ToJson(result.subscription) << "\n";
    return 0;
  }
  google::rpc::Status printed = result.details.rich_status;
  printed.set_code(result.status.error_code());
  printed.set_message(result.status.error_message());
  std::cerr << "error: " << twilio_gateway::client::StatusCodeName(result.status.error_code())
            << ": " << result.status.error_message()
            << "\nidempotency_key: " << result.idempotency_key << " ("
            << NextStep(result.status.error_code(),
                        result.details.error_info ? result.details.error_info->reason() : "")
            << ")\n"
            << ToJson(printed) << "\n";
  return 1;
}
