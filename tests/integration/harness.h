// Integration-test harness: starts the real gateway binary and the Twilio simulator on loopback
// ports, and reads back what the simulator received through its admin API.
#ifndef GATEWAY_TESTS_INTEGRATION_HARNESS_H_
#define GATEWAY_TESTS_INTEGRATION_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gateway::testing {

// A child process whose stdout is scanned for "<marker> <host>:<port>"; stderr goes to a file.
// Killed (SIGTERM, then SIGKILL) when destroyed.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
               const std::string& log_path);
  ~ChildProcess();

  // Waits (up to 20 s) for a stdout line containing `marker` and returns the text after it.
  std::string WaitForLine(const std::string& marker);
  // Sends `signal` and waits for exit; returns the exit status as from waitpid.
  int Stop(int signal);
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
  std::string log_path_;
};

// Runs a command to completion, capturing stdout and stderr separately.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& argv);

// The gateway writes its log from a background thread, so a line can land a moment after the
// reply it describes. Reads the file at `path` until `done(text)` holds (checking every 20 ms)
// or `limit` passes, and returns the last text read.
std::string ReadLogUntil(const std::string& path,
                         const std::function<bool(const std::string& text)>& done,
                         std::chrono::milliseconds limit = std::chrono::seconds(10));

// Minimal blocking HTTP for the simulator's admin API.
struct HttpReply {
  long status = 0;
  std::string body;
};
HttpReply HttpCall(const std::string& method, const std::string& url, const std::string& body = "");

inline constexpr char kSimAccountSid[] = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
inline constexpr char kSimAuthToken[] = "simulator-auth-token";
inline constexpr char kSimApiKey[] = "SKaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
inline constexpr char kSimApiSecret[] = "simulator-api-secret";

class Simulator {
 public:
  explicit Simulator(const std::string& log_dir);
  const std::string& base_url() const { return base_url_; }

  void Reset();
  void SetFaults(const nlohmann::json& rules);
  // POST /_sim/config, e.g. {"idempotency_window_s": 10}.
  void SetConfig(const nlohmann::json& config);
  void SetCallState(const std::string& call_sid, const std::string& state);
  nlohmann::json Requests();
  // The most recent 10,000 subscriptions created (with `idempotency_key` and `deleted`) and
  // messages sent (with `idempotency_key`), oldest first.
  nlohmann::json Subscriptions();
  nlohmann::json Messages();
  nlohmann::json Stats();
  // Subscriptions recorded for one idempotency key (0 if the key was never seen).
  int SubscriptionsForKey(const std::string& account_sid, const std::string& call_sid,
                          const std::string& key);

 private:
  std::unique_ptr<ChildProcess> process_;
  std::string base_url_;
};

class Gateway {
 public:
  Gateway(const std::string& twilio_base_url, const std::vector<std::string>& extra_flags,
          const std::map<std::string, std::string>& extra_env, const std::string& log_path);
  const std::string& target() const { return target_; }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::string target_;
};

// A port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();

// A redis-server without persistence on 127.0.0.1; killed when destroyed.
class RedisServer {
 public:
  explicit RedisServer(std::vector<std::string> extra_args = {});
  ~RedisServer();

  // Starts Redis (again) on the same port, with an empty data set.
  void Start();
  // A crash: no shutdown, connections reset.
  void Kill();
  // Redis still accepts connections (the kernel does) but answers nothing.
  void Pause();
  void Resume();
  int port() const { return port_; }

 private:
  std::vector<std::string> Argv() const;

  std::vector<std::string> extra_args_;
  int port_ = 0;
  bool paused_ = false;
  std::unique_ptr<ChildProcess> process_;
};

// A redis-server for replication and failover tests: a master, a replica (extra args
// "--replicaof", "127.0.0.1", port) or, with a non-empty `sentinel_config` (the "sentinel ..."
// lines), a sentinel. It logs to <LogDir()>/<name>-<port>.log, keeps its data (appendonly, when
// asked) in <LogDir()>/<name>-<port>/ across restarts on the same port, and is ready when it
// answers PING. Killed (SIGKILL) when destroyed.
class RedisNode {
 public:
  RedisNode(std::string name, std::vector<std::string> extra_args,
            std::string sentinel_config = "");
  ~RedisNode();

  void Start();
  // A crash: SIGKILL, no shutdown.
  void Kill();
  bool running() const { return process_ != nullptr; }
  int port() const { return port_; }
  // redis-cli -p port <command>; its stdout without the trailing newline.
  std::string Cli(const std::vector<std::string>& command) const;

 private:
  std::vector<std::string> extra_args_;
  std::string sentinel_config_;
  int port_ = 0;
  std::string name_;  // With the port.
  std::string dir_;
  std::unique_ptr<ChildProcess> process_;
};

// Directory for this test run's logs (created on first use).
std::string LogDir();

}  // namespace gateway::testing

#endif  // GATEWAY_TESTS_INTEGRATION_HARNESS_H_
