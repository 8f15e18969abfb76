// An idle controller must not write to the engine: with 100 services and 20
// schedules, none of them due, ten resyncs cost reads only. Every request
// the controller sends goes through a counting proxy on a unix socket of the
// test's own (the client opens one connection per request, so the first line
// of each connection is its request line).

#include "tests/e2e/engine_fixture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string lifeboat(const std::string& args) { return std::string(LIFEBOAT_BINARY) + " " + args; }

/// A unix-socket proxy to the engine that records the request line of every
/// connection.
class counting_proxy {
 public:
  counting_proxy(fs::path listen_path, std::string upstream)
      : path_(std::move(listen_path)), upstream_(std::move(upstream)) {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 64) != 0) {
      throw std::runtime_error("cannot listen on " + path_.string());
    }
    acceptor_ = std::jthread([this](std::stop_token stop) { accept_loop(stop); });
  }

  ~counting_proxy() {
    acceptor_.request_stop();
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    ::close(listener_);
    std::lock_guard lock(mutex_);
    for (auto& t : connections_) {
      t.request_stop();
    }
    connections_.clear();  // joins
    fs::remove(path_);
  }

  std::vector<std::string> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void accept_loop(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) {
        return;
      }
      std::lock_guard lock(mutex_);
      connections_.emplace_back([this, client](std::stop_token s) { relay(client, s); });
    }
  }

  void relay(int client, const std::stop_token& stop) {
    const int server = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", upstream_.c_str());
    if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(client);
      ::close(server);
      return;
    }
    std::string first;
    bool recorded = false;
    std::array<char, 65536> buf{};
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    while (!stop.stop_requested()) {
      if (::poll(fds, 2, 200) < 0) {
        break;
      }
      bool closed = false;
      for (int i = 0; i < 2; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
          continue;
        }
        const ssize_t n = ::read(fds[i].fd, buf.data(), buf.size());
        if (n <= 0) {
          closed = true;
          break;
        }
        if (i == 0 && !recorded) {
          first.append(buf.data(), static_cast<std::size_t>(n));
          if (const auto eol = first.find("\r\n"); eol != std::string::npos) {
            std::lock_guard lock(mutex_);
            requests_.push_back(first.substr(0, eol));
            recorded = true;
          }
        }
        if (::send(fds[1 - i].fd, buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
          closed = true;
          break;
        }
      }
      if (closed) {
        break;
      }
    }
    ::close(client);
    ::close(server);
  }

  fs::path path_;
  std::string upstream_;
  int listener_ = -1;
  std::mutex mutex_;
  std::vector<std::string> requests_;
  std::vector<std::jthread> connections_;
  std::jthread acceptor_;
};

unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

bool is_write(const std::string& request_line) {
  return !request_line.starts_with("GET ") && !request_line.starts_with("HEAD ");
}

class resync_writes_e2e : public engine_test {};

TEST_F(resync_writes_e2e, ten_idle_resyncs_write_nothing) {
  const std::string tag = unique("idle");
  // 100 services (at 0 replicas: what matters is what the controller lists).
  for (int i = 0; i < 100; ++i) {
    const auto id = create_service(unique("svc" + std::to_string(i)), unique("vol"), "sleep 1d", 0);
    ASSERT_FALSE(id.empty());
  }
  // 20 schedules that fire on January 1st only.
  const fs::path dir = fs::temp_directory_path() / unique("writes");
  fs::create_directories(dir);
  on_teardown([dir] { fs::remove_all(dir); });
  {
    std::ofstream out(dir / "schedules.yaml");
    for (int i = 0; i < 20; ++i) {
      out << "---\napiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n  name: " << tag << i
          << "\nspec:\n  schedule: '0 3 1 1 *'\n  volumes: [" << unique("vol")
          << "]\n  destinations:\n    - local: {path: " << (dir / "archive").string() << "}\n";
    }
  }
  ASSERT_EQ(run_command(lifeboat("apply -f " + (dir / "schedules.yaml").string())).status, 0);
  on_teardown([this] {
    run_command(
        "docker config ls -q --filter label=lifeboat.object=true | while read id; do "
        "docker config inspect --format '{{.Spec.Name}} {{.ID}}' $id; done | grep '" +
        unique("idle") + "' | cut -d' ' -f2 | xargs -r docker config rm >/dev/null 2>&1");
  });

  const char* host = std::getenv("DOCKER_HOST");
  ASSERT_NE(host, nullptr);
  const std::string upstream = std::string(host).substr(std::string("unix://").size());
  const fs::path proxy_socket = dir / "engine.sock";
  counting_proxy proxy(proxy_socket, upstream);

  const std::string lease = unique("lease");
  const std::string log = (dir / "controller.log").string();
  std::fflush(nullptr);
  const pid_t controller = ::fork();
  ASSERT_GE(controller, 0);
  if (controller == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::setenv("DOCKER_HOST", ("unix://" + proxy_socket.string()).c_str(), 1);
    const std::string metrics = "127.0.0.1:" + std::to_string(free_port());
    ::execl(LIFEBOAT_BINARY, LIFEBOAT_BINARY, "controller", "--metrics-addr", metrics.c_str(),
            "--lease-name", lease.c_str(), "--helper-image", test_image().c_str(), "--resync", "1",
            nullptr);
    ::_exit(127);
  }
  on_teardown([controller, lease] {
    ::kill(controller, SIGTERM);
    int status = 0;
    ::waitpid(controller, &status, 0);
    run_command("docker config rm " + lease + " >/dev/null 2>&1");
  });

  auto listings = [&] {
    std::size_t n = 0;
    for (const auto& r : proxy.requests()) {
      // Every resync lists the object configs first.
      n += r.find("/configs?filters=") != std::string::npos &&
                   r.find("lifeboat.object") != std::string::npos
               ? 1
               : 0;
    }
    return n;
  };
  // Settled: the schedules' status written (next run labels), a few resyncs in.
  ASSERT_TRUE(eventually([&] { return listings() >= 3; }, 60s)) << "the controller never resynced";
  const auto settled = proxy.requests().size();
  const auto settled_listings = listings();
  ASSERT_TRUE(eventually([&] { return listings() >= settled_listings + 10; }, 120s));

  const auto all = proxy.requests();
  // The lease is renewed on its own timer (every 2 s), not by resyncs.
  std::string lease_id = run_command("docker config inspect --format '{{.ID}}' " + lease).out;
  while (!lease_id.empty() && lease_id.back() == '\n') {
    lease_id.pop_back();
  }
  ASSERT_FALSE(lease_id.empty());
  std::vector<std::string> writes;
  std::size_t lease_renewals = 0;
  for (std::size_t i = settled; i < all.size(); ++i) {
    if (!is_write(all[i])) {
      continue;
    }
    if (all[i].find("/configs/" + lease_id + "/update") != std::string::npos) {
      ++lease_renewals;
      continue;
    }
    writes.push_back(all[i]);
  }
  EXPECT_TRUE(writes.empty()) << "writes during 10 idle resyncs:\n"
                              << ::testing::PrintToString(writes);
  EXPECT_GT(all.size() - settled, 10U) << "no reads either: the proxy saw nothing";
  std::cout << "10 idle resyncs: " << (all.size() - settled) << " requests, " << writes.size()
            << " writes (" << lease_renewals << " lease renewals not counted)\n";
}

}  // namespace
}  // namespace lifeboat::e2e
