#pragma once

#include "controller/restic/error.hpp"
#include "controller/restic/primitives.hpp"
#include "controller/restic/repository.hpp"

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

// Blobs, packs and index files as restic's design document describes them.
// A pack is its blobs (each sealed on its own, zstd-compressed first when the
// repository is version 2 and compression is on), then the sealed header
// listing them, then the header's sealed length as 4 little-endian bytes; its
// ID (and name under data/<first two hex digits>/) is the SHA-256 of the whole
// file. Index files list, per pack, where each blob lies.
namespace lifeboat::restic {

using object_id = std::array<unsigned char, 32>;

struct object_id_hash {
  std::size_t operator()(const object_id& id) const noexcept;
};

std::string to_hex(const object_id& id);
/// data/<first two hex digits>/<id>: where the pack `pack` lies.
std::filesystem::path pack_file(const repository& repo, const object_id& pack);

/// 64 hex digits; invalid_format naming `what` otherwise.
result<object_id> parse_object_id(std::string_view hex, std::string_view what);

enum class blob_type : std::uint8_t { data, tree };

enum class compression : std::uint8_t { off, automatic, max };

/// Where a blob lies: its pack (a number into index::pack_ids()), offset and stored
/// length; uncompressed_length is 0 when the blob is stored uncompressed.
struct blob_location {
  std::uint32_t pack = 0;
  blob_type type = blob_type::data;
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
  std::uint32_t uncompressed_length = 0;
};

/// One blob of a pack being written or just written.
struct pack_entry {
  object_id id{};
  blob_type type = blob_type::data;
  std::uint32_t offset = 0;
  std::uint32_t length = 0;
  std::uint32_t uncompressed_length = 0;
};

struct written_pack {
  object_id id{};
  std::uint64_t size = 0;
  std::vector<pack_entry> blobs;
};

/// Every blob of the repository's index files, by ID.
class blob_index {
 public:
  /// Reads every file under index/ (plain or, in version 2, zstd-compressed JSON).
  static result<blob_index> load(const repository& repo);

  const blob_location* find(const object_id& blob) const;
  const object_id& pack_id(std::uint32_t pack) const { return packs_.at(pack); }
  std::size_t size() const { return blobs_.size(); }
  void add(const written_pack& pack);

 private:
  std::uint32_t intern_pack(const object_id& pack);

  std::vector<object_id> packs_;
  std::unordered_map<object_id, std::uint32_t, object_id_hash> pack_numbers_;
  std::unordered_map<object_id, blob_location, object_id_hash> blobs_;
};

/// Reads one blob, checks its ID. corrupt when the MAC or the ID does not match.
result<std::vector<unsigned char>> read_blob(const repository& repo, const blob_index& index,
                                             const object_id& blob);

/// Writes one pack file: blobs go straight to a temporary file in the repository's
/// folder; finish() appends the header, fsyncs and renames it to data/xx/<id>.
/// Memory: the header entries and one blob at a time.
class pack_writer {
 public:
  static result<std::unique_ptr<pack_writer>> create(const repository& repo, compression mode);
  ~pack_writer();
  pack_writer(const pack_writer&) = delete;
  pack_writer& operator=(const pack_writer&) = delete;

  /// Seals `plaintext` (compressed first when enabled) and appends it.
  result<void> add(blob_type type, const object_id& id, std::span<const unsigned char> plaintext);
  bool contains(const object_id& id) const { return ids_.contains(id); }
  bool empty() const { return entries_.empty(); }
  /// Bytes written so far (blobs only).
  std::uint64_t size() const { return offset_; }
  result<written_pack> finish();

 private:
  pack_writer(const repository& repo, compression mode, int fd, std::filesystem::path tmp);

  const repository* repo_;
  compression mode_;
  int fd_;
  std::filesystem::path tmp_;
  std::uint64_t offset_ = 0;
  std::vector<pack_entry> entries_;
  std::unordered_set<object_id, object_id_hash> ids_;
  detail::sha256_stream hash_;
  std::vector<unsigned char> buffer_;  // IV, the (compressed) blob, MAC: reused
  std::shared_ptr<void> zstd_;         // ZSTD_CCtx, reused, created on first use
};

/// The packs one index file lists, in its order (sizes unknown: 0). invalid_format naming
/// the file and the field (`packs[2].blobs[0].offset`); corrupt or io as read_unpacked.
result<std::vector<written_pack>> read_index_file(const repository& repo, const object_id& file);

/// Serialises an index file's JSON for `packs`.
std::string serialize_index(std::span<const written_pack> packs);

/// Writes an unpacked file (index, snapshot, lock) of `kind` ("index", "snapshots",
/// "locks"): JSON, zstd-compressed behind a version byte when the repository is
/// version 2 and `compress`, sealed, named by the SHA-256 of the stored bytes;
/// tmp + fsync + rename. Returns the ID.
result<object_id> write_unpacked(const repository& repo, std::string_view kind,
                                 std::string_view json, bool compress);
/// Reads and decrypts one unpacked file, decompressing it when needed.
result<std::string> read_unpacked(const repository& repo, std::string_view kind,
                                  const object_id& id);
/// The IDs of the files under `kind` (names that are not IDs are skipped).
result<std::vector<object_id>> list_unpacked(const repository& repo, std::string_view kind);

}  // namespace lifeboat::restic
