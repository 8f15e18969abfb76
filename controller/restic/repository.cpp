#include "controller/restic/repository.hpp"

#include "controller/restic/chunker.hpp"
#include "controller/restic/primitives.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <unistd.h>

namespace lifeboat::restic {

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

constexpr std::size_t iv_size = 16;
constexpr std::size_t mac_size = 16;
constexpr std::size_t salt_size = 64;  // restic refuses other salt lengths

error field_error(std::string_view where, std::string_view field, std::string_view problem) {
  return make_error(errc::invalid_format, std::string(where) + ": field \"" + std::string(field) +
                                              "\" " + std::string(problem));
}

result<json::object> parse_object(std::string_view text, std::string_view where) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) {
    return make_error(errc::invalid_format,
                      std::string(where) + ": not JSON (" + ec.message() + ")");
  }
  if (!v.is_object()) {
    return make_error(errc::invalid_format, std::string(where) + ": not a JSON object");
  }
  return std::move(v.as_object());
}

result<std::string> string_field(const json::object& o, std::string_view field,
                                 std::string_view where) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr) {
    return field_error(where, field, "is missing");
  }
  if (!v->is_string()) {
    return field_error(where, field, "is not a string");
  }
  return std::string(v->as_string());
}

result<std::uint64_t> uint_field(const json::object& o, std::string_view field,
                                 std::string_view where) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr) {
    return field_error(where, field, "is missing");
  }
  if (v->is_uint64()) {
    return v->as_uint64();
  }
  if (v->is_int64() && v->as_int64() >= 0) {
    return static_cast<std::uint64_t>(v->as_int64());
  }
  return field_error(where, field, "is not a non-negative integer");
}

result<std::vector<unsigned char>> bytes_field(const json::object& o, std::string_view field,
                                               std::string_view where, std::size_t size) {
  auto text = string_field(o, field, where);
  if (!text) {
    return text.error();
  }
  auto bytes =
      detail::base64_decode(*text, std::string(where) + ": field \"" + std::string(field) + "\"");
  if (!bytes) {
    return bytes.error();
  }
  if (size != 0 && bytes->size() != size) {
    return field_error(
        where, field,
        "holds " + std::to_string(bytes->size()) + " bytes, not " + std::to_string(size));
  }
  return bytes;
}

template <std::size_t N>
void copy_to(const std::vector<unsigned char>& from, std::array<unsigned char, N>& to) {
  std::copy_n(from.begin(), N, to.begin());
}

result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(errc::io, "cannot read " + path.string());
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return make_error(errc::io, "cannot read " + path.string());
  }
  return text;
}

result<void> write_file(const fs::path& path, std::span<const unsigned char> data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) {
    return make_error(errc::io, "cannot write " + path.string());
  }
  // restic makes repository files read-only; so do we (the owner may still delete them).
  std::error_code ec;
  fs::permissions(path, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read, ec);
  if (ec) {
    return make_error(errc::io, "cannot chmod " + path.string() + ": " + ec.message());
  }
  return {};
}

std::string rfc3339_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> text{};
  const std::size_t n = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return {text.data(), n};
}

std::string env_or(const char* name, std::string_view fallback) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read once at init
  return v != nullptr && *v != '\0' ? std::string(v) : std::string(fallback);
}

}  // namespace

master_key::~master_key() {
  detail::cleanse(encrypt);
  detail::cleanse(mac_k);
  detail::cleanse(mac_r);
}

result<master_key> master_key::random() {
  master_key key;
  for (std::span<unsigned char> part :
       {std::span<unsigned char>(key.encrypt), std::span<unsigned char>(key.mac_k),
        std::span<unsigned char>(key.mac_r)}) {
    if (auto r = detail::random_bytes(part); !r) {
      return r.error();
    }
  }
  return key;
}

result<std::vector<unsigned char>> seal_with_iv(const master_key& key,
                                                std::span<const unsigned char, 16> iv,
                                                std::span<const unsigned char> plaintext) {
  std::vector<unsigned char> out(iv_size + plaintext.size() + mac_size);
  std::copy(iv.begin(), iv.end(), out.begin());
  const std::span<unsigned char> ciphertext = std::span(out).subspan(iv_size, plaintext.size());
  if (auto r = detail::aes256_ctr(key.encrypt, iv, plaintext, ciphertext); !r) {
    return r.error();
  }
  auto tag = detail::poly1305_aes(key.mac_k, key.mac_r, iv, ciphertext);
  if (!tag) {
    return tag.error();
  }
  std::copy(tag->begin(), tag->end(), out.end() - mac_size);
  return out;
}

result<void> seal_in_place(const master_key& key, std::span<unsigned char> buffer) {
  if (buffer.size() < iv_size + mac_size) {
    throw std::invalid_argument("restic: seal_in_place needs room for the IV and the MAC");
  }
  const std::span<unsigned char> iv = buffer.first(iv_size);
  if (auto r = detail::random_bytes(iv); !r) {
    return r.error();
  }
  const std::span<unsigned char> text = buffer.subspan(iv_size, buffer.size() - iv_size - mac_size);
  if (auto r = detail::aes256_ctr(key.encrypt, iv, text, text); !r) {
    return r.error();
  }
  auto tag = detail::poly1305_aes(key.mac_k, key.mac_r, iv, text);
  if (!tag) {
    return tag.error();
  }
  std::copy(tag->begin(), tag->end(), buffer.last(mac_size).begin());
  return {};
}

result<std::vector<unsigned char>> seal(const master_key& key,
                                        std::span<const unsigned char> plaintext) {
  std::array<unsigned char, iv_size> iv{};
  if (auto r = detail::random_bytes(iv); !r) {
    return r.error();
  }
  return seal_with_iv(key, iv, plaintext);
}

result<std::vector<unsigned char>> open(const master_key& key, std::span<const unsigned char> blob,
                                        std::string_view what) {
  if (blob.size() < iv_size + mac_size) {
    return make_error(errc::corrupt, std::string(what) + ": " + std::to_string(blob.size()) +
                                         " bytes, too short for IV and MAC");
  }
  const auto iv = blob.first(iv_size);
  const auto ciphertext = blob.subspan(iv_size, blob.size() - iv_size - mac_size);
  const auto mac = blob.last(mac_size);
  auto tag = detail::poly1305_aes(key.mac_k, key.mac_r, iv, ciphertext);
  if (!tag) {
    return tag.error();
  }
  if (!detail::equal_constant_time(*tag, mac)) {
    return make_error(errc::corrupt, std::string(what) + ": MAC does not verify");
  }
  std::vector<unsigned char> plaintext(ciphertext.size());
  if (auto r = detail::aes256_ctr(key.encrypt, iv, ciphertext, plaintext); !r) {
    return r.error();
  }
  return plaintext;
}

result<key_file> parse_key_file(std::string_view text, std::string_view where) {
  auto o = parse_object(text, where);
  if (!o) {
    return o.error();
  }
  key_file file;
  auto kdf = string_field(*o, "kdf", where);
  if (!kdf) {
    return kdf.error();
  }
  if (*kdf != "scrypt") {
    return field_error(where, "kdf", "is \"" + *kdf + "\"; only \"scrypt\" is supported");
  }
  auto n = uint_field(*o, "N", where);
  auto r = uint_field(*o, "r", where);
  auto p = uint_field(*o, "p", where);
  for (const auto* v : {&n, &r, &p}) {
    if (!*v) {
      return v->error();
    }
  }
  if (*n < 2 || (*n & (*n - 1)) != 0 || *n > (std::uint64_t{1} << 30)) {
    return field_error(where, "N", "is " + std::to_string(*n) + ", not a power of two in 2..2^30");
  }
  if (*r < 1 || *r > 1024) {
    return field_error(where, "r", "is " + std::to_string(*r) + ", not in 1..1024");
  }
  if (*p < 1 || *p > 1024) {
    return field_error(where, "p", "is " + std::to_string(*p) + ", not in 1..1024");
  }
  file.params = {*n, static_cast<std::uint32_t>(*r), static_cast<std::uint32_t>(*p)};
  auto salt = bytes_field(*o, "salt", where, salt_size);
  if (!salt) {
    return salt.error();
  }
  file.salt = std::move(*salt);
  auto data = bytes_field(*o, "data", where, 0);
  if (!data) {
    return data.error();
  }
  file.data = std::move(*data);
  // Informational fields: kept when present and strings, never required.
  for (auto [field, into] : {std::pair<std::string_view, std::string*>{"created", &file.created},
                             {"username", &file.username},
                             {"hostname", &file.hostname}}) {
    if (const json::value* v = o->if_contains(field); v != nullptr && v->is_string()) {
      *into = std::string(v->as_string());
    }
  }
  return file;
}

std::string serialize_key_file(const key_file& file) {
  json::object o;
  o["created"] = file.created;
  o["username"] = file.username;
  o["hostname"] = file.hostname;
  o["kdf"] = "scrypt";
  o["N"] = file.params.n;
  o["r"] = file.params.r;
  o["p"] = file.params.p;
  o["salt"] = detail::base64_encode(file.salt);
  o["data"] = detail::base64_encode(file.data);
  return json::serialize(o);
}

result<master_key> parse_master_key(std::string_view text, std::string_view where) {
  auto o = parse_object(text, where);
  if (!o) {
    return o.error();
  }
  const json::value* mac = o->if_contains("mac");
  if (mac == nullptr) {
    return field_error(where, "mac", "is missing");
  }
  if (!mac->is_object()) {
    return field_error(where, "mac", "is not an object");
  }
  const std::string mac_where = std::string(where) + ": mac";
  auto k = bytes_field(mac->as_object(), "k", mac_where, 16);
  if (!k) {
    return k.error();
  }
  auto r = bytes_field(mac->as_object(), "r", mac_where, 16);
  if (!r) {
    return r.error();
  }
  auto encrypt = bytes_field(*o, "encrypt", where, 32);
  if (!encrypt) {
    return encrypt.error();
  }
  master_key key;
  copy_to(*k, key.mac_k);
  copy_to(*r, key.mac_r);
  copy_to(*encrypt, key.encrypt);
  detail::cleanse(*k);
  detail::cleanse(*r);
  detail::cleanse(*encrypt);
  return key;
}

std::string serialize_master_key(const master_key& key) {
  json::object mac;
  mac["k"] = detail::base64_encode(key.mac_k);
  mac["r"] = detail::base64_encode(key.mac_r);
  json::object o;
  o["mac"] = std::move(mac);
  o["encrypt"] = detail::base64_encode(key.encrypt);
  return json::serialize(o);
}

namespace {

/// scrypt's 64 bytes: the AES-256 key, then Poly1305-AES's k and r (restic's order).
result<master_key> user_key(std::string_view password, const key_file& file) {
  std::array<unsigned char, 64> derived{};
  if (auto r =
          detail::scrypt(password, file.salt, file.params.n, file.params.r, file.params.p, derived);
      !r) {
    return r.error();
  }
  master_key key;
  std::copy_n(derived.begin(), 32, key.encrypt.begin());
  std::copy_n(derived.begin() + 32, 16, key.mac_k.begin());
  std::copy_n(derived.begin() + 48, 16, key.mac_r.begin());
  detail::cleanse(derived);
  return key;
}

}  // namespace

result<master_key> unlock_key_file(const key_file& file, std::string_view password,
                                   std::string_view where) {
  auto user = user_key(password, file);
  if (!user) {
    return user.error();
  }
  auto plain = open(*user, file.data, where);
  if (!plain) {
    if (plain.error().is(errc::corrupt)) {
      return make_error(errc::wrong_password, std::string(where) + ": password does not open it");
    }
    return plain.error();
  }
  const std::string_view text(reinterpret_cast<const char*>(plain->data()), plain->size());
  auto key = parse_master_key(text, std::string(where) + " (decrypted master key)");
  detail::cleanse(*plain);
  return key;
}

result<key_file> make_key_file(const master_key& key, std::string_view password,
                               const scrypt_params& params, std::string_view hostname,
                               std::string_view username, std::string_view created) {
  key_file file;
  file.created = created;
  file.hostname = hostname;
  file.username = username;
  file.params = params;
  file.salt.resize(salt_size);
  if (auto r = detail::random_bytes(file.salt); !r) {
    return r.error();
  }
  auto user = user_key(password, file);
  if (!user) {
    return user.error();
  }
  std::string plain = serialize_master_key(key);
  auto sealed = seal(*user, detail::as_bytes(plain));
  detail::cleanse({reinterpret_cast<unsigned char*>(plain.data()), plain.size()});
  if (!sealed) {
    return sealed.error();
  }
  file.data = std::move(*sealed);
  return file;
}

result<repository_config> parse_config(std::string_view text, std::string_view where) {
  auto o = parse_object(text, where);
  if (!o) {
    return o.error();
  }
  repository_config config;
  auto version = uint_field(*o, "version", where);
  if (!version) {
    return version.error();
  }
  if (*version < 1 || *version > 2) {
    return field_error(where, "version",
                       "is " + std::to_string(*version) + "; supported versions are 1 and 2");
  }
  config.version = static_cast<unsigned>(*version);
  auto id = string_field(*o, "id", where);
  if (!id) {
    return id.error();
  }
  config.id = std::move(*id);
  auto pol = string_field(*o, "chunker_polynomial", where);
  if (!pol) {
    return pol.error();
  }
  std::uint64_t value = 0;
  const bool hex_ok =
      !pol->empty() && pol->size() <= 16 && std::all_of(pol->begin(), pol->end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      });
  if (!hex_ok) {
    return field_error(where, "chunker_polynomial", "\"" + *pol + "\" is not a hex number");
  }
  value = std::stoull(*pol, nullptr, 16);
  if (degree(value) > 53 || degree(value) < 9 || !is_irreducible(value)) {
    return field_error(where, "chunker_polynomial",
                       "\"" + *pol + "\" is not an irreducible polynomial of degree 9..53");
  }
  config.chunker_polynomial = value;
  return config;
}

std::string serialize_config(const repository_config& config) {
  json::object o;
  o["version"] = config.version;
  o["id"] = config.id;
  std::ostringstream pol;
  pol << std::hex << config.chunker_polynomial;
  o["chunker_polynomial"] = pol.str();
  return json::serialize(o);
}

result<repository> repository::open(const fs::path& path, std::string_view password) {
  const fs::path keys = path / "keys";
  std::error_code ec;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(keys, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file()) {
      files.push_back(it->path());
    }
  }
  if (ec) {
    return make_error(errc::io, "repository " + path.string() + ": cannot list " + keys.string() +
                                    ": " + ec.message());
  }
  std::sort(files.begin(), files.end());
  std::optional<master_key> key;
  std::optional<error> other;  // a broken key file, reported if no other key opens
  for (const fs::path& file : files) {
    const std::string where = "keys/" + file.filename().string();
    auto text = read_file(file);
    if (!text) {
      other = text.error();
      continue;
    }
    auto parsed = parse_key_file(*text, where);
    if (!parsed) {
      other = parsed.error();
      continue;
    }
    auto unlocked = unlock_key_file(*parsed, password, where);
    if (unlocked) {
      key = *unlocked;
      break;
    }
    if (!unlocked.error().is(errc::wrong_password)) {
      other = unlocked.error();
    }
  }
  if (!key) {
    std::string message = "repository " + path.string() + ": none of its " +
                          std::to_string(files.size()) + " key file(s) opens with this password";
    if (other) {
      message += " (also: " + other->describe() + ")";
    }
    return make_error(errc::wrong_password, std::move(message));
  }
  auto sealed = read_file(path / "config");
  if (!sealed) {
    return sealed.error();
  }
  const std::string where = "repository " + path.string() + ": config";
  auto plain = restic::open(*key, detail::as_bytes(*sealed), where);
  if (!plain) {
    return plain.error();
  }
  auto config = parse_config({reinterpret_cast<const char*>(plain->data()), plain->size()}, where);
  if (!config) {
    return config.error();
  }
  return repository(path, *key, std::move(*config));
}

result<repository> repository::init(const fs::path& path, std::string_view password,
                                    const scrypt_params& params) {
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_empty(path, ec)) {
    return make_error(
        errc::io, "repository " + path.string() + ": cannot initialise, the folder is not empty");
  }
  fs::create_directories(path, ec);
  for (const char* dir : {"keys", "data", "index", "snapshots", "locks"}) {
    if (!ec) {
      fs::create_directory(path / dir, ec);
    }
  }
  for (int i = 0; i < 256 && !ec; ++i) {
    const std::array<unsigned char, 1> b{static_cast<unsigned char>(i)};
    fs::create_directory(path / "data" / detail::hex(b), ec);
  }
  if (ec) {
    return make_error(
        errc::io, "repository " + path.string() + ": cannot create its folders: " + ec.message());
  }
  auto key = master_key::random();
  if (!key) {
    return key.error();
  }
  repository_config config;
  config.version = 2;
  std::array<unsigned char, 32> id{};
  if (auto r = detail::random_bytes(id); !r) {
    return r.error();
  }
  config.id = detail::hex(id);
  auto pol = random_polynomial();
  if (!pol) {
    return pol.error();
  }
  config.chunker_polynomial = *pol;

  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) {
    host[0] = '\0';
  }
  auto file =
      make_key_file(*key, password, params, host.data(), env_or("USER", "lifeboat"), rfc3339_now());
  if (!file) {
    return file.error();
  }
  // restic names a key file by the SHA-256 of its (plain JSON) bytes. The key goes
  // first: a config without a key that opens it would be a dead repository.
  const std::string key_json = serialize_key_file(*file);
  const auto key_id = detail::sha256(detail::as_bytes(key_json));
  if (auto r = write_file(path / "keys" / detail::hex(key_id), detail::as_bytes(key_json)); !r) {
    return r.error();
  }
  const std::string config_json = serialize_config(config);
  auto sealed = seal(*key, detail::as_bytes(config_json));
  if (!sealed) {
    return sealed.error();
  }
  if (auto r = write_file(path / "config", *sealed); !r) {
    return r.error();
  }
  return repository(path, *key, std::move(config));
}

}  // namespace lifeboat::restic
