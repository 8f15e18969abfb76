#pragma once

#include "api/objects.hpp"
#include "controller/backup/agent_job.hpp"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>

// A restore into volumes on another node (ARCHITECTURE.md, "Volumes on other
// nodes"): the controller places the restore (quiesce::place_restore), then
// runs lifeboat's image there twice as a Swarm job, as a backup runs its
// agents: first verifying (the archive read in full, the files' room in the
// volumes, mounted read-only; nothing held), then, with the workloads held
// from the manager, writing (wipe when asked, unpack). The agent reports one
// finished line (backup::agent_event, with the restore's outcome) on its
// standard output, which the controller reads through the service logs.
namespace lifeboat::restore {

struct restore_agent_request {
  /// spec.archive (a path on the agent's node) or spec.source; never
  /// backupRef nor decryption: the controller refuses those first.
  api::restore restore;
  bool write = false;  ///< false: verify only, writing nothing
  bool allow_devices = false;
  bool allow_absolute_symlinks = false;
  /// Target volume `to` is mounted at <volumes_root>/<to>.
  std::string volumes_root = "/lifeboat";
  /// Where an archive on a remote destination is fetched; empty: $TMPDIR.
  std::filesystem::path spool_folder;
};

/// Runs the agent's part and writes its finished line to `out`; returns the
/// exit code: 0 when the archive verified (and, with `write`, was written).
int run_restore_agent(const restore_agent_request& request, std::FILE* out,
                      const std::atomic<bool>& cancel);

struct restore_job_spec {
  std::string run_name;
  std::string node_id;
  std::string image;
  api::restore restore;  ///< as in restore_agent_request
  bool write = false;
  bool allow_devices = false;
  bool allow_absolute_symlinks = false;
};

/// The job: `lifeboat restore-agent --run R [--write] ...` with each target
/// volume at /lifeboat/<to> (read-only unless writing), a local archive's
/// folder bound read-only at its own path (a path of that node), and the
/// Restore in LIFEBOAT_RESTORE (YAML: it holds no secrets, decryption being
/// refused); labelled agent_of=R and lifeboat.restore=<Restore's name>, so
/// recovery removes the jobs of dead runs as it does a backup's.
backup::job_definition restore_job(const restore_job_spec& spec);

/// The label naming the Restore a job restores for.
inline constexpr std::string_view restore_label = "lifeboat.restore";

}  // namespace lifeboat::restore
