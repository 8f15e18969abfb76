#pragma once

#include "api/objects.hpp"

#include <string>
#include <vector>

// The history planner: which finished Backup objects of one schedule to
// delete so that at most `historyLimits.succeeded` succeeded and
// `historyLimits.failed` failed (or skipped) ones remain. Pure: the
// controller lists the Backups and removes what this returns.
namespace lifeboat::reconcilers {

enum class backup_outcome {
  unfinished,  ///< pending or running: never deleted
  succeeded,
  failed,  ///< Failed or Skipped
};

struct backup_record {
  std::string id;  ///< whatever the caller needs to delete it (a config ID)
  backup_outcome outcome = backup_outcome::unfinished;
};

/// Returns the IDs to delete, oldest last. `newest_first` holds one
/// schedule's Backups ordered from the newest to the oldest.
std::vector<std::string> plan_history(const api::history_limits_spec& limits,
                                      const std::vector<backup_record>& newest_first);

}  // namespace lifeboat::reconcilers
