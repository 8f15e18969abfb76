#include "controller/loop/reconciler.hpp"

#include "api/labels.hpp"
#include "controller/objects/status.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

// The reconciler against an in-memory swarm: every test loads object configs,
// sets the clock, reconciles keys and checks what was written, started and
// queued. No engine, no threads, no sleeps.
namespace lifeboat::controller {
namespace {

using namespace std::chrono_literals;
using objects::label_map;
using std::chrono::sys_days;
using ::testing::ElementsAre;

std::string phase_label() { return std::string(api::label::phase); }
std::string message_label() { return std::string(api::label::message); }

/// Object configs in memory. Records every label write; a write or a listing
/// can be made to fail.
class memory_store final : public object_store {
 public:
  explicit memory_store(const runtime::clock& clock) : clock_(clock) {}

  engine::result<std::vector<objects::object_source>> list() const override {
    if (fail_list) {
      return engine::make_error(engine::errc::unavailable, "engine down");
    }
    std::vector<objects::object_source> out;
    for (const auto& [id, s] : configs) {
      out.push_back(s);
    }
    return out;
  }

  engine::result<objects::object_source> get(const std::string& id) const override {
    const auto it = configs.find(id);
    if (it == configs.end()) {
      return engine::make_error(engine::errc::not_found, "no config " + id);
    }
    return it->second;
  }

  engine::result<void> create(const std::string& name, const std::string& data,
                              const label_map& labels) override {
    for (const auto& [id, s] : configs) {
      if (s.name == name) {
        return engine::make_error(engine::errc::conflict, "name taken");
      }
    }
    const auto at = std::chrono::floor<std::chrono::seconds>(clock_.system_now());
    add(name, data, labels, objects::format_utc(at));
    created.push_back(name);
    return {};
  }

  engine::result<void> update_labels(const std::string& id,
                                     const std::function<void(label_map&)>& change) override {
    if (failing_updates > 0) {
      --failing_updates;
      return engine::make_error(engine::errc::unavailable, "engine down");
    }
    const auto it = configs.find(id);
    if (it == configs.end()) {
      return engine::make_error(engine::errc::not_found, "no config " + id);
    }
    auto labels = it->second.labels;
    change(labels);
    if (labels != it->second.labels) {
      it->second.labels = std::move(labels);
      ++it->second.version;
      ++writes;
    }
    return {};
  }

  engine::result<void> remove(const std::string& id) override {
    // `id` may be the key of the very entry erased (callers pass what they
    // listed): copied before the erase frees it.
    std::string gone = id;
    if (configs.erase(gone) == 0) {
      return engine::make_error(engine::errc::not_found, "no config " + gone);
    }
    removed.push_back(std::move(gone));
    return {};
  }

  /// Adds a config; returns its ID.
  std::string add(const std::string& name, const std::string& data, label_map labels,
                  const std::string& created_at) {
    const std::string id = "id" + std::to_string(++next_id_);
    labels[std::string(api::label::object)] = "true";
    configs[id] = {id, 1, name, created_at, std::move(labels), data};
    return id;
  }

  /// The config that holds object `name`, by its name label or YAML.
  const objects::object_source* find(const std::string& name) const {
    for (const auto& [id, s] : configs) {
      if (s.name == name || s.name.starts_with(name + ".") ||
          s.data.find("name: " + name + "\n") != std::string::npos ||
          s.data.find("name: " + name + "}") != std::string::npos) {
        return &s;
      }
    }
    return nullptr;
  }

  std::string label(const std::string& name, std::string_view key) const {
    const auto* s = find(name);
    if (s == nullptr) {
      return "<no object " + name + ">";
    }
    const auto it = s->labels.find(std::string(key));
    return it == s->labels.end() ? std::string() : it->second;
  }

  std::map<std::string, objects::object_source> configs;
  std::vector<std::string> created;
  std::vector<std::string> removed;
  int writes = 0;
  int failing_updates = 0;
  bool fail_list = false;

 private:
  const runtime::clock& clock_;
  int next_id_ = 0;
};

class recorded_runs final : public run_launcher {
 public:
  bool running(const std::string& run_name) const override { return active.contains(run_name); }
  bool running_for_schedule(const std::string& schedule) const override {
    return std::ranges::any_of(active_schedules,
                               [&](const auto& kv) { return kv.second == schedule; });
  }
  std::set<std::string> running_names() const override { return active; }
  void start_backup(const backup_launch& launch) override {
    backups.push_back(launch);
    active.insert(launch.name);
    active_schedules[launch.name] = launch.schedule.metadata.name;
  }
  void start_restore(const restore_launch& launch) override {
    restores.push_back(launch);
    active.insert(launch.run_name);
  }
  void report_unrun_restore(const restore_launch& launch, const restore::run_result& result,
                            const std::string& reached) override {
    unrun.push_back(launch.name + " " + std::string(result.outcome) + " in " + reached + ": " +
                    result.message + (launch.notifications ? " (notified)" : ""));
  }
  void end(const std::string& run_name) {
    active.erase(run_name);
    active_schedules.erase(run_name);
  }

  std::set<std::string> active;
  std::map<std::string, std::string> active_schedules;
  std::vector<backup_launch> backups;
  std::vector<restore_launch> restores;
  std::vector<std::string> unrun;
};

class recorded_queue final : public key_queue {
 public:
  void add(const std::string& key) override { added.push_back(key); }
  void add_after(const std::string& key, runtime::clock::duration delay) override {
    delayed.emplace_back(key, delay);
  }
  bool has(const std::string& key) const { return std::ranges::find(added, key) != added.end(); }
  std::vector<std::string> added;
  std::vector<std::pair<std::string, runtime::clock::duration>> delayed;
};

class recorded_listener final : public run_listener {
 public:
  void backup_created(const std::string& /*schedule*/, const std::string& backup) override {
    created.push_back(backup);
  }
  void backup_skipped(const std::string& schedule) override { skipped.push_back(schedule); }
  void restore_refused(const std::string& restore, const std::string& outcome,
                       const std::string& why) override {
    refused.push_back(restore + " " + outcome + ": " + why);
  }
  void invalid_objects(int count) override { invalid = count; }

  std::vector<std::string> created;
  std::vector<std::string> skipped;
  std::vector<std::string> refused;
  int invalid = -1;
};

std::string schedule_yaml(const std::string& name, const std::string& extra = "") {
  return "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: " + name +
         "}\nspec:\n  schedule: \"0 3 * * *\"\n  volumes: [app_db]\n"
         "  destinations: [{local: {path: /archive}}]\n" +
         extra;
}

std::string backup_yaml(const std::string& name, const std::string& schedule) {
  return "apiVersion: lifeboat/v1\nkind: Backup\nmetadata: {name: " + name +
         "}\nspec: {scheduleRef: " + schedule + "}\n";
}

std::string restore_yaml(const std::string& name, const std::string& source) {
  return "apiVersion: lifeboat/v1\nkind: Restore\nmetadata: {name: " + name + "}\nspec:\n  " +
         source + "\n  volumes: [app_db]\n";
}

// 2026-11-25 at hh:mm:ss UTC.
runtime::clock::system_time at(int h, int m, int s = 0) {
  return runtime::clock::system_time{sys_days{std::chrono::year{2026} / 11 / 25} +
                                     std::chrono::hours{h} + std::chrono::minutes{m} +
                                     std::chrono::seconds{s}};
}

class reconciler_test : public ::testing::Test {
 protected:
  reconciler_test()
      : clock_(runtime::clock::steady_time{1h}, at(2, 0)),
        store_(clock_),
        loop_(store_, runs_, queue_, listener_, clock_, reconciler_hooks{}) {}

  void advance_to(runtime::clock::system_time t) { clock_.advance(t - clock_.system_now()); }

  std::string add_schedule(const std::string& extra = "") {
    return store_.add("lb-schedule-db", schedule_yaml("db", extra), {}, "2026-11-24T00:00:00Z");
  }

  std::string add_backup(const std::string& name, const std::string& phase,
                         const std::string& created_at, label_map extra = {}) {
    extra[phase_label()] = phase;
    return store_.add("lb-backup-" + name, backup_yaml(name, "db"), std::move(extra), created_at);
  }

  runtime::fake_clock clock_;
  memory_store store_;
  recorded_runs runs_;
  recorded_queue queue_;
  recorded_listener listener_;
  reconciler loop_;
};

TEST_F(reconciler_test, resync_queues_every_object_and_counts_invalid_ones) {
  add_schedule();
  add_backup("db-1", "Pending", "2026-11-25T01:00:00Z");
  add_backup("db-0", "Succeeded", "2026-11-25T00:00:00Z");
  store_.add("lb-bad", "apiVersion: lifeboat/v1\nkind: Nonsense\n", {}, "2026-11-25T00:00:00Z");
  EXPECT_FALSE(loop_.synced());
  ASSERT_TRUE(loop_.reconcile("resync"));
  EXPECT_TRUE(loop_.synced());
  EXPECT_TRUE(queue_.has("schedule/db"));
  EXPECT_TRUE(queue_.has("backup/db-1"));
  EXPECT_FALSE(queue_.has("backup/db-0")) << "a finished Backup needs nothing";
  EXPECT_EQ(listener_.invalid, 1);
}

TEST_F(reconciler_test, a_failed_listing_is_retried_and_keeps_the_loop_unsynced) {
  store_.fail_list = true;
  EXPECT_FALSE(loop_.reconcile("resync"));
  EXPECT_FALSE(loop_.synced());
}

TEST_F(reconciler_test, schedule_creates_one_backup_when_due_and_looks_again_at_the_next_firing) {
  const auto id = add_schedule();
  advance_to(at(3, 0, 1));
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  ASSERT_EQ(listener_.created, std::vector<std::string>{"db-20261125030000"});
  ASSERT_NE(store_.find("db-20261125030000"), nullptr);
  EXPECT_EQ(store_.label("db-20261125030000", api::label::phase), "Pending");
  EXPECT_EQ(store_.configs[id].labels[std::string(api::label::last_scheduled)],
            "2026-11-25T03:00:00Z");
  ASSERT_FALSE(queue_.delayed.empty());
  EXPECT_EQ(queue_.delayed.back().first, "schedule/db");
  EXPECT_EQ(queue_.delayed.back().second, 24h - 1s + 1s);

  // Reconciled again in the same minute: the firing is recorded; no second Backup.
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  EXPECT_EQ(listener_.created.size(), 1U);
  EXPECT_TRUE(listener_.skipped.empty());
}

TEST_F(reconciler_test, schedule_not_due_writes_nothing) {
  add_schedule();
  advance_to(at(2, 30));
  ASSERT_TRUE(loop_.reconcile("resync"));
  const int writes = store_.writes;
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  EXPECT_TRUE(store_.created.empty());
  EXPECT_EQ(store_.writes, writes);
  ASSERT_FALSE(queue_.delayed.empty());
  EXPECT_EQ(queue_.delayed.back().second, 30min + 1s);
}

TEST_F(reconciler_test, after_an_outage_only_the_latest_firing_runs_once) {
  add_schedule();
  // Down from 02:00 on the 23rd (before the schedule existed) to 03:20 on the 25th.
  advance_to(at(3, 20));
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  EXPECT_EQ(listener_.created, std::vector<std::string>{"db-20261125030000"});
}

TEST_F(reconciler_test, a_firing_while_the_last_backup_is_unfinished_is_skipped) {
  add_schedule();
  add_backup("db-20261124030000", "Archiving", "2026-11-24T03:00:00Z");
  runs_.active.insert("db-20261124030000");
  runs_.active_schedules["db-20261124030000"] = "db";
  advance_to(at(3, 0, 1));
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  EXPECT_TRUE(listener_.created.empty());
  EXPECT_EQ(listener_.skipped, std::vector<std::string>{"db"});
}

TEST_F(reconciler_test, history_limit_zero_removes_the_backup_and_the_schedule_keeps_firing) {
  // Item 5 of the hardening issue: a Backup removed by a history limit of 0
  // stayed remembered as unfinished and every later firing was Skipped.
  add_schedule("  historyLimits: {succeeded: 0, failed: 0}\n");
  advance_to(at(3, 0, 1));
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("backup/db-20261125030000"));
  ASSERT_EQ(runs_.backups.size(), 1U);
  const auto launch = runs_.backups.back();
  runs_.end(launch.name);
  backup::run_result result;
  result.ok = true;
  result.archive = "/archive/db-x.tar.gz";
  loop_.finish_backup(launch, result);
  EXPECT_EQ(store_.label(launch.name, api::label::phase), "Succeeded");

  ASSERT_TRUE(loop_.reconcile("resync"));
  EXPECT_EQ(store_.find(launch.name), nullptr) << "the limit of 0 removes it";

  advance_to(at(3, 0, 1) + 24h);
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  EXPECT_TRUE(listener_.skipped.empty());
  EXPECT_EQ(listener_.created.back(), "db-20261126030000");
}

TEST_F(reconciler_test, a_backup_removed_by_a_user_before_any_listing_does_not_block_the_schedule) {
  add_schedule();
  advance_to(at(3, 0, 1));
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  const auto* created = store_.find("db-20261125030000");
  ASSERT_NE(created, nullptr);
  ASSERT_TRUE(store_.remove(created->id));
  advance_to(at(3, 0, 1) + 24h);
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  EXPECT_TRUE(listener_.skipped.empty());
  EXPECT_EQ(listener_.created.back(), "db-20261126030000");
}

TEST_F(reconciler_test, history_keeps_the_newest_finished_and_never_an_unfinished_backup) {
  add_schedule("  historyLimits: {succeeded: 1, failed: 1}\n");
  add_backup("db-a", "Succeeded", "2026-11-20T03:00:00Z");
  add_backup("db-b", "Succeeded", "2026-11-21T03:00:00Z");
  add_backup("db-c", "Failed", "2026-11-22T03:00:00Z");
  add_backup("db-d", "Skipped", "2026-11-23T03:00:00Z");
  add_backup("db-e", "Archiving", "2026-11-19T03:00:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  EXPECT_EQ(store_.find("db-a"), nullptr);
  EXPECT_NE(store_.find("db-b"), nullptr);
  EXPECT_EQ(store_.find("db-c"), nullptr);
  EXPECT_NE(store_.find("db-d"), nullptr);
  EXPECT_NE(store_.find("db-e"), nullptr);
}

TEST_F(reconciler_test, pending_backup_is_marked_quiescing_before_it_starts) {
  add_schedule();
  add_backup("db-1", "Pending", "2026-11-25T01:00:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  store_.failing_updates = 1;
  EXPECT_FALSE(loop_.reconcile("backup/db-1")) << "retried: never runs unrecorded";
  EXPECT_TRUE(runs_.backups.empty());
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  ASSERT_EQ(runs_.backups.size(), 1U);
  EXPECT_EQ(runs_.backups[0].schedule.metadata.name, "db");
  EXPECT_EQ(store_.label("db-1", api::label::phase), "Quiescing");
  EXPECT_EQ(store_.label("db-1", api::label::started), "2026-11-25T02:00:00Z");
}

TEST_F(reconciler_test, an_on_demand_backup_waits_while_its_schedule_runs) {
  add_schedule();
  add_backup("db-1", "Pending", "2026-11-25T01:00:00Z");
  runs_.active.insert("db-0");
  runs_.active_schedules["db-0"] = "db";
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  EXPECT_TRUE(runs_.backups.empty());
  ASSERT_FALSE(queue_.delayed.empty());
  EXPECT_EQ(queue_.delayed.back().first, "backup/db-1");
  EXPECT_EQ(store_.label("db-1", api::label::phase), "Pending");
}

TEST_F(reconciler_test, a_backup_of_a_missing_schedule_fails_naming_it) {
  store_.add("lb-backup-x", backup_yaml("x-1", "gone"), {{phase_label(), "Pending"}},
             "2026-11-25T01:00:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("backup/x-1"));
  EXPECT_EQ(store_.label("x-1", api::label::phase), "Failed");
  EXPECT_EQ(store_.label("x-1", api::label::message), "schedule gone does not exist");
}

TEST_F(reconciler_test, a_backup_left_mid_run_by_a_dead_controller_fails) {
  add_schedule();
  add_backup("db-1", "Archiving", "2026-11-25T01:00:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  EXPECT_EQ(store_.label("db-1", api::label::phase), "Failed");
  EXPECT_EQ(store_.label("db-1", api::label::message), "controller restarted during Archiving");
  EXPECT_TRUE(runs_.backups.empty()) << "never started over";
}

TEST_F(reconciler_test, a_stale_listing_never_rewrites_a_run_that_finished_here) {
  // Item 9: a resync listed the Backup mid-run; the run then finished and
  // wrote Succeeded; the queued key must not turn it into "restarted during".
  add_schedule();
  const auto id = add_backup("db-1", "Archiving", "2026-11-25T01:00:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  store_.configs[id].labels[phase_label()] = "Succeeded";
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  EXPECT_EQ(store_.label("db-1", api::label::phase), "Succeeded");
  EXPECT_EQ(store_.label("db-1", api::label::message), "");
}

TEST_F(reconciler_test, a_terminal_write_that_fails_is_retried_until_it_lands) {
  add_schedule();
  add_backup("db-1", "Pending", "2026-11-25T01:00:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  const auto launch = runs_.backups.at(0);
  runs_.end(launch.name);
  store_.failing_updates = 3;
  backup::run_result result;
  result.ok = false;
  result.message = "disk full";
  queue_.added.clear();
  loop_.finish_backup(launch, result);
  EXPECT_TRUE(queue_.has("backup/db-1"));
  EXPECT_EQ(store_.label("db-1", api::label::phase), "Quiescing");

  // The listing still shows it mid-run: a resync must not call it dead.
  ASSERT_TRUE(loop_.reconcile("resync"));
  EXPECT_FALSE(loop_.reconcile("backup/db-1"));
  EXPECT_FALSE(loop_.reconcile("backup/db-1"));
  EXPECT_TRUE(loop_.reconcile("backup/db-1"));
  EXPECT_EQ(store_.label("db-1", api::label::phase), "Failed");
  EXPECT_EQ(store_.label("db-1", api::label::message), "disk full");
  // Nothing left to write.
  const int writes = store_.writes;
  ASSERT_TRUE(loop_.reconcile("resync"));
  EXPECT_TRUE(loop_.reconcile("backup/db-1"));
  EXPECT_EQ(store_.writes, writes);
}

TEST_F(reconciler_test, a_result_is_dropped_only_when_its_object_is_gone) {
  add_schedule();
  const auto id = add_backup("db-1", "Pending", "2026-11-25T01:00:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  const auto launch = runs_.backups.at(0);
  runs_.end(launch.name);
  store_.failing_updates = 1;
  loop_.finish_backup(launch, backup::run_result{});
  ASSERT_TRUE(store_.remove(id));
  EXPECT_TRUE(loop_.reconcile("backup/db-1"));
}

TEST_F(reconciler_test, success_records_archive_size_and_finish_time) {
  add_schedule();
  add_backup("db-1", "Pending", "2026-11-25T01:00:00Z", {{message_label(), "old"}});
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  advance_to(at(2, 5));
  backup::run_result result;
  result.ok = true;
  result.archive = "/archive/db-1.tar.gz";
  result.size_bytes = 1234;
  loop_.finish_backup(runs_.backups.at(0), result);
  EXPECT_EQ(store_.label("db-1", api::label::phase), "Succeeded");
  EXPECT_EQ(store_.label("db-1", api::label::archive), "/archive/db-1.tar.gz");
  EXPECT_EQ(store_.label("db-1", api::label::size_bytes), "1234");
  EXPECT_EQ(store_.label("db-1", api::label::finished), "2026-11-25T02:05:00Z");
  EXPECT_EQ(store_.label("db-1", api::label::message), "");
  EXPECT_EQ(store_.label("db-1", api::label::snapshots), "") << "an archive run has none";
}

TEST_F(reconciler_test, a_restic_run_records_its_snapshots) {
  add_schedule();
  add_backup("db-1", "Pending", "2026-11-25T01:00:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  backup::run_result result;
  result.ok = true;
  result.archive = "/archive/restic-db";
  result.snapshots = "app_db=0123abcd";
  loop_.finish_backup(runs_.backups.at(0), result);
  EXPECT_EQ(store_.label("db-1", api::label::phase), "Succeeded");
  EXPECT_EQ(store_.label("db-1", api::label::archive), "/archive/restic-db");
  EXPECT_EQ(store_.label("db-1", api::label::snapshots), "app_db=0123abcd");
}

TEST_F(reconciler_test, a_second_reconcile_of_a_settled_world_writes_nothing) {
  add_schedule();
  add_backup("db-1", "Succeeded", "2026-11-25T01:00:00Z");
  advance_to(at(2, 10));
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  const int writes = store_.writes;
  const auto configs = store_.configs.size();
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("schedule/db"));
  ASSERT_TRUE(loop_.reconcile("backup/db-1"));
  EXPECT_EQ(store_.writes, writes);
  EXPECT_EQ(store_.configs.size(), configs);
}

TEST_F(reconciler_test, a_follower_writes_nothing_and_starts_nothing) {
  reconciler follower(store_, runs_, queue_, listener_, clock_,
                      reconciler_hooks{.leading = [] { return false; }});
  add_schedule();
  add_backup("db-1", "Pending", "2026-11-25T01:00:00Z");
  advance_to(at(3, 0, 1));
  ASSERT_TRUE(follower.reconcile("resync"));
  ASSERT_TRUE(follower.reconcile("schedule/db"));
  ASSERT_TRUE(follower.reconcile("backup/db-1"));
  EXPECT_TRUE(store_.created.empty());
  EXPECT_TRUE(runs_.backups.empty());
  EXPECT_EQ(store_.writes, 0);
}

TEST_F(reconciler_test, restore_by_backup_ref_runs_from_that_backups_archive) {
  add_schedule();
  add_backup("db-1", "Succeeded", "2026-11-25T01:00:00Z",
             {{std::string(api::label::archive), "/archive/db-1.tar.gz"}});
  store_.add("lb-restore-r1", restore_yaml("r1", "backupRef: db-1"), {}, "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  ASSERT_EQ(runs_.restores.size(), 1U);
  EXPECT_EQ(runs_.restores[0].run_name, "restore-r1");
  EXPECT_EQ(runs_.restores[0].restore.spec.archive, "/archive/db-1.tar.gz");
  EXPECT_EQ(runs_.restores[0].restore.spec.backup_ref, "db-1");
}

TEST_F(reconciler_test, restore_by_backup_ref_is_reported_where_its_schedule_reports) {
  add_schedule("  notifications: {level: info, urls: [\"ntfy://ntfy.test/db\"]}\n");
  add_backup("db-1", "Succeeded", "2026-11-25T01:00:00Z",
             {{std::string(api::label::archive), "/archive/db-1.tar.gz"}});
  store_.add("lb-restore-r1", restore_yaml("r1", "backupRef: db-1"), {}, "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  ASSERT_EQ(runs_.restores.size(), 1U);
  const auto& launch = runs_.restores[0];
  ASSERT_TRUE(launch.notifications);
  EXPECT_EQ(launch.notifications->urls, std::vector<std::string>{"ntfy://ntfy.test/db"});
  EXPECT_EQ(launch.notifications->level, api::notification_level::info);
  EXPECT_EQ(launch.backup_ref, "db-1");
  EXPECT_EQ(launch.schedule, "db");
}

TEST_F(reconciler_test, a_restores_own_notifications_win_over_its_schedules) {
  add_schedule("  notifications: {urls: [\"ntfy://ntfy.test/db\"]}\n");
  add_backup("db-1", "Succeeded", "2026-11-25T01:00:00Z",
             {{std::string(api::label::archive), "/archive/db-1.tar.gz"}});
  store_.add("lb-restore-r1",
             restore_yaml("r1",
                          "backupRef: db-1\n  notifications: {urls: "
                          "[\"gotify://gotify.test/token\"]}"),
             {}, "2026-11-25T01:30:00Z");
  store_.add("lb-restore-r2", restore_yaml("r2", "archive: /archive/x.tar.gz"), {},
             "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  ASSERT_TRUE(loop_.reconcile("restore/r2"));
  ASSERT_EQ(runs_.restores.size(), 2U);
  ASSERT_TRUE(runs_.restores[0].notifications);
  EXPECT_EQ(runs_.restores[0].notifications->urls,
            std::vector<std::string>{"gotify://gotify.test/token"});
  // An archive by path names no schedule: no notifications unless its own.
  EXPECT_FALSE(runs_.restores[1].notifications);
  EXPECT_EQ(runs_.restores[1].backup_ref, "");
}

TEST_F(reconciler_test, a_refused_restore_is_reported_once_with_its_schedules_notifications) {
  add_schedule("  notifications: {urls: [\"ntfy://ntfy.test/db\"]}\n");
  add_backup("db-1", "Failed", "2026-11-25T01:00:00Z");
  store_.add("lb-restore-r1", restore_yaml("r1", "backupRef: db-1"), {}, "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  store_.failing_updates = 1;  // the first write of Failed does not land
  EXPECT_FALSE(loop_.reconcile("restore/r1"));
  EXPECT_TRUE(runs_.unrun.empty());
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  EXPECT_EQ(store_.label("r1", api::label::phase), "Failed");
  // Looked at again before a listing shows Failed, and after: not again.
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  EXPECT_THAT(runs_.unrun, ElementsAre("r1 invalid in Pending: backup db-1 has no archive "
                                       "(phase Failed) (notified)"));
  EXPECT_TRUE(runs_.restores.empty());
}

TEST_F(reconciler_test, restore_by_backup_ref_reads_a_remote_archive_through_its_destination) {
  // The location label names the schedule's first destination, where the run
  // wrote; the Restore reads that destination, by the archive's file name.
  store_.add("lb-schedule-db",
             "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: db}\nspec:\n"
             "  schedule: \"0 3 * * *\"\n  volumes: [app_db]\n  destinations:\n"
             "    - webdav: {url: \"http://dav.test/b/\"}\n    - local: {path: /archive}\n",
             {}, "2026-11-24T00:00:00Z");
  add_backup("db-1", "Succeeded", "2026-11-25T01:00:00Z",
             {{std::string(api::label::archive), "http://dav.test/b/db%201%25.tar.gz"}});
  store_.add("lb-restore-r1", restore_yaml("r1", "backupRef: db-1"), {}, "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  ASSERT_EQ(runs_.restores.size(), 1U);
  const auto& spec = runs_.restores[0].restore.spec;
  EXPECT_FALSE(spec.archive);
  EXPECT_TRUE(spec.backup_ref);
  ASSERT_TRUE(spec.source);
  EXPECT_EQ(spec.source->name, "db 1%.tar.gz");
  api::webdav_destination dav;
  dav.url = "http://dav.test/b/";
  EXPECT_EQ(spec.source->destination, api::destination(dav));
}

TEST_F(reconciler_test, restore_by_backup_ref_of_a_remote_archive_without_its_schedule_fails) {
  add_backup("db-1", "Succeeded", "2026-11-25T01:00:00Z",
             {{std::string(api::label::archive), "s3://backups/db-1.tar.gz"}});
  store_.add("lb-restore-r1", restore_yaml("r1", "backupRef: db-1"), {}, "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  EXPECT_TRUE(runs_.restores.empty());
  EXPECT_EQ(store_.label("r1", api::label::phase), "Failed");
  EXPECT_EQ(store_.label("r1", api::label::message),
            "backup db-1's archive is at s3://backups/db-1.tar.gz, and its schedule db is gone, "
            "which said how to reach it: give spec.source");
}

TEST_F(reconciler_test, restore_of_a_missing_or_failed_backup_is_refused_naming_it) {
  add_schedule();
  add_backup("db-1", "Failed", "2026-11-25T01:00:00Z");
  store_.add("lb-restore-r1", restore_yaml("r1", "backupRef: db-1"), {}, "2026-11-25T01:30:00Z");
  store_.add("lb-restore-r2", restore_yaml("r2", "backupRef: db-9"), {}, "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  ASSERT_TRUE(loop_.reconcile("restore/r2"));
  EXPECT_TRUE(runs_.restores.empty());
  EXPECT_EQ(store_.label("r1", api::label::phase), "Failed");
  EXPECT_EQ(store_.label("r1", api::label::message), "backup db-1 has no archive (phase Failed)");
  EXPECT_EQ(store_.label("r2", api::label::message), "backup db-9 does not exist");
  EXPECT_EQ(listener_.refused.size(), 2U);
}

TEST_F(reconciler_test, restore_by_backup_ref_of_restic_snapshots_reads_that_runs_snapshots) {
  add_schedule("  format: restic\n  restic: {passwordFile: /run/secrets/pw}\n");
  add_backup("db-1", "Succeeded", "2026-11-25T01:00:00Z",
             {{std::string(api::label::archive), "/archive"},
              {std::string(api::label::snapshots), "app_db=0123abcd"}});
  store_.add("lb-restore-r1", restore_yaml("r1", "backupRef: db-1"), {}, "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  ASSERT_EQ(runs_.restores.size(), 1U);
  const auto& spec = runs_.restores[0].restore.spec;
  EXPECT_FALSE(spec.archive);
  ASSERT_TRUE(spec.restic);
  // Each of the run's snapshots carries its tag: the newest with it is the run's.
  EXPECT_EQ(*spec.restic,
            (api::restic_source{"/archive", "/run/secrets/pw", "latest", {"backup=db-1"}}));
}

TEST_F(reconciler_test, restore_by_backup_ref_of_restic_snapshots_without_the_schedule_fails) {
  add_backup("db-1", "Succeeded", "2026-11-25T01:00:00Z",
             {{std::string(api::label::archive), "/archive/restic-db"},
              {std::string(api::label::snapshots), "app_db=0123abcd"}});
  store_.add("lb-restore-r1", restore_yaml("r1", "backupRef: db-1"), {}, "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  EXPECT_TRUE(runs_.restores.empty());
  EXPECT_EQ(store_.label("r1", api::label::phase), "Failed");
  EXPECT_EQ(store_.label("r1", api::label::message),
            "backup db-1 holds restic snapshots (app_db=0123abcd) in /archive/restic-db, and its "
            "schedule db is gone, which named the repository's password file: give spec.restic "
            "(repository, passwordFile, snapshot)");
}

TEST_F(reconciler_test, a_restore_interrupted_by_a_dead_controller_is_never_run_again) {
  store_.add("lb-restore-r1", restore_yaml("r1", "archive: /archive/x.tar.gz"),
             {{phase_label(), "Restoring"}}, "2026-11-25T01:30:00Z");
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  EXPECT_TRUE(runs_.restores.empty());
  EXPECT_EQ(store_.label("r1", api::label::phase), "Failed");
  EXPECT_NE(store_.label("r1", api::label::message).find("controller restarted during Restoring"),
            std::string::npos);
  ASSERT_TRUE(loop_.reconcile("resync"));
  ASSERT_TRUE(loop_.reconcile("restore/r1"));
  EXPECT_TRUE(runs_.restores.empty());
}

TEST_F(reconciler_test, unknown_keys_are_ignored) {
  EXPECT_TRUE(loop_.reconcile("nonsense/x"));
  EXPECT_TRUE(loop_.reconcile("schedule/absent"));
  EXPECT_TRUE(loop_.reconcile("backup/absent"));
  EXPECT_TRUE(loop_.reconcile("restore/absent"));
  EXPECT_EQ(store_.writes, 0);
}

}  // namespace
}  // namespace lifeboat::controller
