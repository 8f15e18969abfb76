#include "controller/archive/retention.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

// Retention as a table: the folder's files (name, age), the rules, `now`,
// and what goes.
namespace lifeboat::archive {
namespace {

using namespace std::chrono;

const system_clock::time_point now = sys_days{year{2024} / June / 15} + hours{12};

// "nightly-db" archives named for their day; the mtime follows the name.
archive_file nightly(int day, hours after_midnight = hours{3}) {
  char name[64];
  std::snprintf(name, sizeof name, "nightly-db-2024-06-%02dT03-00-00.tar.gz", day);
  return archive_file{name, sys_days{year{2024} / June / day} + after_midnight, 1000};
}

archive_file other(std::string name, int day) {
  return archive_file{std::move(name), sys_days{year{2024} / June / day}, 1000};
}

struct retention_case {
  std::string name;
  std::vector<archive_file> files;
  api::retention_spec spec;
  std::vector<std::string> removed;  // oldest first
};

std::string day_name(int day) { return nightly(day).name; }

TEST(plan_retention, table) {
  const archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly-db", ".tar.gz");
  const std::vector<retention_case> cases = {
      {"keep_last alone keeps the newest N",
       {nightly(10), nightly(11), nightly(12), nightly(13), nightly(14)},
       {std::nullopt, 2},
       {day_name(10), day_name(11), day_name(12)}},
      {"days alone removes what is older than D days",
       {nightly(1), nightly(7), nightly(8), nightly(9), nightly(14)},
       {7, std::nullopt},
       {day_name(1), day_name(7), day_name(8)}},  // day 8 is 7 d 9 h old, day 9 6 d 9 h
      {"exactly D days old stays",
       {archive_file{day_name(8), now - hours{24 * 7}, 1}, nightly(14)},
       {7, std::nullopt},
       {}},
      {"a second older than D days goes",
       {archive_file{day_name(8), now - hours{24 * 7} - seconds{1}, 1}, nightly(14)},
       {7, std::nullopt},
       {day_name(8)}},
      {"both: removed only when older than days AND not among the newest keep_last",
       {nightly(1), nightly(2), nightly(3), nightly(13), nightly(14)},
       {7, 4},
       {day_name(1)}},
      {"both: keep_last protects old archives when the recent ones are few",
       {nightly(1), nightly(2), nightly(3)},
       {7, 2},
       {day_name(1)}},
      {"never prunes the newest good archive, even with keep_last 0",
       {nightly(1), nightly(2), nightly(3)},
       {std::nullopt, 0},
       {day_name(1), day_name(2)}},
      {"never prunes the newest good archive, even when it is older than days",
       {nightly(1), nightly(2)},
       {0, std::nullopt},
       {day_name(1)}},
      {"never prunes the newest, with both rules at zero", {nightly(1)}, {0, 0}, {}},
      {"never touches a file of another schedule sharing the prefix",
       {nightly(1), nightly(14), other("nightly-db-extra-2024-06-01T03-00-00.tar.gz", 1),
        other("nightly-db-extra-2024-06-02T03-00-00.tar.gz", 2)},
       {std::nullopt, 1},
       {day_name(1)}},
      {"never touches checksums, partials, other extensions or strangers",
       {nightly(1), nightly(14), other(day_name(1) + ".sha256", 1),
        other(day_name(2) + ".partial", 2), other("nightly-db-2024-06-03T03-00-00.tar.zst", 3),
        other("notes.txt", 1), other("latest", 1)},
       {0, 0},
       {day_name(1)}},
      {"another schedule's newer archive does not count as our newest",
       {nightly(1), nightly(2), other("nightly-db-extra-2024-06-14T03-00-00.tar.gz", 14)},
       {0, std::nullopt},
       {day_name(1)}},
      {"newest by mtime, not by name",
       {archive_file{day_name(1), now - hours{1}, 1},
        archive_file{day_name(2), now - hours{48}, 1}},
       {std::nullopt, 1},
       {day_name(2)}},
      {"an mtime in the future counts as new",
       {archive_file{day_name(1), now + hours{48}, 1}, nightly(2), nightly(3)},
       {1, std::nullopt},
       {day_name(2), day_name(3)}},
      {"same mtime: the greater name is newer",
       {archive_file{day_name(1), now - hours{100}, 1},
        archive_file{day_name(2), now - hours{100}, 1}},
       {std::nullopt, 1},
       {day_name(1)}},
      {"no files", {}, {7, 3}, {}},
  };
  for (const auto& c : cases) {
    const retention_plan plan = plan_retention(c.files, pattern, c.spec, now);
    EXPECT_EQ(plan.remove, c.removed) << c.name;
    // Everything of ours is either kept or removed, never both.
    std::size_t ours = 0;
    for (const auto& f : c.files) {
      ours += pattern.matches(f.name) ? 1 : 0;
    }
    EXPECT_EQ(plan.keep.size() + plan.remove.size(), ours) << c.name;
    if (ours > 0) {
      EXPECT_FALSE(plan.keep.empty()) << c.name;
    }
  }
}

// A run that read volumes on two nodes left two archives per day: keepLast
// counts runs, and each node keeps its own newest.
TEST(plan_retention, ranks_each_nodes_archives_apart) {
  const archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly-db", ".tar.gz");
  auto on_node = [](int day, const std::string& node) {
    auto f = nightly(day);
    f.name = node_file_name(f.name.substr(0, f.name.size() - 7), node, ".tar.gz");
    return f;
  };
  const std::vector<archive_file> files = {nightly(1),         on_node(1, "n3"), nightly(2),
                                           on_node(2, "n3"),   nightly(3),       on_node(3, "n3"),
                                           on_node(1, "other")};
  const auto plan = plan_retention(files, pattern, {std::nullopt, 2}, now);
  // Same mtime: the greater name first, as in one series.
  EXPECT_EQ(plan.remove, (std::vector<std::string>{on_node(1, "n3").name, day_name(1)}));
  EXPECT_EQ(plan.keep, (std::vector<std::string>{day_name(3), on_node(3, "n3").name, day_name(2),
                                                 on_node(2, "n3").name, on_node(1, "other").name}));
}

TEST(plan_retention, keep_is_newest_first_and_remove_oldest_first) {
  const archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly-db", ".tar.gz");
  const std::vector<archive_file> files = {nightly(3), nightly(1), nightly(5), nightly(2),
                                           nightly(4)};
  const auto plan = plan_retention(files, pattern, {std::nullopt, 2}, now);
  EXPECT_EQ(plan.keep, (std::vector<std::string>{day_name(5), day_name(4)}));
  EXPECT_EQ(plan.remove, (std::vector<std::string>{day_name(1), day_name(2), day_name(3)}));
}

// An archive of June `day` at `hour`:`minute` UTC, named for it.
archive_file at(int day, int hour, int minute = 0) {
  char name[64];
  std::snprintf(name, sizeof name, "nightly-db-2024-06-%02dT%02d-%02d-00.tar.gz", day, hour,
                minute);
  return archive_file{name, sys_days{year{2024} / June / day} + hours{hour} + minutes{minute},
                      1000};
}

// Grandfather-father-son: the newest archive of each of the newest N days,
// ISO weeks... (restic's forget rules), any rule keeping an archive keeps it.
TEST(plan_retention, calendar_rules_keep_the_newest_of_each_period) {
  const archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly-db", ".tar.gz");
  std::vector<archive_file> files;
  for (int day = 1; day <= 14; ++day) {
    files.push_back(at(day, 3));
    files.push_back(at(day, 15));
  }
  api::retention_spec spec;
  spec.keep_daily = 3;
  spec.keep_weekly = 2;  // June 2024: the weeks of Monday 10 and Monday 3
  auto plan = plan_retention(files, pattern, spec, now);
  EXPECT_EQ(plan.keep, (std::vector<std::string>{at(14, 15).name, at(13, 15).name, at(12, 15).name,
                                                 at(9, 15).name}));
  EXPECT_EQ(plan.remove.size(), files.size() - 4);
  EXPECT_EQ(plan.remove.front(), at(1, 3).name);

  // keepLast adds to them; a monthly rule keeps June's newest, already kept.
  spec.keep_last = 5;
  spec.keep_monthly = 12;
  plan = plan_retention(files, pattern, spec, now);
  EXPECT_EQ(plan.keep, (std::vector<std::string>{at(14, 15).name, at(14, 3).name, at(13, 15).name,
                                                 at(13, 3).name, at(12, 15).name, at(9, 15).name}));

  // A rule of 0 keeps nothing by itself: the newest stays, as always.
  api::retention_spec zero;
  zero.keep_daily = 0;
  plan = plan_retention(files, pattern, zero, now);
  EXPECT_EQ(plan.keep, (std::vector<std::string>{at(14, 15).name}));
}

// Days are the schedule's: at +02:00, 23:30 and 00:30 UTC are one day.
TEST(plan_retention, calendar_rules_count_days_in_the_schedules_zone) {
  const archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly-db", ".tar.gz");
  const std::vector<archive_file> files = {at(9, 12), at(10, 23, 30), at(11, 0, 30)};
  api::retention_spec spec;
  spec.keep_daily = 2;
  const auto in_utc = plan_retention(files, pattern, spec, now);
  EXPECT_EQ(in_utc.remove, (std::vector<std::string>{at(9, 12).name}));
  const auto in_berlin =
      plan_retention(files, pattern, spec, now, [](system_clock::time_point) { return hours{2}; });
  EXPECT_EQ(in_berlin.remove, (std::vector<std::string>{at(10, 23, 30).name}));
  EXPECT_EQ(in_berlin.keep, (std::vector<std::string>{at(11, 0, 30).name, at(9, 12).name}));
}

}  // namespace
}  // namespace lifeboat::archive
