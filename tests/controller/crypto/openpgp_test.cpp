// The OpenPGP streams (controller/crypto/openpgp): round trips to public keys,
// to a passphrase and through a passphrase-protected secret key; wrong keys,
// truncated, tampered and foreign input; streaming (output before finish) and
// the private GNUPGHOMEs removed afterwards. The keys are made per run by
// Debian's gpg in a temporary home, since the library runs gpg anyway.
#include "controller/crypto/openpgp.hpp"
#include "controller/crypto/spec_keys.hpp"

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

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int run(const std::string& cmd) {
  const int status = std::system(cmd.c_str());  // NOLINT(cert-env33-c): test-only commands
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

openpgp_recipients to_keys(std::string keys) {
  return {.public_keys = std::move(keys), .passphrase = ""};
}
openpgp_recipients to_passphrase(std::string p) {
  return {.public_keys = "", .passphrase = std::move(p)};
}
openpgp_identities with_keys(std::string keys, std::string passphrase = "") {
  return {.secret_keys = std::move(keys), .passphrase = std::move(passphrase)};
}
openpgp_identities with_passphrase(std::string p) {
  return {.secret_keys = "", .passphrase = std::move(p)};
}

/// Writes `input` in odd pieces, then finishes.
template <class Stream>
result<void> pour(Stream& s, std::string_view input) {
  for (std::size_t at = 0; at < input.size(); at += 70001) {
    if (auto r = s.write(input.substr(at, 70001)); !r) {
      return r;
    }
  }
  return s.finish();
}

result<std::string> encrypt(const openpgp_recipients& to, std::string_view plaintext) {
  std::string out;
  auto enc = make_openpgp_encryptor(to, append_to(out));
  if (!enc) {
    return enc.error();
  }
  if (auto r = pour(**enc, plaintext); !r) {
    return r.error();
  }
  return out;
}

result<std::string> decrypt(const openpgp_identities& with, std::string_view ciphertext) {
  std::string out;
  auto dec = make_openpgp_decryptor(with, append_to(out));
  if (!dec) {
    return dec.error();
  }
  if (auto r = pour(**dec, ciphertext); !r) {
    return r.error();
  }
  return out;
}

/// Keys made once for the suite: alice (unprotected), bob (protected by a passphrase).
class OpenPgp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "lifeboat-openpgp-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = new fs::path(pattern);
    // The library's homes go under TMPDIR: a private one shows they are removed.
    fs::create_directory(*dir_ / "tmp");
    setenv("TMPDIR", (*dir_ / "tmp").c_str(), 1);  // NOLINT(concurrency-mt-unsafe): one thread
    const fs::path home = *dir_ / "keys";
    fs::create_directory(home);
    fs::permissions(home, fs::perms::owner_all);
    const std::string gpg =
        "gpg --homedir '" + home.string() + "' --batch --pinentry-mode loopback ";
    const std::string quiet = " >/dev/null 2>&1";
    ASSERT_EQ(run(gpg + "--passphrase '' --quick-gen-key 'alice <alice@example.test>' " +
                  "future-default default never" + quiet),
              0);
    ASSERT_EQ(run(gpg + "--passphrase 'bob pass' --quick-gen-key 'bob <bob@example.test>' " +
                  "future-default default never" + quiet),
              0);
    ASSERT_EQ(
        run(gpg + "--armor --export alice@example.test > '" + (*dir_ / "alice.asc").string() + "'"),
        0);
    ASSERT_EQ(run(gpg + "--export bob@example.test > '" + (*dir_ / "bob.gpg").string() + "'"), 0);
    ASSERT_EQ(
        run(gpg + "--armor --export bob@example.test > '" + (*dir_ / "bob.asc").string() + "'"), 0);
    ASSERT_EQ(run(gpg + "--passphrase '' --armor --export-secret-keys alice@example.test > '" +
                  (*dir_ / "alice.sec").string() + "'"),
              0);
    ASSERT_EQ(
        run(gpg + "--passphrase 'bob pass' --armor --export-secret-keys bob@example.test > '" +
            (*dir_ / "bob.sec").string() + "'"),
        0);
    run("gpgconf --homedir '" + home.string() + "' --kill all");
  }

  static void TearDownTestSuite() {
    if (dir_ != nullptr) {
      fs::remove_all(*dir_);
      delete dir_;
      dir_ = nullptr;
    }
  }

  static std::string key(const char* name) { return read_file(*dir_ / name); }

  /// The library's temporary homes still present.
  static std::size_t leftover_homes() {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(*dir_ / "tmp")) {
      n += e.path().filename().string().starts_with("lifeboat-gpg-") ? 1 : 0;
    }
    return n;
  }

  static fs::path* dir_;
};

fs::path* OpenPgp::dir_ = nullptr;

TEST_F(OpenPgp, PublicKeyRoundTrip) {
  const std::string plaintext = random_text((3 * 1024 * 1024) + 17, 1);
  auto ct = encrypt(to_keys(key("alice.asc")), plaintext);
  ASSERT_TRUE(ct) << ct.error().describe();
  EXPECT_TRUE(looks_like_openpgp(*ct));
  // Not compressed (random input) and not plaintext.
  EXPECT_GT(ct->size(), plaintext.size());
  EXPECT_EQ(ct->find(plaintext.substr(1000, 64)), std::string::npos);
  auto pt = decrypt(with_keys(key("alice.sec")), *ct);
  ASSERT_TRUE(pt) << pt.error().describe();
  EXPECT_EQ(*pt, plaintext);
  EXPECT_EQ(leftover_homes(), 0U);
}

TEST_F(OpenPgp, TwoRecipientsInOneFile) {
  const std::string plaintext = random_text(100000, 2);
  auto ct = encrypt(to_keys(key("alice.asc") + key("bob.asc")), plaintext);
  ASSERT_TRUE(ct) << ct.error().describe();
  auto by_alice = decrypt(with_keys(key("alice.sec")), *ct);
  ASSERT_TRUE(by_alice) << by_alice.error().describe();
  EXPECT_EQ(*by_alice, plaintext);
  auto by_bob = decrypt(with_keys(key("bob.sec"), "bob pass"), *ct);
  ASSERT_TRUE(by_bob) << by_bob.error().describe();
  EXPECT_EQ(*by_bob, plaintext);
}

TEST_F(OpenPgp, EmptyPlaintext) {
  auto ct = encrypt(to_keys(key("alice.asc")), "");
  ASSERT_TRUE(ct) << ct.error().describe();
  auto pt = decrypt(with_keys(key("alice.sec")), *ct);
  ASSERT_TRUE(pt) << pt.error().describe();
  EXPECT_EQ(*pt, "");
}

TEST_F(OpenPgp, SymmetricRoundTripAndWrongPassphrase) {
  const std::string plaintext = random_text(500000, 3);
  auto ct = encrypt(to_passphrase("correct horse"), plaintext);
  ASSERT_TRUE(ct) << ct.error().describe();
  EXPECT_TRUE(looks_like_openpgp(*ct));
  auto pt = decrypt(with_passphrase("correct horse"), *ct);
  ASSERT_TRUE(pt) << pt.error().describe();
  EXPECT_EQ(*pt, plaintext);

  auto wrong = decrypt(with_passphrase("wrong horse"), *ct);
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(wrong.error().is(errc::no_matching_identity)) << wrong.error().describe();
  auto none = decrypt(with_passphrase(""), *ct);
  ASSERT_FALSE(none);
  EXPECT_TRUE(none.error().is(errc::no_matching_identity)) << none.error().describe();
  EXPECT_EQ(leftover_homes(), 0U);
}

TEST_F(OpenPgp, ProtectedSecretKeyNeedsItsPassphrase) {
  const std::string plaintext = random_text(200000, 4);
  auto ct = encrypt(to_keys(key("bob.gpg")), plaintext);
  ASSERT_TRUE(ct) << ct.error().describe();
  auto pt = decrypt(with_keys(key("bob.sec"), "bob pass"), *ct);
  ASSERT_TRUE(pt) << pt.error().describe();
  EXPECT_EQ(*pt, plaintext);
  auto wrong = decrypt(with_keys(key("bob.sec"), "not bob"), *ct);
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(wrong.error().is(errc::no_matching_identity)) << wrong.error().describe();
  auto missing = decrypt(with_keys(key("bob.sec")), *ct);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(errc::no_matching_identity)) << missing.error().describe();
}

TEST_F(OpenPgp, WrongSecretKey) {
  auto ct = encrypt(to_keys(key("alice.asc")), random_text(300000, 5));
  ASSERT_TRUE(ct) << ct.error().describe();
  auto out = decrypt(with_keys(key("bob.sec"), "bob pass"), *ct);
  ASSERT_FALSE(out);
  EXPECT_TRUE(out.error().is(errc::no_matching_identity)) << out.error().describe();
  EXPECT_EQ(leftover_homes(), 0U);
}

TEST_F(OpenPgp, TruncatedAndTamperedAreRefused) {
  const std::string plaintext = random_text(1024 * 1024, 6);
  auto ct = encrypt(to_keys(key("alice.asc")), plaintext);
  ASSERT_TRUE(ct) << ct.error().describe();
  for (const std::size_t keep :
       {ct->size() - 1, ct->size() - 30, ct->size() / 2, std::size_t{400}}) {
    auto out = decrypt(with_keys(key("alice.sec")), std::string_view(*ct).substr(0, keep));
    ASSERT_FALSE(out) << "kept " << keep;
    EXPECT_TRUE(out.error().is(errc::truncated) || out.error().is(errc::corrupt))
        << keep << ": " << out.error().describe();
  }
  for (const std::size_t at : {ct->size() / 2, ct->size() - 5}) {
    std::string tampered = *ct;
    tampered[at] = static_cast<char>(tampered[at] ^ 0x20);
    auto out = decrypt(with_keys(key("alice.sec")), tampered);
    ASSERT_FALSE(out) << "flipped byte " << at;
    EXPECT_TRUE(out.error().is(errc::corrupt) || out.error().is(errc::truncated))
        << at << ": " << out.error().describe();
  }
}

TEST_F(OpenPgp, NotOpenPgpIsCorrupt) {
  auto out = decrypt(with_keys(key("alice.sec")), random_text(100000, 7));
  ASSERT_FALSE(out);
  EXPECT_FALSE(out.error().is(errc::internal)) << out.error().describe();
}

TEST_F(OpenPgp, BadKeysAreInvalid) {
  std::string sink;
  auto none = make_openpgp_encryptor(to_keys(""), append_to(sink));
  ASSERT_FALSE(none);
  EXPECT_TRUE(none.error().is(errc::invalid_key));
  auto garbage = make_openpgp_encryptor(to_keys("not a key\n"), append_to(sink));
  ASSERT_FALSE(garbage);
  EXPECT_TRUE(garbage.error().is(errc::invalid_key)) << garbage.error().describe();
  auto bad_secret =
      make_openpgp_decryptor(with_keys("-----BEGIN PGP PRIVATE KEY BLOCK-----\n"), append_to(sink));
  ASSERT_FALSE(bad_secret);
  EXPECT_TRUE(bad_secret.error().is(errc::invalid_key)) << bad_secret.error().describe();
  EXPECT_EQ(leftover_homes(), 0U);
}

TEST_F(OpenPgp, StreamsBeforeFinishAndStopsOnSinkError) {
  std::size_t delivered = 0;
  auto enc = make_openpgp_encryptor(to_keys(key("alice.asc")),
                                    [&](std::span<const char> b) -> result<void> {
                                      delivered += b.size();
                                      return {};
                                    });
  ASSERT_TRUE(enc) << enc.error().describe();
  const std::string block = random_text(1024 * 1024, 8);
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE((*enc)->write(block));
  }
  // The queues hold 256 KiB each: most of 8 MiB has reached the sink already.
  EXPECT_GT(delivered, std::size_t{7} * 1024 * 1024);
  ASSERT_TRUE((*enc)->finish());
  enc->reset();

  auto failing =
      make_openpgp_encryptor(to_keys(key("alice.asc")), [](std::span<const char>) -> result<void> {
        return make_error(errc::internal, "disk full");
      });
  ASSERT_TRUE(failing) << failing.error().describe();
  result<void> r;
  for (int i = 0; i < 8 && r; ++i) {
    r = (*failing)->write(block);
  }
  if (r) {
    r = (*failing)->finish();
  }
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "disk full");
  EXPECT_FALSE((*failing)->write(block));  // stays failed
  failing->reset();
  EXPECT_EQ(leftover_homes(), 0U);
}

TEST(LooksLikeOpenPgp, PacketHeaders) {
  using namespace std::string_literals;
  // Old format PKESK (tag 1, length types 0 and 1), version 3.
  EXPECT_TRUE(looks_like_openpgp("\x84\x5e\x03"s));
  EXPECT_TRUE(looks_like_openpgp("\x85\x01\x0c\x03"s));
  // Old format SKESK (tag 3), version 4; new format SKESK and PKESK.
  EXPECT_TRUE(looks_like_openpgp("\x8c\x0d\x04"s));
  EXPECT_TRUE(looks_like_openpgp("\xc3\x0d\x04"s));
  EXPECT_TRUE(looks_like_openpgp("\xc1\x5e\x03"s));
  // Wrong versions, other packets, too short, other formats.
  EXPECT_FALSE(looks_like_openpgp("\x84\x5e\x04"s));
  EXPECT_FALSE(looks_like_openpgp("\x8c\x0d\x03"s));
  EXPECT_FALSE(looks_like_openpgp("\x99\x01\x0d\x04"s));  // a public key packet
  EXPECT_FALSE(looks_like_openpgp("\x84"s));
  EXPECT_FALSE(looks_like_openpgp("age-encryption.org/v1\n"s));
  EXPECT_FALSE(looks_like_openpgp("\x28\xb5\x2f\xfd\x04\x00"s));  // zstd
  EXPECT_FALSE(looks_like_openpgp("\x1f\x8b\x08\x00"s));          // gzip
  EXPECT_FALSE(looks_like_openpgp("./data/file\0\0\0"s));         // tar
  EXPECT_FALSE(looks_like_openpgp("-----BEGIN PGP MESSAGE-----"s));
}

// The key files of an object: an empty or unreadable file is refused naming
// the field and the file, before any gpg runs.
TEST(OpenPgpSpecKeys, EmptyOrMissingKeyFilesNameTheField) {
  const fs::path dir = fs::path(::testing::TempDir()) / "openpgp-spec-keys";
  fs::create_directories(dir);
  const auto empty = (dir / "empty.asc").string();
  std::ofstream(empty).close();
  const auto missing = (dir / "missing.asc").string();

  api::gpg_encryption encryption;
  encryption.public_key_file = empty;
  auto recipients = load_openpgp_recipients(encryption, "spec.archive.encryption.gpg");
  ASSERT_FALSE(recipients);
  EXPECT_EQ(recipients.error().message,
            "spec.archive.encryption.gpg.publicKeyFile: " + empty + " is empty");
  encryption.public_key_file = missing;
  recipients = load_openpgp_recipients(encryption, "spec.archive.encryption.gpg");
  ASSERT_FALSE(recipients);
  EXPECT_THAT(recipients.error().message,
              ::testing::StartsWith("spec.archive.encryption.gpg.publicKeyFile: cannot read " +
                                    missing + ": "));

  api::gpg_decryption decryption;
  decryption.secret_key_file = empty;
  auto identities = load_openpgp_identities(decryption, "spec.decryption.gpg");
  ASSERT_FALSE(identities);
  EXPECT_EQ(identities.error().message,
            "spec.decryption.gpg.secretKeyFile: " + empty + " is empty");
  // Inline keys (what agents get) need no file at all.
  api::gpg_encryption inline_keys;
  inline_keys.public_keys = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
  recipients = load_openpgp_recipients(inline_keys, "spec.archive.encryption.gpg");
  ASSERT_TRUE(recipients) << recipients.error().message;
  EXPECT_EQ(recipients->public_keys, inline_keys.public_keys);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lifeboat::crypto
