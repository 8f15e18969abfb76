// Interop with Debian's gpg both ways: what lifeboat encrypts opens with
// `gpg --decrypt` (to a tar GNU tar extracts to the exact tree), and what
// `gpg -e` and `gpg -c` write opens with lifeboat. Keys are made by gpg in a
// private temporary home; the tools run as child processes.
#include "controller/crypto/openpgp.hpp"
#include "controller/restore/unpack.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace lifeboat::crypto {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
}

int run(const std::string& cmd) {
  const int status = std::system(cmd.c_str());  // NOLINT(cert-env33-c): test-only commands
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

std::string random_text(std::size_t size, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::string out(size, '\0');
  for (char& c : out) {
    c = static_cast<char>(gen() & 0xff);
  }
  return out;
}

byte_sink append_to(std::string& out) {
  return [&out](std::span<const char> b) -> result<void> {
    out.append(b.data(), b.size());
    return {};
  };
}

template <class Stream>
result<void> pour(Stream& s, std::string_view input) {
  for (std::size_t at = 0; at < input.size(); at += 65536) {
    if (auto r = s.write(input.substr(at, 65536)); !r) {
      return r;
    }
  }
  return s.finish();
}

class OpenPgpInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run("command -v gpg >/dev/null && command -v tar >/dev/null") != 0) {
      GTEST_SKIP() << "gpg or tar is not installed (hack/setup.sh installs gnupg)";
    }
    std::string pattern = (fs::temp_directory_path() / "lifeboat-gpg-interop-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    home_ = dir_ / "home";
    fs::create_directory(home_);
    fs::permissions(home_, fs::perms::owner_all);
    gpg_ = "gpg --homedir " + quote(home_) + " --batch --yes --pinentry-mode loopback ";
    ASSERT_EQ(run(gpg_ + "--passphrase '' --quick-gen-key 'carol <carol@example.test>' " +
                  "future-default default never 2>/dev/null"),
              0);
    ASSERT_EQ(run(gpg_ + "--armor --export carol@example.test > " + quote(dir_ / "carol.asc")), 0);
    ASSERT_EQ(run(gpg_ + "--passphrase '' --armor --export-secret-keys carol@example.test > " +
                  quote(dir_ / "carol.sec")),
              0);
  }

  void TearDown() override {
    if (!dir_.empty()) {
      run("gpgconf --homedir " + quote(home_) + " --kill all");
      fs::remove_all(dir_);
    }
  }

  fs::path dir_;
  fs::path home_;
  std::string gpg_;
};

TEST_F(OpenPgpInterop, LifeboatEncryptsTarGpgDecryptsTarExtracts) {
  // A small tree, tarred by GNU tar, encrypted by lifeboat.
  const fs::path tree = dir_ / "tree";
  fs::create_directories(tree / "sub");
  write_file(tree / "a.bin", random_text(300000, 1));
  write_file(tree / "sub" / "b.txt", "hello\n");
  ASSERT_EQ(run("tar -C " + quote(tree) + " -cf " + quote(dir_ / "in.tar") + " ."), 0);
  std::string ct;
  auto enc = make_openpgp_encryptor(
      {.public_keys = read_file(dir_ / "carol.asc"), .passphrase = ""}, append_to(ct));
  ASSERT_TRUE(enc) << enc.error().describe();
  ASSERT_TRUE(pour(**enc, read_file(dir_ / "in.tar")));
  write_file(dir_ / "in.tar.gpg", ct);

  ASSERT_EQ(run(gpg_ + "--decrypt -o " + quote(dir_ / "out.tar") + " " +
                quote(dir_ / "in.tar.gpg") + " 2>/dev/null"),
            0);
  fs::create_directory(dir_ / "extracted");
  ASSERT_EQ(run("tar -C " + quote(dir_ / "extracted") + " -xf " + quote(dir_ / "out.tar")), 0);
  EXPECT_EQ(run("diff -r " + quote(tree) + " " + quote(dir_ / "extracted")), 0);

  // Symmetric too: gpg opens it with the passphrase.
  std::string sym;
  auto senc =
      make_openpgp_encryptor({.public_keys = "", .passphrase = "interop pass"}, append_to(sym));
  ASSERT_TRUE(senc) << senc.error().describe();
  ASSERT_TRUE(pour(**senc, read_file(dir_ / "in.tar")));
  write_file(dir_ / "sym.gpg", sym);
  ASSERT_EQ(run(gpg_ + "--passphrase 'interop pass' --decrypt -o " + quote(dir_ / "sym.tar") + " " +
                quote(dir_ / "sym.gpg") + " 2>/dev/null"),
            0);
  EXPECT_EQ(read_file(dir_ / "sym.tar"), read_file(dir_ / "in.tar"));
}

TEST_F(OpenPgpInterop, GpgEncryptsLifeboatDecrypts) {
  const std::string plaintext = random_text(2 * 1024 * 1024 + 5, 2);
  write_file(dir_ / "plain", plaintext);
  ASSERT_EQ(run(gpg_ + "--trust-model always -r carol@example.test -e -o " + quote(dir_ / "e.gpg") +
                " " + quote(dir_ / "plain") + " 2>/dev/null"),
            0);
  ASSERT_EQ(run(gpg_ + "--passphrase 'gpg pass' -c -o " + quote(dir_ / "c.gpg") + " " +
                quote(dir_ / "plain") + " 2>/dev/null"),
            0);
  const std::string e = read_file(dir_ / "e.gpg");
  const std::string c = read_file(dir_ / "c.gpg");
  EXPECT_TRUE(looks_like_openpgp(e));
  EXPECT_TRUE(looks_like_openpgp(c));

  std::string out;
  auto dec = make_openpgp_decryptor(
      {.secret_keys = read_file(dir_ / "carol.sec"), .passphrase = ""}, append_to(out));
  ASSERT_TRUE(dec) << dec.error().describe();
  auto r = pour(**dec, e);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(out, plaintext);

  // gpg -c compresses by default: lifeboat reads compressed messages too.
  out.clear();
  auto sdec = make_openpgp_decryptor({.secret_keys = "", .passphrase = "gpg pass"}, append_to(out));
  ASSERT_TRUE(sdec) << sdec.error().describe();
  r = pour(**sdec, c);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(out, plaintext);
}

// Through the restore code path (verify, then extract), as `lifeboat restore`
// reads an archive: `tar | zstd | gpg -e` and `gpg -c` archives come back as
// the exact tree; a key that is not the recipient's is refused in verify().
TEST_F(OpenPgpInterop, GpgArchivesAreRestoredByTheRestorePath) {
  const fs::path tree = dir_ / "tree";
  fs::create_directories(tree / "app_db" / "sub");
  write_file(tree / "app_db" / "a.bin", random_text(3 * 1024 * 1024 + 7, 3));
  write_file(tree / "app_db" / "sub" / "b.txt", "hello\n");
  ASSERT_EQ(run("tar -C " + quote(tree) + " -c app_db | zstd -q > " + quote(dir_ / "a.tar.zst")),
            0);
  ASSERT_EQ(run(gpg_ + "--trust-model always -r carol@example.test -e -o " +
                quote(dir_ / "e.tar.zst.gpg") + " " + quote(dir_ / "a.tar.zst") + " 2>/dev/null"),
            0);
  ASSERT_EQ(run(gpg_ + "--passphrase 'gpg pass' -c -o " + quote(dir_ / "c.tar.zst.gpg") + " " +
                quote(dir_ / "a.tar.zst") + " 2>/dev/null"),
            0);
  struct archive_case {
    std::string name;
    openpgp_identities keys;
  };
  const std::vector<archive_case> cases{
      {"e.tar.zst.gpg", {.secret_keys = read_file(dir_ / "carol.sec"), .passphrase = ""}},
      {"c.tar.zst.gpg", {.secret_keys = "", .passphrase = "gpg pass"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto file = restore::archive_file::open(dir_ / c.name);
    ASSERT_TRUE(file) << file.error().describe();
    restore::read_options options;
    options.openpgp = c.keys;
    auto v = restore::verify(*file, {{"app_db", "app_db"}}, options);
    ASSERT_TRUE(v) << v.error().describe();
    EXPECT_TRUE(v->encrypted);
    EXPECT_EQ(v->compression, "zstd");
    const fs::path into = dir_ / ("restored-" + c.name);
    fs::create_directories(into);
    auto x = restore::extract_to_directories(*file, {{"app_db", "app_db"}}, {into}, options);
    ASSERT_TRUE(x) << x.error().describe();
    EXPECT_EQ(run("diff -r " + quote(tree / "app_db") + " " + quote(into)), 0);
  }

  // A passphrase that is not the one: refused while verifying.
  auto file = restore::archive_file::open(dir_ / "c.tar.zst.gpg");
  ASSERT_TRUE(file);
  restore::read_options wrong;
  wrong.openpgp = openpgp_identities{.secret_keys = "", .passphrase = "not it"};
  auto v = restore::verify(*file, {{"app_db", "app_db"}}, wrong);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, restore::errc::invalid_argument) << v.error().describe();
}

}  // namespace
}  // namespace lifeboat::crypto
