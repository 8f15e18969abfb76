#pragma once

#include "api/objects.hpp"
#include "controller/restic/backup.hpp"
#include "controller/restic/error.hpp"
#include "controller/restic/repository.hpp"
#include "controller/restore/entry_check.hpp"
#include "controller/restore/error.hpp"

#include <span>
#include <string>
#include <utility>
#include <vector>

// A Restore from a restic snapshot (spec.restic): which snapshot each volume
// comes from, and the repository opened with the password file. The restore
// itself is restic::verify_snapshot and restic::restore_snapshot.
namespace lifeboat::restore {

/// Where one target's content is in the repository.
struct restic_pick {
  restic::object_id snapshot{};
  std::string short_id;  ///< the first 8 hex digits, as restic prints it
  std::string subtree;   ///< the folder inside the snapshot: "/<volume>", or the path given
};

/// The folder inside a snapshot that a mapping's `from` names: itself when
/// it is an absolute path, else "/<from>" (where lifeboat keeps a volume).
std::string snapshot_subtree(const std::string& from);

/// Per mapping, in order. An ID (a unique prefix) names one snapshot for every
/// mapping; "latest" picks per mapping the newest snapshot (by time, offsets
/// honoured) with a path equal to or above the mapping's subtree and every tag
/// of `source.tags`. invalid_format naming the snapshot and what was looked
/// for when none matches, an ID prefix matches several, or a snapshot's time
/// does not parse.
restic::result<std::vector<restic_pick>> pick_snapshots(
    std::span<const std::pair<restic::object_id, restic::snapshot>> snapshots,
    const api::restic_source& source, const std::vector<mapping>& mappings);

/// Opens `source.repository` with the password in source.password_file.
/// wrong_password naming the repository and the file; invalid_format when the
/// folder holds no repository or the password file cannot be read.
restic::result<restic::repository> open_restic_source(const api::restic_source& source);

/// A restic error as a restore's: a wrong password is an invalid argument, an
/// unreadable file an I/O error, a MAC that does not verify corrupt, and a
/// malformed file `malformed` (invalid_argument for what the object names,
/// corrupt for what a snapshot's blobs hold).
error restore_error(const restic::error& e, errc malformed);

}  // namespace lifeboat::restore
