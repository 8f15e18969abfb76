#pragma once

#include "controller/restic/error.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// Thin wrappers over OpenSSL 3: the only file of lifeboat::restic that calls
// OpenSSL, so the rest is restic's framing over plain bytes. Internal to the
// library (and its tests); no OpenSSL type shows here.
namespace lifeboat::restic::detail {

using byte_view = std::span<const unsigned char>;

inline byte_view as_bytes(std::string_view s) {
  return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

void cleanse(std::span<unsigned char> bytes) noexcept;
bool equal_constant_time(byte_view a, byte_view b) noexcept;

/// Fills `out` from OpenSSL's CSPRNG.
result<void> random_bytes(std::span<unsigned char> out);

std::array<unsigned char, 32> sha256(byte_view data);

/// Incremental SHA-256, for data that arrives in pieces.
class sha256_stream {
 public:
  sha256_stream();
  ~sha256_stream();
  sha256_stream(const sha256_stream&) = delete;
  sha256_stream& operator=(const sha256_stream&) = delete;
  void update(byte_view data);
  std::array<unsigned char, 32> finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

/// AES-256 in CTR mode with a 16-byte initial counter block (the full block
/// counts as one big-endian 128-bit number, as Go's cipher.NewCTR does).
/// Encryption and decryption are the same operation; `out` has in.size() bytes.
result<void> aes256_ctr(byte_view key32, byte_view iv16, byte_view in,
                        std::span<unsigned char> out);

/// Poly1305-AES: Poly1305 with the one-time key r || AES-128_k(nonce).
result<std::array<unsigned char, 16>> poly1305_aes(byte_view k16, byte_view r16, byte_view nonce16,
                                                   byte_view message);

/// scrypt (RFC 7914) with restic's parameters (any power-of-two N, r, p), `out.size()` bytes.
result<void> scrypt(std::string_view password, byte_view salt, std::uint64_t n, std::uint32_t r,
                    std::uint32_t p, std::span<unsigned char> out);

/// Standard base64 with padding (Go's encoding of []byte in JSON).
std::string base64_encode(byte_view data);
/// Decodes standard padded base64; invalid_format naming `what` when the text is not that.
result<std::vector<unsigned char>> base64_decode(std::string_view text, std::string_view what);

std::string hex(byte_view data);

}  // namespace lifeboat::restic::detail
