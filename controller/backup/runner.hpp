#pragma once

#include "api/objects.hpp"
#include "api/text.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

// What the controller asks of one backup run, so that the controller's loop
// can be tested with a runner that records calls, and the real runner
// (quiesce, read, resume, ship, prune) lives in one place.
namespace lifeboat::backup {

/// The phases of a Backup object (ARCHITECTURE.md).
namespace phase {
inline constexpr std::string_view pending = "Pending";
inline constexpr std::string_view quiescing = "Quiescing";
inline constexpr std::string_view archiving = "Archiving";
inline constexpr std::string_view resuming = "Resuming";
inline constexpr std::string_view shipping = "Shipping";
inline constexpr std::string_view pruning = "Pruning";
inline constexpr std::string_view succeeded = "Succeeded";
inline constexpr std::string_view failed = "Failed";
inline constexpr std::string_view skipped = "Skipped";
}  // namespace phase

/// True for Succeeded, Failed and Skipped.
bool is_terminal(std::string_view phase);

/// Sizes in run messages and progress lines.
using api::human_bytes;

/// How the archive of a run fared on one destination.
struct destination_report {
  std::string destination;   ///< its describe(): "local /archive/db", "s3 backups/db/"
  bool ok = false;           ///< the archive (and its checksum) is there
  std::string_view failure;  ///< when not ok: archive::to_string of the error's kind
  double bytes = 0;          ///< archive bytes sent there
  std::chrono::duration<double> duration{0};  ///< writing (or copying) it there
};

struct run_result {
  bool ok = false;
  std::string message;  ///< the failure, or a summary ("3 volumes, 1.2 GiB, held 2.1 s")
  std::string archive;  ///< where the archive landed (format restic: the repository)
  /// Format restic: the snapshot of each volume, "<volume>=<id>" comma-separated.
  std::string snapshots;
  /// What kind of failure ended the run, for metrics and alerts: "no space",
  /// "destination refused", "io error", "source failed", "engine unavailable",
  /// "quiesce failed", ... Empty when it succeeded.
  std::string_view failure;
  double size_bytes = 0;
  /// One per destination the archive was sent to, and one per destination
  /// that failed its check before anything was held (those come first).
  std::vector<destination_report> destinations;
  std::chrono::duration<double> downtime{0};
  std::chrono::duration<double> duration{0};
};

/// Called as a run moves through its phases; `message` may be empty.
using phase_reporter = std::function<void(std::string_view phase, const std::string& message)>;

/// Called with how many workloads (services, containers) the run holds now:
/// the count once quiesced, 0 once resumed.
using held_reporter = std::function<void(int workloads)>;

class backup_runner {
 public:
  virtual ~backup_runner() = default;
  /// Runs one backup of `schedule` named `run_name` to completion. Workloads
  /// are always resumed before it returns, also when `cancel` is set midway
  /// (the run then fails). Blocks; the controller calls it off its loop.
  virtual run_result run(const api::backup_schedule& schedule, const std::string& run_name,
                         const phase_reporter& report, const held_reporter& holding,
                         const std::atomic<bool>& cancel) = 0;
};

}  // namespace lifeboat::backup
