#pragma once

// `lifeboat controller` as a child process of an e2e test, and the object
// queries such tests make through the CLI, as a user would.

#include "tests/e2e/engine_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace lifeboat::e2e {

inline std::string lifeboat_command(const std::string& args) {
  return std::string(LIFEBOAT_BINARY) + " " + args;
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
inline unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

/// A controller process logging to `log`; stopped with SIGTERM (or killed)
/// by the test, and at the latest when destroyed.
class controller_process {
 public:
  controller_process(std::filesystem::path log, std::vector<std::string> args)
      : log_(std::move(log)) {
    std::vector<std::string> argv{LIFEBOAT_BINARY, "controller", "--metrics-addr",
                                  "127.0.0.1:" + std::to_string(free_port())};
    argv.insert(argv.end(), args.begin(), args.end());
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> raw;
      for (auto& a : argv) {
        raw.push_back(a.data());
      }
      raw.push_back(nullptr);
      ::execv(LIFEBOAT_BINARY, raw.data());
      ::_exit(127);
    }
  }
  controller_process(const controller_process&) = delete;
  controller_process& operator=(const controller_process&) = delete;
  ~controller_process() { stop(); }

  /// SIGTERM and wait: the controller resumes what it holds and exits 0.
  /// Returns its exit status (-1 when killed by a signal or not running).
  int stop() { return end(SIGTERM); }
  /// kill -9, as a crash.
  void kill() { (void)end(SIGKILL); }

  std::string log() const {
    std::ifstream in(log_);
    return {std::istreambuf_iterator<char>(in), {}};
  }

 private:
  int end(int signal) {
    if (pid_ <= 0) {
      return -1;
    }
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::filesystem::path log_;
  pid_t pid_ = -1;
};

/// One object as `lifeboat get <what> -o json` shows it.
struct listed_object {
  std::string name;
  std::string phase;
  std::string message;
  std::string schedule_ref;  ///< Backups only
};

inline std::vector<listed_object> get_objects(const std::string& what) {
  std::vector<listed_object> out;
  const auto listed = run_command(lifeboat_command("get " + what + " -o json 2>/dev/null"));
  if (listed.status != 0) {
    return out;
  }
  boost::system::error_code ec;
  const auto doc = boost::json::parse(listed.out, ec);
  if (ec || !doc.is_array()) {
    return out;
  }
  for (const auto& v : doc.as_array()) {
    const auto& o = v.as_object();
    listed_object l;
    l.name = o.at("name").as_string();
    l.phase = o.at("phase").as_string();
    l.message = o.at("message").as_string();
    if (const auto* ref = o.if_contains("scheduleRef")) {
      l.schedule_ref = ref->as_string();
    }
    out.push_back(std::move(l));
  }
  return out;
}

/// Removes the object configs whose lifeboat.name label starts with `prefix`.
inline void remove_objects(const std::string& prefix) {
  run_command(
      "docker config ls --filter label=lifeboat.object=true --format '{{.ID}}' | while read id; "
      "do docker config inspect --format '{{index .Spec.Labels \"lifeboat.name\"}} {{.ID}}' $id; "
      "done | grep '^" +
      prefix + "' | cut -d' ' -f2 | xargs -r docker config rm >/dev/null 2>&1");
}

}  // namespace lifeboat::e2e
