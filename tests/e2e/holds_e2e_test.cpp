// The runners re-check their holds before they use what they read (issue 12,
// item 8): a backup whose held service came back while its volumes were read
// fails, and nothing is published; a restore whose held service came back
// while it wrote fails.

#include "api/decode.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/backup/engine_runner.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "controller/restore/engine_runner.hpp"
#include "tests/e2e/engine_fixture.hpp"

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* stop_label = "docker-volume-backup.stop-during-backup";
constexpr const char* polite_loop = "trap 'exit 0' TERM; while true; do sleep 1; done";

class holds_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    journals_ = quiesce::make_config_journal_store(engine());
    dir_ = fs::temp_directory_path() / unique("archives");
    fs::create_directories(dir_);
    on_teardown([dir = dir_] { fs::remove_all(dir); });
  }

  api::backup_schedule schedule(const std::string& name, const std::string& volume,
                                const std::string& group) const {
    const std::string yaml =
        "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n  name: " + name +
        "\nspec:\n  schedule: '@every 1h'\n  volumes: [" + volume +
        "]\n  stopDuringBackup: " + group +
        "\n  destinations:\n    - local: {path: " + dir_.string() + "}\n";
    const auto decoded = api::decode(yaml);
    EXPECT_TRUE(decoded.ok());
    return std::get<api::backup_schedule>(decoded.objects().at(0));
  }

  std::vector<std::string> archives() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename().string().ends_with(".tar.gz")) {
        names.push_back(e.path().filename().string());
      }
    }
    return names;
  }

  /// Runs the real backup runner; `before_read` runs where the runner reads,
  /// with the workloads held.
  backup::run_result backup(const api::backup_schedule& s,
                            const std::function<void()>& before_read) {
    auto steps = backup::standard_archive_steps();
    steps.write = [write = steps.write, &before_read](const backup::archive_request& request) {
      before_read();
      return write(request);
    };
    backup::runner_options options;
    options.helper_image = test_image();
    backup::engine_runner runner(engine(), *journals_, steps, options);
    const std::atomic<bool> cancel{false};
    return runner.run(
        s, unique("run"), [](std::string_view, const std::string&) {}, [](int) {}, cancel);
  }

  /// Sends the service's spec back with `change` applied, retrying conflicts.
  void update(const std::string& id, const std::function<void(json::object&)>& change) {
    ASSERT_TRUE(eventually([&] {
      auto s = engine().inspect_service(id);
      if (!s) {
        return false;
      }
      auto spec = s->spec;
      change(spec);
      return engine().update_service(id, s->version, spec).has_value();
    }));
  }

  /// What `docker service scale` does: the count changes, labels stay.
  void scale(const std::string& id, std::uint64_t replicas) {
    update(id, [&](json::object& spec) {
      spec["Mode"] = json::object{{"Replicated", json::object{{"Replicas", replicas}}}};
    });
  }

  /// A service writing to `volume`, labelled with `group` in deploy, running.
  std::string writer(const std::string& name, const std::string& volume, const std::string& group) {
    const auto id = create_service(name, volume, polite_loop, 1);
    EXPECT_FALSE(id.empty());
    update(id, [&](json::object& spec) { spec["Labels"].as_object()[stop_label] = group; });
    EXPECT_TRUE(eventually([&] { return running_tasks(id) == 1; }));
    return id;
  }

  bool back_as_before(const std::string& id) {
    return eventually([&] {
      auto current = engine().inspect_service(id);
      return current && current->replicas == 1U && running_tasks(id) == 1 &&
             !current->service_labels.contains("lifeboat.held-by") &&
             !current->service_labels.contains("lifeboat.prior-replicas");
    });
  }

  std::unique_ptr<quiesce::journal_store> journals_;
  fs::path dir_;
};

TEST_F(holds_e2e, a_backup_whose_held_service_came_back_during_the_read_is_not_published) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto name = unique("writer");
  const auto id = writer(name, volume, group);

  // Undisturbed, the archive is published.
  const auto s = schedule(unique("sched"), volume, group);
  const auto undisturbed = backup(s, [] {});
  ASSERT_TRUE(undisturbed.ok) << undisturbed.message;
  ASSERT_EQ(archives().size(), 1U);
  ASSERT_TRUE(back_as_before(id));

  // `docker service scale` while held: the writer runs during the read.
  const auto disturbed = backup(s, [&] {
    scale(id, 1);
    ASSERT_TRUE(eventually([&] { return running_tasks(id) == 1; }));
  });
  EXPECT_FALSE(disturbed.ok) << "published an archive read while the writer ran";
  EXPECT_NE(disturbed.message.find("service " + name), std::string::npos) << disturbed.message;
  EXPECT_NE(disturbed.message.find("not published"), std::string::npos) << disturbed.message;
  EXPECT_EQ(archives().size(), 1U) << "a second archive was published";
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_FALSE(e.path().filename().string().ends_with(".partial")) << e.path();
  }
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(holds_e2e, a_restore_whose_held_service_came_back_while_writing_fails) {
  const auto volume = create_volume(unique("data"));
  const auto name = unique("writer");
  const auto id = writer(name, volume, unique("g"));
  const auto made = backup(schedule(unique("sched"), volume, unique("g-none")), [] {});
  ASSERT_TRUE(made.ok) << made.message;

  const std::string yaml =
      "apiVersion: lifeboat/v1\nkind: Restore\nmetadata:\n  name: " + unique("restore") +
      "\nspec:\n  archive: " + made.archive + "\n  volumes:\n    - from: " + volume + "\n";
  const auto decoded = api::decode(yaml);
  ASSERT_TRUE(decoded.ok());
  const auto restore = std::get<api::restore>(decoded.objects().at(0));

  // The restore holds every writer of its volume; one comes back mid-write.
  bool disturbed = false;
  restore::runner_options options;
  options.helper_image = test_image();
  options.on_progress = [&](std::string_view phase, const restore::progress&) {
    if (phase == restore::phase::restoring && !disturbed) {
      disturbed = true;
      scale(id, 1);
      ASSERT_TRUE(eventually([&] { return running_tasks(id) == 1; }));
    }
  };
  restore::engine_runner runner(engine(), *journals_, options);
  const std::atomic<bool> cancel{false};
  const auto result = runner.run(
      restore, unique("restore-run"), [](std::string_view, const std::string&) {}, [](int) {},
      cancel);
  ASSERT_TRUE(disturbed) << "the restore reported no progress while writing: " << result.message;
  EXPECT_FALSE(result.ok) << "a restore written while its writer ran succeeded";
  EXPECT_EQ(result.outcome, restore::outcome::quiesce_failed) << result.message;
  EXPECT_NE(result.message.find("service " + name), std::string::npos) << result.message;
  EXPECT_TRUE(back_as_before(id));
}

}  // namespace
}  // namespace lifeboat::e2e
