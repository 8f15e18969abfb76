// A real Prometheus server (Debian's `prometheus` package) scrapes a
// controller that runs as a plain process, and `promtool check metrics` lints
// what the controller serves. hack/setup.sh installs the package; without it
// this test fails rather than skips, so that CI cannot pass it by accident.
#include "tests/e2e/engine_fixture.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

// A port nobody listens on right now, chosen by the kernel.
unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A long-running program started by the test, with its standard output and
// error in `log`. The destructor stops it on every path the test takes:
// SIGTERM, up to 30 s for a clean exit (the controller resumes what it holds),
// then SIGKILL.
class child_process {
 public:
  child_process(std::vector<std::string> argv, fs::path log) : log_(std::move(log)) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    if (::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) {
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
  }
  ~child_process() { (void)stop(); }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  bool started() const { return pid_ > 0; }

  /// True while the process has not exited.
  bool running() {
    if (pid_ <= 0) {
      return false;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return false;
    }
    return true;
  }

  /// Stops the process; returns its exit status (-1 when killed by a signal or
  /// when it had to be killed).
  int stop() {
    if (!running()) {
      return exit_status_;
    }
    ::kill(pid_, SIGTERM);
    if (!eventually([&] { return !running(); }, 30s)) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
      exit_status_ = -1;
    }
    return exit_status_;
  }

  std::string log() const { return read_file(log_); }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

std::string curl(const std::string& args) { return run_command("curl -s " + args).out; }

class prometheus_e2e : public engine_test {};

TEST_F(prometheus_e2e, prometheus_scrapes_backups_and_promtool_accepts_the_metrics) {
  ASSERT_EQ(
      run_command("command -v prometheus >/dev/null && command -v promtool >/dev/null").status, 0)
      << "prometheus and promtool are missing: hack/setup.sh installs Debian's prometheus";
  const fs::path dir = fs::path(testing::TempDir()) / unique("prom");
  fs::create_directories(dir / "archive");
  fs::create_directories(dir / "tsdb");
  on_teardown([dir] {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  });

  // A small volume, and a schedule every 5 s. Its group value selects no
  // workload, so no service of anyone else's is touched.
  const auto volume = create_volume(unique("data"));
  ASSERT_EQ(run_command("docker run --rm --network none -v " + volume + ":/data " + test_image() +
                        " sh -c 'echo hello > /data/greeting'")
                .status,
            0);
  const auto schedule = unique("every5s");
  const auto schedule_file = dir / "schedule.yaml";
  std::ofstream(schedule_file) << "apiVersion: lifeboat/v1\nkind: BackupSchedule\n"
                               << "metadata: {name: " << schedule << "}\nspec:\n"
                               << "  schedule: \"@every 5s\"\n  volumes: [" << volume << "]\n"
                               << "  stopDuringBackup: \"" << unique("nobody") << "\"\n"
                               << "  destinations: [{local: {path: " << (dir / "archive").string()
                               << "}}]\n  retention: {keepLast: 3}\n";
  const auto lease = unique("lease");
  on_teardown([this, schedule, lease] {
    // The schedule, the Backups it created (named after it) and the lease.
    auto configs = engine().list_configs();
    for (const auto& c : configs ? *configs : std::vector<engine::config>{}) {
      if (c.name.starts_with(schedule) || c.name == lease) {
        (void)engine().remove_config(c.id);
      }
    }
  });
  const auto applied =
      run_command(std::string(LIFEBOAT_BINARY) + " apply -f " + schedule_file.string() + " 2>&1");
  ASSERT_EQ(applied.status, 0) << applied.out;

  // The controller, as a process with a lease of its own. A local of the test
  // body, so it has stopped before the fixture's teardown removes the configs.
  const auto metrics_port = std::to_string(free_port());
  child_process controller(
      {LIFEBOAT_BINARY, "controller", "--metrics-addr", "127.0.0.1:" + metrics_port, "--lease-name",
       lease, "--helper-image", test_image(), "--state-file", (dir / "state.json").string()},
      dir / "controller.log");
  ASSERT_TRUE(controller.started());

  // Prometheus, scraping it every second.
  const auto web_port = std::to_string(free_port());
  std::ofstream(dir / "prometheus.yml")
      << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
      << "scrape_configs:\n  - job_name: lifeboat\n"
      << "    static_configs: [{targets: ['127.0.0.1:" << metrics_port << "']}]\n";
  child_process prometheus({"prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                            "--storage.tsdb.path=" + (dir / "tsdb").string(),
                            "--web.listen-address=127.0.0.1:" + web_port, "--log.level=warn"},
                           dir / "prometheus.log");
  ASSERT_TRUE(prometheus.started());
  const std::string prometheus_api = "http://127.0.0.1:" + web_port + "/api/v1";

  // Through Prometheus' query API: the counter of successful runs reaches 1.
  double successes = 0;
  std::string answer;
  const bool scraped = eventually(
      [&] {
        answer = curl("-G --data-urlencode 'query=lifeboat_backups_total{result=\"success\"}' " +
                      prometheus_api + "/query");
        boost::system::error_code ec;
        const auto v = json::parse(answer, ec);
        if (ec || !v.is_object() || !v.as_object().contains("data")) {
          return false;
        }
        for (const auto& r : v.at("data").at("result").as_array()) {
          if (r.at("metric").at("schedule").as_string() == schedule) {
            successes = std::strtod(r.at("value").at(1).as_string().c_str(), nullptr);
          }
        }
        return successes >= 1;
      },
      120s);
  EXPECT_TRUE(scraped) << "last answer: " << answer << "\ncontroller:\n"
                       << controller.log() << "\nprometheus:\n"
                       << prometheus.log() << "\ntargets:\n"
                       << curl(prometheus_api + "/targets");
  EXPECT_GE(successes, 1);
  EXPECT_TRUE(controller.running()) << controller.log();
  EXPECT_TRUE(prometheus.running()) << prometheus.log();

  // The target is healthy from Prometheus' point of view.
  const auto up =
      curl("-G --data-urlencode 'query=up{job=\"lifeboat\"}' " + prometheus_api + "/query");
  EXPECT_NE(up.find("\"value\":["), std::string::npos) << up;
  EXPECT_NE(up.find(",\"1\"]"), std::string::npos) << up;

  // promtool lints one scrape, with the schedule's series in it.
  const auto scrape = dir / "metrics.txt";
  ASSERT_EQ(run_command("curl -sf -o " + scrape.string() + " http://127.0.0.1:" + metrics_port +
                        "/metrics")
                .status,
            0);
  EXPECT_NE(read_file(scrape).find("schedule=\"" + schedule + "\""), std::string::npos);
  const auto lint = run_command("promtool check metrics < " + scrape.string() + " 2>&1");
  EXPECT_EQ(lint.status, 0) << lint.out;
  EXPECT_EQ(lint.out, "") << "promtool check metrics:\n" << lint.out;

  // Both stop cleanly; the controller resumes what it holds and exits 0.
  EXPECT_EQ(prometheus.stop(), 0) << prometheus.log();
  EXPECT_EQ(controller.stop(), 0) << controller.log();
}

}  // namespace
}  // namespace lifeboat::e2e
