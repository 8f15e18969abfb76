#pragma once

#include "api/objects.hpp"
#include "controller/backup/runner.hpp"
#include "controller/loop/object_store.hpp"
#include "controller/objects/catalog.hpp"
#include "controller/restore/runner.hpp"
#include "controller/runtime/clock.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

// The controller's reconcilers, apart from the threads that drive them: given
// a key, read the state (the last listing of object configs, the runs of this
// process, the clock), decide with the pure planners of reconcilers/, and
// write through the object store. Everything it touches is injected, so a
// unit test loads an in-memory swarm, calls reconcile() at a chosen time and
// compares the recorded writes with the expected ones.
//
// Keys: "resync" (re-list object configs, write discovery status, recover
// what dead runs hold, enforce history limits, queue every object),
// "schedule/<name>" (start a run when due, then look again at the next
// firing), "backup/<name>" (start a pending Backup; write the result of one
// that finished here; fail one left behind by a dead controller),
// "restore/<name>" (the same for a Restore, once: a Restore that ended, or was
// interrupted by a dead controller, is never run again).
namespace lifeboat::controller {

inline constexpr std::string_view resync_key = "resync";
inline constexpr std::string_view schedule_prefix = "schedule/";
inline constexpr std::string_view backup_prefix = "backup/";
inline constexpr std::string_view restore_prefix = "restore/";

/// Where keys go back to be reconciled again: the work queue, or a recorder.
class key_queue {
 public:
  virtual ~key_queue() = default;
  virtual void add(const std::string& key) = 0;
  virtual void add_after(const std::string& key, runtime::clock::duration delay) = 0;
};

/// A Backup to run: the run's name is the Backup's.
struct backup_launch {
  std::string name;
  std::string config_id;
  api::backup_schedule schedule;
};

/// A Restore to run under `run_name` (its own namespace: "restore-<name>").
struct restore_launch {
  std::string name;
  std::string run_name;
  std::string config_id;
  api::restore restore;  ///< backupRef already resolved into `archive`
  /// Where the run is reported: the Restore's own spec.notifications, else
  /// those of the schedule of its backupRef's Backup; unset: nowhere.
  std::optional<api::notifications_spec> notifications;
  std::string backup_ref;  ///< as the Restore wrote it (empty: none), for reports
  std::string schedule;    ///< the schedule of that Backup, when known
};

/// The runs of this process. A run is running from start_*() until its
/// result has been handed to reconciler::finish_*() on the run's own thread.
class run_launcher {
 public:
  virtual ~run_launcher() = default;
  virtual bool running(const std::string& run_name) const = 0;
  virtual bool running_for_schedule(const std::string& schedule) const = 0;
  virtual std::set<std::string> running_names() const = 0;
  virtual void start_backup(const backup_launch& launch) = 0;
  virtual void start_restore(const restore_launch& launch) = 0;
  /// A Restore that ended without a run here (refused before it started, or
  /// left behind by a dead controller), once its Failed status is written:
  /// `result` says why, `reached` the phase it was in. Reports it, off the
  /// caller's thread; default: nothing.
  virtual void report_unrun_restore(const restore_launch& /*launch*/,
                                    const restore::run_result& /*result*/,
                                    const std::string& /*reached*/) {}
};

/// Receives what runs and schedules did: metrics and logs are listeners, and
/// so will notifications be. Called on whichever thread the event happened.
class run_listener {
 public:
  virtual ~run_listener() = default;
  virtual void schedule_seen(const std::string& /*schedule*/,
                             std::optional<std::chrono::sys_seconds> /*next_run*/) {}
  virtual void schedule_removed(const std::string& /*schedule*/) {}
  virtual void backup_created(const std::string& /*schedule*/, const std::string& /*backup*/) {}
  virtual void backup_skipped(const std::string& /*schedule*/) {}
  virtual void backup_finished(const std::string& /*schedule*/, const std::string& /*backup*/,
                               const backup::run_result& /*result*/,
                               std::chrono::system_clock::time_point /*finished*/) {}
  virtual void restore_finished(const std::string& /*restore*/,
                                const restore::run_result& /*result*/) {}
  virtual void restore_refused(const std::string& /*restore*/, const std::string& /*outcome*/,
                               const std::string& /*why*/) {}
  virtual void invalid_objects(int /*count*/) {}
  /// A call to the engine made by the reconciler, and whether it worked.
  virtual void engine_call(bool /*ok*/) {}
};

struct reconciler_options {
  /// How old a missed firing may be and still run (the catch-up rule).
  std::chrono::seconds starting_deadline{std::chrono::hours{1}};
  /// How long an on-demand Backup waits before looking again while another
  /// run of its schedule is active.
  std::chrono::seconds wait_for_active_run{5};
};

/// Hooks into the rest of the process.
struct reconciler_hooks {
  /// True while this process leads; only the leader writes.
  std::function<bool()> leading = [] { return true; };
  /// Brings back whatever runs not active here hold (quiesce::recover);
  /// `active` says which are, asked as late as possible (runs start meanwhile).
  std::function<void(const std::function<std::set<std::string>()>& active)> recover =
      [](const auto&) {};
  /// Joins the threads of runs that finished (called at the end of a resync).
  std::function<void()> reap = [] {};
};

class reconciler {
 public:
  /// Everything referenced must outlive the reconciler.
  reconciler(object_store& store, run_launcher& runs, key_queue& queue, run_listener& listener,
             const runtime::clock& clock, reconciler_hooks hooks, reconciler_options options = {});

  /// Reconciles one key. Returns false when it should be retried with
  /// backoff (an engine error); true when done, including "nothing to do".
  /// Any thread; a key is never reconciled twice at once (the work queue).
  bool reconcile(const std::string& key);

  /// True once a resync has listed the objects.
  bool synced() const;

  /// Called on a run's thread as it moves through its phases: writes the
  /// phase (best effort: a later phase or the result overwrites it).
  void report_phase(const std::string& config_id, std::string_view phase,
                    const std::string& message);

  /// Called on a run's thread when it ends: tells the listeners, then writes
  /// the terminal phase. A write that fails is retried from the Backup's key
  /// until it lands (or the config is gone); never dropped.
  void finish_backup(const backup_launch& launch, const backup::run_result& result);
  void finish_restore(const restore_launch& launch, const restore::run_result& result);

  /// The run name a Restore quiesces under (lifeboat.held-by, journals).
  static std::string restore_run_name(const std::string& restore_name);

 private:
  struct cache {
    std::map<std::string, objects::catalog_entry> schedules;
    std::map<std::string, objects::catalog_entry> backups;
    std::map<std::string, objects::catalog_entry> restores;
  };
  /// A terminal status not yet written, keyed by the object's key.
  struct pending_result {
    std::string config_id;
    objects::label_map labels;
  };

  bool resync();
  bool reconcile_schedule(const std::string& name);
  bool reconcile_backup(const std::string& name);
  bool reconcile_restore(const std::string& name);
  void enforce_history(const cache& c);
  void write_status(const std::vector<objects::catalog_entry>& catalog);
  /// Writes phase and message (and `extra`) on config `id`; false on failure.
  bool write_phase(const std::string& id, std::string_view phase, const std::string& message,
                   const objects::label_map& extra = {});
  /// Writes a pending terminal result; true when it landed or is moot.
  bool flush_result(const std::string& key);
  bool has_pending_result(const std::string& key) const;
  std::chrono::sys_seconds now() const;

  object_store& store_;
  run_launcher& runs_;
  key_queue& queue_;
  run_listener& listener_;
  const runtime::clock& clock_;
  reconciler_hooks hooks_;
  reconciler_options options_;

  mutable std::mutex mutex_;
  cache cache_;
  bool synced_ = false;
  /// Counts resyncs started; a Backup created during resync N is known to
  /// every listing of a resync started after N.
  std::uint64_t resync_generation_ = 0;
  struct created_backup {
    std::string name;
    std::uint64_t generation = 0;
  };
  /// schedule -> the last Backup this process created for it, until a
  /// listing that started after the creation has had its chance to show it.
  std::map<std::string, created_backup> created_;
  std::map<std::string, pending_result> pending_results_;
};

}  // namespace lifeboat::controller
