#pragma once

#include "controller/restic/error.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// restic repositories as restic's design document (doc/design.rst) describes
// them: every file but key files is `IV || AES-256-CTR ciphertext ||
// Poly1305-AES MAC` under the repository's master key; key files hold that
// master key encrypted under a key derived from the password by scrypt.
namespace lifeboat::restic {

/// The keys that encrypt and authenticate: AES-256 for CTR, and Poly1305-AES's
/// k (AES-128) and r. Wiped when destroyed.
struct master_key {
  std::array<unsigned char, 32> encrypt{};
  std::array<unsigned char, 16> mac_k{};
  std::array<unsigned char, 16> mac_r{};

  master_key() = default;
  master_key(const master_key&) = default;
  master_key& operator=(const master_key&) = default;
  ~master_key();

  /// A fresh key from OpenSSL's CSPRNG.
  static result<master_key> random();
};

/// Bytes added by encryption: the 16-byte IV and the 16-byte MAC.
inline constexpr std::size_t seal_overhead = 32;

/// Encrypts `plaintext` under a fresh random IV: IV || ciphertext || MAC.
result<std::vector<unsigned char>> seal(const master_key& key,
                                        std::span<const unsigned char> plaintext);
/// The same with a given IV (fixed test vectors; never reuse an IV for real data).
result<std::vector<unsigned char>> seal_with_iv(const master_key& key,
                                                std::span<const unsigned char, 16> iv,
                                                std::span<const unsigned char> plaintext);
/// Seals in place: `buffer` is 16 bytes for the IV, the plaintext, then 16 bytes for
/// the MAC; fills in a fresh random IV, encrypts the plaintext where it lies and
/// writes the MAC (the same bytes seal() returns, without a second buffer).
result<void> seal_in_place(const master_key& key, std::span<unsigned char> buffer);
/// Checks the MAC, then decrypts. corrupt when the blob is shorter than IV and MAC
/// or the MAC does not verify (nothing is decrypted then). `what` names the data in
/// the error (a file name).
result<std::vector<unsigned char>> open(const master_key& key, std::span<const unsigned char> blob,
                                        std::string_view what);

/// scrypt's work parameters as a key file stores them.
struct scrypt_params {
  std::uint64_t n = 16384;  // restic's documented default (simple-scrypt's N = 2^14, r 8, p 1)
  std::uint32_t r = 8;
  std::uint32_t p = 1;
};

/// keys/<id>: plain JSON; `data` is the master key's JSON sealed under the
/// scrypt-derived key.
struct key_file {
  std::string created;  // RFC 3339, informational
  std::string username;
  std::string hostname;
  scrypt_params params;
  std::vector<unsigned char> salt;  // 64 bytes
  std::vector<unsigned char> data;
};

/// Parses a key file's JSON. invalid_format naming the field (`kdf`, `N`, `salt`, ...)
/// and `where` (the file) when one is missing, of the wrong type or out of range.
result<key_file> parse_key_file(std::string_view json, std::string_view where);
std::string serialize_key_file(const key_file& file);

/// Derives the user key from `password` and decrypts the master key.
/// wrong_password when the MAC does not verify; invalid_format when the decrypted
/// JSON is not a master key (field named).
result<master_key> unlock_key_file(const key_file& file, std::string_view password,
                                   std::string_view where);
/// A new key file holding `key` under `password` with a fresh random salt.
result<key_file> make_key_file(const master_key& key, std::string_view password,
                               const scrypt_params& params, std::string_view hostname,
                               std::string_view username, std::string_view created);

/// Parses the master key's JSON {"mac":{"k":..,"r":..},"encrypt":..}.
result<master_key> parse_master_key(std::string_view json, std::string_view where);
std::string serialize_master_key(const master_key& key);

/// The decrypted `config` file.
struct repository_config {
  unsigned version = 2;
  std::string id;                        // 64 hex digits
  std::uint64_t chunker_polynomial = 0;  // irreducible, degree 53
};

/// invalid_format naming the field when `version` is not 1 or 2, `id` is not a string,
/// or `chunker_polynomial` is not a hex string of an irreducible polynomial.
result<repository_config> parse_config(std::string_view json, std::string_view where);
std::string serialize_config(const repository_config& config);

/// An opened repository on a local folder: its config and master key.
class repository {
 public:
  /// Tries every key file under keys/ with `password`. wrong_password naming the
  /// repository when none opens; io when keys/ or config cannot be read; corrupt
  /// when config's MAC does not verify under the master key.
  static result<repository> open(const std::filesystem::path& path, std::string_view password);

  /// Creates a format-version-2 repository in `path` (absent or an empty folder): config,
  /// keys/ with one key file, data/00..ff, index/, snapshots/, locks/, a random master
  /// key, id and chunker polynomial. io naming the path when it is not empty or cannot
  /// be written.
  static result<repository> init(const std::filesystem::path& path, std::string_view password,
                                 const scrypt_params& params = {});

  const std::filesystem::path& path() const { return path_; }
  const repository_config& config() const { return config_; }
  const master_key& key() const { return key_; }

 private:
  repository(std::filesystem::path path, master_key key, repository_config config)
      : path_(std::move(path)), key_(key), config_(std::move(config)) {}

  std::filesystem::path path_;
  master_key key_;
  repository_config config_;
};

}  // namespace lifeboat::restic
