// Interop with Debian's age (1.1) both ways: files lifeboat writes open with
// `age -d`, files `age` writes open with lifeboat, for X25519 keys from
// age-keygen, passphrases, and OpenSSH keys from ssh-keygen. Runs the tools
// as child processes on files in a private temporary folder.
#include "controller/crypto/age.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace lifeboat::crypto {
namespace {

namespace fs = std::filesystem;

bool have(const char* tool) {
  const std::string cmd = std::string("command -v ") + tool + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;  // NOLINT(cert-env33-c): test-only, fixed commands
}

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

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

int run(const std::string& cmd) {
  const int status = std::system(cmd.c_str());  // NOLINT(cert-env33-c)
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

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

std::string encrypt(const std::vector<recipient>& to, const std::string& plaintext) {
  std::string out;
  auto enc = encryptor::make(to, append_to(out));
  EXPECT_TRUE(enc) << enc.error().describe();
  EXPECT_TRUE((*enc)->write(plaintext));
  EXPECT_TRUE((*enc)->finish());
  return out;
}

result<std::string> decrypt(std::vector<identity> ids, const std::string& file) {
  std::string out;
  auto dec = decryptor::make(std::move(ids), append_to(out));
  // Odd pieces, so chunk boundaries fall inside writes.
  for (std::size_t at = 0; at < file.size(); at += 10007) {
    auto piece = std::string_view(file).substr(at, 10007);
    if (auto r = dec->write(piece); !r) {
      return r.error();
    }
  }
  if (auto r = dec->finish(); !r) {
    return r.error();
  }
  return out;
}

class AgeInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("age") || !have("age-keygen")) {
      GTEST_SKIP() << "Debian's age and age-keygen are not installed (hack/setup.sh installs "
                      "them)";
    }
    std::string pattern = (fs::temp_directory_path() / "lifeboat-age-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    // Spans three chunks and ends mid-chunk.
    plaintext_ = random_text((2 * 65536) + 1234, 42);
    write_file(dir_ / "plain", plaintext_);
  }
  void TearDown() override {
    if (!dir_.empty()) {
      fs::remove_all(dir_);
    }
  }

  /// Runs `age` with a passphrase typed on a terminal: age 1.1 reads passphrases
  /// from /dev/tty only (no environment variable), so script(1) gives it a pty.
  int age_with_passphrase(const std::string& args, const std::string& passphrase, int lines) {
    std::string typed;
    for (int i = 0; i < lines; ++i) {
      typed += passphrase + "\\n";
    }
    // Typed ahead: the terminal keeps the input queue when age turns echo off.
    return run("cd " + quote(dir_) + " && printf '" + typed + "' | timeout 60 script -qefc \"age " +
               args + "\" /dev/null >/dev/null 2>&1");
  }

  fs::path dir_;
  std::string plaintext_;
};

TEST_F(AgeInterop, LifeboatEncryptsToAgeKeygenKeyAgeDecrypts) {
  ASSERT_EQ(run("age-keygen -o " + quote(dir_ / "key.txt") + " 2>/dev/null"), 0);
  const std::string key_file = read_file(dir_ / "key.txt");
  auto ids = parse_identities(key_file);
  ASSERT_TRUE(ids) << ids.error().describe();
  const recipient to = ids->at(0).to_recipient().value();
  // age-keygen's "# public key:" comment is the recipient we derive.
  EXPECT_THAT(key_file, ::testing::HasSubstr("# public key: " + to.to_string() + "\n"));

  write_file(dir_ / "ct", encrypt({to}, plaintext_));
  ASSERT_EQ(run("age -d -i " + quote(dir_ / "key.txt") + " -o " + quote(dir_ / "out") + " " +
                quote(dir_ / "ct")),
            0);
  EXPECT_EQ(read_file(dir_ / "out"), plaintext_);

  // An empty file too: one empty final chunk.
  write_file(dir_ / "ct0", encrypt({to}, ""));
  ASSERT_EQ(run("age -d -i " + quote(dir_ / "key.txt") + " -o " + quote(dir_ / "out0") + " " +
                quote(dir_ / "ct0")),
            0);
  EXPECT_EQ(read_file(dir_ / "out0"), "");
}

TEST_F(AgeInterop, LifeboatIdentityWorksWithAge) {
  const identity id = generate_x25519_identity();
  write_file(dir_ / "key.txt", "# lifeboat\n" + id.to_string() + "\n");
  const std::string recipient_text = id.to_recipient().value().to_string();
  ASSERT_EQ(
      run("age -r " + recipient_text + " -o " + quote(dir_ / "ct") + " " + quote(dir_ / "plain")),
      0);
  ASSERT_EQ(run("age -d -i " + quote(dir_ / "key.txt") + " -o " + quote(dir_ / "out") + " " +
                quote(dir_ / "ct")),
            0);
  EXPECT_EQ(read_file(dir_ / "out"), plaintext_);
}

TEST_F(AgeInterop, AgeEncryptsToRecipientsLifeboatDecrypts) {
  ASSERT_EQ(run("age-keygen -o " + quote(dir_ / "key.txt") + " 2>/dev/null"), 0);
  ASSERT_EQ(run("age-keygen -y -o " + quote(dir_ / "key.pub") + " " + quote(dir_ / "key.txt")), 0);
  const identity other = generate_x25519_identity();
  write_file(dir_ / "recipients", read_file(dir_ / "key.pub") + "# another\n" +
                                      other.to_recipient().value().to_string() + "\n");
  // -R: a recipients file, so the header carries two X25519 stanzas.
  ASSERT_EQ(run("age -R " + quote(dir_ / "recipients") + " -o " + quote(dir_ / "ct") + " " +
                quote(dir_ / "plain")),
            0);
  auto ids = parse_identities(read_file(dir_ / "key.txt"));
  ASSERT_TRUE(ids);
  auto out = decrypt(*ids, read_file(dir_ / "ct"));
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, plaintext_);
  out = decrypt({other}, read_file(dir_ / "ct"));
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, plaintext_);

  auto wrong = decrypt({generate_x25519_identity()}, read_file(dir_ / "ct"));
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(wrong.error().is(errc::no_matching_identity));

  // age's own recipients file parses as ours does.
  auto recipients = parse_recipients_file(read_file(dir_ / "recipients"));
  ASSERT_TRUE(recipients) << recipients.error().describe();
  EXPECT_EQ(recipients->size(), 2U);
}

TEST_F(AgeInterop, Passphrase) {
  if (!have("script") || !have("timeout")) {
    GTEST_SKIP() << "script(1) or timeout(1) missing: age 1.1 reads passphrases from a terminal";
  }
  // age -p asks twice (passphrase, confirmation); its work factor is 2^18.
  ASSERT_EQ(age_with_passphrase("-p -o ct plain", "lifeboat interop", 2), 0);
  auto out = decrypt({passphrase_identity("lifeboat interop")}, read_file(dir_ / "ct"));
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, plaintext_);

  write_file(dir_ / "ct2", encrypt({passphrase_recipient("lifeboat interop", 12)}, plaintext_));
  ASSERT_EQ(age_with_passphrase("-d -o out2 ct2", "lifeboat interop", 1), 0);
  EXPECT_EQ(read_file(dir_ / "out2"), plaintext_);
}

class AgeSshInterop : public AgeInterop, public ::testing::WithParamInterface<std::string> {};

TEST_P(AgeSshInterop, BothWays) {
  if (!have("ssh-keygen")) {
    GTEST_SKIP() << "ssh-keygen (openssh-client) is not installed";
  }
  const std::string type = GetParam();
  const fs::path key = dir_ / "id";
  ASSERT_EQ(run("ssh-keygen -q -t " + type + (type == "rsa" ? " -b 2048" : "") +
                " -N '' -C lifeboat-test -f " + quote(key)),
            0);
  const std::string pub_line = read_file(key.string() + ".pub");
  auto to = parse_recipient(pub_line);
  ASSERT_TRUE(to) << to.error().describe();
  auto ids = parse_identities(read_file(key));
  ASSERT_TRUE(ids) << ids.error().describe();
  EXPECT_EQ(ids->at(0).to_recipient().value().to_string() + " lifeboat-test\n", pub_line);

  // lifeboat -> age
  write_file(dir_ / "ct", encrypt({*to}, plaintext_));
  ASSERT_EQ(
      run("age -d -i " + quote(key) + " -o " + quote(dir_ / "out") + " " + quote(dir_ / "ct")), 0);
  EXPECT_EQ(read_file(dir_ / "out"), plaintext_);

  // age -> lifeboat
  ASSERT_EQ(run("age -R " + quote(key.string() + ".pub") + " -o " + quote(dir_ / "ct2") + " " +
                quote(dir_ / "plain")),
            0);
  auto out = decrypt(*ids, read_file(dir_ / "ct2"));
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out, plaintext_);
}

INSTANTIATE_TEST_SUITE_P(Keys, AgeSshInterop, ::testing::Values("rsa", "ed25519"));

}  // namespace
}  // namespace lifeboat::crypto
