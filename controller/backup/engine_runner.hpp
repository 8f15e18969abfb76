#pragma once

#include "controller/backup/phase_hooks.hpp"
#include "controller/backup/runner.hpp"
#include "controller/crypto/age.hpp"
#include "controller/crypto/openpgp.hpp"
#include "controller/destinations/destination.hpp"
#include "controller/engine/client.hpp"
#include "controller/quiesce/journal_store.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lifeboat::backup {

/// Reads one volume's content as a tar stream whose entries start with
/// "<volume>/".
using volume_opener = std::function<engine::result<engine::http::body_reader>(const std::string&)>;

/// One volume to archive.
struct volume_input {
  std::string name;
  /// The volume's mountpoint when this process can read it: the volume is
  /// then read directly (faster, sparse files stay sparse). Empty: read
  /// through the engine with the request's opener.
  std::string directory;
};

/// Where an archive write stands, for progress displays.
struct archive_progress {
  std::uint64_t content_bytes = 0;  ///< file data read from the volumes
  std::uint64_t output_bytes = 0;   ///< archive bytes written
};

/// What the archive step is asked to do: read every volume while the
/// workloads are held and write one archive named `file_name` into an upload
/// of `destination`.
struct archive_request {
  std::vector<volume_input> volumes;
  volume_opener open;
  api::archive_spec spec;
  destinations::destination* destination = nullptr;
  std::string file_name;  ///< the expanded name template plus the chain's extension
  const std::atomic<bool>* cancel = nullptr;
  /// Called once every volume has been read to its end, while compression
  /// and writing may still go on: the moment the workloads may resume.
  /// Called on the writing thread; must not block for long.
  std::function<void()> on_sources_read;
  /// Called on the writing thread after every entry and every few MiB.
  std::function<void(const archive_progress&)> on_progress;
  /// Up to this many bytes of the uncompressed stream may wait in a spool
  /// file beside the archive (destinations with a local folder) for the
  /// compressor, so that the workloads resume when reading ends rather than
  /// when compression does; 0: no spool.
  std::uint64_t spool_limit = 0;
  /// Set when the schedule encrypts (spec.archive.encryption): the archive is
  /// age-encrypted to these as it is written, so no plaintext archive exists
  /// anywhere. Read from their files before anything is held.
  std::vector<crypto::recipient> recipients;
  /// Set instead when the schedule encrypts with OpenPGP (gpg): the archive
  /// goes through gpg as it is written, to these keys or this passphrase.
  std::optional<crypto::openpgp_recipients> openpgp;
};

struct archive_written {
  std::string file_name;
  std::uint64_t bytes = 0;
  std::vector<std::string> warnings;  ///< files that changed or could not be read, by path
  std::uint64_t warning_count = 0;    ///< all of them; `warnings` keeps the first 100
  /// How each volume was read, in order: "<volume>: direct" or "<volume>: engine".
  std::vector<std::string> read_paths;
  /// The complete archive, not yet visible: published by publish(), removed
  /// when the last copy of this handle goes without it.
  std::shared_ptr<destinations::upload> pending;
};

/// The archive steps, so the runner does not depend on how archives are made.
/// Their errors keep their kind (archive::errc: no space, refused, ...).
struct archive_steps {
  /// Reads and writes the archive (workloads held meanwhile).
  std::function<archive::result<archive_written>(const archive_request&)> write;
  /// Makes it visible (checksum, rename) and points `latest` at it; returns
  /// the published archive and a warning when `latest` could not be updated.
  std::function<archive::result<std::pair<destinations::published_archive, std::string>>(
      const archive_written&, destinations::destination&)>
      publish;
  /// Removes leftovers of interrupted runs and applies retention; returns a
  /// summary ("pruned 2 archives").
  std::function<archive::result<std::string>(const api::backup_schedule&,
                                             destinations::destination&)>
      prune;
};

struct runner_options {
  std::string helper_image;  ///< image for the volume container; default: our own
  /// Read volumes directly when their mountpoint is readable by this process;
  /// false always reads through the engine.
  bool direct_read = true;
  /// Called from the writing thread while the archive is written.
  std::function<void(const archive_progress&)> on_progress;
  /// See archive_request::spool_limit.
  std::uint64_t spool_limit = default_spool_limit;
  /// Actions before and after the run's phases (exec hooks); null: none.
  phase_hooks hooks;
  /// The image the agents on other nodes run: lifeboat's own, present on
  /// every node. Default: the image of the container this process runs in.
  std::string agent_image;
  /// How long an agent may take from its job's creation to its report.
  std::chrono::milliseconds agent_timeout = std::chrono::hours{2};

  static constexpr std::uint64_t default_spool_limit = std::uint64_t{2} << 30;
};

/// The real run: resolve volumes, create the volume container, quiesce, write
/// the archive, resume, publish to every destination, prune; with the hook
/// points of phase_hooks.hpp around archive, process, copy and prune.
/// Volumes kept on other nodes of the swarm are read there while the same
/// hold lasts, by one agent job per node (agent_job.hpp), each writing an
/// archive named for its node (archive::node_file_name) into every
/// destination; the workloads resume once every node has read.
class engine_runner final : public backup_runner {
 public:
  engine_runner(const engine::client& client, quiesce::journal_store& journals, archive_steps steps,
                runner_options options);

  run_result run(const api::backup_schedule& schedule, const std::string& run_name,
                 const phase_reporter& report, const held_reporter& holding,
                 const std::atomic<bool>& cancel) override;

 private:
  const engine::client& client_;
  quiesce::journal_store& journals_;
  archive_steps steps_;
  runner_options options_;
};

}  // namespace lifeboat::backup
