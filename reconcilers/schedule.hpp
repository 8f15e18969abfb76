#pragma once

#include "api/objects.hpp"

#include <chrono>
#include <optional>
#include <set>
#include <string>

// The schedule planner: given a BackupSchedule, what is known of its runs and
// the time, whether to start a run now and when to look again. Pure: the
// controller reads the state and the clock and applies the decision.
//
// The catch-up rule (no burst of runs after downtime): only the most recent
// firing time that passed is ever considered, and only while it is at most
// `starting_deadline` old. Earlier missed firings are never run; a firing
// older than the deadline is missed for good. So a controller that was down
// for a week runs a daily schedule at most once when it comes back — and only
// if the last 03:00 is less than the deadline ago.
namespace lifeboat::reconcilers {

struct schedule_state {
  /// The firing time of the last run started (or skipped) for this schedule;
  /// unset if it never ran.
  std::optional<std::chrono::sys_seconds> last_scheduled;
  /// When the schedule (its config) came into force: firing times before it
  /// are not due.
  std::chrono::sys_seconds since{};
  /// A run of this schedule is still in progress.
  bool run_active = false;
  /// Names of the Backup objects that exist for this schedule.
  std::set<std::string> backups;
};

struct schedule_decision {
  /// A Backup to create now, named "<schedule>-<UTC yyyymmddhhmmss>" of the
  /// firing time, so that a retried creation is idempotent.
  std::optional<std::string> create_backup;
  /// The firing time that was due now, run or skipped; the controller records
  /// it as the new last_scheduled.
  std::optional<std::chrono::sys_seconds> scheduled_for;
  /// Due while the previous run is still active: counted as skipped.
  bool skipped = false;
  /// Firing times that passed unrun beyond the deadline (downtime), for logs.
  bool missed_earlier = false;
  /// The next firing time after `now`; unset while suspended.
  std::optional<std::chrono::sys_seconds> next_run;
};

/// The Backup name for a run of `schedule` due at `at`.
std::string backup_name(const std::string& schedule, std::chrono::sys_seconds at);

/// The first second from `now` on whose backup_name for `schedule` is not in
/// `taken`. A run by hand is named by its second; one killed (or refused) a
/// moment ago left its ownership record under that name, and the next run
/// must not collide with the dead one's record.
std::chrono::sys_seconds first_free_run_second(const std::string& schedule,
                                               std::chrono::sys_seconds now,
                                               const std::set<std::string>& taken);

/// Decides for `schedule` (valid: as decoded) at `now`.
schedule_decision plan_schedule(const api::backup_schedule& schedule, const schedule_state& state,
                                std::chrono::sys_seconds now,
                                std::chrono::seconds starting_deadline);

}  // namespace lifeboat::reconcilers
