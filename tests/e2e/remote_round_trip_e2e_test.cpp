// Issue 13: a backup run into a WebDAV (rclone) or SFTP (OpenSSH) server the
// test starts, then a Restore from there into a new volume, against the test
// engine; and retention on S3 (moto) through a real run.

#include "api/decode.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/backup/engine_runner.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "controller/restore/engine_runner.hpp"
#include "tests/e2e/engine_fixture.hpp"
#include "tests/e2e/moto_server.hpp"
#include "tests/e2e/sshd_server.hpp"
#include "tests/e2e/webdav_server.hpp"

#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class remote_round_trip_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    journals_ = quiesce::make_config_journal_store(engine());
    dir_ = fs::temp_directory_path() / unique("round-trip");
    fs::create_directories(dir_ / "device" / "sub" / "deeper");
    on_teardown([dir = dir_] { fs::remove_all(dir); });
    std::ofstream(dir_ / "device" / "db.dat") << std::string(2 << 20, 'x') << "end\n";
    std::ofstream(dir_ / "device" / "sub" / "more.txt") << "and this\n";
    std::ofstream(dir_ / "device" / "sub" / "deeper" / "empty");
    fs::create_symlink("../db.dat", dir_ / "device" / "sub" / "link");
    volume_ = unique("data");
    schedule_name_ = unique("remote");
    ASSERT_EQ(run_command("docker volume create -d local -o type=none -o o=bind -o device=" +
                          (dir_ / "device").string() + " " + volume_)
                  .status,
              0);
    on_teardown([this] { (void)engine().remove_volume(volume_, true); });
  }

  // The schedule over the volume into `destination` (one flow-style entry).
  api::backup_schedule schedule(const std::string& destination, int keep_last = 1) const {
    const std::string yaml =
        "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: " + schedule_name_ +
        "}\nspec:\n  schedule: '@every 1h'\n  volumes: [" + volume_ +
        "]\n  retention: {keepLast: " + std::to_string(keep_last) + "}\n  destinations:\n    - " +
        destination + "\n";
    const auto decoded = api::decode(yaml);
    EXPECT_TRUE(decoded.ok()) << yaml;
    return std::get<api::backup_schedule>(decoded.objects().at(0));
  }

  backup::run_result run(const api::backup_schedule& s) {
    backup::runner_options options;
    options.helper_image = test_image();
    backup::engine_runner runner(engine(), *journals_, backup::standard_archive_steps(), options);
    const std::atomic<bool> cancel{false};
    return runner.run(
        s, unique("run"), [](std::string_view, const std::string&) {}, [](int) {}, cancel);
  }

  // A Restore of the volume into the new volume `target` from the archive
  // `name` on `destination` (one flow-style entry).
  restore::run_result restore_from(const std::string& destination, const std::string& name,
                                   const std::string& target) {
    const std::string yaml =
        "apiVersion: lifeboat/v1\nkind: Restore\nmetadata: {name: r}\nspec:\n  source:\n"
        "    destination: {" +
        destination + "}\n    name: " + name + "\n  volumes: [\"" + volume_ + "=" + target +
        "\"]\n  createVolume: true\n";
    const auto decoded = api::decode(yaml);
    EXPECT_TRUE(decoded.ok()) << yaml;
    restore::runner_options options;
    options.helper_image = test_image();
    options.spool_folder = dir_;
    restore::engine_runner runner(engine(), *journals_, options);
    const std::atomic<bool> cancel{false};
    return runner.run(
        std::get<api::restore>(decoded.objects().at(0)), unique("restore"),
        [](std::string_view, const std::string&) {}, [](int) {}, cancel);
  }

  // Backs up into `destination`, whose archives land in the local folder
  // `served`; checks what is there; restores from it into a new volume and
  // compares the trees.
  void round_trip(const std::string& destination, const fs::path& served) {
    const auto backed_up = run(schedule(destination));
    ASSERT_TRUE(backed_up.ok) << backed_up.message;
    const std::string name = backed_up.archive.substr(backed_up.archive.rfind('/') + 1);
    ASSERT_TRUE(name.starts_with(schedule_name_ + "-")) << backed_up.archive;
    // The archive and its checksum under their names, nothing partial.
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(served)) {
      files.push_back(e.path().filename().string());
    }
    EXPECT_THAT(files, ::testing::UnorderedElementsAre(name, name + ".sha256"));
    const auto checked =
        run_command("cd '" + served.string() + "' && sha256sum -c '" + name + ".sha256'");
    EXPECT_EQ(checked.status, 0) << checked.out;

    const std::string target = unique("restored");
    on_teardown([this, target] { (void)engine().remove_volume(target, true); });
    const auto restored = restore_from(destination, name, target);
    ASSERT_TRUE(restored.ok) << restored.message;
    const auto volume = engine().inspect_volume(target);
    ASSERT_TRUE(volume) << volume.error().describe();
    const auto diff = run_command("diff -r --no-dereference '" + (dir_ / "device").string() +
                                  "' '" + volume->mountpoint + "'");
    EXPECT_EQ(diff.status, 0) << diff.out;
  }

  std::unique_ptr<quiesce::journal_store> journals_;
  fs::path dir_;
  std::string volume_;
  std::string schedule_name_;
};

TEST_F(remote_round_trip_e2e, issue13_webdav_backup_then_restore_gives_the_identical_tree) {
  test::webdav_server server(dir_ / "dav", "pw-Round-Trip-7");
  std::ofstream(dir_ / "dav_password") << server.password() << "\n";
  round_trip("webdav: {url: '" + server.url() +
                 "backups/', username: " + test::webdav_server::user +
                 ", passwordFile: " + (dir_ / "dav_password").string() + "}",
             server.served() / "backups");
}

TEST_F(remote_round_trip_e2e, issue13_sftp_backup_then_restore_gives_the_identical_tree) {
  fs::create_directories(dir_ / "ssh");
  test::sshd_server server(dir_ / "ssh");
  const fs::path folder = dir_ / "ssh" / "served";
  fs::create_directories(folder);
  round_trip("sftp: {host: 127.0.0.1, port: " + std::to_string(server.port()) +
                 ", user: " + server.user() + ", path: " + folder.string() +
                 ", identityFile: " + server.user_key().string() +
                 ", knownHostsFile: " + server.known_hosts().string() + "}",
             folder);
}

TEST_F(remote_round_trip_e2e, issue13_retention_on_s3_keeps_keep_last_of_this_schedule_only) {
  test::moto_server moto(dir_);
  std::ofstream(dir_ / "key_id") << moto.key_id() << "\n";
  std::ofstream(dir_ / "secret") << moto.secret() << "\n";
  // Two older archives of this schedule and one of another, as earlier runs
  // left them (with their checksums).
  const auto put = [&](const std::string& key) {
    return moto.signed_curl("-X PUT --data-binary 'old' '" + moto.endpoint() + "/backups/" + key +
                            "'");
  };
  const std::string older = schedule_name_ + "-2020-01-01T00-00-00.tar.gz";
  const std::string old = schedule_name_ + "-2020-01-02T00-00-00.tar.gz";
  const std::string others = schedule_name_ + "x-2020-01-01T00-00-00.tar.gz";
  for (const auto& key : {older, old, others}) {
    put(key);
    put(key + ".sha256");
  }
  const auto result =
      run(schedule("s3: {bucket: backups, endpoint: '" + moto.endpoint() +
                       "', pathStyle: true, accessKeyIdFile: " + (dir_ / "key_id").string() +
                       ", secretAccessKeyFile: " + (dir_ / "secret").string() + "}",
                   /*keep_last=*/2));
  ASSERT_TRUE(result.ok) << result.message;
  const std::string name = result.archive.substr(result.archive.rfind('/') + 1);
  const auto listed = moto.signed_curl("'" + moto.endpoint() + "/backups?list-type=2'");
  // keepLast 2: the new archive and the newest old one stay; the oldest goes;
  // another schedule's names are never matched.
  for (const auto& kept : {name, old, others}) {
    EXPECT_THAT(listed, HasSubstr("<Key>" + kept + "</Key>"));
    EXPECT_THAT(listed, HasSubstr("<Key>" + kept + ".sha256</Key>"));
  }
  EXPECT_THAT(listed, ::testing::Not(HasSubstr("<Key>" + older)));
}

}  // namespace
}  // namespace lifeboat::e2e
