// Issue 13: backup runs whose destinations include an S3 bucket (a real moto
// server with signature checking on), against the test engine.

#include "tests/e2e/remote_backup_fixture.hpp"

#include <gmock/gmock.h>

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

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
  ASSERT_EQ(result.destinations.size(), 2U);
  EXPECT_TRUE(result.destinations[0].ok && result.destinations[1].ok);
  EXPECT_EQ(result.destinations[1].destination, "s3 backups/");
  EXPECT_EQ(result.destinations[1].bytes, result.size_bytes);
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
  // What the destination metrics are made of: local reached, s3 refused.
  ASSERT_EQ(result.destinations.size(), 2U);
  for (const auto& d : result.destinations) {
    if (d.destination.starts_with("local ")) {
      EXPECT_TRUE(d.ok);
      EXPECT_EQ(d.bytes, static_cast<double>(fs::file_size(dir_ / "archives" / name)));
    } else {
      EXPECT_EQ(d.destination, "s3 backups/");
      EXPECT_FALSE(d.ok);
      EXPECT_EQ(d.failure, "destination refused");
    }
  }
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

TEST_F(remote_backup_e2e, issue13_restore_from_s3_gives_the_identical_tree) {
  const auto backed_up = run(schedule(s3_yaml("secret")));
  ASSERT_TRUE(backed_up.ok) << backed_up.message;
  const std::string name = backed_up.archive.substr(backed_up.archive.rfind('/') + 1);
  const std::string target = unique("restored");
  on_teardown([this, target] { (void)engine().remove_volume(target, true); });

  const auto restored = restore_from_s3(name, target, "secret");
  ASSERT_TRUE(restored.ok) << restored.message;
  EXPECT_EQ(restored.archive, "s3 backups/ " + name);
  const auto volume = engine().inspect_volume(target);
  ASSERT_TRUE(volume) << volume.error().describe();
  const auto diff =
      run_command("diff -r '" + (dir_ / "device").string() + "' '" + volume->mountpoint + "'");
  EXPECT_EQ(diff.status, 0) << diff.out;
  // The spool file had no name: nothing of it is left in the spool folder.
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".lifeboat-restore"));
  }
}

TEST_F(remote_backup_e2e, issue13_restore_from_s3_checks_the_archive_against_its_sha256) {
  const auto backed_up = run(schedule(s3_yaml("secret")));
  ASSERT_TRUE(backed_up.ok) << backed_up.message;
  const std::string name = backed_up.archive.substr(backed_up.archive.rfind('/') + 1);
  const std::string target = unique("restored");
  on_teardown([this, target] { (void)engine().remove_volume(target, true); });
  const auto put = moto_->signed_curl("-X PUT -H 'Content-Type: text/plain' --data-binary '" +
                                      std::string(64, '0') + "  " + name + "' '" +
                                      moto_->endpoint() + "/backups/" + name + ".sha256'");
  ASSERT_THAT(s3_object(name + ".sha256"), testing::StartsWith(std::string(64, '0'))) << put;

  const auto restored = restore_from_s3(name, target, "secret");
  EXPECT_FALSE(restored.ok);
  EXPECT_EQ(restored.outcome, restore::outcome::checksum_mismatch) << restored.message;
  EXPECT_THAT(phases_, ::testing::ElementsAre("Verifying"));
  EXPECT_FALSE(engine().inspect_volume(target));
}

TEST_F(remote_backup_e2e, issue13_restore_from_s3_with_a_wrong_secret_fails_verifying) {
  const auto backed_up = run(schedule(s3_yaml("secret")));
  ASSERT_TRUE(backed_up.ok) << backed_up.message;
  const std::string name = backed_up.archive.substr(backed_up.archive.rfind('/') + 1);
  const std::string target = unique("restored");
  on_teardown([this, target] { (void)engine().remove_volume(target, true); });

  const auto restored = restore_from_s3(name, target, "wrong");
  EXPECT_FALSE(restored.ok);
  EXPECT_EQ(restored.outcome, restore::outcome::invalid);
  EXPECT_THAT(restored.message, HasSubstr("access denied"));
  EXPECT_THAT(restored.message, ::testing::Not(HasSubstr("not-the-secret")));
  // Failed while verifying: nothing was held, and the volume it would have
  // created does not exist.
  EXPECT_THAT(phases_, ::testing::ElementsAre("Verifying"));
  EXPECT_FALSE(engine().inspect_volume(target));
}

}  // namespace
}  // namespace lifeboat::e2e
