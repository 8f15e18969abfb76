#pragma once

#include "api/objects.hpp"
#include "controller/archive/name_pattern.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace lifeboat::archive {

/// A file in a destination, as listed (see list_archive_files).
struct archive_file {
  std::string name;
  std::chrono::system_clock::time_point mtime;
  std::uint64_t size = 0;

  bool operator==(const archive_file&) const = default;
};

struct retention_plan {
  std::vector<std::string> remove;  ///< oldest first
  std::vector<std::string> keep;    ///< the schedule's archives that stay, newest first

  bool operator==(const retention_plan&) const = default;
};

/// Which of a schedule's archives to prune. Pure: no I/O, `now` injected.
///
/// Only files whose name matches `pattern` are considered; every other file
/// is neither removed nor listed. An archive exists under its final name only
/// once it is complete (local_archive_file), so each of them counts as a
/// successful backup. They are ordered newest first by mtime (ties: the
/// greater name first). Each rule of `spec` keeps some of them:
///   - the newest archive is always kept, whatever the rules say;
///   - keep_last N keeps the newest N;
///   - days D keeps those at most D days (D x 24 h) old; an mtime in the
///     future counts as new.
/// An archive is removed only when no rule keeps it: older than `days` AND
/// not among the newest `keep_last` (a rule that is not set keeps nothing).
///   - keep_hourly/daily/weekly/monthly/yearly N keep the newest archive of each
///     of the newest N hours (days, ISO weeks, months, years) that hold one,
///     restic's `forget --keep-*` rules (grandfather-father-son), on the
///     calendar of the mtimes' local time: `utc_offset` gives the offset of
///     the schedule's time zone at an instant (unset: UTC).
/// So {days: 7, keep_last: 3} keeps a week of archives, and at least three
/// however old they are; with no rule set nothing is removed. The archives of
/// each node (archive_name_pattern::node_of) are ranked apart: a run leaves
/// one per node, and every node keeps its own newest.
retention_plan plan_retention(
    std::span<const archive_file> files, const archive_name_pattern& pattern,
    const api::retention_spec& spec, std::chrono::system_clock::time_point now,
    const std::function<std::chrono::seconds(std::chrono::system_clock::time_point)>& utc_offset =
        {});

}  // namespace lifeboat::archive
