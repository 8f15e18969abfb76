#include "controller/backup/phase_hooks.hpp"

namespace lifeboat::backup {

std::string_view to_string(hook_point point) {
  const bool pre = point.when == hook_when::pre;
  switch (point.phase) {
    case hook_phase::archive:
      return pre ? "archive-pre" : "archive-post";
    case hook_phase::process:
      return pre ? "process-pre" : "process-post";
    case hook_phase::copy:
      return pre ? "copy-pre" : "copy-post";
    case hook_phase::prune:
      return pre ? "prune-pre" : "prune-post";
  }
  return "unknown";
}

}  // namespace lifeboat::backup
