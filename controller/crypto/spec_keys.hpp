#pragma once

#include "api/objects.hpp"
#include "controller/crypto/age.hpp"
#include "controller/crypto/openpgp.hpp"

#include <string>
#include <string_view>
#include <vector>

// The keys an object names, read from the files it names. Kept apart from the
// age format itself: this is where field paths and files meet, so an error
// says which field and which file ("spec.archive.encryption.age.recipientsFile:
// cannot read /run/secrets/r: No such file or directory").
namespace lifeboat::crypto {

/// The public recipients of `spec` as text, inline ones first, then the lines
/// of recipientsFile (blank lines and '#' comments skipped), each checked by
/// parse_recipient. Empty for a passphrase. `path` is the spec's field path,
/// for messages. invalid_key for a file that cannot be read or a bad line
/// (named by file and line).
result<std::vector<std::string>> recipient_texts(const api::age_encryption& spec,
                                                 std::string_view path);

/// What encrypts to `spec`: its public recipients, or its passphrase.
result<std::vector<recipient>> load_recipients(const api::age_encryption& spec,
                                               std::string_view path);

/// What decrypts for `spec`: the identities in identityFile (age-keygen's
/// format), or the passphrase in passphraseFile.
result<std::vector<identity>> load_identities(const api::age_decryption& spec,
                                              std::string_view path);

/// What encrypts to an OpenPGP `spec`: the public keys of publicKeyFile (or
/// the inline publicKeys an agent is given), or the passphrase of
/// passphraseFile. invalid_key naming the field and file when a file cannot
/// be read or is empty. The keys themselves are checked by gpg: see
/// check_openpgp_recipients.
result<openpgp_recipients> load_openpgp_recipients(const api::gpg_encryption& spec,
                                                   std::string_view path);

/// Starts (and drops) an encryptor for `recipients`, so that keys gpg cannot
/// use fail before anything is held: invalid_key naming the field under `path`.
result<void> check_openpgp_recipients(const openpgp_recipients& recipients, std::string_view path);

/// What decrypts for an OpenPGP `spec`: the secret keys of secretKeyFile, the
/// passphrase of passphraseFile (for those keys, or for a symmetric archive).
result<openpgp_identities> load_openpgp_identities(const api::gpg_decryption& spec,
                                                   std::string_view path);

/// The content of `file`, for a secret: a trailing "\n" or "\r\n" is
/// removed, as files written by `echo` end in one that is not part of the
/// passphrase. invalid_key naming `field` and the file when it cannot be read
/// or is empty.
result<std::string> read_secret_file(const std::string& file, std::string_view field);

}  // namespace lifeboat::crypto
