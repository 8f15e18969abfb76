#pragma once

// A real WebDAV server for tests: Debian's rclone (`rclone serve webdav`)
// serving `<folder>/served` on a loopback port it picks itself, with basic
// auth. The tests' WebDAV URL is <url()>backups/.

#include "tests/controller/archive/test_support.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

namespace lifeboat::test {

class webdav_server {
 public:
  static constexpr const char* user = "lifeboat";

  /// Starts the server over `folder`/served, with `folder`/served/backups made.
  webdav_server(const std::filesystem::path& folder, std::string password)
      : folder_(folder), password_(std::move(password)) {
    using archive::test::run;
    using archive::test::shell_quote;
    std::filesystem::create_directories(served() / "backups");
    const auto log = folder_ / "rclone.log";
    const auto started =
        run("rclone serve webdav " + shell_quote(served().string()) +
            " --addr 127.0.0.1:0 --user " + user + " --pass " + shell_quote(password_) + " >" +
            shell_quote(log.string()) + " 2>&1 & echo $!");
    pid_ = std::stoi(started.output);
    // The port it bound is in its log: no race for a free port.
    const std::regex started_on(R"(started on http://127\.0\.0\.1:(\d+)/)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (port_ == 0 && std::chrono::steady_clock::now() < deadline) {
      const auto text = log_text();
      std::smatch m;
      if (std::regex_search(text, m, started_on)) {
        port_ = std::stoi(m[1]);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_NE(port_, 0) << log_text();
  }
  webdav_server(const webdav_server&) = delete;
  webdav_server& operator=(const webdav_server&) = delete;
  ~webdav_server() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
    }
  }

  int port() const { return port_; }
  const std::string& password() const { return password_; }
  /// "http://127.0.0.1:<port>/"
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  /// The folder served at url().
  std::filesystem::path served() const { return folder_ / "served"; }

  std::string log_text() const {
    std::ifstream in(folder_ / "rclone.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::filesystem::path folder_;
  std::string password_;
  int pid_ = 0;
  int port_ = 0;
};

}  // namespace lifeboat::test
