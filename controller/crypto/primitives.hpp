#pragma once

#include "controller/crypto/age.hpp"

#include <array>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

// Thin wrappers over OpenSSL 3's EVP interfaces: the only place that calls
// OpenSSL, so the rest of controller/crypto is framing over plain bytes.
// Internal to lifeboat::crypto (and its tests); no OpenSSL type shows here.
namespace lifeboat::crypto::detail {

using byte_view = std::span<const unsigned char>;

inline byte_view as_bytes(std::string_view s) {
  return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

/// 32 bytes of key material, wiped when destroyed.
struct key32 {
  std::array<unsigned char, 32> bytes{};
  key32() = default;
  key32(const key32&) = default;
  key32& operator=(const key32&) = default;
  ~key32();
  std::span<const unsigned char> view() const { return bytes; }
};

constexpr std::size_t aead_tag_size = 16;

void cleanse(std::span<unsigned char> bytes) noexcept;
bool equal_constant_time(byte_view a, byte_view b) noexcept;

/// Fills `out` from OpenSSL's CSPRNG.
result<void> random_bytes(std::span<unsigned char> out);

/// X25519(scalar, point) of RFC 7748 (the scalar is clamped); corrupt when the result is
/// all zeros (a low-order point), as age requires.
result<key32> x25519(byte_view scalar, byte_view point);
/// X25519(scalar, basepoint).
result<key32> x25519_public(byte_view scalar);

/// HKDF-SHA-256 (RFC 5869) with 32 bytes of output.
result<key32> hkdf_sha256(byte_view ikm, byte_view salt, std::string_view info);
result<key32> hmac_sha256(byte_view key, byte_view data);
std::array<unsigned char, 32> sha256(byte_view data);
std::array<unsigned char, 64> sha512(byte_view data);

/// The Montgomery u-coordinate (X25519 public key) of an Ed25519 public key:
/// u = (1 + y) / (1 - y) mod 2^255 - 19 (RFC 7748 section 4.1). invalid_key when the
/// encoding is not a valid y (y >= p, or y = 1).
result<key32> ed25519_public_to_x25519(byte_view ed25519_public);

/// ChaCha20-Poly1305 (RFC 7539), no associated data. `out` holds plaintext + 16 bytes.
result<void> aead_seal(byte_view key, byte_view nonce12, byte_view plaintext,
                       std::span<unsigned char> out);
/// Decrypts into `out` (ciphertext - 16 bytes); false when the tag does not verify, and
/// then `out` is wiped.
result<bool> aead_open(byte_view key, byte_view nonce12, byte_view ciphertext,
                       std::span<unsigned char> out);

/// scrypt (RFC 7914) with N = 2^log2_n, r = 8, p = 1, 32 bytes of output.
result<key32> scrypt(byte_view passphrase, byte_view salt, int log2_n);

/// RSA-OAEP with SHA-256 (and MGF1-SHA-256) and `label`, to the public key (n, e)
/// given as big-endian magnitudes.
result<std::vector<unsigned char>> rsa_oaep_encrypt(byte_view n, byte_view e,
                                                    std::string_view label, byte_view plaintext);
/// An RSA private key as big-endian magnitudes (OpenSSH keeps no CRT exponents).
struct rsa_private_parts {
  byte_view n, e, d, p, q;
};
/// An empty vector when the ciphertext does not decrypt under this key (a stanza for
/// someone else, or a damaged one: RSA-OAEP cannot tell them apart).
result<std::vector<unsigned char>> rsa_oaep_decrypt(const rsa_private_parts& key,
                                                    std::string_view label, byte_view ciphertext);

}  // namespace lifeboat::crypto::detail
