#pragma once

#include "api/objects.hpp"
#include "controller/restic/backup.hpp"
#include "controller/restic/error.hpp"
#include "controller/restic/forget.hpp"
#include "controller/restic/repository.hpp"

#include <filesystem>
#include <string>
#include <vector>

// The steps of a run whose schedule has `format: restic`: the repository is
// opened (or created) before anything is held, each volume becomes one
// snapshot while the workloads are held, and retention forgets by the
// schedule's keep rules and prunes what no snapshot references afterwards.
namespace lifeboat::backup {

/// The password of spec.restic.passwordFile, a trailing newline stripped.
/// invalid_format naming the field and the file when it cannot be read or is empty.
restic::result<std::string> read_restic_password(const api::restic_spec& spec);

/// The password in `file`, a trailing newline stripped; the errors name `field`
/// (the object's field that gave the file) and the file.
restic::result<std::string> read_password_file(const std::string& file, std::string_view field);

/// The repository of `schedule`: its one `local` destination's folder, created
/// (format version 2) when the folder is absent or empty. A folder holding
/// other files is refused, naming it; a wrong password fails naming the
/// repository and the password file.
restic::result<restic::repository> open_restic_repository(const api::backup_schedule& schedule);

/// What one volume's snapshot came to.
struct volume_snapshot {
  std::string volume;
  restic::object_id id{};
  bool incremental = false;  ///< a parent snapshot's unchanged files were not read
  restic::backup_stats stats;
};

/// The snapshot of one volume's folder, as restic names it: paths ["/<volume>"],
/// tags `lifeboat`, `schedule=<name>` and `backup=<run>`, host `hostname`; its
/// parent is the newest of `listed` (the repository's snapshots, listed once
/// per run) with the same path and host.
restic::result<volume_snapshot> snapshot_volume(
    const restic::repository& repo, const api::backup_schedule& schedule,
    const std::string& run_name, const std::string& hostname, const std::string& volume,
    const std::filesystem::path& directory,
    std::span<const std::pair<restic::object_id, restic::snapshot>> listed);

/// Removes the snapshot files of `made` under the exclusive lock, as `restic
/// forget` would: for a run whose snapshots must not stay (the workloads were
/// not held throughout, or a later volume failed). Their packs stay until
/// the next prune. io naming the file that cannot be removed.
restic::result<void> remove_snapshots(const restic::repository& repo,
                                      const std::vector<volume_snapshot>& made);

/// The schedule's tags, which retention selects its snapshots by.
std::vector<std::string> restic_schedule_tags(const api::backup_schedule& schedule);

/// spec.retention as restic's keep rules (an unset retention keeps everything).
restic::keep_policy restic_keep_policy(const api::backup_schedule& schedule);

/// Forgets, per volume, this schedule's snapshots its keep rules do not keep,
/// then removes the packs no snapshot references any more. Says what it did:
/// "forgot 2 snapshot(s), removed 3 pack(s) (12.0 MiB)".
restic::result<std::string> apply_restic_retention(const restic::repository& repo,
                                                   const api::backup_schedule& schedule,
                                                   const std::vector<std::string>& volumes);

}  // namespace lifeboat::backup
