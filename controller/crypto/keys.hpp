#pragma once

#include "controller/crypto/age.hpp"
#include "controller/crypto/format.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

// Recipient and identity internals: wrapping the file key into a stanza and
// unwrapping it, one recipient type at a time. Internal to lifeboat::crypto.
namespace lifeboat::crypto::detail {

inline constexpr std::size_t file_key_size = 16;
inline constexpr int max_log2_work_factor = 22;

struct access {
  /// The stanza that carries `file_key` to `r`.
  static result<stanza> wrap(const recipient& r, std::span<const unsigned char> file_key);

  /// The file key when a stanza addressed to `id` opens; nullopt when none is addressed
  /// to it (or, for X25519 and ssh-rsa, none opens: anonymity means a stanza cannot say
  /// whom it is for). corrupt when a stanza of its type is malformed.
  static result<std::optional<secret_bytes>> unwrap(const identity& id,
                                                    const std::vector<stanza>& stanzas);

  static recipient make_recipient(recipient::kind kind, std::vector<unsigned char> key);
  static recipient make_passphrase_recipient(secret_bytes passphrase, int log2_work_factor);
  static identity make_identity(identity::kind kind, secret_bytes secret,
                                std::vector<unsigned char> public_key);
  static int work_factor(const recipient& r) { return r.log2_work_factor_; }
};

/// encryptor::make with the file key and payload nonce chosen by the caller (16 bytes
/// each), so tests can build files the specification's way and check every byte.
result<std::unique_ptr<encryptor>> make_encryptor(std::span<const recipient> recipients,
                                                  byte_sink sink,
                                                  std::span<const unsigned char> file_key,
                                                  std::span<const unsigned char> nonce);

/// Standard base64 with '=' padding, as OpenSSH writes keys.
std::string base64_encode_padded(std::span<const unsigned char> bytes);
std::optional<std::vector<unsigned char>> base64_decode_padded(std::string_view text);

/// Reads the SSH wire format (RFC 4251 uint32s and strings) front to back; a read past
/// the end gives nullopt.
class ssh_reader {
 public:
  explicit ssh_reader(std::span<const unsigned char> bytes) : bytes_(bytes) {}
  std::optional<std::uint32_t> u32();
  std::optional<std::span<const unsigned char>> string();
  std::span<const unsigned char> rest() const { return bytes_; }

 private:
  std::span<const unsigned char> bytes_;
};

std::string_view as_text(std::span<const unsigned char> bytes);

/// "ssh-rsa AAAA… comment" and "ssh-ed25519 AAAA… comment".
result<recipient> parse_ssh_recipient(std::string_view line);
/// One unencrypted "-----BEGIN OPENSSH PRIVATE KEY-----" block.
result<identity> parse_ssh_identity(std::string_view pem);

}  // namespace lifeboat::crypto::detail
