#pragma once

#include "controller/restic/error.hpp"
#include "controller/restic/repository.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>

// Pruning for restic repositories: removes the pack files no snapshot references
// any more (after forget_snapshots) and rewrites the index without them. Packs
// that are only partly referenced stay whole; `restic prune` repacks them.
namespace lifeboat::restic {

struct prune_result {
  std::size_t snapshots = 0;                // walked
  std::size_t referenced_blobs = 0;         // trees and data those snapshots reach
  std::size_t packs_removed = 0;            // none of their blobs referenced
  std::uint64_t pack_bytes_removed = 0;     // their sizes on disk
  std::size_t packs_kept = 0;               // at least one blob referenced
  std::size_t packs_partly_referenced = 0;  // of those kept, with unreferenced blobs too
  std::size_t index_files_written = 0;
  std::size_t index_files_removed = 0;
};

struct prune_options {
  std::size_t index_max_blobs = 50000;  // blobs per new index file (restic's limit)
  std::chrono::steady_clock::duration lock_refresh = std::chrono::minutes(5);
};

/// Under an exclusive lock: walks every snapshot's trees to the blobs they reference,
/// then removes the pack files none of whose blobs is referenced. When there is one,
/// new index files listing every other pack are written first, then the old index
/// files are removed, then the packs; nothing is changed when every indexed pack holds
/// a referenced blob. Fails before changing anything when a snapshot or tree cannot be
/// read (corrupt, io or invalid_format naming it). Pack files that no index names are
/// left alone.
result<prune_result> prune_unreferenced(const repository& repo, const prune_options& options = {});

}  // namespace lifeboat::restic
