#pragma once

#include "controller/backup/runner.hpp"
#include "controller/engine/client.hpp"
#include "controller/quiesce/journal_store.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lifeboat::backup {

/// Reads one volume's content as a tar stream whose entries start with
/// "<volume>/".
using volume_opener = std::function<engine::result<engine::http::body_reader>(const std::string&)>;

/// What the archive step is asked to do: read every volume while the
/// workloads are held and write one archive into `directory` as
/// `<file_stem><extension>.partial`.
struct archive_request {
  std::vector<std::string> volumes;
  volume_opener open;
  api::archive_spec spec;
  std::string directory;
  std::string file_stem;  ///< the expanded name template
  const std::atomic<bool>* cancel = nullptr;
};

struct archive_written {
  std::string final_path;  ///< where publish() puts it
  std::uint64_t bytes = 0;
  std::vector<std::string> warnings;  ///< files that changed or could not be read, by path
  /// The complete archive, not yet visible: published by publish(), removed
  /// when the last copy of this handle goes without it.
  std::shared_ptr<void> pending;
};

/// The archive steps, so the runner does not depend on how archives are made.
struct archive_steps {
  /// Reads and writes the archive (workloads held meanwhile).
  std::function<engine::result<archive_written>(const archive_request&)> write;
  /// Makes it visible: checksum file, rename, `latest` link.
  std::function<engine::result<void>(const archive_written&)> publish;
  /// Removes leftovers of interrupted runs and applies retention; returns a
  /// summary ("pruned 2 archives").
  std::function<engine::result<std::string>(const api::backup_schedule&, const std::string& dir)>
      prune;
};

struct runner_options {
  std::string helper_image;  ///< image for the volume container; default: our own
};

/// The real run: resolve volumes, create the volume container, quiesce, write
/// the archive, resume, publish to every local destination, prune.
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
