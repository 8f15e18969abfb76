#include "controller/crypto/primitives.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <limits>
#include <memory>
#include <string>

namespace lifeboat::crypto::detail {

namespace {

struct pkey_deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct pkey_ctx_deleter {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct kdf_deleter {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
};
struct kdf_ctx_deleter {
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};
struct cipher_ctx_deleter {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
struct bn_deleter {
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
};
struct bn_ctx_deleter {
  void operator()(BN_CTX* p) const { BN_CTX_free(p); }
};
struct param_bld_deleter {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct params_deleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, pkey_ctx_deleter>;
using kdf_ptr = std::unique_ptr<EVP_KDF, kdf_deleter>;
using kdf_ctx_ptr = std::unique_ptr<EVP_KDF_CTX, kdf_ctx_deleter>;
using cipher_ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, cipher_ctx_deleter>;
using bn_ptr = std::unique_ptr<BIGNUM, bn_deleter>;
using bn_ctx_ptr = std::unique_ptr<BN_CTX, bn_ctx_deleter>;
using param_bld_ptr = std::unique_ptr<OSSL_PARAM_BLD, param_bld_deleter>;
using params_ptr = std::unique_ptr<OSSL_PARAM, params_deleter>;

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
    throw std::length_error("crypto: buffer larger than INT_MAX");
  }
  return static_cast<int>(n);
}

unsigned char* mutable_data(byte_view bytes) {
  // OpenSSL's OSSL_PARAM and KDF setters take non-const pointers to data they only read.
  return const_cast<unsigned char*>(bytes.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
}

result<kdf_ctx_ptr> kdf_context(const char* name) {
  const kdf_ptr kdf(EVP_KDF_fetch(nullptr, name, nullptr));
  if (!kdf) {
    return openssl_error(std::string("EVP_KDF_fetch ") + name);
  }
  kdf_ctx_ptr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) {
    return openssl_error("EVP_KDF_CTX_new");
  }
  return ctx;
}

result<bn_ptr> to_bignum(byte_view magnitude) {
  bn_ptr bn(BN_bin2bn(magnitude.data(), to_int(magnitude.size()), nullptr));
  if (!bn) {
    return openssl_error("BN_bin2bn");
  }
  return bn;
}

}  // namespace

key32::~key32() { cleanse(bytes); }

void cleanse(std::span<unsigned char> bytes) noexcept {
  if (!bytes.empty()) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
  }
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

result<key32> x25519(byte_view scalar, byte_view point) {
  if (scalar.size() != 32 || point.size() != 32) {
    return make_error(errc::internal, "X25519 takes 32-byte scalars and points");
  }
  const pkey_ptr ours(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, scalar.data(), scalar.size()));
  const pkey_ptr theirs(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, point.data(), point.size()));
  if (!ours || !theirs) {
    return openssl_error("EVP_PKEY_new_raw_*_key X25519");
  }
  const pkey_ctx_ptr ctx(EVP_PKEY_CTX_new(ours.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) {
    return openssl_error("EVP_PKEY_derive_init X25519");
  }
  if (EVP_PKEY_derive_set_peer_ex(ctx.get(), theirs.get(), 0) != 1) {
    return openssl_error("EVP_PKEY_derive_set_peer X25519");
  }
  key32 out;
  std::size_t size = out.bytes.size();
  if (EVP_PKEY_derive(ctx.get(), out.bytes.data(), &size) != 1) {
    // OpenSSL refuses an all-zero shared secret itself (RFC 7748 section 6.1).
    ERR_clear_error();
    return make_error(errc::corrupt, "X25519 share is a low-order point");
  }
  static constexpr std::array<unsigned char, 32> zero{};
  if (size != out.bytes.size() || equal_constant_time(out.bytes, zero)) {
    return make_error(errc::corrupt, "X25519 share is a low-order point");
  }
  return out;
}

result<key32> x25519_public(byte_view scalar) {
  const pkey_ptr key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, scalar.data(), scalar.size()));
  if (!key) {
    return openssl_error("EVP_PKEY_new_raw_private_key X25519");
  }
  key32 out;
  std::size_t size = out.bytes.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), out.bytes.data(), &size) != 1 || size != 32) {
    return openssl_error("EVP_PKEY_get_raw_public_key X25519");
  }
  return out;
}

result<key32> hkdf_sha256(byte_view ikm, byte_view salt, std::string_view info) {
  auto ctx = kdf_context(OSSL_KDF_NAME_HKDF);
  if (!ctx) {
    return ctx.error();
  }
  std::array<OSSL_PARAM, 5> params{};
  std::size_t i = 0;
  params[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"),
                                                 0);  // NOLINT
  // OpenSSL refuses an empty key; HKDF-Extract with an empty IKM is still defined
  // (age's ssh-ed25519 tweak uses one), and equals HMAC over zero bytes.
  static constexpr unsigned char nothing = 0;
  params[i++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, ikm.empty() ? mutable_data({&nothing, 0}) : mutable_data(ikm),
      ikm.size());
  if (!salt.empty()) {
    params[i++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, mutable_data(salt), salt.size());
  }
  params[i++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_INFO, const_cast<char*>(info.data()), info.size());  // NOLINT
  params[i] = OSSL_PARAM_construct_end();
  key32 out;
  if (EVP_KDF_derive(ctx->get(), out.bytes.data(), out.bytes.size(), params.data()) != 1) {
    return openssl_error("EVP_KDF_derive HKDF-SHA-256");
  }
  return out;
}

result<key32> hmac_sha256(byte_view key, byte_view data) {
  key32 out;
  std::size_t size = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(), data.data(),
                data.size(), out.bytes.data(), out.bytes.size(), &size) == nullptr ||
      size != out.bytes.size()) {
    return openssl_error("EVP_Q_mac HMAC-SHA-256");
  }
  return out;
}

std::array<unsigned char, 32> sha256(byte_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("crypto: EVP_Digest SHA-256 failed");
  }
  return out;
}

result<void> aead_seal(byte_view key, byte_view nonce12, byte_view plaintext,
                       std::span<unsigned char> out) {
  if (out.size() != plaintext.size() + aead_tag_size) {
    return make_error(errc::internal, "aead_seal: output size");
  }
  const cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  if (!ctx ||
      EVP_EncryptInit_ex2(ctx.get(), EVP_chacha20_poly1305(), key.data(), nonce12.data(),
                          nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &n, plaintext.data(), to_int(plaintext.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + n, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, aead_tag_size,
                          out.data() + plaintext.size()) != 1) {
    return openssl_error("ChaCha20-Poly1305 encryption");
  }
  return {};
}

result<bool> aead_open(byte_view key, byte_view nonce12, byte_view ciphertext,
                       std::span<unsigned char> out) {
  if (ciphertext.size() < aead_tag_size || out.size() != ciphertext.size() - aead_tag_size) {
    return make_error(errc::internal, "aead_open: sizes");
  }
  const cipher_ctx_ptr ctx(EVP_CIPHER_CTX_new());
  int n = 0;
  if (!ctx ||
      EVP_DecryptInit_ex2(ctx.get(), EVP_chacha20_poly1305(), key.data(), nonce12.data(),
                          nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &n, ciphertext.data(), to_int(out.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, aead_tag_size,
                          mutable_data(ciphertext.subspan(out.size()))) != 1) {
    return openssl_error("ChaCha20-Poly1305 decryption");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + n, &n) != 1) {
    ERR_clear_error();
    cleanse(out);
    return false;
  }
  return true;
}

result<key32> scrypt(byte_view passphrase, byte_view salt, int log2_n) {
  if (log2_n < 1 || log2_n > 30) {
    return make_error(errc::internal, "scrypt work factor out of range");
  }
  auto ctx = kdf_context(OSSL_KDF_NAME_SCRYPT);
  if (!ctx) {
    return ctx.error();
  }
  std::uint64_t n = std::uint64_t{1} << log2_n;
  std::uint32_t r = 8;
  std::uint32_t p = 1;
  // 128 * r * N bytes of V plus a little; OpenSSL's default cap would refuse 2^22.
  std::uint64_t maxmem = (std::uint64_t{128} * r * (n + 2)) + (1 << 20);
  static constexpr unsigned char nothing = 0;
  std::array<OSSL_PARAM, 7> params{
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_PASSWORD,
          passphrase.empty() ? mutable_data({&nothing, 0}) : mutable_data(passphrase),
          passphrase.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, mutable_data(salt), salt.size()),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
      OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
      OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
      OSSL_PARAM_construct_end(),
  };
  key32 out;
  if (EVP_KDF_derive(ctx->get(), out.bytes.data(), out.bytes.size(), params.data()) != 1) {
    return openssl_error("EVP_KDF_derive scrypt");
  }
  return out;
}

namespace {

/// An RSA EVP_PKEY from the parts a caller has (public: n, e; private: all of them).
result<pkey_ptr> rsa_key(byte_view n, byte_view e, const rsa_private_parts* priv) {
  const param_bld_ptr bld(OSSL_PARAM_BLD_new());
  if (!bld) {
    return openssl_error("OSSL_PARAM_BLD_new");
  }
  auto bn_n = to_bignum(n);
  auto bn_e = to_bignum(e);
  if (!bn_n || !bn_e) {
    return openssl_error("RSA key parts");
  }
  bn_ptr d, p, q, dp, dq, qinv;
  if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n->get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e->get()) != 1) {
    return openssl_error("OSSL_PARAM_BLD_push_BN");
  }
  if (priv != nullptr) {
    auto bn_d = to_bignum(priv->d);
    auto bn_p = to_bignum(priv->p);
    auto bn_q = to_bignum(priv->q);
    if (!bn_d || !bn_p || !bn_q) {
      return openssl_error("RSA key parts");
    }
    d = std::move(*bn_d);
    p = std::move(*bn_p);
    q = std::move(*bn_q);
    // The CRT exponents are not in an OpenSSH key file; derive them so OpenSSL uses CRT.
    const bn_ctx_ptr bn_ctx(BN_CTX_new());
    bn_ptr p1(BN_dup(p.get()));
    bn_ptr q1(BN_dup(q.get()));
    dp.reset(BN_new());
    dq.reset(BN_new());
    qinv.reset(BN_new());
    if (!bn_ctx || !p1 || !q1 || !dp || !dq || !qinv || BN_sub_word(p1.get(), 1) != 1 ||
        BN_sub_word(q1.get(), 1) != 1 || BN_mod(dp.get(), d.get(), p1.get(), bn_ctx.get()) != 1 ||
        BN_mod(dq.get(), d.get(), q1.get(), bn_ctx.get()) != 1 ||
        BN_mod_inverse(qinv.get(), q.get(), p.get(), bn_ctx.get()) == nullptr) {
      return openssl_error("RSA CRT parameters");
    }
    if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_D, d.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_FACTOR1, p.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_FACTOR2, q.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_EXPONENT1, dp.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_EXPONENT2, dq.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qinv.get()) != 1) {
      return openssl_error("OSSL_PARAM_BLD_push_BN");
    }
  }
  const params_ptr params(OSSL_PARAM_BLD_to_param(bld.get()));
  const pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return openssl_error("EVP_PKEY_fromdata_init RSA");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, priv != nullptr ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                        params.get()) != 1) {
    return openssl_error("EVP_PKEY_fromdata RSA");
  }
  return pkey_ptr(raw);
}

/// Sets OAEP with SHA-256 for both the hash and MGF1, and age's label.
result<void> set_oaep(EVP_PKEY_CTX* ctx, std::string_view label) {
  // OpenSSL takes ownership of the label buffer.
  auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(label.data(), label.size()));
  if (copy == nullptr || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1) {
    OPENSSL_free(copy);
    return openssl_error("RSA-OAEP parameters");
  }
  if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, to_int(label.size())) != 1) {
    OPENSSL_free(copy);
    return openssl_error("RSA-OAEP label");
  }
  return {};
}

}  // namespace

result<std::vector<unsigned char>> rsa_oaep_encrypt(byte_view n, byte_view e,
                                                    std::string_view label, byte_view plaintext) {
  auto key = rsa_key(n, e, nullptr);
  if (!key) {
    return key.error();
  }
  const pkey_ctx_ptr ctx(EVP_PKEY_CTX_new(key->get(), nullptr));
  if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1) {
    return openssl_error("EVP_PKEY_encrypt_init RSA");
  }
  if (auto r = set_oaep(ctx.get(), label); !r) {
    return r.error();
  }
  std::size_t size = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &size, plaintext.data(), plaintext.size()) != 1) {
    return openssl_error("EVP_PKEY_encrypt RSA-OAEP");
  }
  std::vector<unsigned char> out(size);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &size, plaintext.data(), plaintext.size()) != 1) {
    return openssl_error("EVP_PKEY_encrypt RSA-OAEP");
  }
  out.resize(size);
  return out;
}

result<std::vector<unsigned char>> rsa_oaep_decrypt(const rsa_private_parts& parts,
                                                    std::string_view label, byte_view ciphertext) {
  auto key = rsa_key(parts.n, parts.e, &parts);
  if (!key) {
    return key.error();
  }
  const pkey_ctx_ptr ctx(EVP_PKEY_CTX_new(key->get(), nullptr));
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1) {
    return openssl_error("EVP_PKEY_decrypt_init RSA");
  }
  if (auto r = set_oaep(ctx.get(), label); !r) {
    return r.error();
  }
  std::size_t size = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &size, ciphertext.data(), ciphertext.size()) != 1) {
    ERR_clear_error();
    return std::vector<unsigned char>{};
  }
  std::vector<unsigned char> out(size);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &size, ciphertext.data(), ciphertext.size()) != 1) {
    // A stanza for another key, or a damaged one: to the caller, not this key's.
    ERR_clear_error();
    cleanse(out);
    return std::vector<unsigned char>{};
  }
  out.resize(size);
  return out;
}

}  // namespace lifeboat::crypto::detail

namespace lifeboat::crypto::detail {

std::array<unsigned char, 64> sha512(byte_view data) {
  std::array<unsigned char, 64> out{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha512(), nullptr) != 1) {
    throw std::runtime_error("crypto: EVP_Digest SHA-512 failed");
  }
  return out;
}

result<key32> ed25519_public_to_x25519(byte_view ed25519_public) {
  if (ed25519_public.size() != 32) {
    return make_error(errc::invalid_key, "an ssh-ed25519 public key must be 32 bytes");
  }
  std::array<unsigned char, 32> y_bytes{};
  std::copy(ed25519_public.begin(), ed25519_public.end(), y_bytes.begin());
  y_bytes[31] &= 0x7f;  // the top bit is the sign of x, not part of y
  const bn_ctx_ptr ctx(BN_CTX_new());
  const bn_ptr p(BN_new());
  const bn_ptr y(BN_lebin2bn(y_bytes.data(), static_cast<int>(y_bytes.size()), nullptr));
  const bn_ptr one_plus(BN_new());
  const bn_ptr one_minus(BN_new());
  const bn_ptr u(BN_new());
  if (!ctx || !p || !y || !one_plus || !one_minus || !u || BN_set_word(p.get(), 1) != 1 ||
      BN_lshift(p.get(), p.get(), 255) != 1 || BN_sub_word(p.get(), 19) != 1) {
    return openssl_error("Ed25519 to X25519");
  }
  if (BN_cmp(y.get(), p.get()) >= 0 || BN_is_one(y.get()) == 1) {
    return make_error(errc::invalid_key, "the ssh-ed25519 public key is not a valid point");
  }
  if (BN_copy(one_plus.get(), y.get()) == nullptr || BN_add_word(one_plus.get(), 1) != 1 ||
      BN_one(one_minus.get()) != 1 ||
      BN_mod_sub(one_minus.get(), one_minus.get(), y.get(), p.get(), ctx.get()) != 1 ||
      BN_mod_inverse(one_minus.get(), one_minus.get(), p.get(), ctx.get()) == nullptr ||
      BN_mod_mul(u.get(), one_plus.get(), one_minus.get(), p.get(), ctx.get()) != 1) {
    return openssl_error("Ed25519 to X25519");
  }
  key32 out;
  if (BN_bn2lebinpad(u.get(), out.bytes.data(), static_cast<int>(out.bytes.size())) != 32) {
    return openssl_error("BN_bn2lebinpad");
  }
  return out;
}

}  // namespace lifeboat::crypto::detail
