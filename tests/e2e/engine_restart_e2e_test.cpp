// The engine restarts under a running controller: once while idle, once in the
// middle of a run. The controller must reconnect and go on scheduling, nothing
// may stay held, and the interrupted run must end Succeeded or Failed, never
// stuck, with no partial archive visible.

#include "tests/e2e/controller_process.hpp"

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// Restarts the engine of hack/swarm-up.sh; false when it is not ours.
bool restart_engine() {
  const auto r = run_command(LIFEBOAT_SOURCE_DIR "/hack/engine-restart.sh >&2");
  return r.status == 0;
}

class engine_restart_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    if (!fs::exists("/tmp/lifeboat-engine/owned") &&
        std::getenv("LIFEBOAT_ENGINE_DIR") == nullptr) {
      GTEST_SKIP() << "the engine was not started by hack/swarm-up.sh: not restarting it";
    }
    dir_ = fs::temp_directory_path() / unique("restart");
    fs::create_directories(dir_ / "archive");
    on_teardown([dir = dir_] { fs::remove_all(dir); });
  }

  /// Starts `lifeboat controller` as a child process logging to dir_/controller.log.
  void start_controller() {
    const std::string lease = unique("lease");
    controller_ = std::make_unique<controller_process>(
        dir_ / "controller.log",
        std::vector<std::string>{"--lease-name", lease, "--helper-image", test_image(),
                                 // Held for the whole compression, so that a restart
                                 // lands while the workload is down.
                                 "--spool-limit", "0"});
    on_teardown([this, lease] {
      controller_.reset();
      run_command("docker config rm " + lease + " >/dev/null 2>&1");
    });
  }

  std::string controller_log() const { return controller_ ? controller_->log() : std::string(); }

  /// name -> phase of this test's Backups, from `lifeboat get backups`.
  std::map<std::string, std::string> backups(const std::string& schedule) {
    std::map<std::string, std::string> out;
    for (const auto& b : get_objects("backups")) {
      if (b.schedule_ref == schedule) {
        out[b.name] = b.phase;
      }
    }
    return out;
  }

  std::size_t archives() const {
    std::size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "archive")) {
      n += e.path().extension() == ".gz" ? 1 : 0;
    }
    return n;
  }

  bool partials_visible() const {
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "archive")) {
      if (e.path().extension() == ".partial") {
        return true;
      }
    }
    return false;
  }

  bool held(const std::string& service) {
    auto s = engine().inspect_service(service);
    return s && (s->replicas == 0 || s->service_labels.contains("lifeboat.held-by"));
  }

  fs::path dir_;
  std::unique_ptr<controller_process> controller_;
};

TEST_F(engine_restart_e2e, idle_and_mid_run) {
  // A labelled workload on a volume with 384 MiB that compresses slowly
  // enough (gzip 6, no spool) for a run to be caught in the middle.
  const auto group = unique("grp");
  const auto volume = create_volume(unique("data"));
  {
    auto v = engine().inspect_volume(volume);
    ASSERT_TRUE(v);
    const auto filled = run_command("cd '" + v->mountpoint +
                                    "' && head -c 134217728 /dev/urandom > random && "
                                    "seq 1 40000000 | head -c 268435456 > numbers");
    ASSERT_EQ(filled.status, 0);
  }
  const auto app = create_service(unique("app"), volume,
                                  "trap 'exit 0' TERM; while true; do date >> /data/log; "
                                  "sleep 1; done",
                                  1);
  {
    auto s = engine().inspect_service(app);
    ASSERT_TRUE(s);
    auto spec = s->spec;
    spec["Labels"].as_object()["docker-volume-backup.stop-during-backup"] = group;
    ASSERT_TRUE(engine().update_service(app, s->version, spec));
  }
  ASSERT_TRUE(eventually([&] { return running_tasks(app) == 1; }));

  const auto schedule = unique("every");
  const fs::path file = dir_ / "schedule.yaml";
  std::ofstream(file) << "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n  name: "
                      << schedule << "\nspec:\n  schedule: '@every 20s'\n  volumes: [" << volume
                      << "]\n  stopDuringBackup: " << group
                      << "\n  archive:\n    compression: gzip\n    level: 6\n"
                         "  destinations:\n    - local: {path: "
                      << (dir_ / "archive").string() << "}\n";
  ASSERT_EQ(run_command(lifeboat_command("apply -f " + file.string())).status, 0);
  // The schedule and its Backups (named after it).
  on_teardown([schedule] { remove_objects(schedule); });
  start_controller();

  // 1. Idle restart: after the first archive, restart the engine between runs;
  // the controller reconnects and the next run lands.
  ASSERT_TRUE(eventually([&] { return archives() >= 1 && !held(app); }, 180s)) << controller_log();
  ASSERT_TRUE(restart_engine());
  const auto before = archives();
  EXPECT_TRUE(eventually([&] { return archives() > before; }, 180s))
      << "no run after the engine restarted\n"
      << controller_log();
  EXPECT_TRUE(eventually([&] { return !held(app) && running_tasks(app) == 1; }, 120s));

  // 2. Restart in the middle of a run: wait until the workload is held.
  ASSERT_TRUE(eventually([&] { return held(app); }, 120s)) << controller_log();
  ASSERT_TRUE(restart_engine());
  // Nothing stays held, and every Backup reaches an end.
  EXPECT_TRUE(eventually([&] { return !held(app) && running_tasks(app) == 1; }, 300s))
      << controller_log();
  EXPECT_TRUE(eventually(
      [&] {
        const auto phases = backups(schedule);
        int unfinished = 0;
        for (const auto& [name, phase] : phases) {
          unfinished += phase == "Succeeded" || phase == "Failed" || phase == "Skipped" ? 0 : 1;
        }
        return !phases.empty() && unfinished <= 1 && !held(app);  // the next may be starting
      },
      300s))
      << controller_log();
  EXPECT_EQ(controller_->stop(), 0);
  // Stopping the controller resumes anything a run held and removes partials.
  EXPECT_FALSE(held(app));
  EXPECT_FALSE(partials_visible());
  // The controller never crashed: it stopped in order, having seen the
  // restarts.
  const auto log = controller_log();
  EXPECT_NE(log.find("event=stopped"), std::string::npos) << log;
  EXPECT_NE(log.find("event=watch_restart"), std::string::npos)
      << "the restart was never noticed:\n"
      << log;
}

}  // namespace
}  // namespace lifeboat::e2e
