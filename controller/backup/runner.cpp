#include "controller/backup/runner.hpp"

#include <fmt/core.h>

namespace lifeboat::backup {

bool is_terminal(std::string_view p) {
  return p == phase::succeeded || p == phase::failed || p == phase::skipped;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, units[u]);
}

}  // namespace lifeboat::backup
