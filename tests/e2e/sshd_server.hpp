#pragma once

// A real SSH server for tests: Debian's OpenSSH sshd, run in the foreground
// as the current user on a free loopback port, with a host key and a user
// key made by ssh-keygen in the test's folder, public-key logins only and
// the in-process SFTP server. Ed25519 keys: libssh2 1.10 (OpenSSL backend,
// as Debian builds it) reads them, as host keys and as OpenSSH-format
// private keys.

#include "tests/controller/archive/test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

namespace lifeboat::test {

class sshd_server {
 public:
  /// Makes the keys and the configuration under `folder` and starts sshd.
  explicit sshd_server(const std::filesystem::path& folder) : folder_(folder) {
    using archive::test::run;
    using archive::test::shell_quote;
    for (const auto* key : {"host_key", "user_key", "other_key"}) {
      const auto made = run("ssh-keygen -q -t ed25519 -N '' -C lifeboat-test -f " +
                            shell_quote((folder_ / key).string()));
      EXPECT_EQ(made.status, 0) << made.output;
    }
    // A second host key, of a type libssh2 prefers to ed25519, that
    // known_hosts does not list: a client must ask for the type it knows.
    const auto made = run("ssh-keygen -q -t ecdsa -N '' -C lifeboat-test -f " +
                          shell_quote((folder_ / "host_key_ecdsa").string()));
    EXPECT_EQ(made.status, 0) << made.output;
    std::filesystem::copy_file(folder_ / "user_key.pub", folder_ / "authorized_keys");
    if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) {
      user_ = pw->pw_name;
    }
    // As root sshd wants its privilege separation folder (the package makes
    // it only when the service starts); as anyone else it needs none.
    if (::geteuid() == 0) {
      std::filesystem::create_directories("/run/sshd");
    }
    // A port that was free a moment ago: sshd cannot be told to pick one
    // itself ("Port 0" is refused), so a port taken in between is tried again.
    for (int attempt = 0; attempt < 5 && port_ == 0; ++attempt) {
      start(free_port());
    }
    if (port_ == 0) {
      ADD_FAILURE() << "sshd did not start; its log:\n" << log_text();
      return;
    }
    // known_hosts as OpenSSH writes it for a port other than 22.
    std::ofstream(folder_ / "known_hosts") << host_pattern() << " " << public_key("host_key");
    std::ofstream(folder_ / "wrong_known_hosts")
        << host_pattern() << " " << public_key("other_key");
    std::ofstream(folder_ / "other_host_known_hosts")
        << "[127.0.0.1]:" << (port_ == 65535 ? 65534 : port_ + 1) << " " << public_key("host_key");
  }

  sshd_server(const sshd_server&) = delete;
  sshd_server& operator=(const sshd_server&) = delete;

  ~sshd_server() { stop(); }

  int port() const { return port_; }
  /// Who logs in: the user the test runs as.
  const std::string& user() const { return user_; }
  std::filesystem::path user_key() const { return folder_ / "user_key"; }
  /// A key sshd does not accept for logins.
  std::filesystem::path other_key() const { return folder_ / "other_key"; }
  /// The server's host key, under "[127.0.0.1]:port".
  std::filesystem::path known_hosts() const { return folder_ / "known_hosts"; }
  /// Another key under the server's name.
  std::filesystem::path wrong_known_hosts() const { return folder_ / "wrong_known_hosts"; }
  /// The server's key, but under another port: the server is unknown.
  std::filesystem::path other_host_known_hosts() const {
    return folder_ / "other_host_known_hosts";
  }

  /// A TCP port on 127.0.0.1 that was free a moment ago.
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
  }

  std::string log_text() const {
    std::ifstream in(folder_ / "sshd.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string host_pattern() const { return "[127.0.0.1]:" + std::to_string(port_); }

  std::string public_key(const char* name) const {
    std::ifstream in(folder_ / (std::string(name) + ".pub"));
    std::string type, key;
    in >> type >> key;
    return type + " " + key + "\n";
  }

  // Starts sshd on `port`; sets port_ once it listens, or leaves it 0 when
  // sshd ended (the port was taken) or never said so.
  void start(int port) {
    const auto config = folder_ / "sshd_config";
    std::ofstream(config) << "ListenAddress 127.0.0.1:" << port << "\n"
                          << "HostKey " << (folder_ / "host_key_ecdsa").string() << "\n"
                          << "HostKey " << (folder_ / "host_key").string() << "\n"
                          << "AuthorizedKeysFile " << (folder_ / "authorized_keys").string() << "\n"
                          << "PidFile " << (folder_ / "sshd.pid").string() << "\n"
                          << "StrictModes no\n"
                          << "PermitRootLogin prohibit-password\n"
                          << "PubkeyAuthentication yes\n"
                          // Password logins need a password of a real account:
                          // off, so a password is refused like a wrong one.
                          << "PasswordAuthentication no\n"
                          << "KbdInteractiveAuthentication no\n"
                          << "UsePAM no\n"
                          << "Subsystem sftp internal-sftp\n";
    const auto log = folder_ / "sshd.log";
    std::filesystem::remove(log);
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      // Listing times are the server's local time: UTC, as the tests read them.
      ::setenv("TZ", "UTC", 1);
      ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", config.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const std::regex listening("Server listening on 127\\.0\\.0\\.1 port " + std::to_string(port));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (std::regex_search(log_text(), listening)) {
        port_ = port;
        return;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop();
  }

  void stop() {
    if (pid_ <= 0) {
      return;
    }
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }

  std::filesystem::path folder_;
  std::string user_ = "root";
  int pid_ = 0;
  int port_ = 0;
};

}  // namespace lifeboat::test
