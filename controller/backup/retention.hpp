#pragma once

#include "api/objects.hpp"

#include <chrono>
#include <regex>
#include <string>
#include <vector>

// Which archives to prune. Pure: the caller lists the folder and deletes.
namespace lifeboat::backup {

/// A regular expression that matches exactly the file names a schedule's
/// archive template produces (with `extension`), and nothing else: literal
/// text is matched literally, each strftime field by its exact shape.
std::regex archive_name_pattern(std::string_view name_template, std::string_view schedule_name,
                                std::string_view extension);

struct archive_file {
  std::string name;
  std::chrono::sys_seconds modified;
};

/// The files to delete among `files` (names in one folder). Rules:
///  - only names matching `pattern` are considered (this schedule's archives;
///    checksums, partials and other files never);
///  - the newest considered archive is always kept;
///  - with keepLast N the newest N are kept; with days D archives younger
///    than D days are kept; a file goes only when no rule that is set keeps it;
///  - without retention nothing goes.
/// Newest by modification time, then by name. Returned newest first.
std::vector<std::string> plan_retention(const std::vector<archive_file>& files,
                                        const std::regex& pattern,
                                        const std::optional<api::retention_spec>& retention,
                                        std::chrono::sys_seconds now);

}  // namespace lifeboat::backup
