#pragma once

#include "controller/engine/client.hpp"

#include <string>
#include <vector>

// `lifeboat restore`: one restore now, without a controller.
namespace lifeboat::cli {

struct restore_options {
  std::string archive;  ///< the archive file, or its name in `destination_file`'s destination
  /// Instead of an archive: a local restic repository, the snapshot (latest,
  /// or an ID or a unique prefix of one), the file holding the repository's
  /// password and the tags "latest" looks for.
  std::string repository;
  std::string snapshot = "latest";
  std::string password_file;
  std::vector<std::string> tags;
  /// A YAML file holding one destination as a schedule lists it (`s3: {…}`):
  /// the archive is read from there (copied into `spool_folder` first).
  std::string destination_file;
  std::string spool_folder;          ///< empty: $TMPDIR, else /tmp
  std::vector<std::string> volumes;  ///< FROM[=TO], at least one
  bool wipe = false;
  bool create_volume = false;  ///< create missing target volumes (else they fail the run)
  bool allow_devices = false;
  bool allow_absolute_symlinks = false;
  std::string identity_file;          ///< decrypts an age-encrypted archive (age-keygen's file)
  std::string passphrase_file;        ///< ... encrypted to a passphrase instead (age or gpg)
  std::string gpg_secret_key_file;    ///< decrypts an OpenPGP archive (gpg --export-secret-keys)
  bool dry_run = false;               ///< verify only: nothing is held or written
  std::string path = "auto";          ///< auto | engine | direct
  std::string stop_group;             ///< empty: only the workloads that mount a target volume
  std::string label_match = "exact";  ///< exact | one-of, as a Restore's spec.labelMatch
  std::string helper_image;           ///< image of the restore and wipe containers
  std::string agent_image;            ///< image of the agent jobs on other nodes
  std::string state_file = "/var/lib/lifeboat/state.json";
  /// Extract into <dir>/<TO> instead of volumes, without an engine (for
  /// benchmarks and for looking into an archive).
  std::string into_directory;
};

/// Verifies the archive in full, then quiesces every workload that mounts a
/// target volume, writes the volumes and resumes the workloads; progress on
/// stderr when it is a terminal, phases on stdout. 0 on success, 1 on any
/// failure (the message names the refused entry or what failed), 2 for bad
/// arguments. SIGTERM and SIGINT cancel the run, which still resumes.
int restore(const engine::client_options& engine, const restore_options& options);

struct restore_agent_options {
  std::string run_name;
  bool write = false;
  bool allow_devices = false;
  bool allow_absolute_symlinks = false;
};

/// `lifeboat restore-agent`: a restore's part on the node of its target
/// volumes (restore/agent.hpp), started by the controller as a Swarm job; the
/// Restore comes in LIFEBOAT_RESTORE.
int restore_agent(const restore_agent_options& options);

}  // namespace lifeboat::cli
