// Test and benchmark helper: starts real redis-server processes on loopback
// (random free ports, temporary directories), and stops them with their whole
// process group. A 3-node cluster is assembled with redis-cli --cluster create.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "conveyor/cache/redis/connection.hpp"
#include "support/temp_dir.hpp"

namespace conveyor::test {

/// The full path of `program` on PATH, or empty.
inline std::string find_program(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    auto candidate = dirs.substr(start, end - start) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

/// True when a TCP listener can bind 127.0.0.1:port right now.
inline bool port_is_free(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

/// A random free port whose cluster bus port (port + 10000) is free too.
inline std::uint16_t pick_free_port() {
  static std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> range(20000, 54999);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto port = static_cast<std::uint16_t>(range(random));
    if (port_is_free(port) && port_is_free(static_cast<std::uint16_t>(port + 10000))) return port;
  }
  throw std::runtime_error("no free port found");
}

/// Runs `argv` as a child in its own process group with output to `log`; returns the pid.
inline pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& directory,
                   const std::filesystem::path& log) {
  // Everything the child needs is prepared before fork: only async-signal-safe
  // calls happen between fork and exec.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setpgid(0, 0);
    if (::chdir(directory.c_str()) != 0) ::_exit(126);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  return pid;
}

/// Sends one command to `where` on a fresh connection; throws on failure.
inline redis::resp_value send_command(const redis::endpoint& where,
                                      std::vector<std::string> arguments,
                                      const std::string& password = {}) {
  boost::asio::io_context io;
  redis::connection_options options;
  options.password = password;
  options.io_timeout = std::chrono::milliseconds(10000);
  redis::connection link(io, where, options);
  link.connect();
  std::string request;
  redis::command_writer writer(request);
  writer.begin(arguments.size());
  for (const auto& argument : arguments) writer.arg(std::string_view(argument));
  return link.exchange(std::move(request), 1).at(0);
}

/// One redis-server child process. Destruction kills its process group and
/// removes its directory.
class redis_process {
 public:
  explicit redis_process(std::vector<std::string> extra_arguments = {}, std::uint16_t port = 0)
      : extra_(std::move(extra_arguments)), port_(port ? port : pick_free_port()) {
    start();
  }
  redis_process(const redis_process&) = delete;
  redis_process& operator=(const redis_process&) = delete;
  ~redis_process() { stop(); }

  static bool available() { return !find_program("redis-server").empty(); }

  void start() {
    std::vector<std::string> argv{find_program("redis-server"),
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  "127.0.0.1",
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--daemonize",
                                  "no"};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    pid_ = spawn(argv, directory_.path(), directory_.file("redis.log"));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        send_command(where(), {"PING"});  // any reply (even -NOAUTH) means it is up
        return;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    stop();
    throw std::runtime_error("redis-server did not answer PING on port " + std::to_string(port_));
  }

  /// Kills the server (SIGKILL to its process group) and reaps it.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] redis::endpoint where() const { return redis::endpoint{"127.0.0.1", port_}; }
  [[nodiscard]] std::string address() const { return where().to_string(); }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept {
    return directory_.path();
  }

 private:
  std::vector<std::string> extra_;
  std::uint16_t port_;
  temp_dir directory_{"redis"};  // removed after the server is stopped
  pid_t pid_ = -1;
};

/// Three masters, no replicas, all 16384 slots assigned by redis-cli.
class redis_cluster {
 public:
  redis_cluster() {
    for (int i = 0; i < 3; ++i)
      nodes_.push_back(std::make_unique<redis_process>(
          std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file",
                                   "nodes.conf", "--cluster-node-timeout", "5000"}));
    std::vector<std::string> argv{find_program("redis-cli"), "--cluster", "create"};
    for (const auto& node : nodes_) argv.push_back(node->address());
    argv.insert(argv.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    auto pid = spawn(argv, nodes_[0]->directory(), nodes_[0]->directory() / "cluster-create.log");
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("redis-cli --cluster create failed");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!all_ok()) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("cluster did not become ok");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  static bool available() {
    return redis_process::available() && !find_program("redis-cli").empty();
  }

  [[nodiscard]] redis_process& node(std::size_t i) { return *nodes_.at(i); }
  [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }

 private:
  bool all_ok() {
    for (const auto& node : nodes_) {
      auto info = send_command(node->where(), {"CLUSTER", "INFO"});
      if (info.text.find("cluster_state:ok") == std::string::npos) return false;
      auto slots = send_command(node->where(), {"CLUSTER", "SLOTS"});
      if (slots.elements.size() != nodes_.size()) return false;
    }
    return true;
  }
  std::vector<std::unique_ptr<redis_process>> nodes_;
};

}  // namespace conveyor::test
