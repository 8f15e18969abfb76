#include "controller/crypto/age.hpp"
#include "controller/restore/unpack.hpp"

#include "controller/archive/local_destination.hpp"
#include "tests/controller/archive/test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// Issue 14: restores read age-encrypted archives, recognised by their content,
// decrypted while they are verified; a wrong key is refused before anything
// is written, and damage is named.
namespace lifeboat::restore {
namespace {

namespace fs = std::filesystem;
using archive::test::compare;
using archive::test::scratch_dir;
using archive::test::take_manifest;

// A key pair made by age-keygen for these tests only.
constexpr const char* test_identity =
    "# public key: age1gc0tssr86ugpy0lw240a7ar2vhreeud782k3djv9p95f7ts8e57s27cpzf\n"
    "AGE-SECRET-KEY-15ZQJCCW4M8WX5XSA5657Q0NZ00AZRQVC3G7HWFGVULKV3AHJ5VVQ423Y6Y\n";
constexpr const char* test_recipient =
    "age1gc0tssr86ugpy0lw240a7ar2vhreeud782k3djv9p95f7ts8e57s27cpzf";
constexpr const char* other_identity =
    "AGE-SECRET-KEY-1FKWQFFRCG4P4PMU4RHSYMY2L74X4U6DRK5MZ6FT6UYRNXCSPVK3S8C07J7\n";

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `plain` encrypted to `recipients` as a file at `to`.
void encrypt_file(const fs::path& plain, const std::vector<crypto::recipient>& recipients,
                  const fs::path& to) {
  std::string out;
  auto e = crypto::encryptor::make(recipients, [&](std::span<const char> bytes) {
    out.append(bytes.data(), bytes.size());
    return crypto::result<void>{};
  });
  ASSERT_TRUE(e) << e.error().message;
  const auto text = read_all(plain);
  ASSERT_TRUE((*e)->write(text));
  ASSERT_TRUE((*e)->finish());
  std::ofstream(to, std::ios::binary) << out;
}

std::vector<crypto::identity> identities(const char* text) {
  auto parsed = crypto::parse_identities(text);
  EXPECT_TRUE(parsed) << parsed.error().message;
  return parsed ? *parsed : std::vector<crypto::identity>{};
}

// An uncompressed archive of a tree of a few MiB (tens of chunks), encrypted.
struct encrypted_archive {
  scratch_dir src, out;
  fs::path file;

  explicit encrypted_archive(std::vector<crypto::recipient> recipients) {
    archive::test::make_tree(src.path(), /*sparse_mib=*/2, /*small_files=*/100);
    archive::write_options options;
    options.compression.kind = api::compression_kind::none;
    archive::local_target target{out.path(), "a.tar", std::nullopt};
    const std::vector<archive::volume_source> sources{
        archive::directory_source{"app_db", src.path()}};
    auto written = archive::write_local_archive(sources, options, target);
    EXPECT_TRUE(written) << written.error().describe();
    fs::remove(out.path() / "a.tar.sha256");
    file = out.path() / "a.tar.age";
    encrypt_file(out.path() / "a.tar", recipients, file);
    fs::remove(out.path() / "a.tar");
  }
};

read_options with_keys(const char* text) {
  read_options options;
  options.identities = identities(text);
  options.allow_absolute_symlinks = true;
  return options;
}

TEST(decrypt, verifies_and_extracts_an_archive_encrypted_to_a_key) {
  encrypted_archive a({crypto::parse_recipient(test_recipient).value()});
  scratch_dir dst;
  auto file = archive_file::open(a.file);
  ASSERT_TRUE(file);
  auto v = verify(*file, {{"app_db", "new"}}, with_keys(test_identity));
  ASSERT_TRUE(v) << v.error().describe();
  EXPECT_TRUE(v->encrypted);
  EXPECT_EQ(v->compression, "none");
  EXPECT_GT(v->entries.at(0), 100u);
  auto x =
      extract_to_directories(*file, {{"app_db", "new"}}, {dst.path()}, with_keys(test_identity));
  ASSERT_TRUE(x) << x.error().describe();
  EXPECT_EQ(compare(take_manifest(a.src.path()), take_manifest(dst.path())),
            std::vector<std::string>{});
}

TEST(decrypt, passphrase_round_trip) {
  // A low work factor keeps the test fast; the identity accepts any sane one.
  encrypted_archive a({crypto::passphrase_recipient("correct horse", 10)});
  auto file = archive_file::open(a.file);
  ASSERT_TRUE(file);
  read_options options;
  options.allow_absolute_symlinks = true;
  options.identities = {crypto::passphrase_identity("correct horse")};
  auto v = verify(*file, {{"app_db", "x"}}, options);
  ASSERT_TRUE(v) << v.error().describe();
  options.identities = {crypto::passphrase_identity("wrong horse")};
  v = verify(*file, {{"app_db", "x"}}, options);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::invalid_argument) << v.error().describe();
}

TEST(decrypt, without_a_key_or_with_the_wrong_one_nothing_is_read) {
  encrypted_archive a({crypto::parse_recipient(test_recipient).value()});
  auto file = archive_file::open(a.file);
  ASSERT_TRUE(file);
  auto v = verify(*file, {{"app_db", "x"}}, {});
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::invalid_argument);
  EXPECT_NE(v.error().message.find("is encrypted with age"), std::string::npos)
      << v.error().message;

  v = verify(*file, {{"app_db", "x"}}, with_keys(other_identity));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::invalid_argument) << v.error().describe();
  EXPECT_NE(v.error().message.find("decrypting"), std::string::npos) << v.error().message;

  scratch_dir dst;
  auto x =
      extract_to_directories(*file, {{"app_db", "x"}}, {dst.path()}, with_keys(other_identity));
  ASSERT_FALSE(x);
  EXPECT_TRUE(fs::is_empty(dst.path()));
}

TEST(decrypt, truncation_anywhere_is_found_even_after_the_tar_ends) {
  encrypted_archive a({crypto::parse_recipient(test_recipient).value()});
  const auto whole = read_all(a.file);
  constexpr std::size_t chunk = 64 * 1024 + 16;  // plaintext chunk and its tag
  // The header ends at the payload nonce: find it as the line after "--- ".
  const auto mac = whole.find("\n--- ");
  ASSERT_NE(mac, std::string::npos);
  const std::size_t payload = whole.find('\n', mac + 1) + 1 + 16;
  ASSERT_GT(whole.size(), payload + 3 * chunk) << "too few chunks to cut between";
  std::vector<std::size_t> cuts;
  for (std::size_t at = payload; at < whole.size(); at += chunk) {
    cuts.push_back(at);  // at a chunk boundary: the final chunk is missing
    cuts.push_back(at + chunk / 2);
  }
  cuts.push_back(whole.size() - 1);
  cuts.push_back(whole.size() - 16);  // the final chunk's tag cut
  for (const auto cut : cuts) {
    if (cut >= whole.size()) {
      continue;
    }
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(whole.size()));
    const auto cut_file = a.out.path() / "cut.tar.age";
    std::ofstream(cut_file, std::ios::binary | std::ios::trunc) << whole.substr(0, cut);
    auto file = archive_file::open(cut_file);
    ASSERT_TRUE(file);
    auto v = verify(*file, {{"app_db", "x"}}, with_keys(test_identity));
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code, errc::corrupt) << v.error().describe();
  }
}

TEST(decrypt, a_flipped_byte_is_refused_naming_the_chunk) {
  encrypted_archive a({crypto::parse_recipient(test_recipient).value()});
  auto bytes = read_all(a.file);
  const std::size_t at = bytes.size() / 2;
  bytes[at] = static_cast<char>(bytes[at] ^ 0x01);
  std::ofstream(a.file, std::ios::binary | std::ios::trunc) << bytes;
  auto file = archive_file::open(a.file);
  ASSERT_TRUE(file);
  scratch_dir dst;
  auto v = verify(*file, {{"app_db", "x"}}, with_keys(test_identity));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::corrupt) << v.error().describe();
  EXPECT_NE(v.error().message.find("chunk"), std::string::npos) << v.error().message;
}

}  // namespace
}  // namespace lifeboat::restore
