// Issue 12, item 6 (Signals): `lifeboat backup` and `lifeboat restore` hold
// workloads while they run. Losing their reader (`| head -1`) or their
// terminal (SIGHUP) must not kill them there: the service comes back to the
// replicas it had, with no lifeboat label left, and a hang-up ends the run
// with a non-zero exit once the workloads are back.
//
// The service's tasks ignore SIGTERM (a container's PID 1 does) and have a
// stop grace period of 8 s, so every run holds the service scaled to zero for
// about that long while it waits for the tasks to stop: the window in which
// the test closes the pipe or the terminal.

#include "tests/e2e/engine_fixture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::uint64_t prior_replicas = 2;

class Issue12Item6Signals : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    dir_ = fs::temp_directory_path() / unique("signals");
    fs::create_directories(dir_ / "archives");
    on_teardown([dir = dir_] { fs::remove_all(dir); });
    volume_ = create_volume(unique("data"));
    group_ = unique("group");
    namespace json = boost::json;
    const json::object spec{
        {"Name", unique("app")},
        {"Labels", json::object{{"docker-volume-backup.stop-during-backup", group_},
                                {"lifeboat.test", "true"}}},
        {"TaskTemplate",
         json::object{
             {"ContainerSpec",
              json::object{
                  {"Image", test_image()},
                  {"Command", json::array{"sh", "-c", "echo up > /data/f; sleep 100000"}},
                  {"StopGracePeriod", 8'000'000'000},
                  {"Mounts", json::array{json::object{
                                 {"Type", "volume"}, {"Source", volume_}, {"Target", "/data"}}}}}},
             {"RestartPolicy", json::object{{"Condition", "any"}}}}},
        {"Mode", json::object{{"Replicated", json::object{{"Replicas", prior_replicas}}}}}};
    auto id = engine().create_service(spec);
    ASSERT_TRUE(id) << id.error().describe();
    service_ = *id;
    on_teardown([this] { (void)engine().remove_service(service_); });
    // Runs first at teardown: whatever a killed run left held comes back.
    on_teardown([] { (void)run_command(std::string(LIFEBOAT_BINARY) + " recover >/dev/null"); });
    ASSERT_TRUE(eventually([&] { return running_tasks(service_) == prior_replicas; }, 120s));
  }

  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    engine_test::TearDown();
  }

  std::vector<std::string> backup_command() {
    const fs::path file = dir_ / "schedule.yaml";
    std::ofstream(file) << "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n"
                        << "  name: signals\nspec:\n  schedule: '@every 1h'\n  volumes: ["
                        << volume_ << "]\n  stopDuringBackup: " << group_
                        << "\n  destinations:\n    - local: {path: " << (dir_ / "archives").string()
                        << "}\n";
    return {LIFEBOAT_BINARY, "backup", "--schedule", file.string(), "--helper-image", test_image()};
  }

  std::vector<std::string> restore_command() {
    const fs::path tree = dir_ / "tree";
    fs::create_directories(tree / volume_);
    std::ofstream(tree / volume_ / "restored") << "from the archive\n";
    const fs::path archive = dir_ / "a.tar.gz";
    const auto tar = run_command("tar -C '" + tree.string() + "' -czf '" + archive.string() +
                                 "' '" + volume_ + "'");
    EXPECT_EQ(tar.status, 0);
    return {LIFEBOAT_BINARY, "restore", "--archive",      archive.string(),
            "--volume",      volume_,   "--helper-image", test_image()};
  }

  /// The service is scaled to zero by a run and labelled as held.
  bool held() {
    auto s = engine().inspect_service(service_);
    return s && s->replicas == 0 && s->service_labels.contains("lifeboat.held-by");
  }

  /// Back at its prior replicas, with no label of lifeboat's left.
  ::testing::AssertionResult back_as_before() {
    auto s = engine().inspect_service(service_);
    if (!s) {
      return ::testing::AssertionFailure() << s.error().describe();
    }
    if (s->replicas != prior_replicas) {
      return ::testing::AssertionFailure()
             << "replicas " << s->replicas.value_or(0) << ", was " << prior_replicas;
    }
    for (const auto& [key, value] : s->service_labels) {
      if (key.starts_with("lifeboat.") && key != "lifeboat.test") {
        return ::testing::AssertionFailure() << "label left: " << key << "=" << value;
      }
    }
    return ::testing::AssertionSuccess();
  }

  /// Waits for the child to end; its wait status, or nullopt on timeout.
  std::optional<int> wait_child(std::chrono::seconds timeout, int drain_fd = -1) {
    std::optional<int> status;
    eventually(
        [&] {
          drain(drain_fd);
          int s = 0;
          if (::waitpid(child_, &s, WNOHANG) == child_) {
            status = s;
            child_ = -1;
            return true;
          }
          return false;
        },
        timeout);
    return status;
  }

  static void drain(int fd) {
    if (fd < 0) {
      return;
    }
    char buf[4096];
    while (::read(fd, buf, sizeof buf) > 0) {
    }
  }

  static std::vector<char*> argv_of(std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    return argv;
  }

  /// Runs `args` with stdout into a pipe that is closed, unread, once the
  /// service is held (what `| head -1` does after its line); the process
  /// must finish its run.
  void close_the_pipe_while_held(std::vector<std::string> args) {
    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    const std::string log = (dir_ / "stderr.log").string();
    std::fflush(nullptr);
    child_ = ::fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(err, STDERR_FILENO);
      auto argv = argv_of(args);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    const bool was_held = eventually([&] { return held(); }, 60s);
    ::close(out[0]);  // the reader is gone
    ASSERT_TRUE(was_held) << "the run never held the service";
    const auto status = wait_child(300s);
    ASSERT_TRUE(status) << "the run did not end";
    EXPECT_FALSE(WIFSIGNALED(*status))
        << "killed by signal " << WTERMSIG(*status) << " while holding the service";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "exit status " << WEXITSTATUS(*status) << "; stderr:\n"
        << run_command("cat '" + log + "'").out;
    EXPECT_TRUE(eventually([&] { return bool(back_as_before()); }, 60s)) << back_as_before();
    EXPECT_TRUE(eventually([&] { return running_tasks(service_) == prior_replicas; }, 120s));
  }

  /// Runs `args` on a terminal of its own (a pty, the child its session
  /// leader) and hangs the terminal up once the service is held: the process
  /// gets SIGHUP, and its later writes to the terminal fail. It must resume
  /// the service, then exit non-zero.
  void hang_up_while_held(std::vector<std::string> args) {
    int terminal = -1;
    std::fflush(nullptr);
    child_ = ::forkpty(&terminal, nullptr, nullptr, nullptr);
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      auto argv = argv_of(args);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::fcntl(terminal, F_SETFL, O_NONBLOCK);
    const bool was_held = eventually(
        [&] {
          drain(terminal);
          return held();
        },
        60s);
    ::close(terminal);  // hang-up: SIGHUP to the terminal's foreground process group
    ASSERT_TRUE(was_held) << "the run never held the service";
    const auto status = wait_child(300s);
    ASSERT_TRUE(status) << "the run did not end";
    EXPECT_FALSE(WIFSIGNALED(*status))
        << "killed by signal " << WTERMSIG(*status) << " while holding the service";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << "a hang-up is no success";
    // Resumed before it exited, not by the recovery at teardown.
    EXPECT_TRUE(back_as_before());
    EXPECT_TRUE(eventually([&] { return running_tasks(service_) == prior_replicas; }, 120s));
  }

  fs::path dir_;
  std::string volume_;
  std::string group_;
  std::string service_;
  pid_t child_ = -1;
};

TEST_F(Issue12Item6Signals, BackupSurvivesItsOutputPipeClosingWhileHolding) {
  close_the_pipe_while_held(backup_command());
  bool archived = false;
  for (const auto& e : fs::directory_iterator(dir_ / "archives")) {
    archived = archived || e.path().string().ends_with(".tar.gz");
  }
  EXPECT_TRUE(archived) << "the backup did not finish its archive";
}

TEST_F(Issue12Item6Signals, BackupResumesThenExitsNonZeroOnHangUp) {
  hang_up_while_held(backup_command());
}

TEST_F(Issue12Item6Signals, RestoreSurvivesItsOutputPipeClosingWhileHolding) {
  close_the_pipe_while_held(restore_command());
}

TEST_F(Issue12Item6Signals, RestoreResumesThenExitsNonZeroOnHangUp) {
  hang_up_while_held(restore_command());
}

}  // namespace
}  // namespace lifeboat::e2e
