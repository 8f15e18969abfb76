#include "controller/loop/reconciler.hpp"

#include "api/decode.hpp"
#include "api/labels.hpp"
#include "api/overloaded.hpp"
#include "api/text.hpp"
#include "controller/objects/status.hpp"
#include "controller/objects/swarm_objects.hpp"
#include "reconcilers/history.hpp"
#include "reconcilers/schedule.hpp"

#include <algorithm>
#include <cstdio>

namespace lifeboat::controller {

namespace {

using namespace std::chrono_literals;
using objects::label_map;
using sys_seconds = std::chrono::sys_seconds;

// Parses "2026-11-25T03:00:00Z" (format_utc's output).
std::optional<sys_seconds> parse_utc(const std::string& text) {
  int y = 0;
  unsigned mo = 0;
  unsigned d = 0;
  int h = 0;
  int mi = 0;
  int s = 0;
  if (std::sscanf(text.c_str(), "%4d-%2u-%2uT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &s) != 6) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{mo},
                                        std::chrono::day{d}};
  if (!ymd.ok()) {
    return std::nullopt;
  }
  return std::chrono::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} +
         std::chrono::seconds{s};
}

std::string label_of(const objects::catalog_entry& e, std::string_view key) {
  const auto it = e.source.labels.find(std::string(key));
  return it == e.source.labels.end() ? std::string() : it->second;
}

// The archive's file name in a remote location ("s3://bucket/db/x.tar.gz",
// "https://dav/b/x%20y.tar.gz"): its last component, percent-decoded where
// the destination's URL encoded it (WebDAV); S3 locations are not encoded.
std::string archive_name_of_location(std::string_view location) {
  const std::string_view last = location.substr(location.rfind('/') + 1);
  return location.starts_with("http") ? api::percent_decode(last) : std::string(last);
}

const api::backup& backup_of(const objects::catalog_entry& e) {
  return std::get<api::backup>(*e.object());
}

reconcilers::backup_outcome outcome_of(std::string_view phase) {
  if (phase == backup::phase::succeeded) {
    return reconcilers::backup_outcome::succeeded;
  }
  if (phase == backup::phase::failed || phase == backup::phase::skipped) {
    return reconcilers::backup_outcome::failed;
  }
  return reconcilers::backup_outcome::unfinished;
}

// Applies a phase, message and extra labels to a label map.
void set_phase(label_map& labels, std::string_view phase, const std::string& message,
               const label_map& extra) {
  labels[std::string(api::label::phase)] = std::string(phase);
  if (message.empty()) {
    labels.erase(std::string(api::label::message));
  } else {
    labels[std::string(api::label::message)] = api::escape_controls(message).substr(0, 1000);
  }
  for (const auto& [k, v] : extra) {
    labels[k] = v;
  }
}

}  // namespace

reconciler::reconciler(object_store& store, run_launcher& runs, key_queue& queue,
                       run_listener& listener, const runtime::clock& clock, reconciler_hooks hooks,
                       reconciler_options options)
    : store_(store),
      runs_(runs),
      queue_(queue),
      listener_(listener),
      clock_(clock),
      hooks_(std::move(hooks)),
      options_(options) {}

std::string reconciler::restore_run_name(const std::string& restore_name) {
  return "restore-" + restore_name;
}

sys_seconds reconciler::now() const {
  return std::chrono::floor<std::chrono::seconds>(clock_.system_now());
}

bool reconciler::synced() const {
  std::lock_guard lock(mutex_);
  return synced_;
}

bool reconciler::reconcile(const std::string& key) {
  if (key == resync_key) {
    return resync();
  }
  if (key.starts_with(schedule_prefix)) {
    return reconcile_schedule(key.substr(schedule_prefix.size()));
  }
  if (key.starts_with(backup_prefix)) {
    return reconcile_backup(key.substr(backup_prefix.size()));
  }
  if (key.starts_with(restore_prefix)) {
    return reconcile_restore(key.substr(restore_prefix.size()));
  }
  return true;  // not a key of ours: nothing to do, ever
}

// --- resync

bool reconciler::resync() {
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    generation = ++resync_generation_;
  }
  auto listed = store_.list();
  listener_.engine_call(static_cast<bool>(listed));
  if (!listed) {
    return false;
  }
  const auto catalog = objects::build_catalog(std::move(*listed));
  write_status(catalog);

  cache fresh;
  int invalid = 0;
  for (const auto& e : catalog) {
    if (e.state == objects::standing::invalid) {
      ++invalid;
    }
    if (e.state != objects::standing::active) {
      continue;
    }
    std::visit(
        api::overloaded{
            [&](const api::backup_schedule& s) { fresh.schedules.emplace(s.metadata.name, e); },
            [&](const api::backup& b) { fresh.backups.emplace(b.metadata.name, e); },
            [&](const api::restore& r) { fresh.restores.emplace(r.metadata.name, e); },
        },
        *e.object());
  }
  listener_.invalid_objects(invalid);

  std::set<std::string> removed;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, e] : cache_.schedules) {
      if (!fresh.schedules.contains(name)) {
        removed.insert(name);
      }
    }
    cache_ = fresh;
    // This listing started after every creation of an earlier generation: a
    // Backup it does not show is gone (pruned by history limits of 0, or
    // removed by a user), not "created and not yet seen".
    std::erase_if(created_, [&](const auto& c) { return c.second.generation < generation; });
  }
  for (const auto& name : removed) {
    listener_.schedule_removed(name);
  }
  for (const auto& [name, e] : fresh.schedules) {
    queue_.add(std::string(schedule_prefix) + name);
  }
  for (const auto& [name, e] : fresh.backups) {
    if (!backup::is_terminal(label_of(e, api::label::phase))) {
      queue_.add(std::string(backup_prefix) + name);
    }
  }
  for (const auto& [name, e] : fresh.restores) {
    if (!restore::is_terminal(label_of(e, api::label::phase))) {
      queue_.add(std::string(restore_prefix) + name);
    }
  }
  {
    // Results whose write failed are retried with every resync too.
    std::lock_guard lock(mutex_);
    for (const auto& [key, r] : pending_results_) {
      queue_.add(key);
    }
  }
  hooks_.recover([this] { return runs_.running_names(); });
  enforce_history(fresh);
  hooks_.reap();
  std::lock_guard lock(mutex_);
  synced_ = true;
  return true;
}

void reconciler::write_status(const std::vector<objects::catalog_entry>& catalog) {
  if (!hooks_.leading()) {
    return;
  }
  const auto at = now();
  for (const auto& entry : catalog) {
    if (entry.source.version == 0) {
      continue;  // a file: its status is not kept in labels
    }
    const auto status = objects::desired_status(entry, at);
    if (!status || !objects::status_labels(entry.source.labels, *status, at)) {
      continue;  // discovery has no say, or the config already shows it
    }
    // Best effort: the next resync writes what this one could not.
    (void)store_.update_labels(entry.source.id, [&](label_map& labels) {
      if (auto wanted = objects::status_labels(labels, *status, at)) {
        labels = std::move(*wanted);
      }
    });
  }
}

void reconciler::enforce_history(const cache& c) {
  if (!hooks_.leading()) {
    return;
  }
  for (const auto& [schedule_name, s] : c.schedules) {
    const auto& limits = std::get<api::backup_schedule>(*s.object()).spec.history_limits;
    std::vector<const objects::catalog_entry*> own;
    for (const auto& [name, b] : c.backups) {
      if (backup_of(b).spec.schedule_ref == schedule_name) {
        own.push_back(&b);
      }
    }
    std::sort(own.begin(), own.end(), [](const auto* a, const auto* b) {
      return objects::compare_timestamps(a->source.created_at, b->source.created_at) > 0;
    });
    std::vector<reconcilers::backup_record> records;
    for (const auto* b : own) {
      // A Backup whose result this process has not yet written is not
      // finished as far as the listing knows; its phase there is stale.
      records.push_back({b->source.id, outcome_of(label_of(*b, api::label::phase))});
    }
    for (const auto& id : reconcilers::plan_history(limits, records)) {
      (void)store_.remove(id);  // a failure is retried by the next resync
    }
  }
}

// --- schedules

bool reconciler::reconcile_schedule(const std::string& name) {
  objects::catalog_entry entry;
  reconcilers::schedule_state state;
  bool unfinished_backup = false;
  {
    std::lock_guard lock(mutex_);
    const auto it = cache_.schedules.find(name);
    if (it == cache_.schedules.end()) {
      return true;  // removed: its running Backup, if any, finishes by itself
    }
    entry = it->second;
    for (const auto& [bname, b] : cache_.backups) {
      if (backup_of(b).spec.schedule_ref == name) {
        state.backups.insert(bname);
        if (!backup::is_terminal(label_of(b, api::label::phase)) &&
            !pending_results_.contains(std::string(backup_prefix) + bname)) {
          unfinished_backup = true;
        }
      }
    }
    // Created by this process but not yet seen by a listing.
    if (const auto c = created_.find(name);
        c != created_.end() && !state.backups.contains(c->second.name)) {
      unfinished_backup = true;
    }
  }
  const auto& schedule = std::get<api::backup_schedule>(*entry.object());
  const auto at = now();
  state.last_scheduled = parse_utc(label_of(entry, api::label::last_scheduled));
  state.since = at;
  if (const auto created = parse_utc(entry.source.created_at.substr(0, 19) + "Z")) {
    state.since = *created;
  }
  // A Backup of this schedule that has not ended (running, or created and not
  // yet started) makes a new firing Skipped, not a second Backup: after an
  // outage, only one catch-up run.
  state.run_active = runs_.running_for_schedule(name) || unfinished_backup;
  const auto decision = reconcilers::plan_schedule(schedule, state, at, options_.starting_deadline);

  if (!hooks_.leading()) {
    return true;  // becoming leader queues a resync, which looks again
  }
  if (decision.create_backup) {
    api::backup b;
    b.metadata.name = *decision.create_backup;
    b.spec.schedule_ref = name;
    const auto text = api::encode_yaml(b);
    std::uint64_t generation = 0;
    {
      std::lock_guard lock(mutex_);
      generation = resync_generation_;
    }
    auto created =
        store_.create(objects::config_name_for(b, text), text,
                      {{std::string(api::label::object), "true"},
                       {std::string(api::label::kind), "Backup"},
                       {std::string(api::label::name), b.metadata.name},
                       {std::string(api::label::backup_schedule), name},
                       {std::string(api::label::phase), std::string(backup::phase::pending)}});
    listener_.engine_call(created || created.error().is(engine::errc::conflict));
    if (!created && !created.error().is(engine::errc::conflict)) {
      return false;
    }
    listener_.backup_created(name, b.metadata.name);
    {
      std::lock_guard lock(mutex_);
      created_[name] = {b.metadata.name, generation};
    }
    queue_.add(std::string(resync_key));
  }
  if (decision.skipped) {
    listener_.backup_skipped(name);
  }
  if (decision.scheduled_for) {
    const auto stamp = objects::format_utc(*decision.scheduled_for);
    auto written = store_.update_labels(entry.source.id, [&](label_map& labels) {
      labels[std::string(api::label::last_scheduled)] = stamp;
    });
    if (!written) {
      return false;
    }
  }
  listener_.schedule_seen(name, decision.next_run);
  if (decision.next_run) {
    queue_.add_after(std::string(schedule_prefix) + name,
                     *decision.next_run - at + std::chrono::seconds{1});
  }
  return true;
}

// --- backups

bool reconciler::reconcile_backup(const std::string& name) {
  const std::string key = std::string(backup_prefix) + name;
  if (has_pending_result(key)) {
    return flush_result(key);  // finished here; only its result is left to write
  }
  objects::catalog_entry entry;
  std::optional<objects::catalog_entry> schedule_entry;
  {
    std::lock_guard lock(mutex_);
    const auto it = cache_.backups.find(name);
    if (it == cache_.backups.end()) {
      return true;
    }
    entry = it->second;
    if (const auto s = cache_.schedules.find(backup_of(entry).spec.schedule_ref);
        s != cache_.schedules.end()) {
      schedule_entry = s->second;
    }
  }
  if (runs_.running(name)) {
    return true;
  }
  auto phase = label_of(entry, api::label::phase);
  if (backup::is_terminal(phase)) {
    return true;
  }
  if (!hooks_.leading()) {
    return true;
  }
  if (!phase.empty() && phase != backup::phase::pending) {
    // Mid-run but not running here. The listing may predate the end of a run
    // of this very process (a resync racing a finishing run): read the config
    // itself before declaring its controller dead.
    auto fresh = store_.get(entry.source.id);
    if (!fresh) {
      return fresh.error().is(engine::errc::not_found);
    }
    const auto it = fresh->labels.find(std::string(api::label::phase));
    phase = it == fresh->labels.end() ? std::string() : it->second;
    if (backup::is_terminal(phase)) {
      return true;
    }
    // Its controller died; recovery brings the workloads back; the run is over.
    return write_phase(entry.source.id, backup::phase::failed,
                       "controller restarted during " + phase,
                       {{std::string(api::label::finished), objects::format_utc(now())}});
  }
  const auto& schedule_ref = backup_of(entry).spec.schedule_ref;
  if (runs_.running_for_schedule(schedule_ref)) {
    // One run of a schedule at a time: an on-demand Backup waits its turn.
    queue_.add_after(key, options_.wait_for_active_run);
    return true;
  }
  if (!schedule_entry) {
    return write_phase(entry.source.id, backup::phase::failed,
                       "schedule " + schedule_ref + " does not exist",
                       {{std::string(api::label::finished), objects::format_utc(now())}});
  }
  if (!write_phase(entry.source.id, backup::phase::quiescing, "",
                   {{std::string(api::label::started), objects::format_utc(now())}})) {
    return false;  // not started: retried, so it never runs unrecorded
  }
  runs_.start_backup(
      {name, entry.source.id, std::get<api::backup_schedule>(*schedule_entry->object())});
  return true;
}

// --- restores

bool reconciler::reconcile_restore(const std::string& name) {
  const std::string key = std::string(restore_prefix) + name;
  if (has_pending_result(key)) {
    return flush_result(key);  // finished here; only its result is left to write
  }
  objects::catalog_entry entry;
  std::optional<objects::catalog_entry> backup_entry;
  std::optional<api::backup_schedule> backup_schedule;  // of backup_entry
  {
    std::lock_guard lock(mutex_);
    const auto it = cache_.restores.find(name);
    if (it == cache_.restores.end()) {
      return true;
    }
    entry = it->second;
    if (const auto& ref = std::get<api::restore>(*entry.object()).spec.backup_ref) {
      if (const auto b = cache_.backups.find(*ref); b != cache_.backups.end()) {
        backup_entry = b->second;
        if (const auto s = cache_.schedules.find(backup_of(b->second).spec.schedule_ref);
            s != cache_.schedules.end()) {
          backup_schedule = std::get<api::backup_schedule>(*s->second.object());
        }
      }
    }
  }
  const std::string run_name = restore_run_name(name);
  if (runs_.running(run_name)) {
    return true;
  }
  auto phase = label_of(entry, api::label::phase);
  if (restore::is_terminal(phase) || !hooks_.leading()) {
    return true;
  }
  restore_launch launch;
  launch.name = name;
  launch.run_name = run_name;
  launch.config_id = entry.source.id;
  launch.restore = std::get<api::restore>(*entry.object());
  launch.notifications = launch.restore.spec.notifications;
  if (const auto& ref = launch.restore.spec.backup_ref) {
    launch.backup_ref = *ref;
    if (backup_entry) {
      launch.schedule = backup_of(*backup_entry).spec.schedule_ref;
    }
    if (!launch.notifications && backup_schedule) {
      // A restore of a schedule's backup is reported where its backups are.
      launch.notifications = backup_schedule->spec.notifications;
    }
  }
  auto fail = [&](std::string_view outcome, const std::string& why) {
    listener_.restore_refused(name, std::string(outcome), why);
    if (!hooks_.leading()) {
      return false;
    }
    // Written only over a phase that is not terminal yet, and reported only
    // by the write that made it Failed: a retried write, or a second look
    // from a listing that is behind, neither rewrites nor reports it again.
    bool newly_failed = false;
    const auto written = store_.update_labels(entry.source.id, [&](label_map& labels) {
      const auto it = labels.find(std::string(api::label::phase));
      newly_failed = it == labels.end() || !restore::is_terminal(it->second);
      if (newly_failed) {
        set_phase(labels, restore::phase::failed, why,
                  {{std::string(api::label::finished), objects::format_utc(now())}});
      }
    });
    if (!written) {
      return false;
    }
    if (!newly_failed) {
      return true;
    }
    restore::run_result result;
    result.outcome = outcome;
    result.message = why;
    runs_.report_unrun_restore(launch, result,
                               phase.empty() ? std::string(restore::phase::pending) : phase);
    return true;
  };
  if (!phase.empty() && phase != restore::phase::pending) {
    // As for Backups: confirm on the config itself that it is not a result of
    // this process the listing has not caught up with.
    auto fresh = store_.get(entry.source.id);
    if (!fresh) {
      return fresh.error().is(engine::errc::not_found);
    }
    const auto it = fresh->labels.find(std::string(api::label::phase));
    phase = it == fresh->labels.end() ? std::string() : it->second;
    if (restore::is_terminal(phase)) {
      return true;
    }
    // Its controller died. Recovery brings the workloads back; a restore is
    // never started over by itself (the volume may be half written).
    return fail("interrupted",
                "controller restarted during " + phase +
                    (phase == restore::phase::verifying
                         ? std::string("; nothing was written: apply the Restore again")
                         : std::string("; the target volumes may be partly restored: apply a new "
                                       "Restore (with wipe) to start over")));
  }
  api::restore restore = std::get<api::restore>(*entry.object());
  if (restore.spec.backup_ref) {
    const std::string ref = *restore.spec.backup_ref;
    if (!backup_entry) {
      return fail(restore::outcome::invalid, "backup " + ref + " does not exist");
    }
    const auto backup_phase = label_of(*backup_entry, api::label::phase);
    const auto archive = label_of(*backup_entry, api::label::archive);
    if (backup_phase != backup::phase::succeeded || archive.empty()) {
      return fail(restore::outcome::invalid,
                  "backup " + ref + " has no archive (phase " +
                      (backup_phase.empty() ? std::string("unknown") : backup_phase) + ")");
    }
    if (const auto snapshots = label_of(*backup_entry, api::label::snapshots); !snapshots.empty()) {
      // One snapshot per volume, each tagged with the run: "latest" among
      // those with the tag picks the run's snapshot of each volume.
      if (!backup_schedule || !backup_schedule->spec.restic) {
        return fail(restore::outcome::invalid,
                    "backup " + ref + " holds restic snapshots (" + snapshots + ") in " + archive +
                        ", and its schedule " + backup_of(*backup_entry).spec.schedule_ref +
                        " is gone, which named the repository's password file: give "
                        "spec.restic (repository, passwordFile, snapshot)");
      }
      restore.spec.restic = api::restic_source{
          archive, backup_schedule->spec.restic->password_file, "latest", {"backup=" + ref}};
    } else if (archive.starts_with('/')) {
      restore.spec.archive = archive;
    } else {
      // Published on a remote destination: the schedule's first one, where a
      // run writes its archive (the location label is that destination's).
      if (!backup_schedule || backup_schedule->spec.destinations.empty()) {
        return fail(restore::outcome::invalid,
                    "backup " + ref + "'s archive is at " + archive + ", and its schedule " +
                        backup_of(*backup_entry).spec.schedule_ref +
                        " is gone, which said how to reach it: give spec.source");
      }
      restore.spec.source = api::restore_source{backup_schedule->spec.destinations.front(),
                                                archive_name_of_location(archive)};
    }
    // backupRef stays beside the archive it resolved to: a restore into a
    // volume on another node reads that node's archive of the same run,
    // named for the node (restore::engine_runner).
  }
  if (!write_phase(entry.source.id, restore::phase::pending, "",
                   {{std::string(api::label::started), objects::format_utc(now())}})) {
    return false;
  }
  launch.restore = std::move(restore);
  runs_.start_restore(launch);
  return true;
}

// --- run progress and results

void reconciler::report_phase(const std::string& config_id, std::string_view phase,
                              const std::string& message) {
  (void)write_phase(config_id, phase, message);
}

void reconciler::finish_backup(const backup_launch& launch, const backup::run_result& result) {
  const auto finished = clock_.system_now();
  listener_.backup_finished(launch.schedule.metadata.name, launch.name, result, finished);
  label_map labels;
  set_phase(labels, result.ok ? backup::phase::succeeded : backup::phase::failed, result.message,
            {{std::string(api::label::finished), objects::format_utc(now())},
             {std::string(api::label::archive), result.archive},
             {std::string(api::label::size_bytes),
              std::to_string(static_cast<long long>(result.size_bytes))}});
  if (!result.snapshots.empty()) {
    labels[std::string(api::label::snapshots)] = result.snapshots;
  }
  const std::string key = std::string(backup_prefix) + launch.name;
  {
    std::lock_guard lock(mutex_);
    pending_results_[key] = {launch.config_id, std::move(labels)};
  }
  if (!flush_result(key)) {
    queue_.add(key);  // the work queue retries it with backoff
  }
  queue_.add(std::string(resync_key));
}

void reconciler::finish_restore(const restore_launch& launch, const restore::run_result& result) {
  listener_.restore_finished(launch.name, result);
  label_map labels;
  set_phase(labels, result.ok ? restore::phase::succeeded : restore::phase::failed, result.message,
            {{std::string(api::label::finished), objects::format_utc(now())},
             {std::string(api::label::archive), result.archive}});
  const std::string key = std::string(restore_prefix) + launch.name;
  {
    std::lock_guard lock(mutex_);
    pending_results_[key] = {launch.config_id, std::move(labels)};
  }
  if (!flush_result(key)) {
    queue_.add(key);
  }
  queue_.add(std::string(resync_key));
}

bool reconciler::has_pending_result(const std::string& key) const {
  std::lock_guard lock(mutex_);
  return pending_results_.contains(key);
}

bool reconciler::flush_result(const std::string& key) {
  pending_result pending;
  {
    std::lock_guard lock(mutex_);
    const auto it = pending_results_.find(key);
    if (it == pending_results_.end()) {
      return true;
    }
    pending = it->second;
  }
  if (!hooks_.leading()) {
    return false;  // kept: written when this process leads again
  }
  auto written = store_.update_labels(pending.config_id, [&](label_map& labels) {
    for (const auto& [k, v] : pending.labels) {
      labels[k] = v;
    }
    if (!pending.labels.contains(std::string(api::label::message))) {
      labels.erase(std::string(api::label::message));
    }
  });
  if (!written && !written.error().is(engine::errc::not_found)) {
    return false;
  }
  // Written, or the object was removed meanwhile: nothing left to record.
  std::lock_guard lock(mutex_);
  pending_results_.erase(key);
  return true;
}

bool reconciler::write_phase(const std::string& id, std::string_view phase,
                             const std::string& message, const label_map& extra) {
  if (!hooks_.leading()) {
    return false;
  }
  auto written = store_.update_labels(
      id, [&](label_map& labels) { set_phase(labels, phase, message, extra); });
  return static_cast<bool>(written);
}

}  // namespace lifeboat::controller
