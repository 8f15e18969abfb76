#include "controller/backup/runner.hpp"

namespace lifeboat::backup {

bool is_terminal(std::string_view p) {
  return p == phase::succeeded || p == phase::failed || p == phase::skipped;
}

}  // namespace lifeboat::backup
