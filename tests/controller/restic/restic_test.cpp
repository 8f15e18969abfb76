// Unit tests of lifeboat::restic on fixed vectors: published Poly1305-AES and
// AES-256-CTR vectors, key file and config parsing, the polynomial arithmetic
// and the chunker's contract. Interop with restic itself is in
// restic_interop_test.cpp.
#include "controller/restic/backup.hpp"
#include "controller/restic/chunker.hpp"
#include "controller/restic/forget.hpp"
#include "controller/restic/primitives.hpp"
#include "controller/restic/prune.hpp"
#include "controller/restic/repository.hpp"
#include "controller/restic/store.hpp"
#include "controller/restic/tree.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace lifeboat::restic {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::vector<unsigned char> unhex(std::string_view text) {
  std::vector<unsigned char> out;
  for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
    out.push_back(
        static_cast<unsigned char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

template <std::size_t N>
std::array<unsigned char, N> unhex_array(std::string_view text) {
  const auto bytes = unhex(text);
  std::array<unsigned char, N> out{};
  EXPECT_EQ(bytes.size(), N);
  std::copy_n(bytes.begin(), std::min(N, bytes.size()), out.begin());
  return out;
}

struct poly1305_vector {
  const char* msg;
  const char* r;
  const char* k;
  const char* nonce;
  const char* mac;
};

// From D. J. Bernstein, "The Poly1305-AES message-authentication code" (2005), appendix B.
TEST(Poly1305Aes, MatchesThePublishedVectors) {
  const std::vector<poly1305_vector> vectors = {
      {"f3f6", "851fc40c3467ac0be05cc20404f3f700", "ec074c835580741701425b623235add6",
       "fb447350c4e868c52ac3275cf9d4327e", "f4c633c3044fc145f84f335cb81953de"},
      {"", "a0f3080000f46400d0c7e9076c834403", "75deaa25c09f208e1dc4ce6b5cad3fbf",
       "61ee09218d29b0aaed7e154a2c5509cc", "dd3fab2251f11ac759f0887129cc2ee7"},
  };
  for (const auto& v : vectors) {
    const auto tag = detail::poly1305_aes(unhex(v.k), unhex(v.r), unhex(v.nonce), unhex(v.msg));
    ASSERT_TRUE(tag) << tag.error().describe();
    EXPECT_EQ(detail::hex(*tag), v.mac);
  }
}

// NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt, first block.
TEST(Aes256Ctr, MatchesNistVector) {
  const auto key = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  const auto iv = unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const auto plain = unhex("6bc1bee22e409f96e93d7e117393172a");
  std::vector<unsigned char> out(plain.size());
  ASSERT_TRUE(detail::aes256_ctr(key, iv, plain, out));
  EXPECT_EQ(detail::hex(out), "601ec313775789a5b7a7f504bbf3d228");
}

master_key fixed_key() {
  master_key key;
  key.encrypt = unhex_array<32>("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  key.mac_k = unhex_array<16>("ec074c835580741701425b623235add6");
  key.mac_r = unhex_array<16>("851fc40c3467ac0be05cc20404f3f700");
  return key;
}

TEST(Seal, IsIvThenCtrCiphertextThenPoly1305AesOfTheCiphertext) {
  const auto key = fixed_key();
  const auto iv = unhex_array<16>("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const auto plain = unhex("6bc1bee22e409f96e93d7e117393172a");
  const auto blob = seal_with_iv(key, iv, plain);
  ASSERT_TRUE(blob);
  ASSERT_EQ(blob->size(), 16 + plain.size() + 16);
  const std::string text = detail::hex(*blob);
  EXPECT_EQ(text.substr(0, 32), "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  EXPECT_EQ(text.substr(32, 32), "601ec313775789a5b7a7f504bbf3d228");
  const auto ct = unhex("601ec313775789a5b7a7f504bbf3d228");
  const auto tag = detail::poly1305_aes(key.mac_k, key.mac_r, iv, ct);
  ASSERT_TRUE(tag);
  EXPECT_EQ(text.substr(64), detail::hex(*tag));
}

TEST(Seal, RoundTripsAndUsesAFreshIvEachTime) {
  const auto key = fixed_key();
  const std::string message = "lifeboat writes restic repositories";
  const auto a = seal(key, detail::as_bytes(message));
  const auto b = seal(key, detail::as_bytes(message));
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  const auto plain = open(key, *a, "blob");
  ASSERT_TRUE(plain) << plain.error().describe();
  EXPECT_EQ(std::string(plain->begin(), plain->end()), message);
}

TEST(Seal, InPlaceOpensLikeSeal) {
  auto key = master_key::random();
  ASSERT_TRUE(key);
  const std::string text = "sealed where it lies";
  std::vector<unsigned char> buffer(16 + text.size() + 16);
  std::copy(text.begin(), text.end(), buffer.begin() + 16);
  ASSERT_TRUE(seal_in_place(*key, buffer));
  EXPECT_NE(std::string(buffer.begin() + 16, buffer.end() - 16), text);
  auto plain = open(*key, buffer, "in place");
  ASSERT_TRUE(plain) << plain.error().describe();
  EXPECT_EQ(std::string(plain->begin(), plain->end()), text);
}

TEST(Open, RefusesATamperedMacCiphertextOrIv) {
  const auto key = fixed_key();
  const std::string message = "do not decrypt me when tampered";
  const auto sealed = seal(key, detail::as_bytes(message));
  ASSERT_TRUE(sealed);
  for (std::size_t at : {std::size_t{0}, std::size_t{20}, sealed->size() - 1}) {
    auto tampered = *sealed;
    tampered[at] ^= 0x01;
    const auto r = open(key, tampered, "snapshots/abc");
    ASSERT_FALSE(r) << "byte " << at;
    EXPECT_EQ(r.error().code, errc::corrupt);
    EXPECT_THAT(r.error().message, HasSubstr("snapshots/abc: MAC does not verify"));
  }
  const std::vector<unsigned char> short_blob(31);
  const auto r = open(key, short_blob, "index/1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_THAT(r.error().message, HasSubstr("too short"));
}

TEST(Open, RefusesAnotherKey) {
  const auto sealed = seal(fixed_key(), detail::as_bytes(std::string_view("x")));
  ASSERT_TRUE(sealed);
  auto other = fixed_key();
  other.encrypt[0] ^= 1;
  other.mac_r[0] ^= 1;
  EXPECT_FALSE(open(other, *sealed, "config"));
}

TEST(Base64, RoundTripsEveryPadding) {
  for (const std::string s : {"", "a", "ab", "abc", "abcd"}) {
    const auto text = detail::base64_encode(detail::as_bytes(s));
    const auto back = detail::base64_decode(text, "f");
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(std::string(back->begin(), back->end()), s);
  }
  EXPECT_EQ(detail::base64_encode(detail::as_bytes(std::string_view("ab"))), "YWI=");
  EXPECT_FALSE(detail::base64_decode("YWI", "f"));
  EXPECT_FALSE(detail::base64_decode("Y!I=", "f"));
}

TEST(MasterKey, JsonRoundTrips) {
  const auto key = fixed_key();
  const auto json = serialize_master_key(key);
  EXPECT_THAT(json, HasSubstr("\"mac\":{\"k\":"));
  EXPECT_THAT(json, HasSubstr("\"encrypt\":"));
  const auto back = parse_master_key(json, "keys/x");
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->encrypt, key.encrypt);
  EXPECT_EQ(back->mac_k, key.mac_k);
  EXPECT_EQ(back->mac_r, key.mac_r);
}

TEST(MasterKey, ParseErrorsNameTheField) {
  struct row {
    const char* json;
    const char* expected;
  };
  const std::vector<row> rows = {
      {R"({"encrypt":"AA=="})", R"(keys/x: field "mac" is missing)"},
      {R"({"mac":1,"encrypt":"AA=="})", R"(keys/x: field "mac" is not an object)"},
      {R"({"mac":{"r":"AAAAAAAAAAAAAAAAAAAAAA=="}})", R"(keys/x: mac: field "k" is missing)"},
      {R"({"mac":{"k":"AAAA","r":"AAAAAAAAAAAAAAAAAAAAAA=="}})",
       R"(keys/x: mac: field "k" holds 3 bytes, not 16)"},
      {R"({"mac":{"k":"AAAAAAAAAAAAAAAAAAAAAA==","r":"AAAAAAAAAAAAAAAAAAAAAA=="},"encrypt":7})",
       R"(keys/x: field "encrypt" is not a string)"},
      {"[]", "keys/x: not a JSON object"},
      {"{", "keys/x: not JSON"},
  };
  for (const auto& r : rows) {
    const auto key = parse_master_key(r.json, "keys/x");
    ASSERT_FALSE(key) << r.json;
    EXPECT_EQ(key.error().code, errc::invalid_format);
    EXPECT_THAT(key.error().message, HasSubstr(r.expected)) << r.json;
  }
}

std::string valid_salt() { return detail::base64_encode(std::vector<unsigned char>(64, 7)); }

TEST(KeyFile, ParseErrorsNameTheField) {
  const std::string salt = valid_salt();
  struct row {
    std::string json;
    const char* expected;
  };
  const std::vector<row> rows = {
      {R"({"N":16384,"r":8,"p":1})", R"(keys/k1: field "kdf" is missing)"},
      {R"({"kdf":"argon2"})", R"(keys/k1: field "kdf" is "argon2"; only "scrypt")"},
      {R"({"kdf":"scrypt","r":8,"p":1})", R"(keys/k1: field "N" is missing)"},
      {R"({"kdf":"scrypt","N":"16384","r":8,"p":1})", R"(field "N" is not a non-negative integer)"},
      {R"({"kdf":"scrypt","N":1000,"r":8,"p":1})", R"(field "N" is 1000, not a power of two)"},
      {R"({"kdf":"scrypt","N":16384,"r":0,"p":1})", R"(field "r" is 0, not in 1..1024)"},
      {R"({"kdf":"scrypt","N":16384,"r":8,"p":-1})", R"(field "p" is not a non-negative integer)"},
      {R"({"kdf":"scrypt","N":16384,"r":8,"p":1,"salt":"AAAA","data":""})",
       R"(keys/k1: field "salt" holds 3 bytes, not 64)"},
      {R"({"kdf":"scrypt","N":16384,"r":8,"p":1,"salt":")" + salt + R"("})",
       R"(keys/k1: field "data" is missing)"},
      {R"({"kdf":"scrypt","N":16384,"r":8,"p":1,"salt":")" + salt + R"(","data":"%%%%"})",
       R"(keys/k1: field "data" is not valid base64)"},
  };
  for (const auto& r : rows) {
    const auto file = parse_key_file(r.json, "keys/k1");
    ASSERT_FALSE(file) << r.json;
    EXPECT_EQ(file.error().code, errc::invalid_format);
    EXPECT_THAT(file.error().message, HasSubstr(r.expected)) << r.json;
  }
}

TEST(KeyFile, UnlocksWithItsPasswordOnly) {
  const auto key = fixed_key();
  const scrypt_params small{1024, 8, 1};
  const auto file =
      make_key_file(key, "correct horse", small, "node1", "root", "2026-01-01T00:00:00Z");
  ASSERT_TRUE(file) << file.error().describe();
  const auto parsed = parse_key_file(serialize_key_file(*file), "keys/k");
  ASSERT_TRUE(parsed) << parsed.error().describe();
  EXPECT_EQ(parsed->params.n, 1024U);
  EXPECT_EQ(parsed->hostname, "node1");
  EXPECT_EQ(parsed->salt.size(), 64U);

  const auto unlocked = unlock_key_file(*parsed, "correct horse", "keys/k");
  ASSERT_TRUE(unlocked) << unlocked.error().describe();
  EXPECT_EQ(unlocked->encrypt, key.encrypt);
  EXPECT_EQ(unlocked->mac_r, key.mac_r);

  const auto wrong = unlock_key_file(*parsed, "battery staple", "keys/k");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, errc::wrong_password);
  EXPECT_THAT(wrong.error().message, HasSubstr("keys/k"));
}

TEST(Config, ParsesAndRefusesBadFields) {
  const auto ok =
      parse_config(R"({"version":2,"id":"ab","chunker_polynomial":"3da3358b4dc173"})", "config");
  ASSERT_TRUE(ok) << ok.error().describe();
  EXPECT_EQ(ok->version, 2U);
  EXPECT_EQ(ok->chunker_polynomial, 0x3da3358b4dc173U);
  EXPECT_EQ(serialize_config(*ok),
            R"({"version":2,"id":"ab","chunker_polynomial":"3da3358b4dc173"})");

  struct row {
    const char* json;
    const char* expected;
  };
  const std::vector<row> rows = {
      {R"({"id":"ab","chunker_polynomial":"3da3358b4dc173"})", R"(field "version" is missing)"},
      {R"({"version":3,"id":"ab","chunker_polynomial":"3da3358b4dc173"})",
       R"(field "version" is 3; supported versions are 1 and 2)"},
      {R"({"version":2,"chunker_polynomial":"3da3358b4dc173"})", R"(field "id" is missing)"},
      {R"({"version":2,"id":"ab","chunker_polynomial":"0x3da3"})",
       R"(field "chunker_polynomial" "0x3da3" is not a hex number)"},
      // (x^53 + 1) = (x + 1)(...): reducible.
      {R"({"version":2,"id":"ab","chunker_polynomial":"20000000000001"})",
       R"(field "chunker_polynomial" "20000000000001" is not an irreducible polynomial)"},
  };
  for (const auto& r : rows) {
    const auto c = parse_config(r.json, "repository /r: config");
    ASSERT_FALSE(c) << r.json;
    EXPECT_EQ(c.error().code, errc::invalid_format);
    EXPECT_THAT(c.error().message, HasSubstr("repository /r: config: "));
    EXPECT_THAT(c.error().message, HasSubstr(r.expected)) << r.json;
  }
}

TEST(Polynomial, IrreducibilityOfKnownPolynomials) {
  EXPECT_EQ(degree(0x3da3358b4dc173U), 53);
  EXPECT_TRUE(is_irreducible(0x3da3358b4dc173U));  // restic/chunker's test polynomial
  EXPECT_TRUE(is_irreducible(0b111U));             // x^2 + x + 1
  EXPECT_TRUE(is_irreducible(0b1011U));            // x^3 + x + 1
  EXPECT_FALSE(is_irreducible(0b101U));            // x^2 + 1 = (x + 1)^2
  EXPECT_FALSE(is_irreducible(0b1111U));           // x^3 + x^2 + x + 1 = (x + 1)^3
  // (x^3 + x + 1)(x^2 + x + 1) = x^5 + x^4 + 1: no root, yet reducible.
  EXPECT_FALSE(is_irreducible(0b110001U));
  EXPECT_FALSE(is_irreducible(0x3da3358b4dc173U ^ 1U));  // divisible by x
}

TEST(Polynomial, RandomOnesAreIrreducibleOfDegree53) {
  for (int i = 0; i < 3; ++i) {
    const auto p = random_polynomial();
    ASSERT_TRUE(p);
    EXPECT_EQ(degree(*p), 53);
    EXPECT_TRUE(is_irreducible(*p));
  }
}

/// A source over an in-memory buffer that hands out at most `step` bytes per call.
byte_source memory_source(const std::vector<unsigned char>& data, std::size_t step) {
  auto at = std::make_shared<std::size_t>(0);
  return [&data, step, at](std::span<unsigned char> out) -> result<std::size_t> {
    const std::size_t n = std::min({step, out.size(), data.size() - *at});
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(*at), n, out.begin());
    *at += n;
    return n;
  };
}

std::vector<std::pair<std::uint64_t, std::size_t>> boundaries(
    const std::vector<unsigned char>& data, std::size_t step) {
  chunker c(0x3da3358b4dc173U, memory_source(data, step));
  std::vector<std::pair<std::uint64_t, std::size_t>> out;
  for (;;) {
    auto next = c.next();
    EXPECT_TRUE(next);
    if (!next || !*next) {
      return out;
    }
    out.emplace_back((*next)->offset, (*next)->data.size());
  }
}

std::vector<unsigned char> pseudo_random(std::size_t size, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<unsigned char> data(size);
  for (auto& b : data) {
    b = static_cast<unsigned char>(rng());
  }
  return data;
}

TEST(Chunker, CoversTheStreamWithinSizeBoundsWhateverTheReadSize) {
  auto data = pseudo_random(std::size_t{32} << 20, 23);
  // A run of zeros fingerprints to 0, which splits at once: minimum-size chunks.
  std::fill_n(data.begin() + (std::size_t{4} << 20), std::size_t{4} << 20, 0);
  // A run of one other byte has one constant fingerprint, which (for this polynomial)
  // never splits: maximum-size chunks.
  std::fill_n(data.begin() + (std::size_t{10} << 20), std::size_t{18} << 20, 1);
  const auto whole = boundaries(data, std::size_t{1} << 30);
  const auto pieces = boundaries(data, 1000);
  EXPECT_EQ(whole, pieces);
  ASSERT_GE(whole.size(), 4U);
  std::uint64_t expected_offset = 0;
  bool saw_max = false;
  bool saw_min = false;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(whole[i].first, expected_offset);
    expected_offset += whole[i].second;
    EXPECT_LE(whole[i].second, chunker::max_size);
    if (i + 1 < whole.size()) {
      EXPECT_GE(whole[i].second, chunker::min_size);
    }
    saw_max = saw_max || whole[i].second == chunker::max_size;
    saw_min = saw_min || whole[i].second == chunker::min_size;
  }
  EXPECT_EQ(expected_offset, data.size());
  EXPECT_TRUE(saw_max);
  EXPECT_TRUE(saw_min);
}

TEST(Chunker, BoundariesFollowContentNotOffsets) {
  // Inserting bytes near the start moves later boundaries by exactly that much:
  // what makes an edited file add only its changed chunks.
  const auto data = pseudo_random(std::size_t{16} << 20, 5);
  auto shifted = data;
  shifted.insert(shifted.begin() + 1000, 333, 0x5a);
  const auto a = boundaries(data, std::size_t{1} << 20);
  const auto b = boundaries(shifted, std::size_t{1} << 20);
  ASSERT_GE(a.size(), 3U);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 1; i < a.size(); ++i) {
    EXPECT_EQ(b[i].first, a[i].first + 333);
  }
}

TEST(Chunker, EmptyAndShortStreams) {
  EXPECT_TRUE(boundaries({}, 10).empty());
  const auto small = pseudo_random(100, 1);
  const auto b = boundaries(small, 7);
  ASSERT_EQ(b.size(), 1U);
  EXPECT_EQ(b[0].second, 100U);
}

TEST(Chunker, PassesTheSourcesErrorOn) {
  int calls = 0;
  chunker c(0x3da3358b4dc173U, [&calls](std::span<unsigned char>) -> result<std::size_t> {
    ++calls;
    return make_error(errc::io, "volume app_db: read failed");
  });
  const auto r = c.next();
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("volume app_db"));
  EXPECT_FALSE(c.next());
  EXPECT_EQ(calls, 1);
}

class temp_dir {
 public:
  temp_dir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "lifeboat-restic-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ec);
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(Repository, InitThenOpen) {
  const temp_dir dir;
  const auto repo = dir.path() / "repo";
  const auto made = repository::init(repo, "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(made) << made.error().describe();
  for (const char* sub : {"keys", "data/00", "data/ff", "index", "snapshots", "locks"}) {
    EXPECT_TRUE(std::filesystem::is_directory(repo / sub)) << sub;
  }
  EXPECT_TRUE(std::filesystem::is_regular_file(repo / "config"));

  const auto opened = repository::open(repo, "pw");
  ASSERT_TRUE(opened) << opened.error().describe();
  EXPECT_EQ(opened->config().version, 2U);
  EXPECT_EQ(opened->config().id, made->config().id);
  EXPECT_EQ(opened->config().id.size(), 64U);
  EXPECT_EQ(opened->config().chunker_polynomial, made->config().chunker_polynomial);

  const auto wrong = repository::open(repo, "not it");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, errc::wrong_password);
  EXPECT_THAT(wrong.error().message, HasSubstr("repository " + repo.string()));

  const auto again = repository::init(repo, "pw", scrypt_params{1024, 8, 1});
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().message, HasSubstr("not empty"));
}

TEST(Repository, OpenWithoutKeysOrWithATamperedConfig) {
  const temp_dir dir;
  const auto missing = repository::open(dir.path() / "nothing", "pw");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, errc::io);
  EXPECT_THAT(missing.error().message, HasSubstr("nothing"));

  const auto repo = dir.path() / "repo";
  ASSERT_TRUE(repository::init(repo, "pw", scrypt_params{1024, 8, 1}));
  std::filesystem::permissions(repo / "config", std::filesystem::perms::owner_all);
  {
    std::fstream f(repo / "config", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x42');
  }
  const auto r = repository::open(repo, "pw");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::corrupt);
  EXPECT_THAT(r.error().message, HasSubstr("config: MAC does not verify"));
}

std::vector<unsigned char> pattern(std::size_t size, unsigned seed) {
  std::vector<unsigned char> out(size);
  std::mt19937 gen(seed);
  for (auto& b : out) {
    b = static_cast<unsigned char>(gen() % 7);  // compressible
  }
  return out;
}

TEST(Pack, WrittenBlobsReadBackThroughTheIndexCompressedOrNot) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo) << repo.error().describe();
  for (const compression mode : {compression::off, compression::automatic, compression::max}) {
    auto writer = pack_writer::create(*repo, mode);
    ASSERT_TRUE(writer) << writer.error().describe();
    const auto a = pattern(100000, 1);
    const auto b = pattern(10, static_cast<unsigned>(mode) + 2);
    const object_id ida = detail::sha256(a);
    const object_id idb = detail::sha256(b);
    ASSERT_TRUE((*writer)->add(blob_type::data, ida, a));
    ASSERT_TRUE((*writer)->add(blob_type::tree, idb, b));
    EXPECT_TRUE((*writer)->contains(ida));
    auto pack = (*writer)->finish();
    ASSERT_TRUE(pack) << pack.error().describe();
    ASSERT_EQ(pack->blobs.size(), 2U);
    EXPECT_EQ(pack->blobs[0].uncompressed_length, mode == compression::off ? 0U : 100000U);
    EXPECT_EQ(pack->blobs[1].uncompressed_length, 0U);  // too small to gain
    const std::string hex = to_hex(pack->id);
    const auto file = dir.path() / "repo" / "data" / hex.substr(0, 2) / hex;
    ASSERT_TRUE(std::filesystem::is_regular_file(file));
    EXPECT_EQ(std::filesystem::file_size(file), pack->size);
    // The file's last 4 bytes: the sealed header's length, little-endian.
    std::ifstream in(file, std::ios::binary);
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(detail::sha256(bytes), pack->id);
    const std::size_t header = bytes[bytes.size() - 4] | (bytes[bytes.size() - 3] << 8U);
    const bool compressed = mode != compression::off;
    EXPECT_EQ(header, 32U + (compressed ? 41U : 37U) + 37U);

    ASSERT_TRUE(write_unpacked(*repo, "index", serialize_index(std::span(&*pack, 1)), compressed));
  }
  auto index = blob_index::load(*repo);
  ASSERT_TRUE(index) << index.error().describe();
  EXPECT_EQ(index->size(), 4U);  // one shared data blob, three tree blobs
  const auto a = pattern(100000, 1);
  auto back = read_blob(*repo, *index, detail::sha256(a));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, a);
  auto missing = read_blob(*repo, *index, object_id{});
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("is in no index file"));
}

TEST(Pack, ATamperedBlobIsCorrupt) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  auto writer = pack_writer::create(*repo, compression::off);
  ASSERT_TRUE(writer);
  const auto a = pattern(1000, 3);
  ASSERT_TRUE((*writer)->add(blob_type::data, detail::sha256(a), a));
  auto pack = (*writer)->finish();
  ASSERT_TRUE(pack);
  blob_index index;
  index.add(*pack);
  const std::string hex = to_hex(pack->id);
  const auto file = dir.path() / "repo" / "data" / hex.substr(0, 2) / hex;
  std::filesystem::permissions(file, std::filesystem::perms::owner_all);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x42');
  }
  auto back = read_blob(*repo, index, detail::sha256(a));
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, errc::corrupt);
}

TEST(Index, ErrorsNameTheFileAndField) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  const std::string zero(64, '0');
  ASSERT_TRUE(write_unpacked(*repo, "index",
                             R"({"packs":[{"id":")" + zero + R"(","blobs":[{"id":")" + zero +
                                 R"(","type":"data","offset":-1,"length":3}]}]})",
                             false));
  auto index = blob_index::load(*repo);
  ASSERT_FALSE(index);
  EXPECT_EQ(index.error().code, errc::invalid_format);
  EXPECT_THAT(index.error().message, HasSubstr("packs[0].blobs[0]: field \"offset\""));
}

TEST(Tree, FormatsTimesModesAndRoundTrips) {
  EXPECT_EQ(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339_nano(1700000000, 120000000), "2023-11-14T22:13:20.12Z");
  EXPECT_EQ(rfc3339_nano(1700000000, 1), "2023-11-14T22:13:20.000000001Z");
  // The values restic 0.14 writes for these modes.
  EXPECT_EQ(go_file_mode(S_IFDIR | 0755), 2147484141U);
  EXPECT_EQ(go_file_mode(S_IFLNK | 0777), 134218239U);
  EXPECT_EQ(go_file_mode(S_IFREG | 0644), 420U);
  EXPECT_EQ(go_file_mode(S_IFREG | S_ISUID | 0755), (1U << 23) | 0755U);

  node file;
  file.name = "a";
  file.type = "file";
  file.mode = 0644;
  file.size = 5;
  file.links = 2;
  file.inode = 77;
  file.content = {object_id{}, detail::sha256(detail::as_bytes("x"))};
  node dir;
  dir.name = "b";
  dir.type = "dir";
  dir.subtree = detail::sha256(detail::as_bytes("y"));
  node link;
  link.name = "c";
  link.type = "symlink";
  link.linktarget = "a";
  const std::string text = serialize_tree({file, dir, link});
  EXPECT_TRUE(text.ends_with("]}\n"));
  EXPECT_THAT(text, HasSubstr(R"("content":null)"));
  auto back = parse_tree(text, "tree t");
  ASSERT_TRUE(back) << back.error().describe();
  ASSERT_EQ(back->size(), 3U);
  EXPECT_EQ((*back)[0].content, file.content);
  EXPECT_EQ((*back)[0].links, 2U);
  EXPECT_EQ((*back)[0].inode, 77U);
  EXPECT_EQ((*back)[1].subtree, dir.subtree);
  EXPECT_EQ((*back)[2].linktarget, "a");

  auto bad = parse_tree(R"({"nodes":[{"name":"a","type":"file","size":-3}]})", "tree t");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("tree t: nodes[0]: field \"size\""));
}

TEST(Snapshot, RoundTripsAndNamesBadFields) {
  snapshot s;
  s.time = "2026-01-02T03:04:05Z";
  s.tree = detail::sha256(detail::as_bytes("t"));
  s.parent = detail::sha256(detail::as_bytes("p"));
  s.paths = {"/vol"};
  s.hostname = "node-1";
  s.tags = {"lifeboat", "schedule=nightly"};
  auto back = parse_snapshot(serialize_snapshot(s), "snapshots/x");
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->tree, s.tree);
  EXPECT_EQ(back->parent, s.parent);
  EXPECT_EQ(back->paths, s.paths);
  EXPECT_EQ(back->tags, s.tags);
  EXPECT_EQ(back->hostname, "node-1");
  auto bad = parse_snapshot(R"({"tree":"xyz"})", "snapshots/x");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("snapshots/x: field \"tree\""));
}

TEST(Lock, IsExclusiveAndRemovedOnRelease) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  {
    auto lock = repository_lock::acquire(*repo);
    ASSERT_TRUE(lock) << lock.error().describe();
    EXPECT_FALSE(std::filesystem::is_empty(dir.path() / "repo" / "locks"));
    auto second = repository_lock::acquire(*repo);
    ASSERT_FALSE(second);
    EXPECT_THAT(second.error().message, HasSubstr("is locked by locks/"));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "repo" / "locks"));
}

TEST(Backup, RefusesANameThatIsNotOnePathElement) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  backup_options options;
  options.source = dir.path();
  options.name = "a/b";
  auto r = backup_directory(*repo, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_format);
  EXPECT_THAT(r.error().message, HasSubstr("\"a/b\" is not one path element"));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "repo" / "locks"));
}

TEST(Backup, RefreshesItsLockAndRemovesIt) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  std::filesystem::create_directories(dir.path() / "src" / "sub");
  std::ofstream(dir.path() / "src" / "a") << "alpha";
  std::ofstream(dir.path() / "src" / "sub" / "b") << "beta";
  backup_options options;
  options.source = dir.path() / "src";
  options.name = "src";
  options.lock_refresh = std::chrono::steady_clock::duration::zero();  // at every blob
  auto done = backup_directory(*repo, options);
  ASSERT_TRUE(done) << done.error().describe();
  // Two data blobs and three trees (sub, src, the root): five refreshes.
  EXPECT_EQ(done->stats.data_blobs_added, 2U);
  EXPECT_EQ(done->stats.tree_blobs_added, 3U);
  EXPECT_EQ(done->stats.lock_refreshes, 5U);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "repo" / "locks"));
  auto latest = latest_snapshot(*repo, {"/src"}, "");
  ASSERT_TRUE(latest);
  EXPECT_EQ(*latest, done->snapshot_id);
}

TEST(Forget, KeepLastKeepsTheNewestWhateverTheOrder) {
  const std::vector<std::string> times = {"2026-01-02T00:00:00Z", "2026-01-04T00:00:00Z",
                                          "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z"};
  keep_policy policy;
  policy.last = 2;
  auto keep = keep_by_policy(times, policy);
  ASSERT_TRUE(keep) << keep.error().describe();
  EXPECT_EQ(*keep, (std::vector<bool>{false, true, false, true}));
}

TEST(Forget, AnEmptyPolicyForgetsNothingAndTheNewestStays) {
  const std::vector<std::string> times = {"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
                                          "2026-01-02T01:00:00Z"};
  auto keep = keep_by_policy(times, keep_policy{});
  ASSERT_TRUE(keep);
  EXPECT_EQ(*keep, (std::vector<bool>{true, true, true}));
  keep_policy zero;
  zero.last = 0;
  keep = keep_by_policy(times, zero);
  ASSERT_TRUE(keep);
  EXPECT_EQ(*keep, (std::vector<bool>{true, true, true}));
  keep_policy yearly;
  yearly.yearly = 1;
  keep = keep_by_policy(times, yearly);
  ASSERT_TRUE(keep);
  EXPECT_EQ(*keep, (std::vector<bool>{false, false, true}));
}

TEST(Forget, DailyKeepsTheNewestOfEachDayAndOffsetsCount) {
  // Two on 2026-03-10 (the 23:30-05:00 one is 04:30Z on the 11th, but the 10th in its
  // own clock), one on the 9th, one on the 8th.
  const std::vector<std::string> times = {"2026-03-10T08:00:00Z", "2026-03-10T23:30:00-05:00",
                                          "2026-03-09T12:00:00.5Z", "2026-03-08T12:00:00Z"};
  keep_policy policy;
  policy.daily = 2;
  auto keep = keep_by_policy(times, policy);
  ASSERT_TRUE(keep) << keep.error().describe();
  EXPECT_EQ(*keep, (std::vector<bool>{false, true, true, false}));
}

TEST(Forget, WeeklyUsesIsoWeeksAndMonthlyYearlyCombine) {
  // 2026-01-01 is a Thursday: 2025-12-29 (Monday) is in the same ISO week 2026-W01.
  const std::vector<std::string> times = {"2026-01-01T10:00:00Z", "2025-12-29T10:00:00Z",
                                          "2025-12-28T10:00:00Z", "2025-11-15T10:00:00Z",
                                          "2024-06-01T10:00:00Z"};
  keep_policy weekly;
  weekly.weekly = 5;
  auto keep = keep_by_policy(times, weekly);
  ASSERT_TRUE(keep) << keep.error().describe();
  EXPECT_EQ(*keep, (std::vector<bool>{true, false, true, true, true}));
  keep_policy mixed;
  mixed.monthly = 2;  // 2026-01 and 2025-12 (its newest: the 29th)
  mixed.yearly = 3;   // 2026, 2025 (the 29th again), 2024
  keep = keep_by_policy(times, mixed);
  ASSERT_TRUE(keep) << keep.error().describe();
  EXPECT_EQ(*keep, (std::vector<bool>{true, true, false, false, true}));
}

TEST(Forget, NamesAnUnparsableTime) {
  auto keep = keep_by_policy({"2026-01-01T00:00:00Z", "yesterday"}, keep_policy{});
  ASSERT_FALSE(keep);
  EXPECT_EQ(keep.error().code, errc::invalid_format);
  EXPECT_THAT(keep.error().message, HasSubstr("snapshot time 1 (\"yesterday\")"));
}

TEST(Forget, RemovesOnlyThisSchedulesOlderSnapshots) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  std::filesystem::create_directories(dir.path() / "v");
  std::ofstream(dir.path() / "v" / "a") << "alpha";
  const auto run = [&](const std::string& time, const std::string& schedule) {
    backup_options options;
    options.source = dir.path() / "v";
    options.name = "v";
    options.tags = {"lifeboat", "schedule=" + schedule};
    options.time = time;
    auto r = backup_directory(*repo, options);
    EXPECT_TRUE(r) << r.error().describe();
    return r ? r->snapshot_id : object_id{};
  };
  const object_id first = run("2026-01-01T00:00:00Z", "nightly");
  const object_id second = run("2026-01-02T00:00:00Z", "nightly");
  const object_id third = run("2026-01-03T00:00:00Z", "nightly");
  const object_id other = run("2025-01-01T00:00:00Z", "weekly");
  keep_policy policy;
  policy.last = 2;
  auto done = forget_snapshots(*repo, {"lifeboat", "schedule=nightly"}, {"/v"}, policy);
  ASSERT_TRUE(done) << done.error().describe();
  EXPECT_THAT(done->removed, ElementsAre(first));
  EXPECT_THAT(done->kept, UnorderedElementsAre(second, third));
  auto left = list_snapshots(*repo);
  ASSERT_TRUE(left);
  std::vector<object_id> ids;
  for (const auto& entry : *left) {
    ids.push_back(entry.first);
  }
  EXPECT_THAT(ids, UnorderedElementsAre(second, third, other));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "repo" / "locks"));
  // Held by someone else: refused, nothing removed.
  auto lock = repository_lock::acquire(*repo);
  ASSERT_TRUE(lock);
  policy.last = 1;
  done = forget_snapshots(*repo, {"schedule=nightly"}, {"/v"}, policy);
  ASSERT_FALSE(done);
  EXPECT_THAT(done.error().message, HasSubstr("is locked by"));
  left = list_snapshots(*repo);
  ASSERT_TRUE(left);
  EXPECT_EQ(left->size(), 3U);
}

std::size_t files_under(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    n += e.is_regular_file() ? 1 : 0;
  }
  return n;
}

/// The content of /v/<name> in snapshot `id`, read through a freshly loaded index.
result<std::string> content_in(const repository& repo, const object_id& id,
                               const std::string& name) {
  auto index = blob_index::load(repo);
  if (!index) {
    return index.error();
  }
  auto text = read_unpacked(repo, "snapshots", id);
  if (!text) {
    return text.error();
  }
  auto snap = parse_snapshot(*text, "snapshot");
  if (!snap) {
    return snap.error();
  }
  object_id tree = snap->tree;
  for (const std::string& step : {std::string("v"), name}) {
    auto bytes = read_blob(repo, *index, tree);
    if (!bytes) {
      return bytes.error();
    }
    auto nodes = parse_tree(std::string(bytes->begin(), bytes->end()), step);
    if (!nodes) {
      return nodes.error();
    }
    const auto it = std::ranges::find(*nodes, step, &node::name);
    if (it == nodes->end()) {
      return make_error(errc::invalid_format, step + " is not in the tree");
    }
    if (it->subtree) {
      tree = *it->subtree;
      continue;
    }
    std::string out;
    for (const object_id& blob : it->content) {
      auto data = read_blob(repo, *index, blob);
      if (!data) {
        return data.error();
      }
      out.append(data->begin(), data->end());
    }
    return out;
  }
  return make_error(errc::invalid_format, name + " is a folder");
}

/// Two snapshots of dir/v (a, then b changed), the first one forgotten.
struct forgotten_first {
  object_id first{};
  object_id second{};
};

forgotten_first two_backups_first_forgotten(const repository& repo,
                                            const std::filesystem::path& dir,
                                            std::size_t pack_size) {
  std::filesystem::create_directories(dir / "v");
  std::ofstream(dir / "v" / "a") << "alpha, the same in both snapshots";
  std::ofstream(dir / "v" / "b") << "bravo before";
  forgotten_first out;
  for (const auto& [time, slot] : {std::pair{"2026-01-01T00:00:00Z", &out.first},
                                   std::pair{"2026-01-02T00:00:00Z", &out.second}}) {
    backup_options options;
    options.source = dir / "v";
    options.name = "v";
    options.tags = {"schedule=nightly"};
    options.time = time;
    options.pack_size = pack_size;
    options.parent = out.first == object_id{} ? std::nullopt : std::optional(out.first);
    auto done = backup_directory(repo, options);
    EXPECT_TRUE(done) << done.error().describe();
    *slot = done ? done->snapshot_id : object_id{};
    std::ofstream(dir / "v" / "b") << "bravo after, longer";
  }
  keep_policy policy;
  policy.last = 1;
  auto forgot = forget_snapshots(repo, {"schedule=nightly"}, {"/v"}, policy);
  EXPECT_TRUE(forgot) << forgot.error().describe();
  return out;
}

TEST(Prune, RemovesThePacksOnlyForgottenSnapshotsUsedAndRewritesTheIndex) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  // pack_size 1: every blob in a pack of its own.
  const forgotten_first made = two_backups_first_forgotten(*repo, dir.path(), 1);
  const auto data = dir.path() / "repo" / "data";
  const std::size_t packs_before = files_under(data);
  ASSERT_EQ(files_under(dir.path() / "repo" / "index"), 2U);

  auto pruned = prune_unreferenced(*repo);
  ASSERT_TRUE(pruned) << pruned.error().describe();
  // The first snapshot's root tree, its tree of /v and "bravo before".
  EXPECT_EQ(pruned->packs_removed, 3U);
  EXPECT_EQ(files_under(data), packs_before - 3);
  EXPECT_GT(pruned->pack_bytes_removed, 0U);
  EXPECT_EQ(pruned->packs_partly_referenced, 0U);
  EXPECT_EQ(pruned->packs_kept, packs_before - 3);
  EXPECT_EQ(pruned->snapshots, 1U);
  EXPECT_EQ(pruned->index_files_removed, 2U);
  EXPECT_EQ(pruned->index_files_written, 1U);
  EXPECT_EQ(files_under(dir.path() / "repo" / "index"), 1U);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "repo" / "locks"));
  auto files = list_unpacked(*repo, "index");
  ASSERT_TRUE(files);
  std::size_t listed = 0;
  for (const object_id& file : *files) {
    auto packs = read_index_file(*repo, file);
    ASSERT_TRUE(packs) << packs.error().describe();
    for (const written_pack& p : *packs) {
      EXPECT_TRUE(std::filesystem::exists(pack_file(*repo, p.id))) << to_hex(p.id);
      ++listed;
    }
  }
  EXPECT_EQ(listed, packs_before - 3);
  auto a = content_in(*repo, made.second, "a");
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(*a, "alpha, the same in both snapshots");
  auto b = content_in(*repo, made.second, "b");
  ASSERT_TRUE(b) << b.error().describe();
  EXPECT_EQ(*b, "bravo after, longer");

  // Nothing left to remove: the index stays as it is.
  auto again = prune_unreferenced(*repo);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(again->packs_removed, 0U);
  EXPECT_EQ(again->index_files_written, 0U);
  auto same = list_unpacked(*repo, "index");
  ASSERT_TRUE(same);
  EXPECT_EQ(*same, *files);
  EXPECT_EQ(files_under(data), packs_before - 3);
}

TEST(Prune, KeepsAPartlyReferencedPackWhole) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  // One data pack and one tree pack per backup: the first data pack holds a (still
  // used) and "bravo before" (not any more).
  const forgotten_first made = two_backups_first_forgotten(*repo, dir.path(), std::size_t{1} << 24);
  const std::size_t packs_before = files_under(dir.path() / "repo" / "data");
  ASSERT_EQ(packs_before, 4U);
  auto pruned = prune_unreferenced(*repo);
  ASSERT_TRUE(pruned) << pruned.error().describe();
  EXPECT_EQ(pruned->packs_removed, 1U);  // the first backup's trees
  EXPECT_EQ(pruned->packs_partly_referenced, 1U);
  EXPECT_EQ(pruned->packs_kept, 3U);
  EXPECT_EQ(files_under(dir.path() / "repo" / "data"), 3U);
  auto a = content_in(*repo, made.second, "a");
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(*a, "alpha, the same in both snapshots");
}

TEST(Prune, ChangesNothingWhenATreeCannotBeRead) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  const forgotten_first made = two_backups_first_forgotten(*repo, dir.path(), std::size_t{1} << 24);
  // Lose the pack holding the kept snapshot's trees.
  auto index = blob_index::load(*repo);
  ASSERT_TRUE(index);
  auto text = read_unpacked(*repo, "snapshots", made.second);
  ASSERT_TRUE(text);
  auto snap = parse_snapshot(*text, "snapshot");
  ASSERT_TRUE(snap);
  const blob_location* root = index->find(snap->tree);
  ASSERT_NE(root, nullptr);
  ASSERT_TRUE(std::filesystem::remove(pack_file(*repo, index->pack_id(root->pack))));
  const std::size_t packs_before = files_under(dir.path() / "repo" / "data");
  auto files_before = list_unpacked(*repo, "index");
  ASSERT_TRUE(files_before);

  auto pruned = prune_unreferenced(*repo);
  ASSERT_FALSE(pruned);
  EXPECT_EQ(pruned.error().code, errc::io);
  EXPECT_THAT(pruned.error().message, HasSubstr("snapshot " + to_hex(made.second).substr(0, 8)));
  EXPECT_EQ(files_under(dir.path() / "repo" / "data"), packs_before);
  auto files_after = list_unpacked(*repo, "index");
  ASSERT_TRUE(files_after);
  EXPECT_EQ(*files_after, *files_before);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "repo" / "locks"));
}

TEST(Prune, WithoutSnapshotsRemovesEveryPackAndIndexFile) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  const forgotten_first made = two_backups_first_forgotten(*repo, dir.path(), 1);
  ASSERT_TRUE(std::filesystem::remove(dir.path() / "repo" / "snapshots" / to_hex(made.second)));
  auto pruned = prune_unreferenced(*repo);
  ASSERT_TRUE(pruned) << pruned.error().describe();
  EXPECT_EQ(pruned->snapshots, 0U);
  EXPECT_EQ(pruned->packs_kept, 0U);
  EXPECT_EQ(pruned->index_files_written, 0U);
  EXPECT_EQ(files_under(dir.path() / "repo" / "data"), 0U);
  EXPECT_EQ(files_under(dir.path() / "repo" / "index"), 0U);
}

TEST(Prune, SplitsTheNewIndexAndRefusesALockedRepository) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  two_backups_first_forgotten(*repo, dir.path(), 1);
  const std::size_t packs_before = files_under(dir.path() / "repo" / "data");
  {
    auto lock = repository_lock::acquire(*repo);
    ASSERT_TRUE(lock);
    auto refused = prune_unreferenced(*repo);
    ASSERT_FALSE(refused);
    EXPECT_THAT(refused.error().message, HasSubstr("is locked by"));
    EXPECT_EQ(files_under(dir.path() / "repo" / "data"), packs_before);
  }
  prune_options options;
  options.index_max_blobs = 2;
  auto pruned = prune_unreferenced(*repo, options);
  ASSERT_TRUE(pruned) << pruned.error().describe();
  // One blob per pack, at most two per index file.
  EXPECT_EQ(pruned->index_files_written, (pruned->packs_kept + 1) / 2);
  EXPECT_EQ(files_under(dir.path() / "repo" / "index"), pruned->index_files_written);
  EXPECT_GT(pruned->index_files_written, 1U);
}

TEST(Prune, KeepsAPackWhoseUsedBlobIsListedInAnotherIndexFile) {
  const temp_dir dir;
  const auto repo = repository::init(dir.path() / "repo", "pw", scrypt_params{1024, 8, 1});
  ASSERT_TRUE(repo);
  const forgotten_first made = two_backups_first_forgotten(*repo, dir.path(), std::size_t{1} << 24);
  // List each pack's blobs one per index file, so that the still used blob "a" and the
  // unused "bravo before" of the first data pack are in different files.
  auto files = list_unpacked(*repo, "index");
  ASSERT_TRUE(files);
  std::vector<written_pack> split;
  for (const object_id& file : *files) {
    auto packs = read_index_file(*repo, file);
    ASSERT_TRUE(packs);
    for (const written_pack& p : *packs) {
      for (const pack_entry& e : p.blobs) {
        written_pack one;
        one.id = p.id;
        one.blobs = {e};
        split.push_back(one);
      }
    }
    ASSERT_TRUE(std::filesystem::remove(dir.path() / "repo" / "index" / to_hex(file)));
  }
  for (const written_pack& one : split) {
    ASSERT_TRUE(write_unpacked(*repo, "index", serialize_index(std::span(&one, 1)), true));
  }
  auto pruned = prune_unreferenced(*repo);
  ASSERT_TRUE(pruned) << pruned.error().describe();
  EXPECT_EQ(pruned->packs_removed, 1U);  // the first backup's trees only
  EXPECT_EQ(pruned->packs_partly_referenced, 1U);
  auto a = content_in(*repo, made.second, "a");
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(*a, "alpha, the same in both snapshots");
}

}  // namespace
}  // namespace lifeboat::restic
