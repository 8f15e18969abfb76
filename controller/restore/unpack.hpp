#pragma once

#include "controller/crypto/age.hpp"
#include "controller/crypto/openpgp.hpp"
#include "controller/restore/entry_check.hpp"
#include "controller/restore/error.hpp"

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

// Reading an archive back: verify it completely without writing anything,
// then unpack it into folders (the direct path) or re-stream it as the tar
// that the engine's PUT /containers/{id}/archive takes (the engine path).
// gzip, zstd and uncompressed tar (pax, ustar, GNU, as GNU tar, bsdtar and
// lifeboat write them) are read; the compression is recognised, not guessed
// from the name. Memory stays at a few MiB whatever the archive's size.
namespace lifeboat::restore {

/// An archive opened for reading, with the checksum recorded beside it. The
/// file stays open, so the verified archive is the unpacked one even if its
/// path is replaced in between.
class archive_file {
 public:
  /// Opens `path` and reads "<path>.sha256" when it exists (sha256sum's
  /// format, as local destinations write it). errc::invalid_argument when the
  /// archive cannot be opened or the checksum file is malformed.
  static result<archive_file> open(const std::filesystem::path& path);
  /// Takes `fd` (a regular file, read from its start) as the archive shown as
  /// `shown_as`, with `checksum_text` the content of its checksum file
  /// (sha256sum's format) when there is one.
  static result<archive_file> adopt(int fd, std::string shown_as,
                                    const std::optional<std::string>& checksum_text);

  archive_file(archive_file&&) noexcept;
  archive_file& operator=(archive_file&&) noexcept;
  archive_file(const archive_file&) = delete;
  archive_file& operator=(const archive_file&) = delete;
  ~archive_file();

  const std::filesystem::path& path() const { return path_; }
  std::uint64_t size() const { return size_; }
  /// Lower-case hex, when a checksum file was found.
  const std::optional<std::string>& expected_sha256() const { return expected_sha256_; }
  int fd() const { return fd_; }

 private:
  archive_file() = default;
  std::filesystem::path path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::optional<std::string> expected_sha256_;
};

/// Where a read stands, for progress displays.
struct progress {
  std::uint64_t archive_bytes = 0;  ///< of the archive file read so far
  std::uint64_t archive_size = 0;
  std::uint64_t entries = 0;        ///< mapped entries so far
  std::uint64_t content_bytes = 0;  ///< mapped file data so far
};

struct read_options {
  /// What decrypts an age-encrypted archive (recognised by its content, not
  /// its name). Empty: such an archive fails with errc::invalid_argument
  /// saying that it needs a key; a plain archive is read as it is either way.
  std::vector<crypto::identity> identities;
  /// What decrypts an OpenPGP archive (recognised by its first packet, after
  /// age). Unset: such an archive fails with errc::invalid_argument.
  std::optional<crypto::openpgp_identities> openpgp;
  bool allow_devices = false;
  bool allow_absolute_symlinks = false;
  /// Checked before every block; a set flag fails with errc::cancelled.
  const std::atomic<bool>* cancel = nullptr;
  /// Called on the reading thread every few MiB; should return quickly.
  std::function<void(const progress&)> on_progress;
};

/// The room a mapping's files take once written, each file rounded up to
/// allocation_unit (the block or page size of ext4, xfs and tmpfs). Links,
/// folders and metadata are not counted.
struct space_need {
  static constexpr std::uint64_t allocation_unit = 4096;
  std::uint64_t dense = 0;   ///< holes of sparse files written as zeros (the engine path)
  std::uint64_t sparse = 0;  ///< holes kept (the direct path): only the stored data
};

struct verify_report {
  bool checksum_verified = false;      ///< a .sha256 was found and matched
  std::string sha256;                  ///< of the whole file, lower-case hex
  std::string compression;             ///< libarchive's filter name: "gzip", "zstd", "none"
  bool encrypted = false;              ///< decrypted and authenticated to its end
  std::string encryption;              ///< "age" or "OpenPGP" when encrypted
  std::string format;                  ///< e.g. "POSIX pax interchange format"
  std::vector<std::uint64_t> entries;  ///< per mapping
  std::uint64_t content_bytes = 0;     ///< file data of the mapped entries
  std::uint64_t skipped_entries = 0;   ///< outside every mapping
  std::vector<space_need> space;       ///< per mapping
};

/// Pass 1: reads the whole archive and writes nothing. Fails with
/// errc::checksum_mismatch when a checksum file exists and differs (also when
/// the archive is damaged besides: the message then says where it broke),
/// errc::refused for an unsafe entry (entry_checker), errc::missing_volume
/// when a mapping's `from` has no entry, errc::corrupt naming the entry where
/// reading broke (a truncated or damaged archive without checksum).
result<verify_report> verify(const archive_file& archive, const std::vector<mapping>& mappings,
                             const read_options& options);

struct unpack_report {
  std::uint64_t entries = 0;
  std::uint64_t content_bytes = 0;
};

/// Pass 2, direct: extracts mapping i into roots[i] (existing folders) with
/// owners (when root), modes, times, ACLs, xattrs and holes of sparse files,
/// refusing again every entry the checker refuses, and the archive as a whole
/// by the checker's finish() once its last entry is read (the file may have
/// changed since verify(): the error comes after the entries before it were
/// written, and the run fails), and, as defence in depth,
/// anything libarchive's secure-extraction flags refuse (writing through a
/// symlink already in the folder). Existing files are replaced; others stay.
result<unpack_report> extract_to_directories(const archive_file& archive,
                                             const std::vector<mapping>& mappings,
                                             const std::vector<std::filesystem::path>& roots,
                                             const read_options& options);

/// Pass 2, through the engine: the mapped entries re-streamed as one
/// uncompressed pax tar whose paths are "<to>/<path in the volume>" (the
/// volume's root as "<to>"), for PUT .../archive?path=<folder holding the
/// volumes' mounts>. The same checks as extract_to_directories(), finish()
/// before the tar's end is written, so a refusal leaves the engine a broken
/// upload. Produced on demand by pull(); holes of sparse files are
/// sent as zeros (the engine's extraction writes files densely anyway).
class tar_restream {
 public:
  static result<tar_restream> open(const archive_file& archive,
                                   const std::vector<mapping>& mappings,
                                   const read_options& options);

  tar_restream(tar_restream&&) noexcept;
  tar_restream& operator=(tar_restream&&) noexcept;
  ~tar_restream();

  /// Fills a prefix of `into`; 0 at the end of the stream. After an error
  /// the stream is unusable. Not thread-safe.
  result<std::size_t> pull(std::span<char> into);

  unpack_report report() const;

  struct impl;

 private:
  explicit tar_restream(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Removes everything inside `root` (not `root` itself), never following
/// symlinks. errc::io_error naming the path that could not be removed.
result<void> wipe_directory(const std::filesystem::path& root);

}  // namespace lifeboat::restore
