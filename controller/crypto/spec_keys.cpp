#include "controller/crypto/spec_keys.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace lifeboat::crypto {

namespace {

result<std::string> read_file(const std::string& file, std::string_view field) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return error{errc::invalid_key,
                 std::string(field) + ": cannot read " + file + ": " + std::strerror(errno)};
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return error{errc::invalid_key,
                 std::string(field) + ": cannot read " + file + ": " + std::strerror(errno)};
  }
  return std::move(text).str();
}

// "spec.decryption.age.identityFile"; the key alone without a path (the
// CLI's flags, which have no object around them).
std::string field_of(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

// An OpenPGP key file, armored or binary, taken as it is; empty is an error.
result<std::string> read_key_file(const std::string& file, std::string_view field) {
  auto content = read_file(file, field);
  if (content && content->empty()) {
    return error{errc::invalid_key, std::string(field) + ": " + file + " is empty"};
  }
  return content;
}

}  // namespace

result<std::string> read_secret_file(const std::string& file, std::string_view field) {
  auto text = read_file(file, field);
  if (!text) {
    return text.error();
  }
  if (text->ends_with('\n')) {
    text->pop_back();
    if (text->ends_with('\r')) {
      text->pop_back();
    }
  }
  if (text->empty()) {
    return error{errc::invalid_key, std::string(field) + ": " + file + " is empty"};
  }
  return text;
}

result<std::vector<std::string>> recipient_texts(const api::age_encryption& spec,
                                                 std::string_view path) {
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < spec.recipients.size(); ++i) {
    if (auto parsed = parse_recipient(spec.recipients[i]); !parsed) {
      return error{errc::invalid_key, field_of(path, "recipients") + "[" + std::to_string(i) +
                                          "]: " + parsed.error().message};
    }
    texts.push_back(spec.recipients[i]);
  }
  if (spec.recipients_file) {
    const std::string field = field_of(path, "recipientsFile");
    auto content = read_file(*spec.recipients_file, field);
    if (!content) {
      return content.error();
    }
    std::istringstream lines(*content);
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
      if (line.ends_with('\r')) {
        line.pop_back();
      }
      if (line.empty() || line.starts_with('#')) {
        continue;
      }
      if (auto parsed = parse_recipient(line); !parsed) {
        return error{errc::invalid_key, field + ": " + *spec.recipients_file + " line " +
                                            std::to_string(number) + ": " + parsed.error().message};
      }
      texts.push_back(line);
    }
    if (texts.empty()) {
      return error{errc::invalid_key, field + ": " + *spec.recipients_file + " holds no recipient"};
    }
  }
  return texts;
}

result<std::vector<recipient>> load_recipients(const api::age_encryption& spec,
                                               std::string_view path) {
  if (spec.passphrase_file) {
    auto passphrase = read_secret_file(*spec.passphrase_file, field_of(path, "passphraseFile"));
    if (!passphrase) {
      return passphrase.error();
    }
    return std::vector<recipient>{passphrase_recipient(std::move(*passphrase))};
  }
  auto texts = recipient_texts(spec, path);
  if (!texts) {
    return texts.error();
  }
  std::vector<recipient> out;
  for (const auto& text : *texts) {
    out.push_back(parse_recipient(text).value());  // checked by recipient_texts
  }
  return out;
}

result<std::vector<identity>> load_identities(const api::age_decryption& spec,
                                              std::string_view path) {
  if (spec.passphrase_file) {
    auto passphrase = read_secret_file(*spec.passphrase_file, field_of(path, "passphraseFile"));
    if (!passphrase) {
      return passphrase.error();
    }
    return std::vector<identity>{passphrase_identity(std::move(*passphrase))};
  }
  if (!spec.identity_file) {
    return error{errc::invalid_key, std::string(path) + ": set identityFile or passphraseFile"};
  }
  const std::string field = field_of(path, "identityFile");
  auto content = read_file(*spec.identity_file, field);
  if (!content) {
    return content.error();
  }
  auto identities = parse_identities(*content);
  if (!identities) {
    return error{errc::invalid_key,
                 field + ": " + *spec.identity_file + ": " + identities.error().message};
  }
  if (identities->empty()) {
    return error{errc::invalid_key, field + ": " + *spec.identity_file + " holds no identity"};
  }
  return identities;
}

result<openpgp_recipients> load_openpgp_recipients(const api::gpg_encryption& spec,
                                                   std::string_view path) {
  openpgp_recipients out;
  if (spec.passphrase_file) {
    auto passphrase = read_secret_file(*spec.passphrase_file, field_of(path, "passphraseFile"));
    if (!passphrase) {
      return passphrase.error();
    }
    out.passphrase = std::move(*passphrase);
    return out;
  }
  if (spec.public_key_file) {
    auto content = read_key_file(*spec.public_key_file, field_of(path, "publicKeyFile"));
    if (!content) {
      return content.error();
    }
    out.public_keys = std::move(*content);
    return out;
  }
  if (spec.public_keys.empty()) {
    return error{errc::invalid_key, std::string(path) + ": set publicKeyFile or passphraseFile"};
  }
  out.public_keys = spec.public_keys;
  return out;
}

result<void> check_openpgp_recipients(const openpgp_recipients& recipients, std::string_view path) {
  auto probe =
      make_openpgp_encryptor(recipients, [](std::span<const char>) -> result<void> { return {}; });
  if (!probe) {
    const std::string_view key = recipients.passphrase.empty() ? "publicKeyFile" : "passphraseFile";
    return error{probe.error().code, field_of(path, key) + ": " + probe.error().message};
  }
  return {};
}

result<openpgp_identities> load_openpgp_identities(const api::gpg_decryption& spec,
                                                   std::string_view path) {
  openpgp_identities out;
  if (!spec.secret_key_file && !spec.passphrase_file) {
    return error{errc::invalid_key,
                 std::string(path) + ": set secretKeyFile, passphraseFile or both"};
  }
  if (spec.secret_key_file) {
    auto content = read_key_file(*spec.secret_key_file, field_of(path, "secretKeyFile"));
    if (!content) {
      return content.error();
    }
    out.secret_keys = std::move(*content);
  }
  if (spec.passphrase_file) {
    auto passphrase = read_secret_file(*spec.passphrase_file, field_of(path, "passphraseFile"));
    if (!passphrase) {
      return passphrase.error();
    }
    out.passphrase = std::move(*passphrase);
  }
  return out;
}

}  // namespace lifeboat::crypto
