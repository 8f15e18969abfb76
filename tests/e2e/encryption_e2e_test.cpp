// age encryption end to end on the real swarm (issue 14): `lifeboat backup`
// of an encrypting schedule writes an age file that Debian's `age` and GNU
// tar read back to the volume's tree; `lifeboat restore` decrypts it (and
// archives made by `tar | zstd | age -r`) into a volume; a wrong key fails in
// Verifying with nothing created or written. The same for OpenPGP: gpg
// reads lifeboat's `.gpg` archives, lifeboat restores `gpg -e` / `gpg -c`
// ones and its own (to keys or to a passphrase).
#include "tests/e2e/engine_fixture.hpp"

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;

std::string lifeboat(const std::string& args) { return std::string(LIFEBOAT_BINARY) + " " + args; }

std::string helper_image() {
  const char* image = std::getenv("LIFEBOAT_IMAGE");
  return image != nullptr && *image != '\0' ? image : "lifeboat:dev";
}

/// `lifeboat backup` of one schedule file, its output and error together.
command_result backup_with(const std::filesystem::path& schedule) {
  return run_command(lifeboat("backup --schedule " + schedule.string() + " --helper-image " +
                              helper_image() + " 2>&1"));
}

class encryption_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    if (run_command("command -v age >/dev/null && command -v age-keygen >/dev/null").status != 0) {
      GTEST_FAIL() << "Debian's age is not installed (hack/setup.sh installs it)";
    }
    dir_ = fs::path(testing::TempDir()) / unique("encryption");
    fs::create_directories(dir_);
    on_teardown([this] { fs::remove_all(dir_); });
  }

  command_result in_volume(const std::string& volume, const std::string& script) {
    return run_command("docker run --rm --network none -v " + volume + ":/data " + test_image() +
                       " sh -c '" + script + "'");
  }

  // Every path with type, mode and owner, and every file's SHA-256.
  std::string manifest(const std::string& volume) {
    auto r = in_volume(volume,
                       "cd /data && find . | sort | while read -r p; do "
                       "stat -c \"%n %F %a %u:%g\" \"$p\"; done && "
                       "find . -type f | sort | xargs -r sha256sum");
    EXPECT_EQ(r.status, 0);
    return r.out;
  }

  // A key pair from age-keygen: the identity file's path and the recipient.
  std::pair<fs::path, std::string> key_pair(const std::string& name) {
    const auto file = dir_ / (name + ".txt");
    EXPECT_EQ(run_command("age-keygen -o " + file.string() + " 2>/dev/null").status, 0);
    auto r = run_command("age-keygen -y " + file.string());
    EXPECT_EQ(r.status, 0);
    auto recipient = r.out;
    while (!recipient.empty() && (recipient.back() == '\n' || recipient.back() == '\r')) {
      recipient.pop_back();
    }
    return {file, recipient};
  }

  // A volume a restore creates, removed after the test.
  std::string removed_after(const std::string& volume) {
    on_teardown([this, volume] {
      eventually([&] {
        auto r = engine().remove_volume(volume, true);
        return r || r.error().is(engine::errc::not_found);
      });
    });
    return volume;
  }

  fs::path only_archive(const fs::path& folder, std::string_view extension) {
    fs::path found;
    for (const auto& e : fs::directory_iterator(folder)) {
      const auto name = e.path().filename().string();
      if (e.is_regular_file() && name.ends_with(extension)) {
        EXPECT_TRUE(found.empty()) << "two archives: " << found << " and " << name;
        found = e.path();
      }
    }
    return found;
  }

  fs::path schedule_file(const std::string& volume, const std::string& encryption) {
    const auto file = dir_ / (unique("s") + ".yaml");
    std::ofstream(file) << "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: "
                        << unique("s") << "}\nspec:\n  schedule: \"@daily\"\n  volumes: [" << volume
                        << "]\n  stopDuringBackup: \"" << unique("nobody")
                        << "\"\n  archive:\n    compression: zstd\n    encryption:\n"
                        << encryption
                        << "  destinations: [{local: {path: " << (dir_ / "archives").string()
                        << "}}]\n";
    return file;
  }

  std::string restore(const std::string& args) {
    return lifeboat("restore --helper-image " + helper_image() + " " + args + " 2>&1");
  }

  void fill(const std::string& volume) {
    auto r = in_volume(volume,
                       "set -e; cd /data; mkdir -p a/b empty; echo hello > a/b/f; "
                       "dd if=/dev/urandom of=big bs=1024 count=3000 2>/dev/null; "
                       "ln -s a/b/f link; chmod 600 a/b/f; chown 1234:5678 big");
    ASSERT_EQ(r.status, 0) << r.out;
  }

  // A gpg key pair made in a home of its own under dir_: the armored public
  // key's file, the armored secret key's file, and the `gpg` command of that
  // home (which holds the secret key).
  struct gpg_pair {
    fs::path public_key;
    fs::path secret_key;
    std::string gpg;
  };
  gpg_pair gpg_key(const std::string& name) {
    const auto home = dir_ / ("gnupg-" + name);
    fs::create_directories(home);
    fs::permissions(home, fs::perms::owner_all);
    on_teardown([home] { run_command("gpgconf --homedir " + home.string() + " --kill all"); });
    gpg_pair pair{dir_ / (name + ".asc"), dir_ / (name + ".sec"),
                  "gpg --homedir " + home.string() + " --batch --yes --pinentry-mode loopback "};
    const std::string uid = name + "@example.test";
    EXPECT_EQ(run_command(pair.gpg + "--passphrase '' --quick-gen-key " + uid +
                          " future-default default never 2>&1")
                  .status,
              0);
    EXPECT_EQ(
        run_command(pair.gpg + "--armor --export " + uid + " > " + pair.public_key.string()).status,
        0);
    EXPECT_EQ(run_command(pair.gpg + "--passphrase '' --armor --export-secret-keys " + uid + " > " +
                          pair.secret_key.string())
                  .status,
              0);
    return pair;
  }

  // The manifest() of a folder here (an archive extracted by GNU tar).
  std::string local_manifest(const fs::path& folder) {
    auto r = run_command("cd " + folder.string() +
                         " && find . | sort | while read -r p; do "
                         "stat -c \"%n %F %a %u:%g\" \"$p\"; done && "
                         "find . -type f | sort | xargs -r sha256sum");
    EXPECT_EQ(r.status, 0);
    return r.out;
  }

  fs::path dir_;
};

TEST_F(encryption_e2e, backup_to_keys_read_by_age_and_tar_and_restored_by_lifeboat) {
  const auto original = create_volume(unique("orig"));
  fill(original);
  const auto expected = manifest(original);
  const auto [key, recipient] = key_pair("key");
  const auto [second_key, second_recipient] = key_pair("second");
  const auto [wrong_key, wrong_recipient] = key_pair("wrong");
  const auto recipients_file = dir_ / "recipients";
  std::ofstream(recipients_file) << "# the team's key\n" << second_recipient << "\n";

  const auto schedule = schedule_file(
      original, "      age:\n        recipients: [\"" + recipient +
                    "\"]\n        recipientsFile: " + recipients_file.string() + "\n");
  auto backup = backup_with(schedule);
  ASSERT_EQ(backup.status, 0) << backup.out;
  const auto archive = only_archive(dir_ / "archives", ".tar.zst.age");
  ASSERT_FALSE(archive.empty()) << backup.out;
  ASSERT_TRUE(fs::exists(archive.string() + ".sha256"));
  // The checksum is of the file as stored.
  EXPECT_EQ(run_command("cd " + archive.parent_path().string() + " && sha256sum -c " +
                        archive.filename().string() + ".sha256")
                .status,
            0);
  // Nothing readable without the key: not a zstd stream, no tar names inside.
  EXPECT_NE(run_command("zstd -t < " + archive.string() + " 2>/dev/null").status, 0);
  EXPECT_NE(run_command("grep -c a/b/f " + archive.string()).status, 0);

  // Debian's age and GNU tar read it, with either recipient's identity.
  for (const auto& identity : {key, second_key}) {
    const auto out = dir_ / ("tar-" + identity.stem().string());
    fs::create_directories(out);
    auto r = run_command("age -d -i " + identity.string() + " " + archive.string() +
                         " | tar --zstd -x -C " + out.string() + " 2>&1");
    ASSERT_EQ(r.status, 0) << r.out;
    std::ifstream f(out / original / "a/b/f");
    std::string line;
    std::getline(f, line);
    EXPECT_EQ(line, "hello");
    EXPECT_EQ(fs::file_size(out / original / "big"), 3000U * 1024U);
  }

  // A wrong key fails in Verifying: the target volume is not created.
  const auto never = unique("never");
  auto refused =
      run_command(restore("--archive " + archive.string() + " --volume " + original + "=" + never +
                          " --create-volume --identity " + wrong_key.string()));
  EXPECT_NE(refused.status, 0) << refused.out;
  EXPECT_NE(refused.out.find("decrypting"), std::string::npos) << refused.out;
  EXPECT_FALSE(engine().inspect_volume(never)) << "a refused restore created its target";
  // No key at all: told what is missing.
  auto keyless = run_command(restore("--archive " + archive.string() + " --volume " + original +
                                     "=" + never + " --create-volume"));
  EXPECT_NE(keyless.status, 0);
  EXPECT_NE(keyless.out.find("is encrypted with age"), std::string::npos) << keyless.out;

  // The right key restores the exact tree.
  const auto copy = removed_after(unique("copy"));
  auto restored =
      run_command(restore("--archive " + archive.string() + " --volume " + original + "=" + copy +
                          " --create-volume --identity " + second_key.string()));
  ASSERT_EQ(restored.status, 0) << restored.out;
  EXPECT_NE(restored.out.find("checksum verified"), std::string::npos) << restored.out;
  EXPECT_EQ(manifest(copy), expected);
}

TEST_F(encryption_e2e, archives_of_tar_zstd_and_age_are_restored) {
  const auto original = create_volume(unique("orig"));
  fill(original);
  const auto expected = manifest(original);
  const auto [key, recipient] = key_pair("key");
  // The volume's tree as a user's own pipeline would archive it.
  const auto tree = dir_ / "tree";
  fs::create_directories(tree);
  auto copied = run_command("docker run --rm --network none -v " + original + ":/data " +
                            test_image() + " tar -C /data -c . | tar -x -C " + tree.string());
  ASSERT_EQ(copied.status, 0) << copied.out;
  const auto archive = dir_ / "mine.tar.zst.age";
  auto made = run_command("tar -C " + tree.string() + " -c . | zstd -q | age -r " + recipient +
                          " > " + archive.string());
  ASSERT_EQ(made.status, 0) << made.out;

  const auto copy = removed_after(unique("copy"));
  auto restored = run_command(restore("--archive " + archive.string() + " --volume .=" + copy +
                                      " --create-volume --identity " + key.string()));
  ASSERT_EQ(restored.status, 0) << restored.out;
  EXPECT_EQ(manifest(copy), expected);
}

TEST_F(encryption_e2e, passphrase_round_trip_and_a_missing_secret_holds_nothing) {
  const auto original = create_volume(unique("orig"));
  fill(original);
  const auto expected = manifest(original);
  const auto passphrase = dir_ / "passphrase";
  std::ofstream(passphrase) << "correct horse battery staple\n";

  // A secret file that is not there fails the run before anything is held,
  // naming the field.
  const auto missing = schedule_file(
      original, "      age:\n        passphraseFile: " + (dir_ / "nowhere").string() + "\n");
  auto failed = backup_with(missing);
  EXPECT_NE(failed.status, 0);
  EXPECT_NE(failed.out.find("spec.archive.encryption.age.passphraseFile"), std::string::npos)
      << failed.out;

  const auto schedule =
      schedule_file(original, "      age:\n        passphraseFile: " + passphrase.string() + "\n");
  auto backup = backup_with(schedule);
  ASSERT_EQ(backup.status, 0) << backup.out;
  const auto archive = only_archive(dir_ / "archives", ".tar.zst.age");
  ASSERT_FALSE(archive.empty());

  const auto copy = removed_after(unique("copy"));
  auto restored =
      run_command(restore("--archive " + archive.string() + " --volume " + original + "=" + copy +
                          " --create-volume --passphrase-file " + passphrase.string()));
  ASSERT_EQ(restored.status, 0) << restored.out;
  EXPECT_EQ(manifest(copy), expected);
}

TEST_F(encryption_e2e, gpg_backup_read_by_gpg_and_tar_and_restored_by_lifeboat) {
  const auto original = create_volume(unique("orig"));
  fill(original);
  const auto expected = manifest(original);
  const auto key = gpg_key("right");
  const auto wrong = gpg_key("wrong");

  const auto schedule = schedule_file(
      original, "      gpg:\n        publicKeyFile: " + key.public_key.string() + "\n");
  auto backup = backup_with(schedule);
  ASSERT_EQ(backup.status, 0) << backup.out;
  const auto archive = only_archive(dir_ / "archives", ".tar.zst.gpg");
  ASSERT_FALSE(archive.empty()) << backup.out;
  EXPECT_EQ(run_command("cd " + archive.parent_path().string() + " && sha256sum -c " +
                        archive.filename().string() + ".sha256")
                .status,
            0);
  EXPECT_NE(run_command("zstd -t < " + archive.string() + " 2>/dev/null").status, 0);
  EXPECT_NE(run_command("grep -c a/b/f " + archive.string()).status, 0);

  // gpg and GNU tar read it back to the volume's exact tree.
  const auto out = dir_ / "tar-gpg";
  fs::create_directories(out);
  auto r = run_command(key.gpg + "--decrypt " + archive.string() +
                       " 2>/dev/null | tar --zstd -x -C " + out.string() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(local_manifest(out / original), expected);

  // A wrong key fails in Verifying: the target volume is not created.
  const auto never = unique("never");
  auto refused =
      run_command(restore("--archive " + archive.string() + " --volume " + original + "=" + never +
                          " --create-volume --gpg-secret-key " + wrong.secret_key.string()));
  EXPECT_NE(refused.status, 0) << refused.out;
  EXPECT_NE(refused.out.find("decrypting"), std::string::npos) << refused.out;
  EXPECT_FALSE(engine().inspect_volume(never)) << "a refused restore created its target";
  auto keyless = run_command(restore("--archive " + archive.string() + " --volume " + original +
                                     "=" + never + " --create-volume"));
  EXPECT_NE(keyless.status, 0);
  EXPECT_NE(keyless.out.find("is encrypted with OpenPGP"), std::string::npos) << keyless.out;

  const auto copy = removed_after(unique("copy"));
  auto restored =
      run_command(restore("--archive " + archive.string() + " --volume " + original + "=" + copy +
                          " --create-volume --gpg-secret-key " + key.secret_key.string()));
  ASSERT_EQ(restored.status, 0) << restored.out;
  EXPECT_NE(restored.out.find("OpenPGP-encrypted"), std::string::npos) << restored.out;
  EXPECT_NE(restored.out.find("checksum verified"), std::string::npos) << restored.out;
  EXPECT_EQ(manifest(copy), expected);
}

TEST_F(encryption_e2e, gpg_e_and_gpg_c_archives_and_gpg_passphrase_backups_are_restored) {
  const auto original = create_volume(unique("orig"));
  fill(original);
  const auto expected = manifest(original);
  const auto key = gpg_key("user");
  const auto passphrase = dir_ / "gpg-passphrase";
  std::ofstream(passphrase) << "gpg horse battery\n";

  const auto tree = dir_ / "tree";
  fs::create_directories(tree);
  auto copied = run_command("docker run --rm --network none -v " + original + ":/data " +
                            test_image() + " tar -C /data -c . | tar -x -C " + tree.string());
  ASSERT_EQ(copied.status, 0) << copied.out;
  const auto e = dir_ / "mine-e.tar.zst.gpg";
  const auto c = dir_ / "mine-c.tar.zst.gpg";
  ASSERT_EQ(run_command("tar -C " + tree.string() + " -c . | zstd -q | " + key.gpg +
                        "--trust-model always -r user@example.test -e > " + e.string())
                .status,
            0);
  ASSERT_EQ(run_command("tar -C " + tree.string() + " -c . | zstd -q | " + key.gpg +
                        "--passphrase-file " + passphrase.string() + " -c > " + c.string())
                .status,
            0);
  for (const auto& [archive, keys] : {std::pair{e, "--gpg-secret-key " + key.secret_key.string()},
                                      std::pair{c, "--passphrase-file " + passphrase.string()}}) {
    const auto copy = removed_after(unique("copy"));
    auto restored = run_command(restore("--archive " + archive.string() + " --volume .=" + copy +
                                        " --create-volume " + keys));
    ASSERT_EQ(restored.status, 0) << archive << ": " << restored.out;
    EXPECT_EQ(manifest(copy), expected) << archive;
  }

  // A secret file that is not there fails the backup before anything is held.
  const auto missing = schedule_file(
      original, "      gpg:\n        passphraseFile: " + (dir_ / "nowhere").string() + "\n");
  auto failed = backup_with(missing);
  EXPECT_NE(failed.status, 0);
  EXPECT_NE(failed.out.find("spec.archive.encryption.gpg.passphraseFile"), std::string::npos)
      << failed.out;

  // lifeboat's own symmetric archive: gpg opens it, and so does restore.
  const auto schedule =
      schedule_file(original, "      gpg:\n        passphraseFile: " + passphrase.string() + "\n");
  auto backup = backup_with(schedule);
  ASSERT_EQ(backup.status, 0) << backup.out;
  const auto archive = only_archive(dir_ / "archives", ".tar.zst.gpg");
  ASSERT_FALSE(archive.empty());
  EXPECT_EQ(run_command(key.gpg + "--passphrase-file " + passphrase.string() + " --decrypt " +
                        archive.string() + " 2>/dev/null | zstd -d | tar -t >/dev/null")
                .status,
            0);
  const auto copy = removed_after(unique("copy"));
  auto restored =
      run_command(restore("--archive " + archive.string() + " --volume " + original + "=" + copy +
                          " --create-volume --passphrase-file " + passphrase.string()));
  ASSERT_EQ(restored.status, 0) << restored.out;
  EXPECT_EQ(manifest(copy), expected);
}

}  // namespace
}  // namespace lifeboat::e2e
