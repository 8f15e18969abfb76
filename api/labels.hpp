#pragma once

#include <string_view>

// Every label key lifeboat reads or writes, in one place. Swarm has no custom
// resources, so these labels *are* lifeboat's state (ARCHITECTURE.md, "Where
// state lives"); the groups below follow that table. A key is part of the
// on-disk format: renaming one orphans what running swarms already carry.
namespace lifeboat::api::label {

// --- Compatibility with offen/docker-volume-backup (users' own labels).

/// On a service (deploy.labels: scale to zero) or a container (stop): the
/// group a schedule's `stopDuringBackup` selects ("true" by default).
inline constexpr std::string_view stop_during_backup = "docker-volume-backup.stop-during-backup";
/// The same, but the workload is deliberately left stopped (scaled to zero)
/// after the run. Both labels on one workload is a conflict.
inline constexpr std::string_view stop_during_backup_no_restart =
    "docker-volume-backup.stop-during-backup-no-restart";

// --- Object configs: schedules, backups, restores (written by users or
// `lifeboat apply`; status written by the controller).

inline constexpr std::string_view object = "lifeboat.object";  ///< marks an object config
inline constexpr std::string_view kind = "lifeboat.kind";      ///< set by `lifeboat apply`
inline constexpr std::string_view name = "lifeboat.name";      ///< set by `lifeboat apply`
/// On a Backup config the controller created: the schedule it ran for.
inline constexpr std::string_view backup_schedule = "lifeboat.backup.schedule";

/// Status of an object: every key under this prefix belongs to the controller.
inline constexpr std::string_view status_prefix = "lifeboat.status.";
inline constexpr std::string_view phase = "lifeboat.status.phase";
inline constexpr std::string_view message = "lifeboat.status.message";
inline constexpr std::string_view observed = "lifeboat.status.observed";
inline constexpr std::string_view last_run = "lifeboat.status.last-run";
inline constexpr std::string_view next_run = "lifeboat.status.next-run";
/// On a schedule: the firing time of the last run started or skipped.
inline constexpr std::string_view last_scheduled = "lifeboat.status.last-scheduled";
/// On a Backup or Restore: when its run started and finished (RFC 3339 UTC).
inline constexpr std::string_view started = "lifeboat.status.started";
inline constexpr std::string_view finished = "lifeboat.status.finished";
/// On a Backup: where its archive landed, and its size.
inline constexpr std::string_view archive = "lifeboat.status.archive";
inline constexpr std::string_view size_bytes = "lifeboat.status.size-bytes";
/// On a Backup of a restic schedule: each volume's snapshot in the repository
/// (the archive label), "<volume>=<snapshot ID>" comma-separated.
inline constexpr std::string_view snapshots = "lifeboat.status.snapshots";

// --- Quiesced services: written in the same versioned update that scales to
// zero, removed by the one that restores the count.

inline constexpr std::string_view prior_replicas = "lifeboat.prior-replicas";
inline constexpr std::string_view held_by = "lifeboat.held-by";
/// "true" on a service held for a no-restart label: resuming leaves it at zero.
inline constexpr std::string_view held_no_restart = "lifeboat.held-no-restart";

// --- Services left at zero for a no-restart label: written by the update
// that releases them (removing the three labels above), so that a user can
// see who left them stopped and what count to scale them back to. Nothing
// reads them back; the next hold of the service overwrites them.

inline constexpr std::string_view left_stopped_by = "lifeboat.left-stopped-by";
inline constexpr std::string_view left_stopped_replicas = "lifeboat.left-stopped-replicas";

// --- Run records and journals (configs the controller owns).

inline constexpr std::string_view journal = "lifeboat.journal";
inline constexpr std::string_view journal_run = "lifeboat.journal.run";
inline constexpr std::string_view owner = "lifeboat.owner";
inline constexpr std::string_view owner_run = "lifeboat.owner.run";
inline constexpr std::string_view owner_heartbeat = "lifeboat.owner.heartbeat";
inline constexpr std::string_view owner_expiry = "lifeboat.owner.expiry";

// --- Leadership: the lease config's labels, written by compare-and-swap.

inline constexpr std::string_view lease_holder = "lifeboat.lease.holder";
inline constexpr std::string_view lease_renewed = "lifeboat.lease.renewed";
inline constexpr std::string_view lease_duration_ms = "lifeboat.lease.duration-ms";

// --- Helper containers lifeboat creates (never started) to read or write volumes.

inline constexpr std::string_view volume_container = "lifeboat.volume-container";
/// On a volume-reading container or an agent job: the schedule whose run
/// created it (a run removes what its schedule's dead runs left).
inline constexpr std::string_view schedule = "lifeboat.schedule";

// --- Agent jobs: replicated-job services, one per node that holds a run's
// volumes (and their tasks' containers).

/// The run the job reads for: recovery removes the jobs of dead runs by it.
inline constexpr std::string_view agent_of = "lifeboat.agent-of";

}  // namespace lifeboat::api::label
