#include "controller/crypto/openpgp.hpp"
#include "controller/restore/unpack.hpp"

#include "controller/archive/local_destination.hpp"
#include "tests/controller/archive/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// Issue 14, OpenPGP: restores recognise an OpenPGP archive by its first
// packet (after age), decrypt it through gpg while it is verified, and refuse
// a wrong key or a damaged message in verify(), before anything is written.
// The keys are made once by gpg in a private temporary home.
namespace lifeboat::restore {
namespace {

namespace fs = std::filesystem;
using archive::test::compare;
using archive::test::scratch_dir;
using archive::test::take_manifest;

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int run(const std::string& cmd) {
  const int status = std::system(cmd.c_str());  // NOLINT(cert-env33-c): test-only commands
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

// Two key pairs (the right one and a wrong one), armored, made once.
struct gpg_keys {
  fs::path dir;
  std::string public_key, secret_key, other_secret_key;

  gpg_keys() {
    std::string pattern = (fs::temp_directory_path() / "lifeboat-gpg-restore-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return;
    }
    dir = pattern;
    const auto home = dir / "home";
    fs::create_directory(home);
    fs::permissions(home, fs::perms::owner_all);
    const std::string gpg =
        "gpg --homedir " + quote(home) + " --batch --yes --pinentry-mode loopback --passphrase '' ";
    for (const char* who : {"right", "wrong"}) {
      const std::string uid = std::string(who) + "@example.test";
      if (run(gpg + "--quick-gen-key '" + uid + "' future-default default never 2>/dev/null") !=
              0 ||
          run(gpg + "--armor --export-secret-keys " + uid + " > " + quote(dir / uid)) != 0) {
        return;
      }
    }
    if (run(gpg + "--armor --export right@example.test > " + quote(dir / "right.asc")) != 0) {
      return;
    }
    public_key = read_all(dir / "right.asc");
    secret_key = read_all(dir / "right@example.test");
    other_secret_key = read_all(dir / "wrong@example.test");
    run("gpgconf --homedir " + quote(home) + " --kill all");
  }
  gpg_keys(const gpg_keys&) = delete;
  gpg_keys& operator=(const gpg_keys&) = delete;
  gpg_keys(gpg_keys&&) = delete;
  gpg_keys& operator=(gpg_keys&&) = delete;
  ~gpg_keys() {
    if (!dir.empty()) {
      fs::remove_all(dir);
    }
  }
};

const gpg_keys& keys() {
  static const gpg_keys made;
  return made;
}

// An uncompressed archive of a small tree, encrypted by lifeboat's OpenPGP
// encryptor to `to`.
struct encrypted_archive {
  scratch_dir src, out;
  fs::path file;

  explicit encrypted_archive(const crypto::openpgp_recipients& to) {
    archive::test::make_tree(src.path(), /*sparse_mib=*/1, /*small_files=*/50);
    archive::write_options options;
    options.compression.kind = api::compression_kind::none;
    archive::local_target target{out.path(), "a.tar", std::nullopt};
    const std::vector<archive::volume_source> sources{
        archive::directory_source{"app_db", src.path()}};
    auto written = archive::write_local_archive(sources, options, target);
    EXPECT_TRUE(written) << written.error().describe();
    fs::remove(out.path() / "a.tar.sha256");
    std::string ct;
    auto e = crypto::make_openpgp_encryptor(to, [&](std::span<const char> bytes) {
      ct.append(bytes.data(), bytes.size());
      return crypto::result<void>{};
    });
    EXPECT_TRUE(e) << e.error().message;
    if (e) {
      EXPECT_TRUE((*e)->write(read_all(out.path() / "a.tar")));
      EXPECT_TRUE((*e)->finish());
    }
    file = out.path() / "a.tar.gpg";
    std::ofstream(file, std::ios::binary) << ct;
    fs::remove(out.path() / "a.tar");
  }
};

read_options with_keys(std::string secret_keys, std::string passphrase = "") {
  read_options options;
  options.openpgp = crypto::openpgp_identities{std::move(secret_keys), std::move(passphrase)};
  options.allow_absolute_symlinks = true;
  return options;
}

class decrypt_openpgp : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(keys().secret_key.empty())
        << "gpg could not make the test keys (hack/setup.sh installs gnupg)";
  }
};

TEST_F(decrypt_openpgp, verifies_and_extracts_an_archive_encrypted_to_a_key) {
  encrypted_archive a({keys().public_key, ""});
  auto file = archive_file::open(a.file);
  ASSERT_TRUE(file);
  auto v = verify(*file, {{"app_db", "new"}}, with_keys(keys().secret_key));
  ASSERT_TRUE(v) << v.error().describe();
  EXPECT_TRUE(v->encrypted);
  EXPECT_EQ(v->encryption, "OpenPGP");
  EXPECT_EQ(v->compression, "none");
  EXPECT_GT(v->entries.at(0), 50u);
  scratch_dir dst;
  auto x = extract_to_directories(*file, {{"app_db", "new"}}, {dst.path()},
                                  with_keys(keys().secret_key));
  ASSERT_TRUE(x) << x.error().describe();
  EXPECT_EQ(compare(take_manifest(a.src.path()), take_manifest(dst.path())),
            std::vector<std::string>{});
}

TEST_F(decrypt_openpgp, passphrase_round_trip_and_a_wrong_passphrase) {
  encrypted_archive a({"", "correct horse"});
  auto file = archive_file::open(a.file);
  ASSERT_TRUE(file);
  auto v = verify(*file, {{"app_db", "x"}}, with_keys("", "correct horse"));
  ASSERT_TRUE(v) << v.error().describe();
  v = verify(*file, {{"app_db", "x"}}, with_keys("", "wrong horse"));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::invalid_argument) << v.error().describe();
}

TEST_F(decrypt_openpgp, without_a_key_or_with_the_wrong_one_nothing_is_written) {
  encrypted_archive a({keys().public_key, ""});
  auto file = archive_file::open(a.file);
  ASSERT_TRUE(file);
  // age keys only: the archive is told to be OpenPGP.
  read_options age_only;
  age_only.identities = {crypto::passphrase_identity("x")};
  auto v = verify(*file, {{"app_db", "x"}}, age_only);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::invalid_argument);
  EXPECT_NE(v.error().message.find("is encrypted with OpenPGP"), std::string::npos)
      << v.error().message;

  v = verify(*file, {{"app_db", "x"}}, with_keys(keys().other_secret_key));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::invalid_argument) << v.error().describe();
  EXPECT_NE(v.error().message.find("decrypting"), std::string::npos) << v.error().message;

  scratch_dir dst;
  auto x = extract_to_directories(*file, {{"app_db", "x"}}, {dst.path()},
                                  with_keys(keys().other_secret_key));
  ASSERT_FALSE(x);
  EXPECT_TRUE(fs::is_empty(dst.path()));
}

TEST_F(decrypt_openpgp, truncated_or_tampered_messages_fail_verification) {
  encrypted_archive a({keys().public_key, ""});
  const auto whole = read_all(a.file);
  ASSERT_GT(whole.size(), 4096u);
  const auto damaged = a.out.path() / "damaged.tar.gpg";
  // Cut before the end (the integrity packet is lost), and one byte flipped
  // in the middle of the encrypted data.
  for (const auto& bytes : {whole.substr(0, whole.size() - 30), [&] {
                              auto t = whole;
                              t[t.size() / 2] = static_cast<char>(t[t.size() / 2] ^ 0x40);
                              return t;
                            }()}) {
    std::ofstream(damaged, std::ios::binary | std::ios::trunc) << bytes;
    auto file = archive_file::open(damaged);
    ASSERT_TRUE(file);
    auto v = verify(*file, {{"app_db", "x"}}, with_keys(keys().secret_key));
    ASSERT_FALSE(v) << "a damaged message passed verification";
    EXPECT_EQ(v.error().code, errc::corrupt) << v.error().describe();
  }
}

}  // namespace
}  // namespace lifeboat::restore
