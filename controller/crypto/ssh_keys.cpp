// OpenSSH key files as age reads them: public key lines (authorized_keys
// format) as recipients, unencrypted "openssh-key-v1" private keys as
// identities. Framing only; the keys are used by primitives.cpp.
#include "controller/crypto/keys.hpp"
#include "controller/crypto/primitives.hpp"

#include <fmt/format.h>

namespace lifeboat::crypto::detail {

namespace {

void append_string(std::vector<unsigned char>& out, byte_view bytes) {
  const auto n = static_cast<std::uint32_t>(bytes.size());
  out.push_back(static_cast<unsigned char>(n >> 24));
  out.push_back(static_cast<unsigned char>(n >> 16));
  out.push_back(static_cast<unsigned char>(n >> 8));
  out.push_back(static_cast<unsigned char>(n));
  out.insert(out.end(), bytes.begin(), bytes.end());
}

/// An mpint's magnitude: SSH prefixes a zero byte when the top bit is set.
byte_view magnitude(byte_view mpint) {
  while (!mpint.empty() && mpint.front() == 0) {
    mpint = mpint.subspan(1);
  }
  return mpint;
}

error unsupported_type(std::string_view type) {
  return make_error(errc::invalid_key,
                    fmt::format("unsupported key type {} (ssh-rsa and ssh-ed25519 are)", type));
}

/// Checks a public key in wire format and says which kind it is.
result<recipient::kind> check_public_wire(byte_view wire, std::string_view expected_type) {
  ssh_reader reader(wire);
  const auto type = reader.string();
  if (!type) {
    return make_error(errc::invalid_key, "malformed ssh public key: no key type");
  }
  if (as_text(*type) != expected_type) {
    return make_error(errc::invalid_key,
                      fmt::format("ssh public key of type {} inside a line that says {}",
                                  as_text(*type), expected_type));
  }
  if (expected_type == "ssh-rsa") {
    const auto e = reader.string();
    const auto n = reader.string();
    if (!e || !n || !reader.rest().empty()) {
      return make_error(errc::invalid_key, "malformed ssh-rsa public key");
    }
    if (magnitude(*n).size() < 256) {
      return make_error(errc::invalid_key, "ssh-rsa keys shorter than 2048 bits are refused");
    }
    return recipient::kind::ssh_rsa;
  }
  const auto key = reader.string();
  if (!key || key->size() != 32 || !reader.rest().empty()) {
    return make_error(errc::invalid_key, "malformed ssh-ed25519 public key");
  }
  return recipient::kind::ssh_ed25519;
}

}  // namespace

std::string_view as_text(byte_view bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::optional<std::uint32_t> ssh_reader::u32() {
  if (bytes_.size() < 4) {
    return std::nullopt;
  }
  const std::uint32_t v = (std::uint32_t{bytes_[0]} << 24) | (std::uint32_t{bytes_[1]} << 16) |
                          (std::uint32_t{bytes_[2]} << 8) | std::uint32_t{bytes_[3]};
  bytes_ = bytes_.subspan(4);
  return v;
}

std::optional<byte_view> ssh_reader::string() {
  auto n = u32();
  if (!n || bytes_.size() < *n) {
    return std::nullopt;
  }
  const byte_view out = bytes_.first(*n);
  bytes_ = bytes_.subspan(*n);
  return out;
}

result<recipient> parse_ssh_recipient(std::string_view line) {
  const std::size_t space = line.find(' ');
  const std::string_view type = line.substr(0, space);
  if (type != "ssh-rsa" && type != "ssh-ed25519") {
    return unsupported_type(type);
  }
  if (space == std::string_view::npos) {
    return make_error(errc::invalid_key, fmt::format("{} line without its base64 key", type));
  }
  std::string_view encoded = line.substr(space + 1);
  encoded = encoded.substr(0, encoded.find(' '));
  auto wire = base64_decode_padded(encoded);
  if (!wire) {
    return make_error(errc::invalid_key, fmt::format("{} key is not valid base64", type));
  }
  auto kind = check_public_wire(*wire, type);
  if (!kind) {
    return kind.error();
  }
  return access::make_recipient(*kind, std::move(*wire));
}

result<identity> parse_ssh_identity(std::string_view pem) {
  static constexpr std::string_view begin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  static constexpr std::string_view end = "-----END OPENSSH PRIVATE KEY-----";
  const std::size_t b = pem.find(begin);
  const std::size_t e = pem.find(end);
  if (b == std::string_view::npos || e == std::string_view::npos || e < b) {
    return make_error(errc::invalid_key, "OpenSSH private key without its END line");
  }
  std::string encoded;
  for (const char c : pem.substr(b + begin.size(), e - b - begin.size())) {
    if (c != '\n' && c != '\r' && c != ' ') {
      encoded += c;
    }
  }
  auto blob = base64_decode_padded(encoded);
  if (!blob) {
    return make_error(errc::invalid_key, "OpenSSH private key: the body is not valid base64");
  }
  struct wipe_on_exit {
    std::vector<unsigned char>& bytes;
    ~wipe_on_exit() { cleanse(bytes); }
  } wipe{*blob};

  static constexpr std::string_view magic{"openssh-key-v1\0", 15};
  if (blob->size() < magic.size() || as_text(byte_view(*blob).first(magic.size())) != magic) {
    return make_error(errc::invalid_key, "OpenSSH private key: no openssh-key-v1 magic");
  }
  ssh_reader reader(byte_view(*blob).subspan(magic.size()));
  const auto cipher = reader.string();
  const auto kdf = reader.string();
  const auto kdf_options = reader.string();
  const auto count = reader.u32();
  const auto public_wire = reader.string();
  const auto private_section = reader.string();
  if (!cipher || !kdf || !kdf_options || !count || !public_wire || !private_section) {
    return make_error(errc::invalid_key, "OpenSSH private key: truncated");
  }
  if (as_text(*cipher) != "none" || as_text(*kdf) != "none") {
    return make_error(errc::invalid_key,
                      fmt::format("OpenSSH private key is encrypted ({}); only unencrypted keys "
                                  "are read",
                                  as_text(*cipher)));
  }
  if (*count != 1) {
    return make_error(errc::invalid_key,
                      fmt::format("OpenSSH private key file holds {} keys, not 1", *count));
  }
  ssh_reader priv(*private_section);
  const auto check1 = priv.u32();
  const auto check2 = priv.u32();
  const auto type = priv.string();
  if (!check1 || !check2 || *check1 != *check2 || !type) {
    return make_error(errc::invalid_key, "OpenSSH private key: malformed private section");
  }
  const std::string_view type_name = as_text(*type);
  if (type_name == "ssh-rsa") {
    // n, e, d, iqmp, p, q: kept as n, e, d, p, q (the CRT values are derived when used).
    std::array<std::optional<byte_view>, 6> parts;
    for (auto& part : parts) {
      part = priv.string();
      if (!part) {
        return make_error(errc::invalid_key, "OpenSSH private key: truncated ssh-rsa key");
      }
    }
    std::vector<unsigned char> secret;
    for (const std::size_t i : {0, 1, 2, 4, 5}) {
      append_string(secret, magnitude(*parts[i]));
    }
    std::vector<unsigned char> wire(public_wire->begin(), public_wire->end());
    if (auto kind = check_public_wire(wire, "ssh-rsa"); !kind) {
      cleanse(secret);
      return kind.error();
    }
    identity id =
        access::make_identity(identity::kind::ssh_rsa, secret_bytes(secret), std::move(wire));
    cleanse(secret);
    return id;
  }
  if (type_name == "ssh-ed25519") {
    const auto public_key = priv.string();
    const auto private_key = priv.string();
    if (!public_key || public_key->size() != 32 || !private_key || private_key->size() != 64) {
      return make_error(errc::invalid_key, "OpenSSH private key: malformed ssh-ed25519 key");
    }
    std::vector<unsigned char> wire(public_wire->begin(), public_wire->end());
    if (auto kind = check_public_wire(wire, "ssh-ed25519"); !kind) {
      return kind.error();
    }
    // The private key is seed || public key; the seed is all age needs.
    return access::make_identity(identity::kind::ssh_ed25519, secret_bytes(private_key->first(32)),
                                 std::move(wire));
  }
  return unsupported_type(type_name);
}

}  // namespace lifeboat::crypto::detail
