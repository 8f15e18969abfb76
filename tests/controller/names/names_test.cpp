// Issue 12, item 4 (Names): Swarm refuses a config name longer than 64
// characters. Every name lifeboat derives from an object name must fit for
// the longest names validation accepts, and stay distinct.
#include "api/objects.hpp"
#include "api/validate.hpp"
#include "controller/loop/reconciler.hpp"
#include "controller/objects/swarm_objects.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "reconcilers/schedule.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

namespace lifeboat {
namespace {

using namespace std::chrono;

// Swarm's own rule for config names (swarmkit's validateConfigOrSecretAnnotations):
// [a-zA-Z0-9]+([a-zA-Z0-9-_.]*[a-zA-Z0-9])?, at most 64 characters.
bool swarm_accepts_config_name(const std::string& name) {
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (name.empty() || name.size() > 64 || !alnum(name.front()) || !alnum(name.back())) {
    return false;
  }
  for (const char c : name) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

// The longest names validation accepts, and near-twins that differ only in
// their last character (a cut that drops it must not make them one).
std::string longest(std::size_t length, char last = 'a') {
  std::string name(length, 'n');
  name.back() = last;
  return name;
}

const sys_seconds late = sys_days{year{9999} / 12 / 31} + hours{23} + minutes{59} + seconds{59};

// Every run name lifeboat makes: Backups of the longest schedule (by the
// controller and by `lifeboat backup`), Backups and Restores of the longest
// names, restores of the CLI.
std::vector<std::string> longest_run_names() {
  std::vector<std::string> runs;
  for (const char last : {'a', 'b'}) {
    runs.push_back(reconcilers::backup_name(longest(api::max_schedule_name_length, last), late));
    runs.push_back(longest(api::max_name_length, last));  // a Backup's name is its run's
    runs.push_back(controller::reconciler::restore_run_name(longest(api::max_name_length, last)));
  }
  runs.push_back(reconcilers::backup_name("restore", late));  // `lifeboat restore`
  return runs;
}

TEST(Issue12Item4Names, LongestAcceptedNamesAreAccepted) {
  // The premise: these are the longest names validation lets through.
  EXPECT_EQ(
      api::check_object_name(longest(api::max_schedule_name_length), api::max_schedule_name_length),
      std::nullopt);
  EXPECT_NE(api::check_object_name(longest(api::max_schedule_name_length + 1),
                                   api::max_schedule_name_length),
            std::nullopt);
  EXPECT_EQ(api::check_object_name(longest(api::max_name_length)), std::nullopt);
  EXPECT_NE(api::check_object_name(longest(api::max_name_length + 1)), std::nullopt);
}

TEST(Issue12Item4Names, BackupNamesOfTheLongestScheduleAreValidObjectNames) {
  const auto name = reconcilers::backup_name(longest(api::max_schedule_name_length), late);
  EXPECT_EQ(api::check_object_name(name), std::nullopt) << name;
}

TEST(Issue12Item4Names, ObjectConfigNamesFitAndStayDistinct) {
  std::set<std::string> seen;
  for (const char last : {'a', 'b'}) {
    api::backup_schedule s;
    s.metadata.name = longest(api::max_schedule_name_length, last);
    api::backup b;
    b.metadata.name = reconcilers::backup_name(s.metadata.name, late);
    api::restore r;
    r.metadata.name = longest(api::max_name_length, last);
    for (const api::object& o : std::vector<api::object>{s, b, r}) {
      const auto name = objects::config_name_for(o, "text of " + api::metadata_of(o).name);
      EXPECT_TRUE(swarm_accepts_config_name(name)) << name << " (" << name.size() << ")";
      EXPECT_TRUE(seen.insert(name).second) << "two objects share " << name;
    }
  }
}

TEST(Issue12Item4Names, JournalAndRunRecordConfigNamesFitForTheLongestRuns) {
  std::set<std::string> journals;
  std::set<std::string> records;
  for (const auto& run : longest_run_names()) {
    SCOPED_TRACE(run);
    const auto journal = quiesce::journal_config_name(run);
    const auto record = quiesce::run_record_config_name(run);
    EXPECT_TRUE(swarm_accepts_config_name(journal)) << journal << " (" << journal.size() << ")";
    EXPECT_TRUE(swarm_accepts_config_name(record)) << record << " (" << record.size() << ")";
    EXPECT_TRUE(journal.starts_with("lifeboat-journal.")) << journal;
    EXPECT_TRUE(record.starts_with("lifeboat-run.")) << record;
    EXPECT_TRUE(journals.insert(journal).second) << "two runs share the journal " << journal;
    EXPECT_TRUE(records.insert(record).second) << "two runs share the record " << record;
  }
}

TEST(Issue12Item4Names, ShortRunNamesKeepTheirConfigNames) {
  // Names that always fit are unchanged, so journals written before stay found.
  EXPECT_EQ(quiesce::journal_config_name("nightly-20300101000000"),
            "lifeboat-journal.nightly-20300101000000");
  EXPECT_EQ(quiesce::run_record_config_name("nightly-20300101000000"),
            "lifeboat-run.nightly-20300101000000");
}

TEST(Issue12Item4Names, ConfigNameCheckSaysTheLimit) {
  EXPECT_EQ(api::check_config_name("lifeboat-lease"), std::nullopt);
  EXPECT_EQ(api::check_config_name(std::string(64, 'a')), std::nullopt);
  EXPECT_EQ(api::check_config_name(std::string(65, 'a')), "must be at most 64 characters, got 65");
  EXPECT_NE(api::check_config_name("-lease"), std::nullopt);
  EXPECT_NE(api::check_config_name("lease/x"), std::nullopt);
  EXPECT_NE(api::check_config_name(""), std::nullopt);
}

}  // namespace
}  // namespace lifeboat
