#include "controller/crypto/keys.hpp"

#include "controller/crypto/primitives.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace lifeboat::crypto {

namespace detail {

namespace {

constexpr std::string_view x25519_label = "age-encryption.org/v1/X25519";
constexpr std::string_view scrypt_label = "age-encryption.org/v1/scrypt";
constexpr std::string_view ssh_rsa_label = "age-encryption.org/v1/ssh-rsa";
constexpr std::string_view ssh_ed25519_label = "age-encryption.org/v1/ssh-ed25519";
constexpr std::string_view recipient_hrp = "age";
constexpr std::string_view identity_hrp = "age-secret-key-";
constexpr std::array<unsigned char, 12> zero_nonce{};

std::vector<unsigned char> concat(byte_view a, byte_view b) {
  std::vector<unsigned char> out(a.size() + b.size());
  std::copy(a.begin(), a.end(), out.begin());
  std::copy(b.begin(), b.end(), out.begin() + static_cast<std::ptrdiff_t>(a.size()));
  return out;
}

/// The body of a stanza: the file key under ChaCha20-Poly1305 with a zero nonce.
result<std::vector<unsigned char>> seal_file_key(const key32& wrap_key, byte_view file_key) {
  std::vector<unsigned char> body(file_key.size() + aead_tag_size);
  if (auto r = aead_seal(wrap_key.view(), zero_nonce, file_key, body); !r) {
    return r.error();
  }
  return body;
}

/// The file key when `body` opens under `wrap_key`, nullopt otherwise.
result<std::optional<secret_bytes>> open_file_key(const key32& wrap_key, byte_view body) {
  std::array<unsigned char, file_key_size> file_key{};
  auto opened = aead_open(wrap_key.view(), zero_nonce, body, file_key);
  if (!opened) {
    return opened.error();
  }
  if (!*opened) {
    return std::nullopt;
  }
  secret_bytes out(file_key);
  cleanse(file_key);
  return std::optional<secret_bytes>(std::move(out));
}

/// corrupt naming the stanza type and what is wrong with it.
error bad_stanza(std::string_view type, std::string_view what) {
  return make_error(errc::corrupt, fmt::format("malformed {} stanza: {}", type, what));
}

/// The 4-byte tag ssh stanzas carry: the first bytes of SHA-256 of the wire key.
std::string ssh_tag(byte_view wire_key) {
  const auto digest = sha256(wire_key);
  return base64_encode(byte_view(digest).first(4));
}

/// The Ed25519 public key (32 bytes) inside an ssh-ed25519 wire key.
result<byte_view> ed25519_key_of(byte_view wire) {
  ssh_reader reader(wire);
  const auto type = reader.string();
  const auto key = reader.string();
  if (!type || as_text(*type) != "ssh-ed25519" || !key || key->size() != 32) {
    return make_error(errc::invalid_key, "malformed ssh-ed25519 public key");
  }
  return *key;
}

result<stanza> wrap_x25519(byte_view their_key, byte_view file_key) {
  std::array<unsigned char, 32> ephemeral{};
  if (auto r = random_bytes(ephemeral); !r) {
    return r.error();
  }
  auto share = x25519_public(ephemeral);
  auto shared = x25519(ephemeral, their_key);
  cleanse(ephemeral);
  if (!share || !shared) {
    return share ? shared.error() : share.error();
  }
  auto wrap_key = hkdf_sha256(shared->view(), concat(share->view(), their_key), x25519_label);
  if (!wrap_key) {
    return wrap_key.error();
  }
  auto body = seal_file_key(*wrap_key, file_key);
  if (!body) {
    return body.error();
  }
  return stanza{{"X25519", base64_encode(share->view())}, std::move(*body)};
}

result<stanza> wrap_scrypt(byte_view passphrase, int log2_work_factor, byte_view file_key) {
  std::array<unsigned char, 16> salt{};
  if (auto r = random_bytes(salt); !r) {
    return r.error();
  }
  auto wrap_key = scrypt(passphrase, concat(as_bytes(scrypt_label), salt), log2_work_factor);
  if (!wrap_key) {
    return wrap_key.error();
  }
  auto body = seal_file_key(*wrap_key, file_key);
  if (!body) {
    return body.error();
  }
  return stanza{{"scrypt", base64_encode(salt), std::to_string(log2_work_factor)},
                std::move(*body)};
}

result<stanza> wrap_ssh_rsa(byte_view wire, byte_view file_key) {
  ssh_reader reader(wire);
  reader.string();
  const auto e = reader.string();
  const auto n = reader.string();
  if (!e || !n) {
    return make_error(errc::invalid_key, "malformed ssh-rsa public key");
  }
  auto body = rsa_oaep_encrypt(*n, *e, ssh_rsa_label, file_key);
  if (!body) {
    return body.error();
  }
  return stanza{{"ssh-rsa", ssh_tag(wire)}, std::move(*body)};
}

/// The key both sides of ssh-ed25519 derive from X25519's shared secret: tweaked by a
/// scalar bound to the ssh key, then through HKDF with both public values.
result<key32> ssh_ed25519_wrap_key(const key32& shared, byte_view wire, byte_view share,
                                   byte_view their_montgomery) {
  auto tweak = hkdf_sha256({}, wire, ssh_ed25519_label);
  if (!tweak) {
    return tweak.error();
  }
  auto tweaked = x25519(tweak->view(), shared.view());
  if (!tweaked) {
    return tweaked.error();
  }
  return hkdf_sha256(tweaked->view(), concat(share, their_montgomery), ssh_ed25519_label);
}

result<stanza> wrap_ssh_ed25519(byte_view wire, byte_view file_key) {
  auto ed_key = ed25519_key_of(wire);
  if (!ed_key) {
    return ed_key.error();
  }
  auto montgomery = ed25519_public_to_x25519(*ed_key);
  if (!montgomery) {
    return montgomery.error();
  }
  std::array<unsigned char, 32> ephemeral{};
  if (auto r = random_bytes(ephemeral); !r) {
    return r.error();
  }
  auto share = x25519_public(ephemeral);
  auto shared = x25519(ephemeral, montgomery->view());
  cleanse(ephemeral);
  if (!share || !shared) {
    return share ? shared.error() : share.error();
  }
  auto wrap_key = ssh_ed25519_wrap_key(*shared, wire, share->view(), montgomery->view());
  if (!wrap_key) {
    return wrap_key.error();
  }
  auto body = seal_file_key(*wrap_key, file_key);
  if (!body) {
    return body.error();
  }
  return stanza{{"ssh-ed25519", ssh_tag(wire), base64_encode(share->view())}, std::move(*body)};
}

/// A canonical base64 argument of exactly `size` bytes, or corrupt.
result<std::vector<unsigned char>> argument_bytes(std::string_view type, const std::string& arg,
                                                  std::size_t size, std::string_view what) {
  auto bytes = base64_decode(arg);
  if (!bytes || bytes->size() != size) {
    return bad_stanza(type, fmt::format("{} is not canonical base64 of {} bytes", what, size));
  }
  return std::move(*bytes);
}

result<std::optional<secret_bytes>> unwrap_x25519(byte_view scalar, byte_view our_public,
                                                  const std::vector<stanza>& stanzas) {
  for (const stanza& s : stanzas) {
    if (s.args.empty() || s.args[0] != "X25519") {
      continue;
    }
    if (s.args.size() != 2) {
      return bad_stanza("X25519", fmt::format("{} arguments, not 2", s.args.size()));
    }
    auto share = argument_bytes("X25519", s.args[1], 32, "the ephemeral share");
    if (!share) {
      return share.error();
    }
    if (s.body.size() != file_key_size + aead_tag_size) {
      return bad_stanza("X25519", fmt::format("a body of {} bytes, not 32", s.body.size()));
    }
    auto shared = x25519(scalar, *share);
    if (!shared) {
      return shared.error();
    }
    auto wrap_key = hkdf_sha256(shared->view(), concat(*share, our_public), x25519_label);
    if (!wrap_key) {
      return wrap_key.error();
    }
    auto key = open_file_key(*wrap_key, s.body);
    if (!key || *key) {
      return key;
    }
  }
  return std::nullopt;
}

/// age's rule for the work factor argument: decimal without leading zeros.
std::optional<int> parse_work_factor(std::string_view text) {
  if (text.empty() || text.size() > 2 || text[0] < '1' || text[0] > '9' ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

result<std::optional<secret_bytes>> unwrap_scrypt(byte_view passphrase, int max_work_factor,
                                                  const std::vector<stanza>& stanzas) {
  for (const stanza& s : stanzas) {
    if (s.args.empty() || s.args[0] != "scrypt") {
      continue;
    }
    if (s.args.size() != 3) {
      return bad_stanza("scrypt", fmt::format("{} arguments, not 3", s.args.size()));
    }
    auto salt = argument_bytes("scrypt", s.args[1], 16, "the salt");
    if (!salt) {
      return salt.error();
    }
    const auto work_factor = parse_work_factor(s.args[2]);
    if (!work_factor) {
      return bad_stanza("scrypt", fmt::format("work factor \"{}\" is not a decimal number "
                                              "without leading zeros, below 100",
                                              s.args[2]));
    }
    if (*work_factor > max_work_factor) {
      return bad_stanza("scrypt", fmt::format("work factor 2^{} is above the maximum 2^{}",
                                              *work_factor, max_work_factor));
    }
    if (s.body.size() != file_key_size + aead_tag_size) {
      return bad_stanza("scrypt", fmt::format("a body of {} bytes, not 32", s.body.size()));
    }
    auto wrap_key = scrypt(passphrase, concat(as_bytes(scrypt_label), *salt), *work_factor);
    if (!wrap_key) {
      return wrap_key.error();
    }
    auto key = open_file_key(*wrap_key, s.body);
    if (!key || *key) {
      return key;
    }
  }
  return std::nullopt;
}

result<std::optional<secret_bytes>> unwrap_ssh_rsa(byte_view secret, byte_view wire,
                                                   const std::vector<stanza>& stanzas) {
  const std::string tag = ssh_tag(wire);
  for (const stanza& s : stanzas) {
    if (s.args.empty() || s.args[0] != "ssh-rsa") {
      continue;
    }
    if (s.args.size() != 2) {
      return bad_stanza("ssh-rsa", fmt::format("{} arguments, not 2", s.args.size()));
    }
    if (s.args[1] != tag) {
      continue;
    }
    ssh_reader reader(secret);
    rsa_private_parts parts;
    for (byte_view* part : {&parts.n, &parts.e, &parts.d, &parts.p, &parts.q}) {
      auto value = reader.string();
      if (!value) {
        return make_error(errc::internal, "ssh-rsa identity: malformed stored key");
      }
      *part = *value;
    }
    auto key = rsa_oaep_decrypt(parts, ssh_rsa_label, s.body);
    if (!key) {
      return key.error();
    }
    if (key->size() == file_key_size) {
      secret_bytes out(*key);
      cleanse(*key);
      return std::optional<secret_bytes>(std::move(out));
    }
    cleanse(*key);
  }
  return std::nullopt;
}

result<std::optional<secret_bytes>> unwrap_ssh_ed25519(byte_view seed, byte_view wire,
                                                       const std::vector<stanza>& stanzas) {
  const std::string tag = ssh_tag(wire);
  for (const stanza& s : stanzas) {
    if (s.args.empty() || s.args[0] != "ssh-ed25519") {
      continue;
    }
    if (s.args.size() != 3) {
      return bad_stanza("ssh-ed25519", fmt::format("{} arguments, not 3", s.args.size()));
    }
    if (s.args[1] != tag) {
      continue;
    }
    auto share = argument_bytes("ssh-ed25519", s.args[2], 32, "the ephemeral share");
    if (!share) {
      return share.error();
    }
    if (s.body.size() != file_key_size + aead_tag_size) {
      return bad_stanza("ssh-ed25519", fmt::format("a body of {} bytes, not 32", s.body.size()));
    }
    // The X25519 scalar of an Ed25519 key is the first half of SHA-512(seed), as
    // Ed25519 itself derives its secret scalar (RFC 8032 section 5.1.5).
    auto expanded = sha512(seed);
    auto scalar = byte_view(expanded).first(32);
    auto our_public = x25519_public(scalar);
    auto shared = x25519(scalar, *share);
    cleanse(expanded);
    if (!our_public || !shared) {
      return our_public ? shared.error() : our_public.error();
    }
    auto wrap_key = ssh_ed25519_wrap_key(*shared, wire, *share, our_public->view());
    if (!wrap_key) {
      return wrap_key.error();
    }
    auto key = open_file_key(*wrap_key, s.body);
    if (!key || *key) {
      return key;
    }
  }
  return std::nullopt;
}

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

/// Calls `each(line_number, line)` on every line that is neither blank nor a comment.
template <class Each>
auto for_each_line(std::string_view contents, Each each) -> decltype(each(0, contents)) {
  int number = 0;
  while (!contents.empty()) {
    const std::size_t newline = contents.find('\n');
    const std::string_view raw = contents.substr(0, newline);
    contents =
        newline == std::string_view::npos ? std::string_view{} : contents.substr(newline + 1);
    ++number;
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') {
      continue;
    }
    if (auto r = each(number, line); !r) {
      return r;
    }
  }
  return {};
}

error at_line(int number, const error& e) {
  return make_error(e.code, fmt::format("line {}: {}", number, e.message));
}

}  // namespace

std::string base64_encode_padded(std::span<const unsigned char> bytes) {
  std::string out = base64_encode(bytes);
  while (out.size() % 4 != 0) {
    out += '=';
  }
  return out;
}

std::optional<std::vector<unsigned char>> base64_decode_padded(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  for (int i = 0; i < 2 && !text.empty() && text.back() == '='; ++i) {
    text.remove_suffix(1);
  }
  return base64_decode(text);
}

recipient access::make_recipient(recipient::kind kind, std::vector<unsigned char> key) {
  recipient r;
  r.kind_ = kind;
  r.key_ = std::move(key);
  return r;
}

recipient access::make_passphrase_recipient(secret_bytes passphrase, int log2_work_factor) {
  recipient r;
  r.kind_ = recipient::kind::scrypt;
  r.passphrase_ = std::move(passphrase);
  r.log2_work_factor_ = log2_work_factor;
  return r;
}

identity access::make_identity(identity::kind kind, secret_bytes secret,
                               std::vector<unsigned char> public_key) {
  identity id;
  id.kind_ = kind;
  id.secret_ = std::move(secret);
  id.public_key_ = std::move(public_key);
  return id;
}

result<stanza> access::wrap(const recipient& r, std::span<const unsigned char> file_key) {
  switch (r.kind_) {
    case recipient::kind::x25519:
      return wrap_x25519(r.key_, file_key);
    case recipient::kind::scrypt:
      return wrap_scrypt(r.passphrase_.bytes(), r.log2_work_factor_, file_key);
    case recipient::kind::ssh_rsa:
      return wrap_ssh_rsa(r.key_, file_key);
    case recipient::kind::ssh_ed25519:
      return wrap_ssh_ed25519(r.key_, file_key);
  }
  return make_error(errc::internal, "unknown recipient kind");
}

result<std::optional<secret_bytes>> access::unwrap(const identity& id,
                                                   const std::vector<stanza>& stanzas) {
  switch (id.kind_) {
    case identity::kind::x25519:
      return unwrap_x25519(id.secret_.bytes(), id.public_key_, stanzas);
    case identity::kind::scrypt:
      return unwrap_scrypt(id.secret_.bytes(), id.max_log2_work_factor_, stanzas);
    case identity::kind::ssh_rsa:
      return unwrap_ssh_rsa(id.secret_.bytes(), id.public_key_, stanzas);
    case identity::kind::ssh_ed25519:
      return unwrap_ssh_ed25519(id.secret_.bytes(), id.public_key_, stanzas);
  }
  return make_error(errc::internal, "unknown identity kind");
}

secret_bytes::secret_bytes(std::span<const unsigned char> bytes)
    : data_(bytes.begin(), bytes.end()) {}
secret_bytes::secret_bytes(const secret_bytes& other) = default;
secret_bytes::secret_bytes(secret_bytes&& other) noexcept : data_(std::move(other.data_)) {
  other.data_.clear();
}
secret_bytes& secret_bytes::operator=(const secret_bytes& other) {
  if (this != &other) {
    wipe();
    data_ = other.data_;
  }
  return *this;
}
secret_bytes& secret_bytes::operator=(secret_bytes&& other) noexcept {
  if (this != &other) {
    wipe();
    data_ = std::move(other.data_);
    other.data_.clear();
  }
  return *this;
}
secret_bytes::~secret_bytes() { wipe(); }
void secret_bytes::wipe() noexcept {
  cleanse(data_);
  data_.clear();
}

}  // namespace detail

std::string recipient::to_string() const {
  switch (kind_) {
    case kind::x25519:
      return detail::bech32_encode(detail::recipient_hrp, key_);
    case kind::scrypt:
      return "scrypt passphrase";
    case kind::ssh_rsa:
      return "ssh-rsa " + detail::base64_encode_padded(key_);
    case kind::ssh_ed25519:
      return "ssh-ed25519 " + detail::base64_encode_padded(key_);
  }
  return "unknown recipient";
}

result<recipient> identity::to_recipient() const {
  switch (kind_) {
    case kind::x25519:
      return detail::access::make_recipient(recipient::kind::x25519, public_key_);
    case kind::scrypt:
      return make_error(errc::invalid_key,
                        "a passphrase identity has no recipient to show; use "
                        "passphrase_recipient");
    case kind::ssh_rsa:
      return detail::access::make_recipient(recipient::kind::ssh_rsa, public_key_);
    case kind::ssh_ed25519:
      return detail::access::make_recipient(recipient::kind::ssh_ed25519, public_key_);
  }
  return make_error(errc::internal, "unknown identity kind");
}

std::string identity::to_string() const {
  switch (kind_) {
    case kind::x25519:
      return detail::bech32_encode("AGE-SECRET-KEY-", secret_.bytes());
    case kind::scrypt:
      return "scrypt passphrase";
    case kind::ssh_rsa:
      return "ssh-rsa private key";
    case kind::ssh_ed25519:
      return "ssh-ed25519 private key";
  }
  return "unknown identity";
}

result<recipient> parse_recipient(std::string_view text) {
  text = detail::trim(text);
  if (text.starts_with("ssh-") || text.starts_with("ecdsa-") || text.starts_with("sk-")) {
    return detail::parse_ssh_recipient(text);
  }
  if (text.starts_with("AGE-SECRET-KEY-") || text.starts_with("age-secret-key-")) {
    return make_error(errc::invalid_key,
                      "this is an identity (a secret key), not a recipient: give the age1… "
                      "public key");
  }
  auto decoded = detail::bech32_decode(text);
  if (!decoded) {
    return decoded.error();
  }
  if (decoded->hrp != detail::recipient_hrp) {
    return make_error(
        errc::invalid_key,
        fmt::format("wrong HRP \"{}\" (an X25519 recipient starts with \"age1\")", decoded->hrp));
  }
  if (decoded->data.size() != 32) {
    return make_error(errc::invalid_key, fmt::format("an X25519 recipient holds 32 bytes, this "
                                                     "one {}",
                                                     decoded->data.size()));
  }
  return detail::access::make_recipient(recipient::kind::x25519, std::move(decoded->data));
}

result<std::vector<recipient>> parse_recipients_file(std::string_view contents) {
  std::vector<recipient> out;
  auto r = detail::for_each_line(contents, [&](int number, std::string_view line) -> result<void> {
    auto parsed = parse_recipient(line);
    if (!parsed) {
      return detail::at_line(number, parsed.error());
    }
    out.push_back(std::move(*parsed));
    return {};
  });
  if (!r) {
    return r.error();
  }
  if (out.empty()) {
    return make_error(errc::invalid_key, "no recipients in the file");
  }
  return out;
}

recipient passphrase_recipient(std::string passphrase, int log2_work_factor) {
  recipient r = detail::access::make_passphrase_recipient(
      detail::secret_bytes(detail::as_bytes(passphrase)), log2_work_factor);
  detail::cleanse({reinterpret_cast<unsigned char*>(passphrase.data()), passphrase.size()});
  return r;
}

namespace {

result<identity> parse_x25519_identity(std::string_view text) {
  auto decoded = detail::bech32_decode(text);
  if (!decoded) {
    // The message never quotes the text: it is a secret key.
    return decoded.error();
  }
  if (decoded->hrp != detail::identity_hrp) {
    detail::cleanse(decoded->data);
    return make_error(errc::invalid_key,
                      fmt::format("wrong HRP \"{}\" (an identity starts with \"AGE-SECRET-KEY-1\")",
                                  decoded->hrp));
  }
  if (decoded->data.size() != 32) {
    detail::cleanse(decoded->data);
    return make_error(errc::invalid_key, "an X25519 identity holds 32 bytes");
  }
  detail::secret_bytes secret(decoded->data);
  detail::cleanse(decoded->data);
  auto public_key = detail::x25519_public(secret.bytes());
  if (!public_key) {
    return public_key.error();
  }
  return detail::access::make_identity(
      identity::kind::x25519, std::move(secret),
      std::vector<unsigned char>(public_key->bytes.begin(), public_key->bytes.end()));
}

}  // namespace

result<std::vector<identity>> parse_identities(std::string_view file_contents) {
  if (file_contents.find("-----BEGIN OPENSSH PRIVATE KEY-----") != std::string_view::npos) {
    auto id = detail::parse_ssh_identity(file_contents);
    if (!id) {
      return id.error();
    }
    std::vector<identity> out;
    out.push_back(std::move(*id));
    return out;
  }
  if (file_contents.find("-----BEGIN") != std::string_view::npos) {
    return make_error(errc::invalid_key,
                      "unsupported private key format: only age identities and unencrypted "
                      "OpenSSH keys (-----BEGIN OPENSSH PRIVATE KEY-----) are read");
  }
  std::vector<identity> out;
  auto r =
      detail::for_each_line(file_contents, [&](int number, std::string_view line) -> result<void> {
        auto parsed = parse_x25519_identity(line);
        if (!parsed) {
          return detail::at_line(number, parsed.error());
        }
        out.push_back(std::move(*parsed));
        return {};
      });
  if (!r) {
    return r.error();
  }
  if (out.empty()) {
    return make_error(errc::invalid_key, "no identities in the file");
  }
  return out;
}

identity passphrase_identity(std::string passphrase) {
  identity id = detail::access::make_identity(
      identity::kind::scrypt, detail::secret_bytes(detail::as_bytes(passphrase)), {});
  detail::cleanse({reinterpret_cast<unsigned char*>(passphrase.data()), passphrase.size()});
  return id;
}

identity generate_x25519_identity() {
  std::array<unsigned char, 32> scalar{};
  if (auto r = detail::random_bytes(scalar); !r) {
    throw_exception_from_error(r.error(), BOOST_CURRENT_LOCATION);
  }
  detail::secret_bytes secret(scalar);
  detail::cleanse(scalar);
  auto public_key = detail::x25519_public(secret.bytes());
  if (!public_key) {
    throw_exception_from_error(public_key.error(), BOOST_CURRENT_LOCATION);
  }
  return detail::access::make_identity(
      identity::kind::x25519, std::move(secret),
      std::vector<unsigned char>(public_key->bytes.begin(), public_key->bytes.end()));
}

}  // namespace lifeboat::crypto
