#pragma once

#include "controller/objects/catalog.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace lifeboat::objects {

/// The part of an object's status that discovery decides.
struct object_status {
  std::string phase;    ///< "Ready", "Suspended", "Invalid", "Superseded"
  std::string message;  ///< empty when there is nothing to say
  std::optional<std::chrono::sys_seconds> next_run;  ///< schedules in force and not suspended

  bool operator==(const object_status&) const = default;
};

/// What discovery wants the status of `entry` to be at `now`; nullopt when
/// discovery has no say (a valid Backup or Restore in force: its phase belongs
/// to the run that executes it).
std::optional<object_status> desired_status(const catalog_entry& entry,
                                            std::chrono::sys_seconds now);

/// The labels a config must carry to show `status`: `current` with the status
/// keys that discovery owns replaced, and `lifeboat.status.observed` set to
/// `now`. Returns nullopt when `current` already shows `status`, so that a
/// resync with nothing changed writes nothing. Label values are cut to 1000
/// bytes (at a UTF-8 boundary).
std::optional<label_map> status_labels(const label_map& current, const object_status& status,
                                       std::chrono::sys_seconds now);

/// The next run of a valid schedule after `now` in its time zone.
std::chrono::sys_seconds next_run(const api::backup_schedule& schedule,
                                  std::chrono::sys_seconds now);

}  // namespace lifeboat::objects
