#pragma once

#include "api/objects.hpp"

#include <array>
#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

// Named points in a backup run where actions run before and after a phase:
// the seam exec hooks (docker-volume-backup's `<phase>-pre|post` labels) plug
// into. The runner decides where each point sits; the actions decide what
// runs there.
namespace lifeboat::backup {

/// The phases with hook points, named as docker-volume-backup names them.
/// Where each sits in a lifeboat run (docs/ARCHITECTURE.md, "Hook points"):
///  - archive: from before the workloads are held to after they are resumed
///    and the archive is complete (pre sees the workloads running, so a
///    `pg_dump` can run against the live database; post sees them back);
///  - process: around making the archive final in its first destination
///    (compression and encryption run while it is written, so both points
///    come after; post sees the published archive);
///  - copy: around copying it to the other destinations (runs also when there
///    is only one);
///  - prune: around retention in every destination that holds the archive.
enum class hook_phase { archive, process, copy, prune };
enum class hook_when { pre, post };

struct hook_point {
  hook_phase phase;
  hook_when when;
  bool operator==(const hook_point&) const = default;
};

/// "archive-pre", "prune-post": the point's name in labels, logs and messages.
std::string_view to_string(hook_point point);

/// Every point in the order a successful run reaches them.
inline constexpr std::array<hook_point, 8> hook_points{{
    {hook_phase::archive, hook_when::pre},
    {hook_phase::archive, hook_when::post},
    {hook_phase::process, hook_when::pre},
    {hook_phase::process, hook_when::post},
    {hook_phase::copy, hook_when::pre},
    {hook_phase::copy, hook_when::post},
    {hook_phase::prune, hook_when::pre},
    {hook_phase::prune, hook_when::post},
}};

/// What the actions at a point are told about the run.
struct hook_context {
  const api::backup_schedule& schedule;
  const std::string& run_name;
  /// Where the archive is once it has been published (process-post and
  /// later); empty before.
  std::string archive_location;
  /// Set when the run is being cancelled: long actions should stop.
  const std::atomic<bool>& cancel;
};

struct hook_result {
  bool ok = true;
  /// When not ok: what failed ("container db.1: exit 3: …"), for the run's
  /// message.
  std::string message;
  /// Actions that could not run here and did not fail the point (e.g. a
  /// container on another node), for the run's warnings.
  std::vector<std::string> skipped;
};

/// Runs every action at `point` and waits for them. Null: the run has no
/// hooks. Called on the run's thread, never while the workloads are held.
using phase_hooks = std::function<hook_result(hook_point point, const hook_context& context)>;

}  // namespace lifeboat::backup
