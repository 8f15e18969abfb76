#include "controller/restic/store.hpp"

#include <zstd.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lifeboat::restic {

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

constexpr std::size_t entry_size = 1 + 4 + 32;                 // type, length, ID
constexpr std::size_t compressed_entry_size = 1 + 4 + 4 + 32;  // + uncompressed length
constexpr unsigned char unpacked_version = 2;  // version byte before zstd data in v2 files

error io_error(const std::string& what, int err) {
  return make_error(errc::io, what + ": " + std::strerror(err));
}

result<void> write_all(int fd, std::span<const unsigned char> data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return io_error("cannot write " + what, errno);
    }
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

result<void> fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return io_error("cannot open " + dir.string(), errno);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return io_error("cannot fsync " + dir.string(), err);
  }
  return {};
}

/// A temporary file in the repository's top folder, where restic looks for nothing.
result<std::pair<int, fs::path>> temp_file(const repository& repo) {
  std::string pattern = (repo.path() / ".lifeboat-tmp-XXXXXX").string();
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) {
    return io_error("cannot create a temporary file in " + repo.path().string(), errno);
  }
  return std::pair{fd, fs::path(pattern)};
}

/// fsync, close, make read-only (as restic does) and rename into place, then fsync the folder.
result<void> commit_file(int fd, const fs::path& tmp, const fs::path& final_path) {
  const std::string what = final_path.string();
  if (::fchmod(fd, 0444) != 0 || ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return io_error("cannot sync " + what, err);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_error("cannot close " + what, err);
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_error("cannot rename into " + what, err);
  }
  return fsync_dir(final_path.parent_path());
}

void put_le32(std::vector<unsigned char>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<unsigned char>(v >> (8 * i)));
  }
}

int zstd_level(compression mode) { return mode == compression::max ? 19 : 3; }

result<std::vector<unsigned char>> zstd_compress(std::span<const unsigned char> in, int level) {
  std::vector<unsigned char> out(ZSTD_compressBound(in.size()));
  const std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), level);
  if (ZSTD_isError(n) != 0U) {
    return make_error(errc::internal, std::string("zstd: ") + ZSTD_getErrorName(n));
  }
  out.resize(n);
  return out;
}

/// Decompresses one zstd frame whole; `limit` bounds the output (0: no bound but the frame's).
result<std::vector<unsigned char>> zstd_decompress(std::span<const unsigned char> in,
                                                   std::size_t expected, std::string_view what) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) {
    return make_error(errc::internal, "zstd: cannot create a context");
  }
  std::vector<unsigned char> out;
  std::vector<unsigned char> buf(std::size_t{64} * 1024);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  std::size_t rc = 1;
  while (input.pos < input.size || rc != 0) {
    ZSTD_outBuffer output{buf.data(), buf.size(), 0};
    rc = ZSTD_decompressStream(ctx.get(), &output, &input);
    if (ZSTD_isError(rc) != 0U) {
      return make_error(errc::corrupt, std::string(what) + ": zstd: " + ZSTD_getErrorName(rc));
    }
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(output.pos));
    if (expected != 0 && out.size() > expected) {
      return make_error(errc::corrupt, std::string(what) + ": decompresses to more than " +
                                           std::to_string(expected) + " bytes");
    }
    if (output.pos == 0 && input.pos == input.size && rc != 0) {
      return make_error(errc::corrupt, std::string(what) + ": truncated zstd data");
    }
  }
  if (expected != 0 && out.size() != expected) {
    return make_error(errc::corrupt, std::string(what) + ": decompresses to " +
                                         std::to_string(out.size()) + " bytes, not " +
                                         std::to_string(expected));
  }
  return out;
}

fs::path unpacked_path(const repository& repo, std::string_view kind, const object_id& id) {
  return repo.path() / kind / to_hex(id);
}

fs::path pack_path(const repository& repo, const object_id& id) {
  const std::string hex = to_hex(id);
  return repo.path() / "data" / hex.substr(0, 2) / hex;
}

result<std::vector<unsigned char>> read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(errc::io, "cannot read " + path.string());
  }
  std::vector<unsigned char> data((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  if (in.bad()) {
    return make_error(errc::io, "cannot read " + path.string());
  }
  return data;
}

error field_error(std::string_view where, std::string_view field, std::string_view problem) {
  return make_error(errc::invalid_format, std::string(where) + ": field \"" + std::string(field) +
                                              "\" " + std::string(problem));
}

result<std::uint32_t> u32_field(const json::object& o, std::string_view field,
                                std::string_view where, bool required) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr) {
    if (required) {
      return field_error(where, field, "is missing");
    }
    return 0U;
  }
  if (v->is_uint64() && v->as_uint64() <= UINT32_MAX) {
    return static_cast<std::uint32_t>(v->as_uint64());
  }
  if (v->is_int64() && v->as_int64() >= 0 && v->as_int64() <= UINT32_MAX) {
    return static_cast<std::uint32_t>(v->as_int64());
  }
  return field_error(where, field, "is not an integer in 0..2^32-1");
}

result<object_id> id_field(const json::object& o, std::string_view field, std::string_view where) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr || !v->is_string()) {
    return field_error(where, field, v == nullptr ? "is missing" : "is not a string");
  }
  return parse_object_id(v->as_string(),
                         std::string(where) + ": field \"" + std::string(field) + "\"");
}

}  // namespace

std::size_t object_id_hash::operator()(const object_id& id) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, id.data(), sizeof h);  // SHA-256 output: any 8 bytes are uniform
  return h;
}

std::string to_hex(const object_id& id) { return detail::hex(id); }

fs::path pack_file(const repository& repo, const object_id& pack) { return pack_path(repo, pack); }

result<object_id> parse_object_id(std::string_view hex, std::string_view what) {
  object_id id{};
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    return -1;
  };
  if (hex.size() != 64) {
    return make_error(errc::invalid_format,
                      std::string(what) + ": \"" + std::string(hex) + "\" is not 64 hex digits");
  }
  for (std::size_t i = 0; i < 32; ++i) {
    const int hi = digit(hex[2 * i]);
    const int lo = digit(hex[(2 * i) + 1]);
    if (hi < 0 || lo < 0) {
      return make_error(errc::invalid_format, std::string(what) + ": \"" + std::string(hex) +
                                                  "\" is not 64 lower-case hex digits");
    }
    id.at(i) = static_cast<unsigned char>((hi << 4) | lo);
  }
  return id;
}

// ---- unpacked files ----

result<object_id> write_unpacked(const repository& repo, std::string_view kind,
                                 std::string_view json_text, bool compress) {
  std::vector<unsigned char> plain;
  if (compress && repo.config().version >= 2) {
    auto packed = zstd_compress(detail::as_bytes(json_text), zstd_level(compression::automatic));
    if (!packed) {
      return packed.error();
    }
    plain.reserve(packed->size() + 1);
    plain.push_back(unpacked_version);
    plain.insert(plain.end(), packed->begin(), packed->end());
  } else {
    const auto bytes = detail::as_bytes(json_text);
    plain.assign(bytes.begin(), bytes.end());
  }
  auto sealed = seal(repo.key(), plain);
  if (!sealed) {
    return sealed.error();
  }
  const object_id id = detail::sha256(*sealed);
  auto tmp = temp_file(repo);
  if (!tmp) {
    return tmp.error();
  }
  const fs::path final_path = unpacked_path(repo, kind, id);
  if (auto r = write_all(tmp->first, *sealed, final_path.string()); !r) {
    ::close(tmp->first);
    ::unlink(tmp->second.c_str());
    return r.error();
  }
  if (auto r = commit_file(tmp->first, tmp->second, final_path); !r) {
    return r.error();
  }
  return id;
}

result<std::string> read_unpacked(const repository& repo, std::string_view kind,
                                  const object_id& id) {
  const std::string where = std::string(kind) + "/" + to_hex(id);
  auto sealed = read_whole(unpacked_path(repo, kind, id));
  if (!sealed) {
    return sealed.error();
  }
  if (detail::sha256(*sealed) != id) {
    return make_error(errc::corrupt, where + ": its SHA-256 is not its name");
  }
  auto plain = open(repo.key(), *sealed, where);
  if (!plain) {
    return plain.error();
  }
  if (repo.config().version >= 2 && !plain->empty() && plain->front() == unpacked_version) {
    auto unpacked = zstd_decompress(std::span(*plain).subspan(1), 0, where);
    if (!unpacked) {
      return unpacked.error();
    }
    return std::string(unpacked->begin(), unpacked->end());
  }
  return std::string(plain->begin(), plain->end());
}

result<std::vector<object_id>> list_unpacked(const repository& repo, std::string_view kind) {
  std::vector<object_id> ids;
  std::error_code ec;
  const fs::path dir = repo.path() / kind;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto id = parse_object_id(it->path().filename().string(), "");
    if (id) {
      ids.push_back(*id);
    }
  }
  if (ec) {
    return make_error(errc::io, "cannot list " + dir.string() + ": " + ec.message());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// ---- index ----

std::string serialize_index(std::span<const written_pack> packs) {
  json::array list;
  for (const written_pack& pack : packs) {
    json::array blobs;
    for (const pack_entry& e : pack.blobs) {
      json::object b;
      b["id"] = to_hex(e.id);
      b["type"] = e.type == blob_type::tree ? "tree" : "data";
      b["offset"] = e.offset;
      b["length"] = e.length;
      if (e.uncompressed_length != 0) {
        b["uncompressed_length"] = e.uncompressed_length;
      }
      blobs.push_back(std::move(b));
    }
    json::object p;
    p["id"] = to_hex(pack.id);
    p["blobs"] = std::move(blobs);
    list.push_back(std::move(p));
  }
  json::object o;
  o["packs"] = std::move(list);
  return json::serialize(o);
}

std::uint32_t blob_index::intern_pack(const object_id& pack) {
  auto [it, added] = pack_numbers_.try_emplace(pack, static_cast<std::uint32_t>(packs_.size()));
  if (added) {
    packs_.push_back(pack);
  }
  return it->second;
}

void blob_index::add(const written_pack& pack) {
  const std::uint32_t number = intern_pack(pack.id);
  for (const pack_entry& e : pack.blobs) {
    blobs_.try_emplace(e.id,
                       blob_location{number, e.type, e.offset, e.length, e.uncompressed_length});
  }
}

const blob_location* blob_index::find(const object_id& blob) const {
  auto it = blobs_.find(blob);
  return it == blobs_.end() ? nullptr : &it->second;
}

result<std::vector<written_pack>> read_index_file(const repository& repo, const object_id& file) {
  const std::string where = "index/" + to_hex(file);
  auto text = read_unpacked(repo, "index", file);
  if (!text) {
    return text.error();
  }
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) {
    return make_error(errc::invalid_format, where + ": not a JSON object");
  }
  const json::value* packs = v.as_object().if_contains("packs");
  if (packs == nullptr || !packs->is_array()) {
    return field_error(where, "packs", packs == nullptr ? "is missing" : "is not an array");
  }
  std::vector<written_pack> out;
  out.reserve(packs->as_array().size());
  std::size_t pi = 0;
  for (const json::value& p : packs->as_array()) {
    const std::string pwhere = where + ": packs[" + std::to_string(pi++) + "]";
    if (!p.is_object()) {
      return make_error(errc::invalid_format, pwhere + " is not an object");
    }
    auto pack = id_field(p.as_object(), "id", pwhere);
    if (!pack) {
      return pack.error();
    }
    written_pack& wp = out.emplace_back();
    wp.id = *pack;
    const json::value* blobs = p.as_object().if_contains("blobs");
    if (blobs == nullptr || !blobs->is_array()) {
      return field_error(pwhere, "blobs", blobs == nullptr ? "is missing" : "is not an array");
    }
    wp.blobs.reserve(blobs->as_array().size());
    std::size_t bi = 0;
    for (const json::value& b : blobs->as_array()) {
      const std::string bwhere = pwhere + ".blobs[" + std::to_string(bi++) + "]";
      if (!b.is_object()) {
        return make_error(errc::invalid_format, bwhere + " is not an object");
      }
      const json::object& o = b.as_object();
      auto id = id_field(o, "id", bwhere);
      auto offset = u32_field(o, "offset", bwhere, true);
      auto length = u32_field(o, "length", bwhere, true);
      auto uncompressed = u32_field(o, "uncompressed_length", bwhere, false);
      if (!id) {
        return id.error();
      }
      for (const auto* r : {&offset, &length, &uncompressed}) {
        if (!*r) {
          return r->error();
        }
      }
      const json::value* type = o.if_contains("type");
      blob_type t = blob_type::data;
      if (type != nullptr && type->is_string() && type->as_string() == "tree") {
        t = blob_type::tree;
      } else if (type == nullptr || !type->is_string() || type->as_string() != "data") {
        return field_error(bwhere, "type", "is not \"data\" or \"tree\"");
      }
      wp.blobs.push_back(pack_entry{*id, t, *offset, *length, *uncompressed});
    }
  }
  return out;
}

result<blob_index> blob_index::load(const repository& repo) {
  auto files = list_unpacked(repo, "index");
  if (!files) {
    return files.error();
  }
  blob_index index;
  for (const object_id& file : *files) {
    auto packs = read_index_file(repo, file);
    if (!packs) {
      return packs.error();
    }
    for (const written_pack& pack : *packs) {
      index.add(pack);
    }
  }
  return index;
}

result<std::vector<unsigned char>> read_blob(const repository& repo, const blob_index& index,
                                             const object_id& blob) {
  const std::string what = "blob " + to_hex(blob);
  const blob_location* at = index.find(blob);
  if (at == nullptr) {
    return make_error(errc::invalid_format, what + " is in no index file");
  }
  const fs::path path = pack_path(repo, index.pack_id(at->pack));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return io_error("cannot open " + path.string(), errno);
  }
  std::vector<unsigned char> sealed(at->length);
  std::size_t got = 0;
  while (got < sealed.size()) {
    const ssize_t n =
        ::pread(fd, sealed.data() + got, sealed.size() - got, static_cast<off_t>(at->offset + got));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) {
        continue;
      }
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      return io_error("cannot read " + what + " from " + path.string(), err);
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  auto plain = open(repo.key(), sealed, what);
  if (!plain) {
    return plain.error();
  }
  if (at->uncompressed_length != 0) {
    auto unpacked = zstd_decompress(*plain, at->uncompressed_length, what);
    if (!unpacked) {
      return unpacked.error();
    }
    plain = std::move(*unpacked);
  }
  if (detail::sha256(*plain) != blob) {
    return make_error(errc::corrupt, what + ": content does not hash to its ID");
  }
  return plain;
}

// ---- pack writer ----

pack_writer::pack_writer(const repository& repo, compression mode, int fd, fs::path tmp)
    : repo_(&repo), mode_(mode), fd_(fd), tmp_(std::move(tmp)) {}

pack_writer::~pack_writer() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

result<std::unique_ptr<pack_writer>> pack_writer::create(const repository& repo, compression mode) {
  auto tmp = temp_file(repo);
  if (!tmp) {
    return tmp.error();
  }
  if (repo.config().version < 2) {
    mode = compression::off;  // version 1 repositories have no compressed blobs
  }
  return std::unique_ptr<pack_writer>(new pack_writer(repo, mode, tmp->first, tmp->second));
}

result<void> pack_writer::add(blob_type type, const object_id& id,
                              std::span<const unsigned char> plaintext) {
  // One buffer, sealed where it lies: memory is one blob's worth, whatever the pack.
  constexpr std::size_t iv = 16;
  constexpr std::size_t mac = 16;
  std::size_t stored = plaintext.size();
  std::uint32_t uncompressed = 0;
  const std::size_t room =
      mode_ == compression::off ? stored : std::max(stored, ZSTD_compressBound(stored));
  buffer_.resize(iv + room + mac);
  if (mode_ != compression::off) {
    if (!zstd_) {
      zstd_ = std::shared_ptr<void>(ZSTD_createCCtx(),
                                    [](void* c) { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(c)); });
      if (!zstd_) {
        return make_error(errc::internal, "zstd: cannot create a context");
      }
    }
    const std::size_t n =
        ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(zstd_.get()), buffer_.data() + iv, room,
                          plaintext.data(), plaintext.size(), zstd_level(mode_));
    if (ZSTD_isError(n) != 0U) {
      return make_error(errc::internal, std::string("zstd: ") + ZSTD_getErrorName(n));
    }
    // Keep the compressed form only when it saves something (restic does the same).
    if (n < plaintext.size()) {
      stored = n;
      uncompressed = static_cast<std::uint32_t>(plaintext.size());
    }
  }
  if (uncompressed == 0) {
    std::copy(plaintext.begin(), plaintext.end(), buffer_.begin() + iv);
  }
  const std::span<unsigned char> sealed = std::span(buffer_).first(iv + stored + mac);
  if (auto r = seal_in_place(repo_->key(), sealed); !r) {
    return r.error();
  }
  if (auto r = write_all(fd_, sealed, tmp_.string()); !r) {
    return r.error();
  }
  hash_.update(sealed);
  entries_.push_back({id, type, static_cast<std::uint32_t>(offset_),
                      static_cast<std::uint32_t>(sealed.size()), uncompressed});
  ids_.insert(id);
  offset_ += sealed.size();
  return {};
}

result<written_pack> pack_writer::finish() {
  std::vector<unsigned char> header;
  header.reserve(entries_.size() * compressed_entry_size);
  for (const pack_entry& e : entries_) {
    const bool compressed = e.uncompressed_length != 0;
    const unsigned char t = e.type == blob_type::tree ? 1 : 0;
    header.push_back(compressed ? static_cast<unsigned char>(t + 2) : t);
    put_le32(header, e.length);
    if (compressed) {
      put_le32(header, e.uncompressed_length);
    }
    header.insert(header.end(), e.id.begin(), e.id.end());
  }
  static_assert(entry_size == 37 && compressed_entry_size == 41);
  auto sealed = seal(repo_->key(), header);
  if (!sealed) {
    return sealed.error();
  }
  put_le32(*sealed, static_cast<std::uint32_t>(sealed->size()));
  if (auto r = write_all(fd_, *sealed, tmp_.string()); !r) {
    return r.error();
  }
  hash_.update(*sealed);
  written_pack pack;
  pack.id = hash_.finish();
  pack.size = offset_ + sealed->size();
  pack.blobs = std::move(entries_);
  const int fd = fd_;
  fd_ = -1;
  if (auto r = commit_file(fd, tmp_, pack_path(*repo_, pack.id)); !r) {
    return r.error();
  }
  return pack;
}

}  // namespace lifeboat::restic
