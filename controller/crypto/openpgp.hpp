#pragma once

#include "controller/crypto/age.hpp"

#include <memory>
#include <span>
#include <string>

// OpenPGP (RFC 4880) encryption and decryption through gpgme and the gpg it
// drives: nothing of OpenPGP is written here, only the plumbing that streams
// bytes through gpg with bounded memory. No gpgme type shows in this header.
//
// Each stream runs gpg in a GNUPGHOME of its own (a fresh 0700 temporary
// folder holding only the keys given, with compression off since the tar is
// compressed already), removed with its agent when the stream ends. The
// encryptor and decryptor are the age ones' interfaces (age.hpp), so the
// pipeline and restore hold either behind the same pointer, and their errors
// use the same codes.
namespace lifeboat::crypto {

/// Whom an OpenPGP file is encrypted to: the public keys (one or more, armored or binary,
/// as `gpg --export` writes them), or, when there are none, a passphrase (symmetric
/// encryption, what `gpg -c` does).
struct openpgp_recipients {
  std::string public_keys;
  std::string passphrase;
};

/// What decrypts an OpenPGP file: secret keys (`gpg --export-secret-keys`, armored or
/// binary) with the passphrase that protects them if any; or, without keys, the
/// passphrase of a symmetrically encrypted file.
struct openpgp_identities {
  std::string secret_keys;
  std::string passphrase;
};

/// Starts gpg on a worker thread; plaintext written to the encryptor comes out of `sink`
/// as a binary OpenPGP message (on the thread that calls write() or finish(); never on
/// another). Memory: two queues of 256 KiB. invalid_key when the keys do not parse or
/// none can encrypt, or when there are neither keys nor a passphrase; internal when gpg
/// cannot be started.
result<std::unique_ptr<encryptor>> make_openpgp_encryptor(const openpgp_recipients& recipients,
                                                          byte_sink sink);

/// Starts gpg on a worker thread; ciphertext written to the decryptor comes out of `sink`
/// as plaintext (on the caller's thread). gpg releases plaintext before it checks the
/// message's integrity at the end: a caller must not trust what it got until finish()
/// returned success. Errors: invalid_key (the keys given do not parse),
/// no_matching_identity (no secret key for the message, or a wrong passphrase), corrupt
/// (not OpenPGP, or the integrity check failed), truncated (the message ends early).
/// After an error every later call returns it again.
result<std::unique_ptr<decryptor>> make_openpgp_decryptor(const openpgp_identities& identities,
                                                          byte_sink sink);

/// True when `head` (the first bytes of a file, at least 2) starts like an OpenPGP
/// message as gpg writes one encrypted: a public-key or symmetric-key encrypted session
/// key packet, in the old or the new packet format. restore uses it to recognise
/// encrypted archives by content; it never matches a tar, gzip, zstd or age file.
bool looks_like_openpgp(std::span<const char> head);

}  // namespace lifeboat::crypto
