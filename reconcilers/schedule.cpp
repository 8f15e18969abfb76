#include "reconcilers/schedule.hpp"

#include "api/cron.hpp"

#include <date/tz.h>

#include <cstdio>
#include <stdexcept>

namespace lifeboat::reconcilers {

std::string backup_name(const std::string& schedule, std::chrono::sys_seconds at) {
  const auto days = std::chrono::floor<std::chrono::days>(at);
  const std::chrono::year_month_day ymd(days);
  const std::chrono::hh_mm_ss hms(at - days);
  char stamp[24];
  std::snprintf(stamp, sizeof stamp, "%04d%02u%02u%02d%02d%02d", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return schedule + "-" + stamp;
}

std::chrono::sys_seconds first_free_run_second(const std::string& schedule,
                                               std::chrono::sys_seconds now,
                                               const std::set<std::string>& taken) {
  auto at = now;
  while (taken.contains(backup_name(schedule, at))) {
    at += std::chrono::seconds{1};
  }
  return at;
}

schedule_decision plan_schedule(const api::backup_schedule& schedule, const schedule_state& state,
                                std::chrono::sys_seconds now,
                                std::chrono::seconds starting_deadline) {
  schedule_decision d;
  if (schedule.spec.suspend) {
    return d;
  }
  std::string error;
  const auto cron = api::cron_schedule::parse(schedule.spec.schedule, error);
  if (!cron) {
    // Decoded schedules passed the same parse: this is a bug, not user input.
    throw std::logic_error("plan_schedule: unparsable schedule: " + error);
  }
  const auto& zone = *date::locate_zone(schedule.spec.timezone);

  // Firing times after `reference` may be due; of those only the ones within
  // the deadline are considered, and of those only the latest.
  const auto reference = state.last_scheduled.value_or(state.since);
  const auto window_start = std::max(reference, now - starting_deadline - std::chrono::seconds{1});
  std::optional<std::chrono::sys_seconds> due;
  for (auto t = cron->next_after(window_start, zone); t <= now; t = cron->next_after(t, zone)) {
    due = t;
  }
  if (window_start > reference) {
    const auto first_after_reference = cron->next_after(reference, zone);
    d.missed_earlier = first_after_reference <= window_start;
  }
  if (due) {
    d.scheduled_for = due;
    const auto name = backup_name(schedule.metadata.name, *due);
    if (state.run_active && !state.backups.contains(name)) {
      d.skipped = true;
    } else if (!state.backups.contains(name)) {
      d.create_backup = name;
    }
  }
  d.next_run = cron->next_after(now, zone);
  return d;
}

}  // namespace lifeboat::reconcilers
