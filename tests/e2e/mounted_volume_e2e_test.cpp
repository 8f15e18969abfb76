// Item 1 of the hardening issue: a volume whose data is a mount (the local
// driver with `-o type=none,o=bind,device=...`, NFS, CIFS, or any other
// driver) is mounted by dockerd only while a container uses it. Its
// Mountpoint folder is empty otherwise: a direct read after the workloads
// stopped would archive nothing (and retention would then prune the good
// archives), a direct restore would write beside the data. Such volumes must
// be read and written through a container that has them mounted.

#include "api/decode.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/backup/engine_runner.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "controller/restore/engine_runner.hpp"
#include "tests/e2e/engine_fixture.hpp"

#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class mounted_volume_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    journals_ = quiesce::make_config_journal_store(engine());
    dir_ = fs::temp_directory_path() / unique("mounted");
    device_ = dir_ / "device";
    archives_ = dir_ / "archives";
    fs::create_directories(device_ / "sub");
    fs::create_directories(archives_);
    on_teardown([dir = dir_] { fs::remove_all(dir); });
    std::ofstream(device_ / "db.dat") << "the data lives in the bind mount\n";
    std::ofstream(device_ / "sub" / "more.txt") << "and so does this\n";

    volume_ = unique("bind");
    const auto created = run_command(
        "docker volume create -d local -o type=none -o o=bind -o device=" + device_.string() + " " +
        volume_);
    ASSERT_EQ(created.status, 0);
    on_teardown([this] { (void)engine().remove_volume(volume_, true); });
    auto v = engine().inspect_volume(volume_);
    ASSERT_TRUE(v) << v.error().describe();
    // What a direct read would see: the empty folder under the mount.
    ASSERT_TRUE(fs::is_directory(v->mountpoint));
    ASSERT_TRUE(fs::is_empty(v->mountpoint)) << "dockerd mounts it only while a container uses it";
  }

  api::backup_schedule schedule() const {
    const std::string yaml =
        "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: " +
        // Unique: a run removes its schedule's leftover volume containers,
        // and these tests run side by side.
        unique("mounted") +
        "}\nspec:\n"
        "  schedule: '@every 1h'\n  volumes: [" +
        volume_ + "]\n  destinations:\n    - local: {path: " + archives_.string() + "}\n";
    const auto decoded = api::decode(yaml);
    EXPECT_TRUE(decoded.ok());
    return std::get<api::backup_schedule>(decoded.objects().at(0));
  }

  std::unique_ptr<quiesce::journal_store> journals_;
  fs::path dir_;
  fs::path device_;
  fs::path archives_;
  std::string volume_;
};

TEST_F(mounted_volume_e2e, item1_backup_of_a_bind_mounted_volume_reads_its_data) {
  backup::runner_options options;
  options.helper_image = test_image();
  options.direct_read = true;  // allowed, and must not be used for this volume
  backup::engine_runner runner(engine(), *journals_, backup::standard_archive_steps(), options);
  const std::atomic<bool> cancel{false};
  const auto result = runner.run(
      schedule(), unique("run"), [](std::string_view, const std::string&) {}, [](int) {}, cancel);
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_THAT(result.message, HasSubstr(volume_ + ": engine"));
  const auto listed = run_command("tar -tzf '" + result.archive + "'");
  ASSERT_EQ(listed.status, 0);
  EXPECT_THAT(listed.out, HasSubstr(volume_ + "/db.dat"));
  EXPECT_THAT(listed.out, HasSubstr(volume_ + "/sub/more.txt"));
}

TEST_F(mounted_volume_e2e, item1_restore_into_a_bind_mounted_volume_writes_into_the_mount) {
  // An archive of a volume of the same name, made with tar.
  const fs::path staging = dir_ / "staging";
  fs::create_directories(staging / volume_);
  std::ofstream(staging / volume_ / "restored.txt") << "back from the archive\n";
  const fs::path archive = archives_ / "manual.tar.gz";
  ASSERT_EQ(
      run_command("tar -czf '" + archive.string() + "' -C '" + staging.string() + "' " + volume_)
          .status,
      0);
  const std::string yaml =
      "apiVersion: lifeboat/v1\nkind: Restore\nmetadata: {name: m}\nspec:\n"
      "  archive: " +
      archive.string() + "\n  volumes: [" + volume_ + "]\n";
  const auto decoded = api::decode(yaml);
  ASSERT_TRUE(decoded.ok());
  restore::runner_options options;
  options.helper_image = test_image();
  restore::engine_runner runner(engine(), *journals_, options);
  const std::atomic<bool> cancel{false};
  const auto result = runner.run(
      std::get<api::restore>(decoded.objects().at(0)), unique("restore"),
      [](std::string_view, const std::string&) {}, [](int) {}, cancel);
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_EQ(result.path, "engine");
  EXPECT_TRUE(fs::exists(device_ / "restored.txt")) << "written beside the mount, not into it";
  EXPECT_TRUE(fs::exists(device_ / "db.dat"));
}

TEST_F(mounted_volume_e2e, item1_a_volume_that_yields_no_files_is_a_warning) {
  // The data is gone from the device: the archive holds the volume's root
  // folder and nothing else; the run succeeds but says so.
  fs::remove_all(device_ / "sub");
  fs::remove(device_ / "db.dat");
  backup::runner_options options;
  options.helper_image = test_image();
  backup::engine_runner runner(engine(), *journals_, backup::standard_archive_steps(), options);
  const std::atomic<bool> cancel{false};
  const auto result = runner.run(
      schedule(), unique("run"), [](std::string_view, const std::string&) {}, [](int) {}, cancel);
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_THAT(result.message, HasSubstr("warning"));
  EXPECT_THAT(result.message, HasSubstr(volume_ + " holds no files"));
}

}  // namespace
}  // namespace lifeboat::e2e
