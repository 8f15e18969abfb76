#include "controller/restic/primitives.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <limits>
#include <memory>
#include <stdexcept>

namespace lifeboat::restic::detail {

namespace {

struct cipher_ctx_deleter {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct mac_deleter {
  void operator()(EVP_MAC* p) const { EVP_MAC_free(p); }
};
struct mac_ctx_deleter {
  void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); }
};
struct kdf_deleter {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};
struct kdf_ctx_deleter {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
using cipher_ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_deleter>;
using mac_ptr = std::unique_ptr<EVP_MAC, mac_deleter>;
using mac_ctx_ptr = std::unique_ptr<EVP_MAC_CTX, mac_ctx_deleter>;
using kdf_ptr = std::unique_ptr<EVP_KDF, kdf_deleter>;
using kdf_ctx_ptr = std::unique_ptr<EVP_KDF_CTX, kdf_ctx_deleter>;

/// An internal error naming the OpenSSL call and the first error on its queue.
error openssl_error(std::string_view what) {
  std::string message(what);
  const unsigned long code = ERR_get_error();
  if (code != 0) {
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    message += ": ";
    message += text.data();
  }
  ERR_clear_error();
  return make_error(errc::internal, std::move(message));
}

int to_int(std::size_t n) {
  if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw std::length_error("restic: buffer larger than INT_MAX");
  }
  return static_cast<int>(n);
}

unsigned char* mutable_data(byte_view bytes) {
  // OSSL_PARAM setters take non-const pointers to data they only read.
  return const_cast<unsigned char*>(bytes.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
}

/// One AES-128 block encryption (ECB of a single block, no padding).
result<std::array<unsigned char, 16>> aes128_block(byte_view key16, byte_view block16) {
  const cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_ecb(), nullptr, key16.data(), nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1) {
    return openssl_error("EVP_EncryptInit_ex aes-128-ecb");
  }
  std::array<unsigned char, 16> out{};
  int len = 0;
  if (EVP_EncryptUpdate(ctx.get(), out.data(), &len, block16.data(), 16) != 1 || len != 16) {
    return openssl_error("EVP_EncryptUpdate aes-128-ecb");
  }
  return out;
}

}  // namespace

void cleanse(std::span<unsigned char> bytes) noexcept {
  OPENSSL_cleanse(bytes.data(), bytes.size());
}

bool equal_constant_time(byte_view a, byte_view b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

result<void> random_bytes(std::span<unsigned char> out) {
  if (RAND_bytes(out.data(), to_int(out.size())) != 1) {
    return openssl_error("RAND_bytes");
  }
  return {};
}

std::array<unsigned char, 32> sha256(byte_view data) {
  sha256_stream s;
  s.update(data);
  return s.finish();
}

sha256_stream::sha256_stream() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr ||
      EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("restic: SHA-256 is not available from OpenSSL");
  }
}

sha256_stream::~sha256_stream() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void sha256_stream::update(byte_view data) {
  // With a valid context and SHA-256 EVP_DigestUpdate cannot fail.
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}

std::array<unsigned char, 32> sha256_stream::finish() {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &len);
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
  return out;
}

result<void> aes256_ctr(byte_view key32, byte_view iv16, byte_view in,
                        std::span<unsigned char> out) {
  if (key32.size() != 32 || iv16.size() != 16 || out.size() < in.size()) {
    throw std::invalid_argument("restic: aes256_ctr needs a 32-byte key, a 16-byte IV");
  }
  const cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_ctr(), nullptr, key32.data(), iv16.data()) != 1) {
    return openssl_error("EVP_EncryptInit_ex aes-256-ctr");
  }
  // EVP lengths are int: feed at most 1 GiB at a time.
  constexpr std::size_t step = std::size_t{1} << 30;
  for (std::size_t at = 0; at < in.size(); at += step) {
    const std::size_t n = std::min(step, in.size() - at);
    int len = 0;
    if (EVP_EncryptUpdate(ctx.get(), out.data() + at, &len, in.data() + at, to_int(n)) != 1 ||
        static_cast<std::size_t>(len) != n) {
      return openssl_error("EVP_EncryptUpdate aes-256-ctr");
    }
  }
  return {};
}

result<std::array<unsigned char, 16>> poly1305_aes(byte_view k16, byte_view r16, byte_view nonce16,
                                                   byte_view message) {
  if (k16.size() != 16 || r16.size() != 16 || nonce16.size() != 16) {
    throw std::invalid_argument("restic: poly1305_aes needs 16-byte k, r and nonce");
  }
  auto s = aes128_block(k16, nonce16);
  if (!s) {
    return s.error();
  }
  // OpenSSL clamps r itself, as Go's poly1305 does.
  std::array<unsigned char, 32> key{};
  std::copy(r16.begin(), r16.end(), key.begin());
  std::copy(s->begin(), s->end(), key.begin() + 16);
  const mac_ptr mac(EVP_MAC_fetch(nullptr, "POLY1305", nullptr));
  const mac_ctx_ptr ctx(mac ? EVP_MAC_CTX_new(mac.get()) : nullptr);
  const bool init = ctx && EVP_MAC_init(ctx.get(), key.data(), key.size(), nullptr) == 1;
  cleanse(key);
  cleanse(*s);
  if (!init) {
    return openssl_error("EVP_MAC_init POLY1305");
  }
  if (EVP_MAC_update(ctx.get(), message.data(), message.size()) != 1) {
    return openssl_error("EVP_MAC_update POLY1305");
  }
  std::array<unsigned char, 16> tag{};
  std::size_t len = 0;
  if (EVP_MAC_final(ctx.get(), tag.data(), &len, tag.size()) != 1 || len != tag.size()) {
    return openssl_error("EVP_MAC_final POLY1305");
  }
  return tag;
}

result<void> scrypt(std::string_view password, byte_view salt, std::uint64_t n, std::uint32_t r,
                    std::uint32_t p, std::span<unsigned char> out) {
  const kdf_ptr kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_SCRYPT, nullptr));
  const kdf_ctx_ptr ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
  if (!ctx) {
    return openssl_error("EVP_KDF_fetch scrypt");
  }
  // 128 * r * N bytes of V plus 128 * r * p of B, and some slack; OpenSSL's default cap
  // (32 MiB) would refuse parameters restic accepts.
  std::uint64_t maxmem = (std::uint64_t{128} * r * (n + p + 2)) + (std::uint64_t{1} << 20);
  static constexpr unsigned char nothing = 0;
  const byte_view pw = as_bytes(password);
  std::array<OSSL_PARAM, 7> params{
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                        pw.empty() ? mutable_data({&nothing, 0}) : mutable_data(pw),
                                        pw.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, mutable_data(salt), salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params.data()) != 1) {
    return openssl_error("EVP_KDF_derive scrypt");
  }
  return {};
}

std::string base64_encode(byte_view data) {
  // EVP_EncodeBlock writes a terminating NUL after the 4*ceil(n/3) characters.
  std::string buffer((4 * ((data.size() + 2) / 3)) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(buffer.data()), data.data(),
                                to_int(data.size()));
  buffer.resize(static_cast<std::size_t>(n));
  return buffer;
}

result<std::vector<unsigned char>> base64_decode(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return make_error(errc::invalid_format, std::string(what) + " is not valid base64");
  };
  if (text.size() % 4 != 0) {
    return bad();
  }
  std::vector<unsigned char> out(text.size() / 4 * 3);
  if (text.empty()) {
    return out;
  }
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                to_int(text.size()));
  if (n < 0) {
    return bad();
  }
  // EVP_DecodeBlock counts the padding as zero bytes of output.
  std::size_t pad = 0;
  if (text.back() == '=') {
    ++pad;
    if (text[text.size() - 2] == '=') {
      ++pad;
    }
  }
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string hex(byte_view data) {
  static constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (const unsigned char b : data) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

}  // namespace lifeboat::restic::detail
