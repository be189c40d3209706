// subscription-cli: calls the gateway (SubscriptionService.Create and Delete, MessageService.Send
// and Watch) and prints the result as JSON.
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "subscription_client.h"

namespace {

using twilio_gateway::client::Operation;

constexpr char kUsage[] =
    R"(subscription-cli: Twilio user-defined messages on live Voice SDK calls, through the
gateway, which holds the Twilio credentials.

Usage:
  subscription-cli create --call-sid CA... --callback https://example.com/messages [options]
  subscription-cli delete --call-sid CA... --sid ZY... [options]
  subscription-cli send --call-sid CA... --content '{"text": "hi"}' [options]
  subscription-cli watch [--call-sid CA...] [--cursor C | --from-oldest] [options]
  subscription-cli COMMAND --help

Without a command, the flags are create's (subscription-cli --call-sid ... --callback ...), as
before the other commands existed.

Commands:
  create   subscribe the call to the messages its SDK sends; prints the subscription
  delete   delete a subscription; prints {} once it is gone
  send     send a message to the call's SDK; prints the message
  watch    print the messages the SDKs send, one JSON line each, until interrupted

Options of every command:
  --target HOST:PORT       gateway address (default localhost:50051)
  --account-sid SID        a subaccount (AC...); default: the gateway's account
  --timeout SECONDS        deadline for the whole call, retries included (default 10;
                           watch: none)
  --tls-ca FILE            connect with TLS, verifying the gateway against this CA bundle
  --tls-cert FILE          client certificate for mutual TLS (with --tls-key)
  --tls-key FILE           its private key
  --help                   this text

A bearer token, when the gateway wants one, is read from the environment variable
SUBSCRIPTION_CLI_TOKEN (never a flag: command lines are visible to every user).

On success prints the result as JSON on stdout and exits 0. On failure prints the gRPC status,
what to do next (for create and send: with the idempotency key; for watch: with the cursor to
resume from) and the details (which field is wrong, what Twilio said, how many attempts) as JSON
on stderr, and exits 1. Usage errors exit 2.
)";

constexpr char kCreateUsage[] =
    R"(subscription-cli create: subscribe a live Voice SDK call to Twilio user-defined messages.

Usage:
  subscription-cli create --call-sid CA... [--callback https://example.com/messages] [options]
  (also without the word create)

Options:
  --call-sid SID           the call to subscribe: CA followed by 32 hex digits (required)
  --callback URL           where Twilio sends the messages, http or https; without it the
                           gateway decides: with its webhook receiver it subscribes its own
                           public URL (then use watch), else it answers INVALID_ARGUMENT
  --method POST|GET        how Twilio calls the callback (default POST)
  --idempotency-key KEY    reuse a key to retry a create safely; generated when omitted
  and --target, --account-sid, --timeout, --tls-ca, --tls-cert, --tls-key (see --help)

Prints the subscription as JSON; its sid (ZY...) is what delete takes.

Example:
  subscription-cli create --target localhost:50051 \
    --call-sid CA0123456789abcdef0123456789abcdef \
    --callback https://example.com/twilio/messages
)";

constexpr char kDeleteUsage[] =
    R"(subscription-cli delete: delete a user-defined message subscription.

Usage:
  subscription-cli delete --call-sid CA... --sid ZY... [options]

Options:
  --call-sid SID           the call the subscription belongs to (required)
  --sid SID                the subscription, as create printed it: ZY + 32 hex digits (required)
  and --target, --account-sid, --timeout, --tls-ca, --tls-cert, --tls-key (see --help)

Prints {} once the subscription is gone. Deleting needs no idempotency key: retrying a delete
is always safe, and the gateway answers OK when its own earlier attempt deleted it.
)";

constexpr char kSendUsage[] =
    R"(subscription-cli send: send a user-defined message to the Voice SDK on a live call.

Usage:
  subscription-cli send --call-sid CA... --content JSON [options]

Options:
  --call-sid SID           the call whose SDK receives the message (required)
  --content JSON           the message: one JSON document, at most 4096 bytes (required)
  --idempotency-key KEY    reuse a key to retry a send safely (it is sent at most once);
                           generated when omitted
  and --target, --account-sid, --timeout, --tls-ca, --tls-cert, --tls-key (see --help)

Prints the message as JSON (its sid is KX...).

Example:
  subscription-cli send --call-sid CA0123456789abcdef0123456789abcdef \
    --content '{"type": "hold", "seconds": 30}'
)";

constexpr char kWatchUsage[] =
    R"(subscription-cli watch: print the messages Voice SDK clients send on calls, as Twilio
delivers them to the gateway's webhook (subscribe with create, without --callback).

Usage:
  subscription-cli watch [--call-sid CA...] [--cursor CURSOR | --from-oldest] [options]

Options:
  --call-sid SID           only this call's messages (default: every call of the account)
  --cursor CURSOR          resume after this message (a cursor printed earlier, on any replica)
  --from-oldest            without a cursor: start with the oldest message the gateway keeps
                           (default: the next one it receives)
  --timeout SECONDS        end the watch after this long (default: never)
  and --target, --account-sid, --tls-ca, --tls-cert, --tls-key (see --help)

Prints one JSON object per line and message: sid, account_sid, call_sid, sequence_number,
content (the SDK's JSON, as text), content_type, timestamp (RFC 3339, absent when Twilio sent
none) and cursor. Runs until interrupted (SIGINT or SIGTERM: exit 0) or the stream ends: then
prints the error, what to do next and the cursor to resume from on stderr and exits 1:

  resume_cursor: CURSOR    (pass it as --cursor; absent when no message was received)

Example:
  subscription-cli watch --call-sid CA0123456789abcdef0123456789abcdef --from-oldest
)";

struct Command {
  const char* name;
  Operation operation;
  const char* usage;
  std::vector<std::string> flags;     // Besides the common ones.
  std::vector<std::string> required;  // Of all flags.
};

const std::vector<std::string> kCommonFlags = {"target", "account-sid", "timeout",
                                               "tls-ca", "tls-cert",    "tls-key"};

const Command kCommands[] = {
    {"create",
     Operation::kCreate,
     kCreateUsage,
     {"call-sid", "callback", "method", "idempotency-key"},
     {"call-sid"}},
    {"delete", Operation::kDelete, kDeleteUsage, {"call-sid", "sid"}, {"call-sid", "sid"}},
    {"send",
     Operation::kSend,
     kSendUsage,
     {"call-sid", "content", "idempotency-key"},
     {"call-sid", "content"}},
    {"watch", Operation::kWatch, kWatchUsage, {"call-sid", "cursor", "from-oldest"}, {}},
};

// Flags that take no value (--from-oldest; --from-oldest=false also works).
const std::set<std::string> kSwitches = {"from-oldest"};

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

// Prints an error as described in kUsage and returns the exit status, 1.
int PrintError(Operation operation, const grpc::Status& status,
               const twilio_gateway::client::ErrorDetails& details,
               const std::string& idempotency_key, const std::string& resume_cursor = "") {
  google::rpc::Status printed = details.rich_status;
  printed.set_code(status.error_code());
  printed.set_message(status.error_message());
  const char* next = twilio_gateway::client::NextStep(
      operation, status.error_code(), details.error_info ? details.error_info->reason() : "");
  std::cerr << "error: " << twilio_gateway::client::StatusCodeName(status.error_code()) << ": "
            << status.error_message() << "\n";
  if (operation == Operation::kDelete) {
    std::cerr << "next: " << next << "\n";
  } else if (operation == Operation::kWatch) {
    std::cerr << "next: " << next << "\n";
    if (!resume_cursor.empty()) std::cerr << "resume_cursor: " << resume_cursor << "\n";
  } else {
    std::cerr << "idempotency_key: " << idempotency_key << " (" << next << ")\n";
  }
  std::cerr << ToJson(printed) << "\n";
  return 1;
}

// One message as one line of JSON. sequence_number is a JSON number (proto3's JSON would make
// an int64 a string).
std::string MessageLine(const twilio_gateway::v1::CallMessage& m) {
  nlohmann::ordered_json line = {
      {"sid", m.sid()},           {"account_sid", m.account_sid()},
      {"call_sid", m.call_sid()}, {"sequence_number", m.sequence_number()},
      {"content", m.content()},   {"content_type", m.content_type()}};
  if (m.has_timestamp()) {
    line["timestamp"] = google::protobuf::util::TimeUtil::ToString(m.timestamp());
  }
  line["cursor"] = m.cursor();
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// Prints the stream's messages until it ends; SIGINT or SIGTERM cancels it (exit 0). The
// signals are blocked in every thread (set before the channel's threads start) and taken by one
// that waits for them, so the cancelling runs outside a signal handler.
int Watch(twilio_gateway::client::SubscriptionClient& client,
          const twilio_gateway::v1::WatchMessagesRequest& request,
          std::optional<std::chrono::milliseconds> timeout, const sigset_t& signals) {
  std::unique_ptr<twilio_gateway::client::MessageStream> stream = client.Watch(request, timeout);
  twilio_gateway::client::MessageStream* cancel = stream.get();
  // Detached: when the stream ends by itself, the process exits with the thread still waiting.
  std::thread([cancel, signals] {
    int signal = 0;
    if (sigwait(&signals, &signal) == 0) cancel->Cancel();
  }).detach();
  twilio_gateway::v1::CallMessage message;
  while (stream->Next(&message)) std::cout << MessageLine(message) << std::endl;
  const twilio_gateway::client::WatchResult ended = stream->Finish();
  if (ended.cancelled) return 0;
  return PrintError(Operation::kWatch, ended.status, ended.details, "", ended.resume_cursor);
}

}  // namespace

int main(int argc, char** argv) {
  // The command is the first argument; without one (a flag first, or nothing) it is create, as
  // it was before delete and send existed, so existing scripts keep working unchanged.
  const Command* command = &kCommands[0];
  int first = 1;
  if (argc > 1 && std::strncmp(argv[1], "-", 1) != 0) {
    command = nullptr;
    for (const Command& c : kCommands) {
      if (c.name == std::string(argv[1])) command = &c;
    }
    if (command == nullptr) {
      return UsageError("unknown command \"" + std::string(argv[1]) +
                        "\" (create, delete, send or watch)");
    }
    first = 2;
  }

  std::map<std::string, std::string> flags = {{"target", "localhost:50051"}};
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << (first == 1 ? kUsage : command->usage);
      return 0;
    }
    if (arg.rfind("--", 0) != 0) return UsageError("unexpected argument \"" + arg + "\"");
    std::string name = arg.substr(2);
    std::string value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (kSwitches.count(name)) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return UsageError("--" + name + " needs a value");
    }
    bool known = false;
    for (const auto& k : kCommonFlags) known = known || name == k;
    for (const auto& k : command->flags) known = known || name == k;
    if (!known) return UsageError("unknown flag --" + name + " for " + command->name);
    flags[name] = value;
  }
  for (const auto& name : command->required) {
    if (!flags.count(name)) return UsageError("--" + name + " is required");
  }

  // A Watch has no deadline unless one is given: the stream does not end by itself.
  const bool timeout_given = flags.count("timeout") > 0;
  if (!timeout_given) flags["timeout"] = "10";
  char* end = nullptr;
  const double seconds = std::strtod(flags["timeout"].c_str(), &end);
  if (end == flags["timeout"].c_str() || *end != '\0' || !(seconds > 0) || seconds > 3600) {
    return UsageError("--timeout must be a number of seconds between 0 and 3600");
  }
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));

  // Built before connecting, so a bad flag is a usage error whatever the gateway's state.
  twilio_gateway::v1::CreateSubscriptionRequest create;
  twilio_gateway::v1::DeleteSubscriptionRequest del;
  twilio_gateway::v1::SendMessageRequest send;
  twilio_gateway::v1::WatchMessagesRequest watch;
  switch (command->operation) {
    case Operation::kCreate:
      create.set_call_sid(flags["call-sid"]);
      // Absent or empty: the gateway decides (its own webhook URL, when it has a receiver).
      create.set_callback(flags["callback"]);
      if (flags.count("method")) {
        const std::string& m = flags["method"];
        if (m == "POST" || m == "post") {
          create.set_method(twilio_gateway::v1::CALLBACK_METHOD_POST);
        } else if (m == "GET" || m == "get") {
          create.set_method(twilio_gateway::v1::CALLBACK_METHOD_GET);
        } else {
          return UsageError("--method must be POST or GET");
        }
      }
      if (flags.count("idempotency-key")) create.set_idempotency_key(flags["idempotency-key"]);
      if (flags.count("account-sid")) create.set_account_sid(flags["account-sid"]);
      break;
    case Operation::kDelete:
      del.set_call_sid(flags["call-sid"]);
      del.set_sid(flags["sid"]);
      if (flags.count("account-sid")) del.set_account_sid(flags["account-sid"]);
      break;
    case Operation::kSend:
      send.set_call_sid(flags["call-sid"]);
      send.set_content(flags["content"]);
      if (flags.count("idempotency-key")) send.set_idempotency_key(flags["idempotency-key"]);
      if (flags.count("account-sid")) send.set_account_sid(flags["account-sid"]);
      break;
    case Operation::kWatch:
      watch.set_call_sid(flags["call-sid"]);
      watch.set_cursor(flags["cursor"]);
      if (flags.count("from-oldest")) {
        const std::string& v = flags["from-oldest"];
        if (v != "true" && v != "false") return UsageError("--from-oldest takes no value");
        watch.set_from_oldest(v == "true");
      }
      if (watch.from_oldest() && !watch.cursor().empty()) {
        return UsageError("--from-oldest and --cursor exclude each other");
      }
      if (flags.count("account-sid")) watch.set_account_sid(flags["account-sid"]);
      break;
  }

  if (flags.count("tls-cert") != flags.count("tls-key")) {
    return UsageError("--tls-cert and --tls-key go together");
  }
  if (flags.count("tls-cert") && !flags.count("tls-ca")) {
    return UsageError("--tls-cert needs --tls-ca");
  }
  // Before the channel starts its threads, which inherit the mask (see Watch).
  sigset_t signals;
  sigemptyset(&signals);
  if (command->operation == Operation::kWatch) {
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  }
  twilio_gateway::client::ClientOptions options;
  if (const char* token = std::getenv("SUBSCRIPTION_CLI_TOKEN")) options.bearer_token = token;
  std::string error;
  auto credentials = twilio_gateway::client::ChannelCredentialsFromFiles(
      flags["tls-ca"], flags["tls-cert"], flags["tls-key"], &error);
  if (credentials == nullptr) return UsageError(error);
  twilio_gateway::client::SubscriptionClient client(
      grpc::CreateChannel(flags["target"], std::move(credentials)), std::move(options));

  switch (command->operation) {
    case Operation::kCreate: {
      const auto result = client.Create(create, timeout);
      if (!result.status.ok()) {
        return PrintError(Operation::kCreate, result.status, result.details,
                          result.idempotency_key);
      }
      std::cout << ToJson(result.subscription) << "\n";
      return 0;
    }
    case Operation::kDelete: {
      const auto result = client.Delete(del, timeout);
      if (!result.status.ok())
        return PrintError(Operation::kDelete, result.status, result.details, "");
      std::cout << ToJson(twilio_gateway::v1::DeleteSubscriptionResponse()) << "\n";
      return 0;
    }
    case Operation::kSend: {
      const auto result = client.Send(send, timeout);
      if (!result.status.ok()) {
        return PrintError(Operation::kSend, result.status, result.details, result.idempotency_key);
      }
      std::cout << ToJson(result.message) << "\n";
      return 0;
    }
    case Operation::kWatch:
      return Watch(client, watch,
                   timeout_given ? std::optional<std::chrono::milliseconds>(timeout) : std::nullopt,
                   signals);
  }
  return 2;  // Unreachable: every operation is handled above.
}
