#pragma once

#include "controller/restic/error.hpp"
#include "controller/restic/repository.hpp"
#include "controller/restic/store.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

// Snapshots, lock files and the backup of one directory tree into a restic
// repository, in restic's order: packs, then the index file naming them, then
// the snapshot; an exclusive lock file held meanwhile.
namespace lifeboat::restic {

struct snapshot {
  std::string time;  // RFC 3339
  std::optional<object_id> parent;
  object_id tree{};
  std::vector<std::string> paths;
  std::string hostname;
  std::string username;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::string> tags;
};

std::string serialize_snapshot(const snapshot& s);
/// invalid_format naming `where` and the field.
result<snapshot> parse_snapshot(std::string_view json, std::string_view where);

/// Every snapshot of the repository with its ID.
result<std::vector<std::pair<object_id, snapshot>>> list_snapshots(const repository& repo);

/// Of `listed` (list_snapshots), the newest snapshot whose paths are exactly `paths`
/// and whose host is `hostname` (any host when empty), or std::nullopt.
std::optional<object_id> newest_snapshot(std::span<const std::pair<object_id, snapshot>> listed,
                                         const std::vector<std::string>& paths,
                                         const std::string& hostname);

/// newest_snapshot of the repository's snapshots, listed for this one call.
result<std::optional<object_id>> latest_snapshot(const repository& repo,
                                                 const std::vector<std::string>& paths,
                                                 const std::string& hostname);

/// An exclusive restic lock file, removed when released or destroyed.
class repository_lock {
 public:
  /// Refuses (io, naming the holder) when another lock file is fresh: younger than
  /// 30 minutes and, on this host, held by a live process (restic's staleness rule).
  static result<repository_lock> acquire(const repository& repo);
  repository_lock(repository_lock&& other) noexcept;
  repository_lock& operator=(repository_lock&&) = delete;
  repository_lock(const repository_lock&) = delete;
  repository_lock& operator=(const repository_lock&) = delete;
  ~repository_lock();
  result<void> release();
  /// Writes a fresh lock file, then removes the previous one (restic refreshes its
  /// locks every 5 minutes, and others take a lock older than 30 minutes for stale).
  result<void> refresh();

 private:
  repository_lock(const repository& repo, std::filesystem::path file)
      : repo_(&repo), file_(std::move(file)) {}
  const repository* repo_;
  std::filesystem::path file_;
};

struct backup_options {
  std::filesystem::path source;  // a directory
  std::string name;              // the snapshot holds it as /<name>
  std::vector<std::string> tags;
  std::string hostname;             // empty: this host's name
  std::optional<object_id> parent;  // its unchanged files are not read
  compression mode = compression::automatic;
  std::size_t pack_size = std::size_t{16} * 1024 * 1024;  // a pack is closed past this size
  std::string time;                                       // RFC 3339; empty: now
  std::chrono::steady_clock::duration lock_refresh = std::chrono::minutes(5);
};

struct backup_stats {
  std::uint64_t files = 0;            // regular files in the tree
  std::uint64_t files_read = 0;       // of them, read and chunked
  std::uint64_t files_unchanged = 0;  // of them, content taken from the parent
  std::uint64_t dirs = 0;
  std::uint64_t bytes_read = 0;
  std::uint64_t data_blobs_added = 0;
  std::uint64_t tree_blobs_added = 0;
  std::uint64_t data_bytes_added = 0;  // plaintext bytes of the new data blobs
  std::uint64_t packs_written = 0;
  std::uint64_t pack_bytes_written = 0;
  std::uint64_t lock_refreshes = 0;
};

struct backup_result {
  object_id snapshot_id{};
  backup_stats stats;
};

/// Backs `options.source` up as one snapshot with paths ["/<name>"]. Blobs already in
/// the index are not stored again; a regular file whose size, mtime, ctime and inode
/// equal its node in the parent snapshot keeps that node's content without being read.
/// Memory: one chunk, one pack's header and the directory being walked per level.
/// Entries that vanish during the walk are skipped; unreadable ones fail the backup
/// naming the path.
result<backup_result> backup_directory(const repository& repo, const backup_options& options);

}  // namespace lifeboat::restic
