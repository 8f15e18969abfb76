#include "reconcilers/history.hpp"

#include <algorithm>

namespace lifeboat::reconcilers {

std::vector<std::string> plan_history(const api::history_limits_spec& limits,
                                      const std::vector<backup_record>& newest_first) {
  std::vector<std::string> remove;
  int succeeded = 0;
  int failed = 0;
  for (const auto& b : newest_first) {
    switch (b.outcome) {
      case backup_outcome::unfinished:
        break;
      case backup_outcome::succeeded:
        if (++succeeded > std::max(limits.succeeded, 0)) {
          remove.push_back(b.id);
        }
        break;
      case backup_outcome::failed:
        if (++failed > std::max(limits.failed, 0)) {
          remove.push_back(b.id);
        }
        break;
    }
  }
  return remove;
}

}  // namespace lifeboat::reconcilers
