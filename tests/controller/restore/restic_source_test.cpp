// Which snapshot each target of a Restore from a restic repository comes
// from (restore::pick_snapshots): pure, on snapshot lists built here.
#include "controller/restore/restic_source.hpp"

#include "controller/restic/store.hpp"

#include <gtest/gtest.h>

namespace lifeboat::restore {
namespace {

using listed = std::vector<std::pair<restic::object_id, restic::snapshot>>;

restic::object_id id_of(unsigned char first, unsigned char second = 0) {
  restic::object_id id{};
  id[0] = first;
  id[1] = second;
  return id;
}

restic::snapshot snap(std::string time, std::vector<std::string> paths,
                      std::vector<std::string> tags = {}) {
  restic::snapshot s;
  s.time = std::move(time);
  s.paths = std::move(paths);
  s.tags = std::move(tags);
  return s;
}

api::restic_source source(std::string snapshot = "latest", std::vector<std::string> tags = {}) {
  return {"/repo", "/pw", std::move(snapshot), std::move(tags)};
}

TEST(pick_snapshots, latest_is_per_volume_the_newest_holding_its_path_offsets_honoured) {
  const listed all = {
      {id_of(0x11), snap("2026-12-01T03:00:00Z", {"/db"})},
      // Later in UTC than 03:00Z, though its text sorts first: 02:30-01:00 is 03:30Z.
      {id_of(0x22), snap("2026-12-01T02:30:00-01:00", {"/db"})},
      {id_of(0x33), snap("2026-12-02T03:00:00Z", {"/uploads"})},
      {id_of(0x44), snap("2026-12-03T03:00:00Z", {"/dbx"})},
  };
  const auto picked = pick_snapshots(all, source(), {{"db", "db"}, {"uploads", "u2"}});
  ASSERT_TRUE(picked) << picked.error().message;
  ASSERT_EQ(picked->size(), 2U);
  EXPECT_EQ((*picked)[0].snapshot, id_of(0x22));
  EXPECT_EQ((*picked)[0].short_id, "22000000");
  EXPECT_EQ((*picked)[0].subtree, "/db");
  EXPECT_EQ((*picked)[1].snapshot, id_of(0x33));
  EXPECT_EQ((*picked)[1].subtree, "/uploads");
}

TEST(pick_snapshots, a_path_inside_a_snapshot_of_a_folder_above_it_matches) {
  const listed all = {
      {id_of(0x11), snap("2026-12-01T03:00:00Z", {"/srv"})},
      {id_of(0x22), snap("2026-12-02T03:00:00Z", {"/srv/database"})},
  };
  const auto picked = pick_snapshots(all, source(), {{"/srv/data", "app"}});
  ASSERT_TRUE(picked) << picked.error().message;
  EXPECT_EQ(picked->at(0).snapshot, id_of(0x11)) << "/srv/database does not hold /srv/data";
  EXPECT_EQ(picked->at(0).subtree, "/srv/data");
}

TEST(pick_snapshots, latest_keeps_to_snapshots_with_every_tag) {
  const listed all = {
      {id_of(0x11), snap("2026-12-01T03:00:00Z", {"/db"}, {"lifeboat", "backup=db-1"})},
      {id_of(0x22), snap("2026-12-02T03:00:00Z", {"/db"}, {"lifeboat", "backup=db-2"})},
  };
  const auto picked = pick_snapshots(all, source("latest", {"backup=db-1"}), {{"db", "db"}});
  ASSERT_TRUE(picked) << picked.error().message;
  EXPECT_EQ(picked->at(0).snapshot, id_of(0x11));

  const auto none =
      pick_snapshots(all, source("latest", {"lifeboat", "backup=db-3"}), {{"db", "db"}});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message,
            "spec.restic: no snapshot in /repo holds /db with the tags lifeboat, backup=db-3");
}

TEST(pick_snapshots, an_id_prefix_names_one_snapshot_for_every_volume_or_fails_naming_both) {
  const listed all = {
      {id_of(0xab, 0xcd), snap("2026-12-01T03:00:00Z", {"/db"})},
      {id_of(0xab, 0xce), snap("2026-12-02T03:00:00Z", {"/db"})},
  };
  const auto picked = pick_snapshots(all, source("abcd"), {{"db", "db"}, {"/db/sub", "x"}});
  ASSERT_TRUE(picked) << picked.error().message;
  EXPECT_EQ(picked->at(0).snapshot, id_of(0xab, 0xcd));
  EXPECT_EQ(picked->at(1).snapshot, id_of(0xab, 0xcd));
  EXPECT_EQ(picked->at(1).subtree, "/db/sub");

  const auto ambiguous = pick_snapshots(all, source("ab"), {{"db", "db"}});
  ASSERT_FALSE(ambiguous);
  EXPECT_EQ(ambiguous.error().message,
            "spec.restic.snapshot: ab names more than one snapshot of /repo (abcd0000 and "
            "abce0000): give more of the ID");
  const auto missing = pick_snapshots(all, source("ff"), {{"db", "db"}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "spec.restic.snapshot: no snapshot ff in /repo");
}

TEST(pick_snapshots, a_snapshot_whose_time_does_not_parse_fails_naming_it) {
  const listed all = {{id_of(0x11), snap("yesterday", {"/db"})}};
  const auto picked = pick_snapshots(all, source(), {{"db", "db"}});
  ASSERT_FALSE(picked);
  EXPECT_NE(picked.error().message.find("snapshot 11000000 time"), std::string::npos)
      << picked.error().message;
}

}  // namespace
}  // namespace lifeboat::restore
