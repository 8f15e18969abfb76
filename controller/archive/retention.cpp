#include "controller/archive/retention.hpp"

#include <algorithm>
#include <map>

namespace lifeboat::archive {

retention_plan plan_retention(std::span<const archive_file> files,
                              const archive_name_pattern& pattern, const api::retention_spec& spec,
                              std::chrono::system_clock::time_point now) {
  // Each node's archives are a series of their own: a run that read volumes
  // on three nodes leaves three archives, and keepLast counts runs.
  std::map<std::string, std::vector<const archive_file*>> by_node;
  for (const auto& f : files) {
    if (auto node = pattern.node_of(f.name)) {
      by_node[*node].push_back(&f);
    }
  }
  auto newest_first = [](const archive_file* a, const archive_file* b) {
    if (a->mtime != b->mtime) {
      return a->mtime > b->mtime;
    }
    return a->name > b->name;
  };

  std::vector<const archive_file*> keep;
  std::vector<const archive_file*> remove;
  const bool any_rule = spec.days.has_value() || spec.keep_last.has_value();
  for (auto& [node, mine] : by_node) {
    std::sort(mine.begin(), mine.end(), newest_first);
    for (std::size_t rank = 0; rank < mine.size(); ++rank) {
      const archive_file& f = *mine[rank];
      const bool newest = rank == 0;
      const bool kept_by_count =
          spec.keep_last && rank < static_cast<std::size_t>(std::max(0, *spec.keep_last));
      const bool kept_by_age =
          spec.days && now - f.mtime <= std::chrono::hours{24} * std::max(0, *spec.days);
      (!any_rule || newest || kept_by_count || kept_by_age ? keep : remove).push_back(&f);
    }
  }
  std::sort(keep.begin(), keep.end(), newest_first);
  std::sort(remove.begin(), remove.end(), newest_first);
  retention_plan plan;
  for (const auto* f : keep) {
    plan.keep.push_back(f->name);
  }
  for (auto it = remove.rbegin(); it != remove.rend(); ++it) {
    plan.remove.push_back((*it)->name);
  }
  return plan;
}

}  // namespace lifeboat::archive
