#pragma once

#include "controller/restic/backup.hpp"
#include "controller/restic/error.hpp"
#include "controller/restic/repository.hpp"

#include <optional>
#include <string>
#include <vector>

// Retention for restic repositories: which snapshots a keep policy keeps (restic's
// `forget --keep-*` rules) and the removal of the others' snapshot files. The packs
// no snapshot references any more stay until prune_unreferenced (prune.hpp) runs.
namespace lifeboat::restic {

/// How many snapshots each rule keeps; an unset rule keeps none by itself. A
/// snapshot is kept when any rule keeps it.
struct keep_policy {
  std::optional<int> last;     // the newest N
  std::optional<int> hourly;   // the newest in each of the newest N hours holding one
  std::optional<int> daily;    // ... days
  std::optional<int> weekly;   // ... ISO weeks
  std::optional<int> monthly;  // ... months
  std::optional<int> yearly;   // ... years
};

/// For `times` (RFC 3339, any order), whether `policy` keeps each one. Buckets use each
/// time's own clock fields (its offset), as restic does. The newest is always kept; a
/// policy without any rule above 0 keeps everything (restic forgets nothing then).
/// invalid_format naming the index of an unparsable time.
result<std::vector<bool>> keep_by_policy(const std::vector<std::string>& times,
                                         const keep_policy& policy);

struct forget_result {
  std::vector<object_id> kept;
  std::vector<object_id> removed;
};

/// Under an exclusive lock, applies `policy` to the snapshots holding every tag of
/// `tags` and exactly `paths`, and removes the snapshot files of those it does not
/// keep. Other snapshots are left alone. io naming the file that cannot be removed.
result<forget_result> forget_snapshots(const repository& repo, const std::vector<std::string>& tags,
                                       const std::vector<std::string>& paths,
                                       const keep_policy& policy);

}  // namespace lifeboat::restic
