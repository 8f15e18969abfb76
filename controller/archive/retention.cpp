#include "controller/archive/retention.hpp"

#include "controller/restic/forget.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>

namespace lifeboat::archive {

namespace {

using std::chrono::system_clock;

// "2026-12-06T03:00:00+01:00": the instant in local time with its offset, as
// restic's keep rules read snapshot times.
std::string local_rfc3339(system_clock::time_point t, std::chrono::seconds offset) {
  const auto local = std::chrono::floor<std::chrono::seconds>(t) + offset;
  const auto day = std::chrono::floor<std::chrono::days>(local);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{local - day};
  const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(offset).count();
  const long magnitude = minutes < 0 ? -minutes : minutes;
  char text[96];  // room for any int fields, so that no output is cut
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d%c%02ld:%02ld",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                minutes < 0 ? '-' : '+', magnitude / 60, magnitude % 60);
  return text;
}

bool any_calendar_rule(const api::retention_spec& spec) {
  return spec.keep_hourly || spec.keep_daily || spec.keep_weekly || spec.keep_monthly ||
         spec.keep_yearly;
}

// Whether the calendar rules keep each of `newest_first`; all false when no
// calendar rule keeps any (the other rules decide then: restic's own
// keep_by_policy would keep everything).
std::vector<bool> kept_by_calendar(
    const std::vector<const archive_file*>& newest_first, const api::retention_spec& spec,
    const std::function<std::chrono::seconds(system_clock::time_point)>& utc_offset) {
  const restic::keep_policy policy{std::nullopt,     spec.keep_hourly,  spec.keep_daily,
                                   spec.keep_weekly, spec.keep_monthly, spec.keep_yearly};
  const std::array counts{policy.hourly, policy.daily, policy.weekly, policy.monthly,
                          policy.yearly};
  const bool keeps_some = std::any_of(counts.begin(), counts.end(),
                                      [](const std::optional<int>& n) { return n && *n > 0; });
  if (!keeps_some) {
    return std::vector<bool>(newest_first.size(), false);
  }
  std::vector<std::string> times;
  times.reserve(newest_first.size());
  for (const auto* f : newest_first) {
    times.push_back(
        local_rfc3339(f->mtime, utc_offset ? utc_offset(f->mtime) : std::chrono::seconds{0}));
  }
  auto keep = restic::keep_by_policy(times, policy);
  // The times are written above and always parse; were one not to, all are kept.
  return keep ? *keep : std::vector<bool>(newest_first.size(), true);
}

}  // namespace

retention_plan plan_retention(
    std::span<const archive_file> files, const archive_name_pattern& pattern,
    const api::retention_spec& spec, std::chrono::system_clock::time_point now,
    const std::function<std::chrono::seconds(std::chrono::system_clock::time_point)>& utc_offset) {
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
  const bool any_rule =
      spec.days.has_value() || spec.keep_last.has_value() || any_calendar_rule(spec);
  for (auto& [node, mine] : by_node) {
    std::sort(mine.begin(), mine.end(), newest_first);
    const auto by_calendar = kept_by_calendar(mine, spec, utc_offset);
    for (std::size_t rank = 0; rank < mine.size(); ++rank) {
      const archive_file& f = *mine[rank];
      const bool newest = rank == 0;
      const bool kept_by_count =
          spec.keep_last && rank < static_cast<std::size_t>(std::max(0, *spec.keep_last));
      const bool kept_by_age =
          spec.days && now - f.mtime <= std::chrono::hours{24} * std::max(0, *spec.days);
      (!any_rule || newest || kept_by_count || kept_by_age || by_calendar[rank] ? keep : remove)
          .push_back(&f);
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
