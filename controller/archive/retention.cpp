#include "controller/archive/retention.hpp"

#include <algorithm>

namespace lifeboat::archive {

retention_plan plan_retention(std::span<const archive_file> files,
                              const archive_name_pattern& pattern, const api::retention_spec& spec,
                              std::chrono::system_clock::time_point now) {
  std::vector<const archive_file*> mine;
  for (const auto& f : files) {
    if (pattern.matches(f.name)) {
      mine.push_back(&f);
    }
  }
  std::sort(mine.begin(), mine.end(), [](const archive_file* a, const archive_file* b) {
    if (a->mtime != b->mtime) {
      return a->mtime > b->mtime;
    }
    return a->name > b->name;
  });

  retention_plan plan;
  const bool any_rule = spec.days.has_value() || spec.keep_last.has_value();
  for (std::size_t rank = 0; rank < mine.size(); ++rank) {
    const archive_file& f = *mine[rank];
    const bool newest = rank == 0;
    const bool kept_by_count =
        spec.keep_last && rank < static_cast<std::size_t>(std::max(0, *spec.keep_last));
    const bool kept_by_age =
        spec.days && now - f.mtime <= std::chrono::hours{24} * std::max(0, *spec.days);
    if (!any_rule || newest || kept_by_count || kept_by_age) {
      plan.keep.push_back(f.name);
    } else {
      plan.remove.push_back(f.name);
    }
  }
  std::reverse(plan.remove.begin(), plan.remove.end());
  return plan;
}

}  // namespace lifeboat::archive
