#pragma once

#include <boost/system/result.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// The age v1 file format (age-encryption.org/v1, C2SP age.md): X25519,
// scrypt and ssh-rsa recipient stanzas, HKDF-SHA-256, ChaCha20-Poly1305 over
// 64 KiB chunks. The cryptography is OpenSSL 3's; what is written here is only
// age's framing (header lines, base64, Bech32, the chunk stream). No OpenSSL
// type shows in this header.
namespace lifeboat::crypto {

/// What went wrong, as callers need to tell it apart.
enum class errc {
  invalid_key = 1,       ///< a recipient or identity that cannot be used as written
  no_matching_identity,  ///< the file is addressed to none of the identities given
  corrupt,               ///< not an age file, or a MAC or chunk that does not verify
  truncated,             ///< the ciphertext ends before its final chunk
  internal,              ///< a library call failed in a way the input cannot explain
};

/// "invalid key", "corrupt", ...
const char* to_string(errc e) noexcept;

/// A failure: its kind and a message for people that names what and where.
struct error {
  errc code = errc::internal;
  std::string message;

  /// "corrupt: chunk 3 (at payload byte 196656) failed authentication".
  std::string describe() const;
  bool is(errc e) const { return code == e; }
};

error make_error(errc e, std::string message);

/// Used by result<T>::value() to throw; callers normally test the result instead.
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

template <class T>
using result = boost::system::result<T, error>;

/// Where output bytes go; an error it returns stops the stream and is passed on.
using byte_sink = std::function<result<void>(std::span<const char>)>;

namespace detail {

/// Bytes that are wiped (OPENSSL_cleanse) when they are destroyed or overwritten.
class secret_bytes {
 public:
  secret_bytes() = default;
  explicit secret_bytes(std::span<const unsigned char> bytes);
  secret_bytes(const secret_bytes& other);
  secret_bytes(secret_bytes&& other) noexcept;
  secret_bytes& operator=(const secret_bytes& other);
  secret_bytes& operator=(secret_bytes&& other) noexcept;
  ~secret_bytes();

  std::span<const unsigned char> bytes() const { return {data_.data(), data_.size()}; }
  bool empty() const { return data_.empty(); }

 private:
  void wipe() noexcept;
  std::vector<unsigned char> data_;
};

struct access;

}  // namespace detail

/// Whom a file is encrypted to. A value type.
class recipient {
 public:
  enum class kind { x25519, scrypt, ssh_rsa, ssh_ed25519 };

  kind type() const noexcept { return kind_; }
  /// "age1…" for X25519, "ssh-rsa AAAA…" for ssh keys, "scrypt" for a passphrase.
  std::string to_string() const;

 private:
  friend struct detail::access;
  recipient() = default;

  kind kind_ = kind::x25519;
  /// X25519: the 32-byte public key; ssh: the key in SSH wire format.
  std::vector<unsigned char> key_;
  detail::secret_bytes passphrase_;
  int log2_work_factor_ = 0;
};

/// Parses "age1…" (X25519) or an OpenSSH public key line ("ssh-rsa AAAA… comment").
/// invalid_key names what is wrong: "not a bech32 string", "wrong HRP", "unsupported key
/// type ssh-dss".
result<recipient> parse_recipient(std::string_view text);

/// A recipients file: one recipient a line; blank lines and lines starting with '#' are
/// skipped. An error names the line number.
result<std::vector<recipient>> parse_recipients_file(std::string_view contents);

/// Encrypts to a passphrase with scrypt, N = 2^log2_work_factor (1..22; encryptor::make
/// refuses other values). It must be the file's only recipient.
recipient passphrase_recipient(std::string passphrase, int log2_work_factor = 18);

/// What decrypts a file. A value type; the secret is wiped when it is destroyed.
class identity {
 public:
  enum class kind { x25519, scrypt, ssh_rsa, ssh_ed25519 };

  kind type() const noexcept { return kind_; }
  /// The recipient that encrypts to this identity; invalid_key for a passphrase.
  result<recipient> to_recipient() const;
  /// "AGE-SECRET-KEY-1…" for X25519 (secret!); a description for the other kinds.
  std::string to_string() const;

 private:
  friend struct detail::access;
  identity() = default;

  kind kind_ = kind::x25519;
  /// X25519: the 32-byte scalar; scrypt: the passphrase; ssh-rsa: n, e, d, p, q in SSH
  /// mpint format; ssh-ed25519: the 32-byte seed.
  detail::secret_bytes secret_;
  /// ssh: the public key in SSH wire format (its SHA-256 names the stanzas it opens).
  std::vector<unsigned char> public_key_;
  /// scrypt: the highest work factor it accepts from a file.
  int max_log2_work_factor_ = 22;
};

/// An identities file as age-keygen writes it ("AGE-SECRET-KEY-1…" lines, '#' comments,
/// blank lines), or one unencrypted OpenSSH private key ("-----BEGIN OPENSSH PRIVATE
/// KEY-----"). An error names the line.
result<std::vector<identity>> parse_identities(std::string_view file_contents);

/// Decrypts files encrypted with passphrase_recipient(passphrase, n) for n up to 22.
identity passphrase_identity(std::string passphrase);

/// A new random X25519 identity (age-keygen's job); lifeboat's own tests and tools use it.
identity generate_x25519_identity();

/// Streams plaintext in, age ciphertext out to `sink` (header first, then 64 KiB chunks,
/// last-chunk flag on the final one, an empty final chunk only for empty plaintext as the
/// spec says). Memory: one chunk. Not thread-safe.
class encryptor {
 public:
  /// Writes the header to `sink` before it returns. invalid_key when `recipients` is
  /// empty, when a scrypt recipient is not the only one (spec rule) or its work factor
  /// is out of range.
  static result<std::unique_ptr<encryptor>> make(std::span<const recipient> recipients,
                                                 byte_sink sink);
  virtual ~encryptor();
  virtual result<void> write(std::span<const char> plaintext) = 0;
  /// Once, after the last write.
  virtual result<void> finish() = 0;
};

/// Streams ciphertext in (any split of the bytes), plaintext out to `sink`, each chunk only
/// after its tag verified. Errors: no_matching_identity (names the stanza types found),
/// corrupt ("header MAC mismatch", "chunk 3 (at payload byte 196656) failed
/// authentication"), truncated (finish() before the final chunk: "ends after chunk 7
/// without the final chunk"). After an error every later call returns it again.
class decryptor {
 public:
  static std::unique_ptr<decryptor> make(std::vector<identity> identities, byte_sink sink);
  virtual ~decryptor();
  virtual result<void> write(std::span<const char> ciphertext) = 0;
  virtual result<void> finish() = 0;
};

/// True when `head` (the first bytes of a file, at least 21) starts an age v1 header:
/// restore uses it to recognise encrypted archives by content, not by name.
bool looks_like_age(std::span<const char> head);

}  // namespace lifeboat::crypto
