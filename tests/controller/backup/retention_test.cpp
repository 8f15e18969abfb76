#include "controller/backup/retention.hpp"

#include <gtest/gtest.h>

namespace lifeboat::backup {
namespace {

using namespace std::chrono;

sys_seconds day(int d) { return sys_days{year{2026} / 11 / d}; }

const std::string tmpl = "{schedule}-%Y-%m-%dT%H-%M-%S";

std::string file(int d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "nightly-db-2026-11-%02dT03-00-00.tar.gz", d);
  return buf;
}

TEST(archive_name_pattern, matches_only_this_schedules_archives) {
  const auto re = archive_name_pattern(tmpl, "nightly-db", ".tar.gz");
  EXPECT_TRUE(std::regex_match("nightly-db-2026-11-25T03-00-00.tar.gz", re));
  EXPECT_FALSE(std::regex_match("nightly-db-extra-2026-11-25T03-00-00.tar.gz", re))
      << "a schedule whose name extends ours";
  EXPECT_FALSE(std::regex_match("nightly-db-2026-11-25T03-00-00.tar.gz.sha256", re));
  EXPECT_FALSE(std::regex_match("nightly-db-2026-11-25T03-00-00.tar.gz.partial", re));
  EXPECT_FALSE(std::regex_match("nightly-db-2026-11-25T03-00-00.tar.zst", re));
  EXPECT_FALSE(std::regex_match("nightlyXdb-2026-11-25T03-00-00.tar.gz", re))
      << "literal text is literal, not a regex";
  EXPECT_FALSE(std::regex_match("notes.txt", re));

  const auto with_fields =
      archive_name_pattern("backup_{schedule}_%F_%j_%a_%b_%e_%%", "s.1", ".tar");
  EXPECT_TRUE(std::regex_match("backup_s.1_2026-11-25_329_Wed_Nov_25_%.tar", with_fields));
  EXPECT_TRUE(std::regex_match("backup_s.1_2026-11-05_309_Thu_Nov_ 5_%.tar", with_fields));
  EXPECT_FALSE(std::regex_match("backup_sx1_2026-11-25_329_Wed_Nov_25_%.tar", with_fields));
}

struct retention_case {
  std::string name;
  std::vector<archive_file> files;
  std::optional<api::retention_spec> retention;
  sys_seconds now;
  std::vector<std::string> expected;
};

TEST(plan_retention, table) {
  const auto re = archive_name_pattern(tmpl, "nightly-db", ".tar.gz");
  const std::vector<archive_file> week{{file(20), day(20)}, {file(21), day(21)},
                                       {file(22), day(22)}, {file(23), day(23)},
                                       {file(24), day(24)}, {file(25), day(25)}};
  const retention_case cases[] = {
      {"no retention keeps everything", week, std::nullopt, day(30), {}},
      {"keepLast 3",
       week,
       api::retention_spec{std::nullopt, 3},
       day(30),
       {file(22), file(21), file(20)}},
      {"days 3 keeps younger than 3 days",
       week,
       api::retention_spec{3, std::nullopt},
       day(25) + hours{12},
       {file(22), file(21), file(20)}},
      {"days and keepLast: kept if either keeps it",
       week,
       api::retention_spec{2, 4},
       day(25) + hours{12},
       {file(21), file(20)}},
      {"never prunes the newest, even when everything is old",
       week,
       api::retention_spec{1, 0},
       day(30),
       {file(24), file(23), file(22), file(21), file(20)}},
      {"keepLast 0 still keeps the newest",
       {{file(20), day(20)}, {file(21), day(21)}},
       api::retention_spec{std::nullopt, 0},
       day(30),
       {file(20)}},
      {"never touches another schedule's files or other files",
       {{file(20), day(20)},
        {file(25), day(25)},
        {"nightly-db-extra-2026-11-01T03-00-00.tar.gz", day(1)},
        {file(20) + ".sha256", day(20)},
        {"README", day(1)}},
       api::retention_spec{std::nullopt, 1},
       day(30),
       {file(20)}},
      {"same time: by name",
       {{file(20), day(25)}, {file(21), day(25)}},
       api::retention_spec{std::nullopt, 1},
       day(30),
       {file(20)}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(plan_retention(c.files, re, c.retention, c.now), c.expected) << c.name;
  }
}

}  // namespace
}  // namespace lifeboat::backup
