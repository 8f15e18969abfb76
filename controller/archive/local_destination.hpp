#pragma once

#include "controller/archive/compressor.hpp"
#include "controller/archive/error.hpp"
#include "controller/archive/name_pattern.hpp"
#include "controller/archive/retention.hpp"
#include "controller/archive/writer.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// A local folder as a destination: archives appear in it only when complete,
// each with a checksum file that `sha256sum -c` reads.
namespace lifeboat::archive {

struct committed_archive {
  std::filesystem::path path;           ///< <dir>/<file name>
  std::filesystem::path checksum_path;  ///< <dir>/<file name>.sha256
  std::string sha256;                   ///< lower-case hex
  std::uint64_t size = 0;
};

/// An archive being written into a folder. It is written as
/// "<file name>.partial" (mode 0600: archives hold the volumes' secrets),
/// hashed (SHA-256) as it streams, and published by commit(): the data is
/// fsynced, "<file name>.sha256" (sha256sum's format, `<hex>  <file name>`)
/// is written and renamed into place, then the archive is renamed to its
/// final name and the folder is fsynced. So an archive under its final name
/// is complete and has its checksum beside it; a crash leaves at most a
/// ".partial" or a checksum without its archive, which remove_leftovers()
/// clears. An existing archive of the same name (a retried run) is replaced
/// atomically. Without commit(), destruction (or discard()) removes the
/// partial file.
///
/// Not thread-safe: one thread writes and commits.
class local_archive_file {
 public:
  /// Opens "<directory>/<file_name>.partial" for writing. The folder must
  /// exist (a destination whose mount is missing must fail, not fill the
  /// container's own file system). Fails with errc::invalid_argument for a
  /// file name that is empty or has a '/', errc::io_error otherwise.
  static result<local_archive_file> create(const std::filesystem::path& directory,
                                           std::string file_name);

  local_archive_file(local_archive_file&&) noexcept;
  local_archive_file& operator=(local_archive_file&&) noexcept;
  ~local_archive_file();

  /// Appends `bytes` (a byte_sink: see sink()).
  result<void> write(std::span<const char> bytes);

  /// A byte_sink writing to this file; the file must outlive it.
  byte_sink sink();

  /// Publishes the archive as described above. On failure nothing is left
  /// under the final names and the partial file is removed.
  result<committed_archive> commit();

  /// Removes the partial file now; the object is then empty.
  void discard();

  std::uint64_t bytes_written() const;

 private:
  struct impl;
  explicit local_archive_file(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// Points the symlink "<directory>/<link_name>" at `target_file` (a name in
/// the same folder, so the link is relative), atomically: a new link under a
/// temporary name is renamed over the old one. Refuses to replace anything
/// that is not a symlink.
result<void> update_latest_link(const std::filesystem::path& directory, std::string_view link_name,
                                std::string_view target_file);

/// The regular files in `directory` (not symlinks, folders or anything else),
/// with their mtimes and sizes, for plan_retention.
result<std::vector<archive_file>> list_archive_files(const std::filesystem::path& directory);

/// Removes each named archive, then its ".sha256" (in that order: a crash in
/// between leaves a checksum without archive, which remove_leftovers clears).
/// Files already gone are fine. Returns the paths it removed; stops at the
/// first other error.
result<std::vector<std::string>> remove_archives(const std::filesystem::path& directory,
                                                 std::span<const std::string> names);

/// Clears what interrupted runs of the schedule `pattern` describes left in
/// `directory`: "<archive>.partial", "<archive>.sha256.partial", and
/// "<archive>.sha256" whose archive is gone. Never touches another file.
/// Call before a run, never while one of the same schedule is writing.
/// Returns the names it removed.
result<std::vector<std::string>> remove_leftovers(const std::filesystem::path& directory,
                                                  const archive_name_pattern& pattern);

struct local_target {
  std::filesystem::path directory;
  std::string file_name;                   ///< expanded name plus extension
  std::optional<std::string> latest_link;  ///< e.g. "nightly-db-latest.tar.gz"
};

struct local_write_result {
  write_report report;
  committed_archive archive;
};

/// write_archive into a local_archive_file, committed when the archive is
/// complete and discarded otherwise; then the latest link, whose failure is a
/// warning of the report (the archive itself is safe by then).
result<local_write_result> write_local_archive(std::span<const volume_source> sources,
                                               const write_options& options,
                                               const local_target& target);

}  // namespace lifeboat::archive
