#pragma once

// What the e2e tests of the backup runner share: a schedule of one volume
// into a local folder of the test's own, a labelled writer service, the
// real runner, and checks that the writer is back as it was.

#include "api/decode.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/backup/engine_runner.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "tests/e2e/engine_fixture.hpp"

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {

namespace fs = std::filesystem;
namespace json = boost::json;

inline constexpr const char* stop_label = "docker-volume-backup.stop-during-backup";
inline constexpr const char* polite_loop = "trap 'exit 0' TERM; while true; do sleep 1; done";

class backup_runner_test : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    journals_ = quiesce::make_config_journal_store(engine());
    dir_ = fs::temp_directory_path() / unique("archives");
    fs::create_directories(dir_);
    on_teardown([dir = dir_] { fs::remove_all(dir); });
  }

  /// A schedule of `volume` (or "a, b") held with `group`, into dir_.
  std::string schedule_yaml(const std::string& name, const std::string& volume,
                            const std::string& group) const {
    return "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n  name: " + name +
           "\nspec:\n  schedule: '@every 1h'\n  volumes: [" + volume +
           "]\n  stopDuringBackup: " + group +
           "\n  destinations:\n    - local: {path: " + dir_.string() + "}\n";
  }

  api::backup_schedule schedule(const std::string& name, const std::string& volume,
                                const std::string& group) const {
    const auto decoded = api::decode(schedule_yaml(name, volume, group));
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
  backup::run_result backup(const api::backup_schedule& s, const std::function<void()>& before_read,
                            backup::runner_options options = {}) {
    auto steps = backup::standard_archive_steps();
    steps.write = [write = steps.write, &before_read](const backup::archive_request& request) {
      before_read();
      return write(request);
    };
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

}  // namespace lifeboat::e2e
