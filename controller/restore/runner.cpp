#include "controller/restore/runner.hpp"

namespace lifeboat::restore {

bool is_terminal(std::string_view p) { return p == phase::succeeded || p == phase::failed; }

}  // namespace lifeboat::restore
