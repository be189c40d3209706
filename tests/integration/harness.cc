#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace gateway::testing {
namespace {

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    const size_t eq = entry.find('=');
    if (eq != std::string::npos) merged[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  // Tests decide credentials; never inherit a developer's real Twilio settings.
  for (const char* name :
       {"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET",
        "TWILIO_EDGE", "TWILIO_REGION", "TWILIO_BASE_URL"}) {
    merged.erase(name);
  }
  for (const auto& [k, v] : extra) merged[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : merged) out.push_back(k + "=" + v);
  return out;
}

size_t Append(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace

std::string LogDir() {
  static const std::string dir = [] {
    const char* base = std::getenv("GATEWAY_TEST_LOG_DIR");
    std::string d = base != nullptr ? base : "/tmp/twilio-gateway-tests";
    mkdir(d.c_str(), 0755);
    return d;
  }();
  return dir;
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
                           const std::string& log_path)
    : log_path_(log_path) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  if (log_fd >= 0) posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
  std::vector<std::string> env_strings = MergedEnvironment(env);
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env_strings);
  const int rc = posix_spawn(&pid_, c_argv[0], &actions, nullptr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (log_fd >= 0) close(log_fd);
  if (rc != 0) {
    close(pipe_fds[0]);
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  stdout_fd_ = pipe_fds[0];
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Stop(SIGTERM);
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

std::string ChildProcess::WaitForLine(const std::string& marker) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    size_t newline;
    while ((newline = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      const size_t at = line.find(marker);
      if (at != std::string::npos) return line.substr(at + marker.size());
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    if (poll(&pfd, 1, 100) > 0) {
      char buf[1024];
      const ssize_t n = read(stdout_fd_, buf, sizeof buf);
      if (n <= 0) break;  // The child exited.
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  throw std::runtime_error("no \"" + marker + "\" line from the child; see " + log_path_);
}

int ChildProcess::Stop(int signal) {
  if (pid_ <= 0) return 0;
  kill(pid_, signal);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return status;
}

CommandResult RunCommand(const std::vector<std::string>& argv_in) {
  std::vector<std::string> argv = argv_in;
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<char*> c_argv = CStrings(argv);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  CommandResult result;
  if (rc == 0) {
    // Outputs here are small; read stdout then stderr without risk of filling a pipe.
    std::thread err_reader([&] { result.err = ReadAll(err_pipe[0]); });
    result.out = ReadAll(out_pipe[0]);
    err_reader.join();
    int status = 0;
    waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  return result;
}

std::string ReadLogUntil(const std::string& path,
                         const std::function<bool(const std::string& text)>& done,
                         std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  for (;;) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (done(text) || std::chrono::steady_clock::now() >= give_up) return text;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

HttpReply HttpCall(const std::string& method, const std::string& url, const std::string& body) {
  HttpReply reply;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (!body.empty() || method == "POST" || method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return reply;
}

Simulator::Simulator(const std::string& log_dir) {
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{PYTHON_BINARY, SIMULATOR_SCRIPT, "--host", "127.0.0.1", "--port",
                               "0", "--account-sid", kSimAccountSid, "--auth-token", kSimAuthToken,
                               "--api-key", kSimApiKey, "--api-secret", kSimApiSecret, "--quiet"},
      std::map<std::string, std::string>{}, log_dir + "/simulator.log");
  base_url_ = process_->WaitForLine("twilio-simulator listening on ");
}

void Simulator::Reset() {
  if (HttpCall("POST", base_url_ + "/_sim/reset", "{}").status != 200) {
    throw std::runtime_error("simulator reset failed");
  }
}

void Simulator::SetFaults(const nlohmann::json& rules) {
  const HttpReply reply =
      HttpCall("POST", base_url_ + "/_sim/faults", nlohmann::json{{"rules", rules}}.dump());
  if (reply.status != 200) throw std::runtime_error("setting faults failed: " + reply.body);
}

void Simulator::SetConfig(const nlohmann::json& config) {
  const HttpReply reply = HttpCall("POST", base_url_ + "/_sim/config", config.dump());
  if (reply.status != 200) throw std::runtime_error("setting the config failed: " + reply.body);
}

void Simulator::SetCallState(const std::string& call_sid, const std::string& state) {
  const HttpReply reply = HttpCall("PUT", base_url_ + "/_sim/calls/" + call_sid,
                                   nlohmann::json{{"state", state}}.dump());
  if (reply.status != 200) throw std::runtime_error("setting call state failed: " + reply.body);
}

nlohmann::json Simulator::Requests() {
  return nlohmann::json::parse(HttpCall("GET", base_url_ + "/_sim/requests").body)["requests"];
}

nlohmann::json Simulator::Subscriptions() {
  return nlohmann::json::parse(
      HttpCall("GET", base_url_ + "/_sim/subscriptions").body)["subscriptions"];
}

nlohmann::json Simulator::Messages() {
  return nlohmann::json::parse(HttpCall("GET", base_url_ + "/_sim/messages").body)["messages"];
}

nlohmann::json Simulator::Stats() {
  return nlohmann::json::parse(HttpCall("GET", base_url_ + "/_sim/stats").body);
}

int Simulator::SubscriptionsForKey(const std::string& account_sid, const std::string& call_sid,
                                   const std::string& key) {
  const nlohmann::json stats = Stats();
  const std::string id = account_sid + "/" + call_sid + "/" + key;
  if (!stats["by_key"].contains(id)) return 0;
  return stats["by_key"][id]["subscriptions"].get<int>();
}

Gateway::Gateway(const std::string& twilio_base_url, const std::vector<std::string>& extra_flags,
                 const std::map<std::string, std::string>& extra_env, const std::string& log_path) {
  std::vector<std::string> argv = {GATEWAY_BINARY, "--listen", "127.0.0.1:0", "--twilio-base-url",
                                   twilio_base_url};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  std::map<std::string, std::string> env = {{"TWILIO_ACCOUNT_SID", kSimAccountSid},
                                            {"TWILIO_AUTH_TOKEN", kSimAuthToken}};
  for (const auto& [k, v] : extra_env) env[k] = v;
  process_ = std::make_unique<ChildProcess>(argv, env, log_path);
  target_ = process_->WaitForLine("twilio-gateway listening on ");
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("cannot pick a free loopback port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

RedisServer::RedisServer(std::vector<std::string> extra_args) : extra_args_(std::move(extra_args)) {
  // Another process may take the port between our probe and Redis' bind: try a few.
  for (int attempt = 0;; ++attempt) {
    port_ = FreeLoopbackPort();
    try {
      Start();
      return;
    } catch (const std::runtime_error&) {
      if (attempt == 4) throw;
    }
  }
}

RedisServer::~RedisServer() { Resume(); }

void RedisServer::Start() {
  process_.reset();
  process_ = std::make_unique<ChildProcess>(Argv(), std::map<std::string, std::string>{},
                                            LogDir() + "/redis-" + std::to_string(port_) + ".log");
  process_->WaitForLine("Ready to accept connections");
}

void RedisServer::Kill() {
  Resume();
  process_->Stop(SIGKILL);
}

void RedisServer::Pause() {
  kill(process_->pid(), SIGSTOP);
  paused_ = true;
}

void RedisServer::Resume() {
  if (paused_ && process_ != nullptr && process_->pid() > 0) kill(process_->pid(), SIGCONT);
  paused_ = false;
}

std::vector<std::string> RedisServer::Argv() const {
  std::vector<std::string> argv = {
      REDIS_SERVER_BINARY, "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
      "--appendonly",      "no"};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  return argv;
}

RedisNode::RedisNode(std::string name, std::vector<std::string> extra_args,
                     std::string sentinel_config)
    : extra_args_(std::move(extra_args)),
      sentinel_config_(std::move(sentinel_config)),
      port_(FreeLoopbackPort()) {
  // Named by port too: ctest runs tests of one binary in parallel.
  name_ = name + "-" + std::to_string(port_);
  dir_ = LogDir() + "/" + name_;
  RunCommand({"/bin/rm", "-rf", dir_});
  mkdir(dir_.c_str(), 0755);
  if (!sentinel_config_.empty()) {
    // Sentinel rewrites its config file (the masters it learns), so it gets its own.
    std::ofstream(dir_ + "/sentinel.conf")
        << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_ << "\n"
        << sentinel_config_;
  }
  Start();
}

RedisNode::~RedisNode() { Kill(); }

void RedisNode::Start() {
  std::vector<std::string> argv = {REDIS_SERVER_BINARY};
  if (!sentinel_config_.empty()) {
    argv.insert(argv.end(), {dir_ + "/sentinel.conf", "--sentinel"});
  } else {
    argv.insert(argv.end(), {"--port", std::to_string(port_), "--bind", "127.0.0.1", "--dir", dir_,
                             "--save", ""});
  }
  argv.insert(argv.end(), {"--logfile", LogDir() + "/" + name_ + ".log"});
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  process_ = std::make_unique<ChildProcess>(argv, std::map<std::string, std::string>{},
                                            LogDir() + "/" + name_ + ".stderr.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (Cli({"PING"}) != "PONG") {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(name_ + " did not answer PING; see its log in " + LogDir());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void RedisNode::Kill() {
  if (process_ == nullptr) return;
  process_->Stop(SIGKILL);
  process_.reset();
}

std::string RedisNode::Cli(const std::vector<std::string>& command) const {
  std::vector<std::string> argv = {"/usr/bin/redis-cli", "-p", std::to_string(port_)};
  argv.insert(argv.end(), command.begin(), command.end());
  std::string out = RunCommand(argv).out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace gateway::testing
