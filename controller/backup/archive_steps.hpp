#pragma once

#include "controller/archive/name_pattern.hpp"
#include "controller/backup/engine_runner.hpp"

namespace lifeboat::backup {

/// The archive steps of every run: the pipeline of controller/archive (pax
/// tar, gzip on all cores / zstd / none, exclude) into an upload of the first
/// destination (visible only once complete, with a `.sha256` beside it), and
/// retention among this schedule's archives only, in each destination.
archive_steps standard_archive_steps();

/// The names `schedule` writes: its archive name template and the extension
/// of its transform chain.
archive::archive_name_pattern name_pattern_of(const api::backup_schedule& schedule);

/// Retention among this schedule's own archives in one destination: removes
/// what the schedule's policy no longer keeps (each node's archives ranked
/// apart) and says how many went. Leftovers of interrupted runs are not looked
/// for here; prune (the controller's) removes them first.
archive::result<std::size_t> apply_retention(const api::backup_schedule& schedule,
                                             destinations::destination& destination);

}  // namespace lifeboat::backup
