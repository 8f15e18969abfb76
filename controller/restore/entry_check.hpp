#pragma once

#include "controller/restore/error.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

// Which archive entries go where, and which are refused. Pure: no I/O, so the
// rules are tested directly and applied the same way while verifying and while
// unpacking.
namespace lifeboat::restore {

/// Entries under the archive path `from` go to the root of the volume `to`.
/// `from` is a volume name for lifeboat's archives (each volume is a top-level
/// folder), any relative path for other tools' archives, or "." for the
/// archive's root. A leading "./" and a trailing "/" are ignored.
struct mapping {
  std::string from;
  std::string to;

  bool operator==(const mapping&) const = default;
};

/// Parses "FROM" or "FROM=TO" (the CLI's --volume); TO defaults to FROM, and
/// must be given when FROM is a path rather than a volume name.
result<mapping> parse_mapping(std::string_view text);

enum class entry_type {
  file,
  directory,
  symlink,
  hardlink,
  fifo,
  char_device,
  block_device,
  other
};

/// What the checker needs to know of an archive entry.
struct entry_info {
  std::string path;  ///< as stored in the archive
  entry_type type = entry_type::file;
  std::string target;  ///< a symlink's target or a hard link's archive path
};

/// Where an accepted entry goes.
struct placed_entry {
  std::size_t mapping = 0;  ///< index into the checker's mappings
  std::string relative;     ///< path inside the volume; "" for the volume's root
  std::string link;         ///< a hard link's target, relative to the same volume
};

/// Applies the safety rules to entries in archive order. Refused (errc::refused,
/// the message naming the entry):
/// - absolute paths and paths with a ".." component, anywhere in the archive;
/// - in a mapped entry: a symlink whose target is absolute (unless
///   `allow_absolute_symlinks`: such a link resolves in the workload's
///   container, and nothing is ever written through it) or leads out of the
///   volume when resolved from the link's folder (following the archive's own
///   symlinks, checked by finish() once they are all known); an entry whose
///   path goes through a symlink of the archive; a hard link to another
///   volume, or to a path that is not an earlier file entry of the archive;
///   character and block devices unless `allow_devices`; unknown entry types.
/// FIFOs are accepted (they hold no data and tar trees commonly have them).
///
/// Memory: the symlinks of the archive and, per file entry (for hard links), a
/// 64-bit hash of its path with two sequence numbers, so a million files cost
/// tens of MiB, not their names.
class entry_checker {
 public:
  /// `mappings` must be non-empty with distinct, non-nested `from`s and
  /// distinct `to`s (errc::invalid_argument otherwise).
  static result<entry_checker> create(std::vector<mapping> mappings, bool allow_devices,
                                      bool allow_absolute_symlinks);

  /// nullopt for a safe entry outside every mapping (it is skipped).
  result<std::optional<placed_entry>> check(const entry_info& entry);

  /// The checks that need the whole archive: every symlink resolves inside its
  /// volume, and every mapping's `from` had at least one entry
  /// (errc::missing_volume otherwise).
  result<void> finish() const;

  const std::vector<mapping>& mappings() const { return mappings_; }
  /// Entries accepted per mapping so far.
  const std::vector<std::uint64_t>& entries() const { return entries_; }

 private:
  entry_checker(std::vector<mapping> mappings, bool allow_devices, bool allow_absolute_symlinks);

  std::vector<mapping> mappings_;
  bool allow_devices_ = false;
  bool allow_absolute_symlinks_ = false;
  std::vector<std::uint64_t> entries_;
  // Per mapping: relative path -> target of each symlink seen.
  std::vector<std::map<std::string, std::string>> symlinks_;
  // What a hard link may point at. Keyed by the hash of the relative path;
  // only paths that held something other than a folder have a record.
  struct path_state {
    std::uint64_t file_since = 0;   ///< entry number that made it a file; 0: not a file now
    std::uint64_t replaced_at = 0;  ///< last entry number that made it a non-folder
  };
  std::vector<std::unordered_map<std::uint64_t, path_state>> paths_;
  std::uint64_t sequence_ = 0;
};

/// The archive path reduced to its components: no empty or "." ones (so no
/// leading "./", "//" or trailing "/"); ".." kept (the checker refuses it);
/// "." for the root. Exposed for tests.
std::string normalize_entry_path(std::string_view path);

}  // namespace lifeboat::restore
