#include "api/cron.hpp"

// Implementation in progress (see issue 3).
namespace lifeboat::api {

std::optional<cron_schedule> cron_schedule::parse(std::string_view, std::string& error) {
  error = "cron expressions are not supported yet";
  return std::nullopt;
}

std::chrono::sys_seconds cron_schedule::next_after(std::chrono::sys_seconds t,
                                                   const date::time_zone&) const {
  return t;
}

}  // namespace lifeboat::api
