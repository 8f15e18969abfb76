#pragma once

#include "controller/restic/error.hpp"
#include "controller/restic/repository.hpp"
#include "controller/restic/store.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

// Restoring a restic snapshot (lifeboat's or restic's own) into a folder, in two
// phases: verifying reads every tree and data blob the restored part references
// and checks each against its ID before anything is written; restoring then
// writes the tree through directory file descriptors only (openat, mkdirat,
// symlinkat, linkat, ... with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW), so that a name
// or link target in the snapshot can never make it write outside the target.
namespace lifeboat::restic {

struct restore_options {
  /// The path inside the snapshot to restore: "/<volume>" for lifeboat's snapshots, the
  /// absolute backed-up path for one `restic backup /some/dir` made; empty or "/" for
  /// the whole snapshot. Its contents go into the target folder, whose own mode, owner
  /// and times become the path's.
  std::string subtree;
  /// Set the recorded uid/gid; only done when running as root (others cannot chown).
  bool owners = true;
  /// restore_snapshot: the caller ran verify_snapshot on this snapshot and subtree
  /// (before it emptied the target, say), so the verifying pass is not repeated.
  /// Blobs are still checked against their IDs as they are read.
  bool verified = false;
  /// Block and character devices are written only when allowed (a device node in a
  /// volume hands the device to whoever mounts it): else verifying refuses them.
  bool allow_devices = false;
};

struct restore_stats {
  std::uint64_t files = 0;       // regular files written (hard links not counted)
  std::uint64_t hard_links = 0;  // entries made with link()
  std::uint64_t dirs = 0;
  std::uint64_t symlinks = 0;
  std::uint64_t special = 0;     // fifos and devices
  std::uint64_t bytes = 0;       // file contents restored, holes included
  std::uint64_t hole_bytes = 0;  // of them, all-zero blobs left as holes
  std::uint64_t blobs_read = 0;  // distinct tree and data blobs checked while verifying
  std::uint64_t blob_bytes = 0;  // their plaintext bytes
};

/// The "Verifying" phase: loads every tree under `options.subtree` of the snapshot and
/// reads every data blob they reference once, checking MACs and SHA-256 IDs, that file
/// sizes equal their blobs' sizes, names are single path elements ("", ".", "..", '/'
/// and NUL refused), types are known and times parse. Writes nothing. On a problem:
/// an error naming the snapshot path (and the blob): corrupt for a blob whose content
/// does not match its ID, invalid_format for a blob in no index or a bad tree, io when
/// a pack cannot be read. Counts what a restore would write: files (hard links
/// among them), dirs, symlinks, special and bytes (holes included), a tree that
/// recurs counted each time; blobs_read and blob_bytes once per blob.
result<restore_stats> verify_snapshot(const repository& repo, const object_id& snapshot_id,
                                      const restore_options& options = {});

/// Verifies (as above), then writes the tree under `options.subtree` into `target`,
/// an existing empty folder: regular files (all-zero blobs left as holes, the size set
/// with ftruncate), folders (also empty ones), symlinks, hard links (files recorded with
/// more than one link and the same device and inode are linked, not copied), fifos and
/// devices, modes with setuid/setgid/sticky, owners (as root), and mtimes/atimes set
/// after contents, folders' times after their entries. Memory: one blob and one tree
/// per folder level at a time. io naming the target when it is not an empty folder
/// (a symlink to one is refused too); errors name the snapshot path.
result<restore_stats> restore_snapshot(const repository& repo, const object_id& snapshot_id,
                                       const std::filesystem::path& target,
                                       const restore_options& options = {});

}  // namespace lifeboat::restic
