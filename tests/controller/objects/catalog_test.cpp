#include "controller/objects/catalog.hpp"
#include "controller/objects/status.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace lifeboat::objects {
namespace {

using std::chrono::sys_days;
using namespace std::chrono_literals;

std::string schedule_yaml(const std::string& name, const std::string& cron,
                          const std::string& extra = "") {
  return "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: " + name +
         "}\nspec:\n  schedule: \"" + cron +
         "\"\n  volumes: [app_db]\n  destinations: [{local: {path: /archive}}]\n" + extra;
}

object_source config(std::string id, std::string created_at, std::string data) {
  return {
      id, 10, "cfg-" + id, std::move(created_at), {{"lifeboat.object", "true"}}, std::move(data)};
}

const catalog_entry& by_id(const std::vector<catalog_entry>& c, const std::string& id) {
  for (const auto& e : c) {
    if (e.source.id == id) {
      return e;
    }
  }
  throw std::runtime_error("no entry " + id);
}

TEST(compare_timestamps, fractions_of_any_length) {
  EXPECT_GT(compare_timestamps("2026-11-25T15:05:36.5Z", "2026-11-25T15:05:36.123456789Z"), 0);
  EXPECT_LT(compare_timestamps("2026-11-25T15:05:36Z", "2026-11-25T15:05:36.000000001Z"), 0);
  EXPECT_EQ(compare_timestamps("2026-11-25T15:05:36.1Z", "2026-11-25T15:05:36.100Z"), 0);
  EXPECT_LT(compare_timestamps("2026-11-25T15:05:36.9Z", "2026-11-25T15:05:37Z"), 0);
}

TEST(build_catalog, newest_valid_version_is_in_force) {
  const auto catalog = build_catalog({
      config("a", "2026-11-25T10:00:00.5Z", schedule_yaml("db", "0 3 * * *")),
      config("b", "2026-11-25T11:00:00.25Z", schedule_yaml("db", "0 4 * * *")),
      config("c", "2026-11-25T09:00:00Z", schedule_yaml("other", "0 5 * * *")),
  });
  ASSERT_EQ(catalog.size(), 3U);
  EXPECT_EQ(by_id(catalog, "b").state, standing::active);
  EXPECT_EQ(by_id(catalog, "a").state, standing::superseded);
  EXPECT_EQ(by_id(catalog, "a").superseded_by, "cfg-b");
  EXPECT_EQ(by_id(catalog, "c").state, standing::active);
  // Ordered by kind, name, newest first.
  EXPECT_EQ(catalog[0].source.id, "b");
  EXPECT_EQ(catalog[1].source.id, "a");
  EXPECT_EQ(catalog[2].source.id, "c");
}

TEST(build_catalog, a_newer_invalid_version_does_not_displace_the_valid_one) {
  const auto catalog = build_catalog({
      config("old", "2026-11-25T10:00:00Z", schedule_yaml("db", "0 3 * * *")),
      config("new", "2026-11-25T11:00:00Z", schedule_yaml("db", "0 25 * * *")),
  });
  const auto& old_entry = by_id(catalog, "old");
  const auto& new_entry = by_id(catalog, "new");
  EXPECT_EQ(old_entry.state, standing::active);
  EXPECT_NE(old_entry.note.find("cfg-new"), std::string::npos) << old_entry.note;
  EXPECT_EQ(new_entry.state, standing::invalid);
  EXPECT_EQ(new_entry.document.name, "db");
  EXPECT_NE(new_entry.error_summary().find("5:13: spec.schedule"), std::string::npos)
      << new_entry.error_summary();
}

TEST(build_catalog, same_creation_time_is_decided_by_id) {
  const auto catalog = build_catalog({
      config("x1", "2026-11-25T10:00:00Z", schedule_yaml("db", "0 3 * * *")),
      config("x2", "2026-11-25T10:00:00Z", schedule_yaml("db", "0 4 * * *")),
  });
  EXPECT_EQ(by_id(catalog, "x2").state, standing::active);
  EXPECT_EQ(by_id(catalog, "x1").state, standing::superseded);
}

TEST(build_catalog, a_config_holds_exactly_one_object) {
  const auto catalog = build_catalog({
      config("two", "2026-11-25T10:00:00Z",
             schedule_yaml("a", "0 3 * * *") + "---\n" + schedule_yaml("b", "0 3 * * *")),
      config("none", "2026-11-25T10:00:00Z", "# nothing here\n"),
  });
  const auto& two = by_id(catalog, "two");
  EXPECT_EQ(two.state, standing::invalid);
  EXPECT_NE(two.error_summary().find("holds 2 documents"), std::string::npos)
      << two.error_summary();
  EXPECT_EQ(by_id(catalog, "none").state, standing::invalid);
  EXPECT_NE(by_id(catalog, "none").error_summary().find("holds no object"), std::string::npos);
}

TEST(desired_status, by_standing_and_kind) {
  const auto now = sys_days{std::chrono::year{2026} / 11 / 25} + 15h;
  const auto catalog = build_catalog({
      config("s", "2026-11-25T10:00:00Z", schedule_yaml("db", "0 3 * * *")),
      config("p", "2026-11-25T10:00:00Z",
             schedule_yaml("paused", "0 3 * * *", "  suspend: true\n")),
      config("b", "2026-11-25T10:00:00Z",
             "apiVersion: lifeboat/v1\nkind: Backup\nmetadata: {name: once}\n"
             "spec: {scheduleRef: db}\n"),
      config("bad", "2026-11-25T10:00:00Z", "kind: Nope\n"),
  });
  const auto ready = desired_status(by_id(catalog, "s"), now);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->phase, "Ready");
  EXPECT_EQ(ready->next_run, sys_days{std::chrono::year{2026} / 11 / 26} + 3h);
  const auto paused = desired_status(by_id(catalog, "p"), now);
  ASSERT_TRUE(paused);
  EXPECT_EQ(paused->phase, "Suspended");
  EXPECT_FALSE(paused->next_run);
  EXPECT_FALSE(desired_status(by_id(catalog, "b"), now)) << "a Backup's phase is its run's";
  const auto invalid = desired_status(by_id(catalog, "bad"), now);
  ASSERT_TRUE(invalid);
  EXPECT_EQ(invalid->phase, "Invalid");
  EXPECT_FALSE(invalid->message.empty());
}

TEST(status_labels, writes_only_what_changed) {
  const auto now = sys_days{std::chrono::year{2026} / 11 / 25} + 15h;
  const object_status ready{"Ready", "", sys_days{std::chrono::year{2026} / 11 / 26} + 3h};
  const label_map base{{"lifeboat.object", "true"}, {"team", "db"}};

  const auto first = status_labels(base, ready, now);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->at("lifeboat.status.phase"), "Ready");
  EXPECT_EQ(first->at("lifeboat.status.next-run"), "2026-11-26T03:00:00Z");
  EXPECT_EQ(first->at("lifeboat.status.observed"), "2026-11-25T15:00:00Z");
  EXPECT_EQ(first->at("team"), "db") << "other labels are kept";
  EXPECT_FALSE(first->contains("lifeboat.status.message")) << "no empty labels";

  // The same status an hour later: nothing to write.
  EXPECT_FALSE(status_labels(*first, ready, now + 1h));

  // A different status replaces the keys and drops next-run.
  const auto invalid = status_labels(*first, {"Invalid", "1:1: kind: bad", std::nullopt}, now);
  ASSERT_TRUE(invalid);
  EXPECT_EQ(invalid->at("lifeboat.status.phase"), "Invalid");
  EXPECT_FALSE(invalid->contains("lifeboat.status.next-run"));
}

TEST(status_labels, long_messages_are_cut_at_a_character_boundary) {
  const auto now = sys_days{std::chrono::year{2026} / 1 / 1};
  std::string message;
  while (message.size() < 3000) {
    message += "é";  // two bytes each
  }
  const auto labels = status_labels({}, {"Invalid", message, std::nullopt}, now);
  ASSERT_TRUE(labels);
  const auto& cut = labels->at("lifeboat.status.message");
  EXPECT_LE(cut.size(), 1000U);
  EXPECT_TRUE(cut.ends_with("..."));
  EXPECT_EQ(cut.size() % 2, 1U) << "an é was split";
}

// Issue 12, item 13: a message naming a file from a volume stays one line.
TEST(Issue12Item13Labels, StatusMessageLabelHasNoControlCharacters) {
  const auto now = sys_days{std::chrono::year{2026} / 1 / 1};
  const auto labels = status_labels(
      {}, {"Invalid", "1:1: archive.exclude: bad\nlifeboat.status.phase=Ready\x1b", std::nullopt},
      now);
  ASSERT_TRUE(labels);
  EXPECT_EQ(labels->at("lifeboat.status.message"),
            "1:1: archive.exclude: bad\\nlifeboat.status.phase=Ready\\x1b");
}

TEST(load_directory, one_source_per_document_keeping_line_numbers) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("lifeboat-catalog-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "two.yaml") << schedule_yaml("a", "0 3 * * *") << "---\n"
                                    << schedule_yaml("b", "0 99 * * *");
    std::ofstream(dir / "ignored.txt") << "not yaml";
  }
  std::vector<object_source> sources;
  ASSERT_FALSE(load_directory(dir.string(), sources));
  std::filesystem::remove_all(dir);
  ASSERT_EQ(sources.size(), 2U);
  const auto catalog = build_catalog(std::move(sources));
  ASSERT_EQ(catalog.size(), 2U);
  EXPECT_EQ(catalog[0].state, standing::active);
  EXPECT_EQ(catalog[1].state, standing::invalid);
  // The second document's schedule is on line 13 of the file (7 + "---" + 5).
  EXPECT_NE(catalog[1].error_summary().find("13:13: spec.schedule"), std::string::npos)
      << catalog[1].error_summary();

  std::vector<object_source> none;
  const auto error = load_directory("/nonexistent/lifeboat", none);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("/nonexistent/lifeboat"), std::string::npos);
}

}  // namespace
}  // namespace lifeboat::objects
