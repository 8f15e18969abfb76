#pragma once

#include "controller/restore/error.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

// Which archive entries go where, and which are refused. Pure: no I/O, so the
// rules are tested directly and applied the same way while verifying and while
// unpacking.
namespace lifeboat::restore {

/// Entries under the archive path `from` go to the root of the volume `to`.
/// `from` is a volume name for lifeboat's archives (each volume is a top-level
/// folder), any relative path for other tools' archives, or "." for the
/// archive's root. Compared in canonical form (normalize_entry_path).
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

/// Applies the safety rules to entries in archive order, each path taken in
/// canonical form (normalize_entry_path), so "vol//l/x" and "vol/./l/x" are
/// "vol/l/x" to every rule. Refused (errc::refused, the message naming the
/// entry as stored):
/// - absolute paths and paths with a ".." component, anywhere in the archive;
/// - in a mapped entry: a symlink whose target is absolute (unless
///   `allow_absolute_symlinks`: such a link resolves in the workload's
///   container, and nothing is ever written through it) or leads out of the
///   volume when resolved from the link's folder (following the archive's own
///   symlinks, checked by finish() once they are all known); an entry whose
///   path goes through a symlink of the archive; a hard link to another
///   volume, through a symlink of the archive, or to a path that does not
///   hold an earlier file entry of the archive (a later entry at that path
///   replaced it);
///   character and block devices unless `allow_devices`; unknown entry types.
/// FIFOs are accepted (they hold no data and tar trees commonly have them).
///
/// Memory: the symlinks of the archive and a 64-bit hash per file entry (for
/// hard links), so a million files cost tens of MiB, not their names.
class entry_checker {
 public:
  /// `mappings` must be non-empty with relative `from`s without "..",
  /// distinct and non-nested once canonical, and distinct `to`s
  /// (errc::invalid_argument otherwise).
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
  std::vector<std::unordered_set<std::uint64_t>> files_;
};

/// The canonical form of an archive path: its components without empty ones
/// and ".", joined by "/" ("./a//b/./c/" -> "a/b/c"); "." for the root. A
/// ".." stays (the checker refuses it before). Exposed for tests.
std::string normalize_entry_path(std::string_view path);

}  // namespace lifeboat::restore
