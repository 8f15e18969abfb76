#pragma once

#include "controller/engine/client.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "controller/restore/error.hpp"
#include "controller/restore/runner.hpp"
#include "controller/restore/unpack.hpp"
#include "reconcilers/quiesce.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace lifeboat::restore {

/// How the volumes are written.
enum class data_path {
  automatic,  ///< direct when every target's mountpoint is a folder this process can write
  engine,     ///< PUT archive into a created, never-started container
  direct,     ///< into the mountpoints; fails when one cannot be written
};

struct runner_options {
  std::string helper_image;  ///< image for the restore and wipe containers; default: our own
  data_path path = data_path::automatic;
  bool allow_devices = false;
  bool allow_absolute_symlinks = false;
  bool verify_only = false;  ///< stop after Verifying: nothing is held or written
  /// Where an archive on a remote destination is copied, as a file without a
  /// name, to be verified and unpacked; empty: the temporary folder ($TMPDIR,
  /// else /tmp). It needs the archive's size free.
  std::filesystem::path spool_folder;
  /// Progress of verifying and unpacking (phase::verifying or phase::restoring),
  /// called on the running thread every few MiB.
  std::function<void(std::string_view phase, const progress&)> on_progress;
  /// Image of the agent jobs that restore into volumes on other nodes
  /// (restore/agent.hpp); default: the image of this process's container.
  std::string agent_image;
  /// How long each agent job (verifying, then writing) may take.
  std::chrono::milliseconds agent_timeout = std::chrono::hours{2};
};

/// The volume names a restore of `spec` writes.
std::vector<std::string> target_volumes(const api::restore_spec& spec);

/// Which workloads a restore holds: every one that mounts a target volume,
/// labelled or not (a restore must never race a writer), and those of the
/// spec's stop group, as a backup would.
reconcilers::quiesce_run quiesce_run_for(const std::string& run_name,
                                         const api::restore_spec& spec);

/// The real run. Where: quiesce::place_restore; targets kept on another node
/// are restored there by two agent jobs (verifying, then writing while the
/// workloads are held from here), an encrypted archive refused for them
/// before anything is held. Here: a missing target volume fails the run at
/// once, naming this engine's node, unless spec.createVolume; Verifying (the archive read in
/// full; missing volumes created, with the source volume's driver and labels
/// when it exists here under another name, and removed again if the run fails
/// before writing; the files' size checked against the targets' free space as
/// controller/restore/space.hpp says; nothing held), Quiescing, Restoring
/// (wipe when asked, then unpack, through the engine or directly), Resuming.
class engine_runner final : public restore_runner {
 public:
  engine_runner(const engine::client& client, quiesce::journal_store& journals,
                runner_options options);

  run_result run(const api::restore& restore, const std::string& run_name,
                 const phase_reporter& report, const held_reporter& holding,
                 const std::atomic<bool>& cancel) override;

 private:
  const engine::client& client_;
  quiesce::journal_store& journals_;
  runner_options options_;
};

/// Where a target volume is mounted inside the restore container.
std::string restore_mount_path(const std::string& volume);

}  // namespace lifeboat::restore
