#include "reconcilers/schedule.hpp"

#include <gtest/gtest.h>

namespace lifeboat::reconcilers {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

sys_seconds utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s};
}

api::backup_schedule schedule(const std::string& cron, const std::string& zone = "UTC",
                              bool suspend = false) {
  api::backup_schedule s;
  s.metadata.name = "nightly";
  s.spec.schedule = cron;
  s.spec.timezone = zone;
  s.spec.suspend = suspend;
  return s;
}

// The state's fields spelled out: GCC 12 warns (falsely) about std::set
// members initialised inside an array of aggregates.
struct state_fields {
  std::optional<sys_seconds> last_scheduled;
  sys_seconds since;
  bool run_active = false;
  std::vector<std::string> backups;
};

struct schedule_case {
  std::string name;
  api::backup_schedule object;
  state_fields state;
  sys_seconds now;
  std::optional<std::string> create;
  std::optional<sys_seconds> scheduled_for;
  bool skipped = false;
  bool missed_earlier = false;
  std::optional<sys_seconds> next_run;
};

TEST(plan_schedule, table) {
  const auto deadline = 1h;
  const schedule_case cases[] = {
      {"not yet due",
       schedule("0 3 * * *"),
       {std::nullopt, utc(2026, 11, 25, 1), false, {}},
       utc(2026, 11, 25, 2, 59, 59),
       std::nullopt,
       std::nullopt,
       false,
       false,
       utc(2026, 11, 25, 3)},
      {"due exactly now",
       schedule("0 3 * * *"),
       {std::nullopt, utc(2026, 11, 25, 1), false, {}},
       utc(2026, 11, 25, 3),
       "nightly-20261125030000",
       utc(2026, 11, 25, 3),
       false,
       false,
       utc(2026, 11, 26, 3)},
      {"already created: idempotent",
       schedule("0 3 * * *"),
       {std::nullopt, utc(2026, 11, 25, 1), false, {"nightly-20261125030000"}},
       utc(2026, 11, 25, 3, 0, 5),
       std::nullopt,
       utc(2026, 11, 25, 3),
       false,
       false,
       utc(2026, 11, 26, 3)},
      {"already recorded as last scheduled",
       schedule("0 3 * * *"),
       {utc(2026, 11, 25, 3), utc(2026, 11, 1), false, {}},
       utc(2026, 11, 25, 3, 10),
       std::nullopt,
       std::nullopt,
       false,
       false,
       utc(2026, 11, 26, 3)},
      {"previous run still active: skipped",
       schedule("*/5 * * * *"),
       {utc(2026, 11, 25, 3, 0), utc(2026, 11, 1), true, {"nightly-20261125030000"}},
       utc(2026, 11, 25, 3, 5, 1),
       std::nullopt,
       utc(2026, 11, 25, 3, 5),
       true,
       false,
       utc(2026, 11, 25, 3, 10)},
      {"downtime of a week: one run for the latest firing within the deadline",
       schedule("*/10 * * * *"),
       {utc(2026, 11, 18, 3), utc(2026, 11, 1), false, {}},
       utc(2026, 11, 25, 3, 25),
       "nightly-20261125032000",
       utc(2026, 11, 25, 3, 20),
       false,
       true,
       utc(2026, 11, 25, 3, 30)},
      {"the latest firing is older than the deadline: missed, nothing runs",
       schedule("0 3 * * *"),
       {utc(2026, 11, 20, 3), utc(2026, 11, 1), false, {}},
       utc(2026, 11, 25, 4, 30),
       std::nullopt,
       std::nullopt,
       false,
       true,
       utc(2026, 11, 26, 3)},
      {"created after today's firing: waits for tomorrow",
       schedule("0 3 * * *"),
       {std::nullopt, utc(2026, 11, 25, 3, 30), false, {}},
       utc(2026, 11, 25, 3, 31),
       std::nullopt,
       std::nullopt,
       false,
       false,
       utc(2026, 11, 26, 3)},
      {"suspended: nothing, no next run",
       schedule("0 3 * * *", "UTC", true),
       {std::nullopt, utc(2026, 11, 1), false, {}},
       utc(2026, 11, 25, 3),
       std::nullopt,
       std::nullopt,
       false,
       false,
       std::nullopt},
      {"time zone: 03:00 in Berlin is 02:00 UTC in winter",
       schedule("0 3 * * *", "Europe/Berlin"),
       {std::nullopt, utc(2026, 11, 1), false, {}},
       utc(2026, 11, 25, 2, 0, 30),
       "nightly-20261125020000",
       utc(2026, 11, 25, 2),
       false,
       true,
       utc(2026, 11, 26, 2)},
      {"@every 30s",
       schedule("@every 30s"),
       {utc(2026, 11, 25, 3, 0, 0), utc(2026, 11, 1), false, {}},
       utc(2026, 11, 25, 3, 0, 31),
       "nightly-20261125030030",
       utc(2026, 11, 25, 3, 0, 30),
       false,
       false,
       utc(2026, 11, 25, 3, 1, 0)},
  };
  for (const auto& c : cases) {
    const schedule_state state{c.state.last_scheduled,
                               c.state.since,
                               c.state.run_active,
                               {c.state.backups.begin(), c.state.backups.end()}};
    const auto d = plan_schedule(c.object, state, c.now, deadline);
    EXPECT_EQ(d.create_backup, c.create) << c.name;
    EXPECT_EQ(d.scheduled_for, c.scheduled_for) << c.name;
    EXPECT_EQ(d.skipped, c.skipped) << c.name;
    EXPECT_EQ(d.missed_earlier, c.missed_earlier) << c.name;
    EXPECT_EQ(d.next_run, c.next_run) << c.name;
  }
}

TEST(plan_schedule, applying_the_decision_makes_it_quiet) {
  // Idempotence: once the decision is recorded, planning again at the same
  // time starts nothing.
  const auto s = schedule("*/15 * * * *");
  schedule_state state{std::nullopt, utc(2026, 11, 25), false, {}};
  const auto now = utc(2026, 11, 25, 10, 15, 2);
  const auto first = plan_schedule(s, state, now, 1h);
  ASSERT_TRUE(first.create_backup);
  state.last_scheduled = first.scheduled_for;
  state.backups.insert(*first.create_backup);
  state.run_active = true;
  const auto again = plan_schedule(s, state, now, 1h);
  EXPECT_FALSE(again.create_backup);
  EXPECT_FALSE(again.skipped);
  EXPECT_FALSE(again.scheduled_for);
}

TEST(backup_name, is_the_utc_firing_time) {
  EXPECT_EQ(backup_name("db", utc(2026, 1, 2, 3, 4, 5)), "db-20260102030405");
}

TEST(first_free_run_second, is_now_when_no_record_has_its_name) {
  const auto now = utc(2026, 1, 2, 3, 4, 5);
  EXPECT_EQ(first_free_run_second("db", now, {"db-20260102030404", "other-20260102030405"}), now);
}

TEST(first_free_run_second, skips_the_seconds_whose_names_dead_runs_left) {
  const auto now = utc(2026, 1, 2, 3, 4, 59);
  EXPECT_EQ(first_free_run_second("db", now, {"db-20260102030459", "db-20260102030500"}),
            utc(2026, 1, 2, 3, 5, 1));
}

}  // namespace
}  // namespace lifeboat::reconcilers
