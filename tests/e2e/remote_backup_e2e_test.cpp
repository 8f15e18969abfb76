// Issue 13: backup runs whose destinations include an S3 bucket (a real moto
// server with signature checking on), against the test engine.

#include "api/decode.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/backup/engine_runner.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "tests/e2e/engine_fixture.hpp"
#include "tests/e2e/moto_server.hpp"

#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class remote_backup_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    journals_ = quiesce::make_config_journal_store(engine());
    dir_ = fs::temp_directory_path() / unique("remote");
    fs::create_directories(dir_ / "device" / "sub");
    fs::create_directories(dir_ / "archives");
    on_teardown([dir = dir_] { fs::remove_all(dir); });
    std::ofstream(dir_ / "device" / "db.dat") << std::string(3 << 20, 'x') << "end\n";
    std::ofstream(dir_ / "device" / "sub" / "more.txt") << "and this\n";
    volume_ = unique("data");
    ASSERT_EQ(run_command("docker volume create -d local -o type=none -o o=bind -o device=" +
                          (dir_ / "device").string() + " " + volume_)
                  .status,
              0);
    on_teardown([this] { (void)engine().remove_volume(volume_, true); });
    moto_ = std::make_unique<test::moto_server>(dir_);
    std::ofstream(dir_ / "key_id") << moto_->key_id() << "\n";
    std::ofstream(dir_ / "secret") << moto_->secret() << "\n";
    std::ofstream(dir_ / "wrong") << "not-the-secret\n";
  }

  std::string s3_yaml(const std::string& secret_file) const {
    return "    - s3: {bucket: backups, endpoint: '" + moto_->endpoint() +
           "', pathStyle: true, accessKeyIdFile: " + (dir_ / "key_id").string() +
           ", secretAccessKeyFile: " + (dir_ / secret_file).string() + "}\n";
  }
  std::string local_yaml() const {
    return "    - local: {path: " + (dir_ / "archives").string() + "}\n";
  }

  api::backup_schedule schedule(const std::string& destinations) const {
    const std::string yaml =
        "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: " + unique("s3") +
        "}\nspec:\n  schedule: '@every 1h'\n  volumes: [" + volume_ +
        "]\n  retention: {keepLast: 1}\n  destinations:\n" + destinations;
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

  // The single archive in the local folder, by name.
  std::string local_archive() const {
    std::string found;
    for (const auto& e : fs::directory_iterator(dir_ / "archives")) {
      if (e.path().extension() == ".gz") {
        EXPECT_TRUE(found.empty()) << "more than one archive";
        found = e.path().filename().string();
      }
    }
    return found;
  }

  std::string s3_object(const std::string& key) const {
    return moto_->signed_curl("'" + moto_->endpoint() + "/backups/" + key + "'");
  }

  std::unique_ptr<quiesce::journal_store> journals_;
  std::unique_ptr<test::moto_server> moto_;
  fs::path dir_;
  std::string volume_;
};

TEST_F(remote_backup_e2e, issue13_local_and_s3_receive_the_same_archive) {
  const auto result = run(schedule(local_yaml() + s3_yaml("secret")));
  ASSERT_TRUE(result.ok) << result.message;
  const auto name = local_archive();
  ASSERT_FALSE(name.empty());
  std::ifstream local_sum(dir_ / "archives" / (name + ".sha256"));
  std::string local_sha256;
  local_sum >> local_sha256;
  EXPECT_EQ(s3_object(name + ".sha256"), local_sha256 + "  " + name + "\n");
  const auto downloaded =
      run_command("curl -sS --aws-sigv4 aws:amz:us-east-1:s3 -u '" + moto_->key_id() + ":" +
                  moto_->secret() + "' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' '" +
                  moto_->endpoint() + "/backups/" + name + "' | sha256sum");
  EXPECT_EQ(downloaded.out.substr(0, 64), local_sha256);
  EXPECT_THAT(moto_->pending_uploads(), testing::IsEmpty());
}

TEST_F(remote_backup_e2e, issue13_an_archive_written_into_s3_first_is_copied_to_local) {
  const auto result = run(schedule(s3_yaml("secret") + local_yaml()));
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_THAT(result.archive, testing::StartsWith("s3://backups/"));
  const auto name = local_archive();
  ASSERT_FALSE(name.empty());
  EXPECT_EQ(result.archive, "s3://backups/" + name);
  std::ifstream local_sum(dir_ / "archives" / (name + ".sha256"));
  std::string local_sha256;
  local_sum >> local_sha256;
  EXPECT_EQ(s3_object(name + ".sha256"), local_sha256 + "  " + name + "\n");
  const auto listed = run_command("tar -tzf '" + (dir_ / "archives" / name).string() + "'");
  EXPECT_THAT(listed.out, HasSubstr(volume_ + "/sub/more.txt"));
}

TEST_F(remote_backup_e2e, issue13_s3_refusing_does_not_stop_the_local_copy) {
  const auto result = run(schedule(local_yaml() + s3_yaml("wrong")));
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, "destination refused");
  EXPECT_THAT(result.message, HasSubstr("s3 backups/: access denied"));
  EXPECT_THAT(result.message, HasSubstr("the archive reached 1 of 2 destination(s)"));
  EXPECT_THAT(result.message, ::testing::Not(HasSubstr("not-the-secret")));
  const auto name = local_archive();
  ASSERT_FALSE(name.empty()) << "the local archive was written";
  EXPECT_TRUE(fs::exists(dir_ / "archives" / (name + ".sha256")));
  EXPECT_EQ(result.archive, (dir_ / "archives" / name).string());
  EXPECT_THAT(moto_->pending_uploads(), testing::IsEmpty());
}

TEST_F(remote_backup_e2e, issue13_a_copy_refused_midway_fails_the_run_naming_s3_and_keeps_local) {
  // s3 passes its check, then the key loses its permission: the copy is
  // refused after the archive was written locally.
  const auto s = schedule(local_yaml() + s3_yaml("secret"));
  ASSERT_TRUE(run(s).ok);
  moto_->deny("s3:PutObject");
  const auto result = run(s);
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.message, HasSubstr("s3 backups/: copying the archive failed: access denied"));
}

}  // namespace
}  // namespace lifeboat::e2e
