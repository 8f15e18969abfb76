#pragma once

#include "api/objects.hpp"
#include "controller/restore/error.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

// What the controller asks of one restore run, shaped like backup_runner so
// the controller's loop drives both alike and tests can record calls.
namespace lifeboat::restore {

/// The phases of a Restore object, in order: Pending (set by the controller
/// when it takes the object) -> Verifying (the whole archive is read: its
/// checksum, every entry's safety, readable to the end, and whether its files
/// fit in the target volumes' free space; nothing is held yet and nothing
/// written) -> Quiescing -> Restoring (wipe, then unpack) ->
/// Resuming -> Succeeded | Failed. A run that fails while verifying never
/// quiesces anything.
namespace phase {
inline constexpr std::string_view pending = "Pending";
inline constexpr std::string_view verifying = "Verifying";
inline constexpr std::string_view quiescing = "Quiescing";
inline constexpr std::string_view restoring = "Restoring";
inline constexpr std::string_view resuming = "Resuming";
inline constexpr std::string_view succeeded = "Succeeded";
inline constexpr std::string_view failed = "Failed";
}  // namespace phase

/// True for Succeeded and Failed.
bool is_terminal(std::string_view phase);

/// The `result` label of the restores metric, one per outcome.
namespace outcome {
inline constexpr std::string_view succeeded = "succeeded";
inline constexpr std::string_view verified = "verified";  ///< a dry run that passed
inline constexpr std::string_view refused = "refused";    ///< an unsafe entry
inline constexpr std::string_view checksum_mismatch = "checksum_mismatch";
inline constexpr std::string_view corrupt = "corrupt";    ///< truncated or damaged
inline constexpr std::string_view invalid = "invalid";    ///< no archive, a missing volume...
inline constexpr std::string_view no_space = "no_space";  ///< the files do not fit; nothing held
inline constexpr std::string_view quiesce_failed = "quiesce_failed";
inline constexpr std::string_view write_failed = "write_failed";  ///< wipe or unpack
inline constexpr std::string_view cancelled = "cancelled";
}  // namespace outcome

/// The outcome a failure with `e` has.
std::string_view outcome_of(const error& e);

struct run_result {
  bool ok = false;
  std::string_view outcome = outcome::invalid;  ///< one of restore::outcome
  std::string message;  ///< the failure, or a summary ("2 volume(s), 1.2 GiB, direct, held 3.1s")
  std::string archive;  ///< the archive that was read
  std::string path;     ///< "engine" or "direct": how the volumes were written
  double bytes = 0;     ///< file data written
  std::chrono::duration<double> downtime{0};
  std::chrono::duration<double> duration{0};
};

/// Called as a run moves through its phases; `message` may be empty.
using phase_reporter = std::function<void(std::string_view phase, const std::string& message)>;

/// Called with how many workloads the run holds now: the count once
/// quiesced, 0 once resumed.
using held_reporter = std::function<void(int workloads)>;

class restore_runner {
 public:
  virtual ~restore_runner() = default;
  /// Runs `restore` named `run_name` (written into lifeboat.held-by) to
  /// completion. Workloads are always resumed before it returns, also when
  /// `cancel` is set midway (the run then fails). Blocks; the controller calls
  /// it off its loop.
  virtual run_result run(const api::restore& restore, const std::string& run_name,
                         const phase_reporter& report, const held_reporter& holding,
                         const std::atomic<bool>& cancel) = 0;
};

}  // namespace lifeboat::restore
