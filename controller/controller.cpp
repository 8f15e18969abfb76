#include "controller/controller.hpp"

#include "controller/objects/catalog.hpp"
#include "controller/objects/status.hpp"
#include "controller/objects/swarm_objects.hpp"
#include "controller/quiesce/quiesce.hpp"
#include "controller/runtime/lease.hpp"
#include "controller/runtime/work_queue.hpp"
#include "reconcilers/schedule.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace lifeboat::controller {

namespace {

using namespace std::chrono_literals;
using objects::label_map;
using sys_seconds = std::chrono::sys_seconds;

constexpr std::string_view resync_key = "resync";
constexpr std::string_view schedule_prefix = "schedule/";
constexpr std::string_view backup_prefix = "backup/";
constexpr std::string_view restore_prefix = "restore/";

// Labels the controller writes beyond discovery's.
constexpr std::string_view last_scheduled_label = "lifeboat.status.last-scheduled";
constexpr std::string_view backup_schedule_label = "lifeboat.backup.schedule";
constexpr std::string_view started_label = "lifeboat.status.started";
constexpr std::string_view finished_label = "lifeboat.status.finished";
constexpr std::string_view archive_label = "lifeboat.status.archive";
constexpr std::string_view size_label = "lifeboat.status.size-bytes";

sys_seconds now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

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

std::string default_identity() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(::getpid());
}

struct active_run {
  std::thread thread;
  std::atomic<int> held{0};
  std::atomic<bool> cancel{false};
  std::atomic<bool> finished{false};
};

class controller_loop {
 public:
  controller_loop(const engine::client& client, const options& opts, backup::backup_runner& runner,
                  restore::restore_runner& restorer, quiesce::journal_store& journals,
                  metrics::registry& metrics)
      : client_(client),
        opts_(opts),
        runner_(runner),
        restorer_(restorer),
        journals_(journals),
        metrics_(metrics),
        queue_(clock_),
        lease_(client, make_lease_options(), clock_) {}

  int run(const std::atomic<bool>& stop, std::atomic<bool>& ready) {
    std::thread events([&] { follow_events(stop); });
    std::vector<std::thread> workers;
    for (int i = 0; i < std::max(1, opts_.workers); ++i) {
      workers.emplace_back([this] { work(); });
    }
    auto next_resync = std::chrono::steady_clock::now();
    while (!stop) {
      const auto round = lease_.try_acquire_or_renew();
      metrics_.set_leader(round.leading);
      leader_known_ = true;
      ready = synced_ && leader_known_;
      if (std::chrono::steady_clock::now() >= next_resync) {
        queue_.add(std::string(resync_key));
        next_resync = std::chrono::steady_clock::now() + opts_.resync;
      }
      metrics_.set_workqueue_depth(static_cast<double>(queue_.len()));
      sleep_unless(stop, opts_.retry_period);
    }

    spdlog::info("event=shutdown msg=\"stopping: cancelling runs, resuming workloads\"");
    queue_.shutdown();
    for (auto& w : workers) {
      w.join();
    }
    {
      std::lock_guard lock(runs_mutex_);
      for (auto& [name, r] : runs_) {
        r->cancel = true;
      }
    }
    join_runs(/*all=*/true);
    stream_cancel();
    events.join();
    (void)lease_.release();
    metrics_.set_leader(false);
    spdlog::info("event=stopped");
    return 0;
  }

 private:
  runtime::lease_options make_lease_options() {
    runtime::lease_options o;
    o.name = opts_.lease_name;
    identity_ = opts_.identity.empty() ? default_identity() : opts_.identity;
    o.identity = identity_;
    o.duration = opts_.lease_duration;
    o.renew_deadline = opts_.renew_deadline;
    o.on_change = [this](bool leading) {
      spdlog::info("event=leadership leading={} identity={}", leading, identity_);
      if (leading) {
        queue_.add(std::string(resync_key));
      }
    };
    return o;
  }

  void sleep_unless(const std::atomic<bool>& stop, std::chrono::milliseconds d) {
    std::unique_lock lock(sleep_mutex_);
    sleep_cv_.wait_for(lock, d, [&] { return stop.load(); });
  }

  // --- events

  void stream_cancel() {
    std::lock_guard lock(stream_mutex_);
    stopping_ = true;
    if (stream_) {
      stream_->cancel();
    }
  }

  void follow_events(const std::atomic<bool>& stop) {
    auto backoff = 500ms;
    while (!stop) {
      auto stream = client_.events({{"type", {"config", "service"}}});
      if (!stream) {
        metrics_.engine_request(false);
        spdlog::warn("event=watch_failed error=\"{}\"", stream.error().describe());
        sleep_unless(stop, backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds{30s});
        continue;
      }
      {
        std::lock_guard lock(stream_mutex_);
        if (stopping_) {
          return;
        }
        stream_.emplace(std::move(*stream));
      }
      backoff = 500ms;
      // Events may have been missed while disconnected: re-list.
      queue_.add(std::string(resync_key));
      for (;;) {
        auto e = stream_->next();
        if (!e) {
          if (!e.error().is(engine::errc::cancelled)) {
            metrics_.add_watch_restart();
            spdlog::warn("event=watch_restart error=\"{}\"", e.error().describe());
          }
          break;
        }
        // Level-triggered: an event only says that something changed.
        if ((e->type == "config" || e->type == "service") && !own_bookkeeping(*e)) {
          queue_.add(std::string(resync_key));
        }
      }
      std::lock_guard lock(stream_mutex_);
      stream_.reset();
    }
  }

  // Configs the controller itself rewrites on a timer: the lease (every
  // retry period) and the runs' ownership records and journals. Their changes
  // hold no object to reconcile; reacting to them would re-list everything
  // every 2 seconds.
  bool own_bookkeeping(const engine::event& e) const {
    if (e.type != "config") {
      return false;
    }
    const auto it = e.attributes.find("name");
    if (it == e.attributes.end()) {
      return false;
    }
    const std::string& name = it->second;
    return name == opts_.lease_name || name.starts_with("lifeboat-run.") ||
           name.starts_with("lifeboat-journal.");
  }

  // --- workers

  void work() {
    while (auto key = queue_.get()) {
      const auto start = std::chrono::steady_clock::now();
      bool ok = true;
      std::string reconciler = "resync";
      try {
        if (!lease_.is_leader()) {
          // Not ours to act on; becoming leader queues a resync.
        } else if (*key == resync_key) {
          ok = resync();
        } else if (key->starts_with(schedule_prefix)) {
          reconciler = "schedule";
          ok = reconcile_schedule(key->substr(schedule_prefix.size()));
        } else if (key->starts_with(backup_prefix)) {
          reconciler = "backup";
          ok = reconcile_backup(key->substr(backup_prefix.size()));
        } else if (key->starts_with(restore_prefix)) {
          reconciler = "restore";
          ok = reconcile_restore(key->substr(restore_prefix.size()));
        }
      } catch (const std::exception& e) {
        // A bug, not a user's object: count it, log it, retry later.
        spdlog::error("event=reconcile_exception key={} error=\"{}\"", *key, e.what());
        ok = false;
      }
      metrics_.reconciled(reconciler, ok,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - start));
      if (ok) {
        queue_.forget(*key);
      } else {
        queue_.add_rate_limited(*key);
      }
      queue_.done(*key);
      metrics_.set_workqueue_depth(static_cast<double>(queue_.len()));
    }
  }

  // Active schedule and backup entries, from the last resync.
  struct cache {
    std::map<std::string, objects::catalog_entry> schedules;
    std::map<std::string, objects::catalog_entry> backups;
    std::map<std::string, objects::catalog_entry> restores;
  };

  bool resync() {
    auto listed = objects::list_object_configs(client_);
    metrics_.engine_request(static_cast<bool>(listed));
    if (!listed) {
      spdlog::warn("event=resync_failed error=\"{}\"", listed.error().describe());
      return false;
    }
    const auto catalog = objects::build_catalog(std::move(*listed));
    const auto now = now_seconds();
    const auto report = objects::sync_status(client_, catalog, now);
    for (const auto& f : report.failures) {
      spdlog::warn("event=status_write_failed detail=\"{}\"", f);
    }

    cache fresh;
    int invalid = 0;
    for (const auto& e : catalog) {
      if (e.state == objects::standing::invalid) {
        ++invalid;
      }
      if (e.state != objects::standing::active) {
        continue;
      }
      if (const auto* s = std::get_if<api::backup_schedule>(e.object())) {
        fresh.schedules.emplace(s->metadata.name, e);
      } else if (const auto* b = std::get_if<api::backup>(e.object())) {
        fresh.backups.emplace(b->metadata.name, e);
      } else if (const auto* r = std::get_if<api::restore>(e.object())) {
        fresh.restores.emplace(r->metadata.name, e);
      }
    }
    metrics_.set_invalid_objects(invalid);

    std::set<std::string> removed;
    {
      std::lock_guard lock(cache_mutex_);
      for (const auto& [name, e] : cache_.schedules) {
        if (!fresh.schedules.contains(name)) {
          removed.insert(name);
        }
      }
      cache_ = fresh;
    }
    for (const auto& name : removed) {
      metrics_.remove_schedule(name);
      spdlog::info("event=schedule_removed schedule={}", name);
    }
    for (const auto& [name, e] : fresh.schedules) {
      metrics_.add_schedule(name);
      queue_.add(std::string(schedule_prefix) + name);
    }
    for (const auto& [name, e] : fresh.backups) {
      if (!backup::is_terminal(label_of(e, objects::label::phase))) {
        queue_.add(std::string(backup_prefix) + name);
      }
    }
    for (const auto& [name, e] : fresh.restores) {
      if (!restore::is_terminal(label_of(e, objects::label::phase))) {
        queue_.add(std::string(restore_prefix) + name);
      }
    }
    recover();
    enforce_history(fresh);
    join_runs(/*all=*/false);
    synced_ = true;
    return true;
  }

  // Whatever a run that is not active here holds goes back.
  void recover() {
    std::set<std::string> active;
    {
      std::lock_guard lock(runs_mutex_);
      for (const auto& [name, r] : runs_) {
        active.insert(name);
      }
    }
    const auto report = quiesce::recover(client_, journals_, active, 5min);
    for (const auto& run : report.recovered) {
      metrics_.add_recovery();
      spdlog::warn("event=recovered run={}", run);
    }
    for (const auto& f : report.failures) {
      spdlog::error("event=recovery_failed detail=\"{}\"", f);
    }
  }

  // Keeps the newest N succeeded and N failed Backups of each schedule.
  void enforce_history(const cache& c) {
    for (const auto& [schedule_name, s] : c.schedules) {
      const auto& limits = std::get<api::backup_schedule>(*s.object()).spec.history_limits;
      std::vector<const objects::catalog_entry*> succeeded;
      std::vector<const objects::catalog_entry*> failed;
      for (const auto& [name, b] : c.backups) {
        if (std::get<api::backup>(*b.object()).spec.schedule_ref != schedule_name) {
          continue;
        }
        const auto phase = label_of(b, objects::label::phase);
        if (phase == backup::phase::succeeded) {
          succeeded.push_back(&b);
        } else if (phase == backup::phase::failed || phase == backup::phase::skipped) {
          failed.push_back(&b);
        }
      }
      auto prune = [&](std::vector<const objects::catalog_entry*>& list, int keep) {
        std::sort(list.begin(), list.end(), [](const auto* a, const auto* b) {
          return objects::compare_timestamps(a->source.created_at, b->source.created_at) > 0;
        });
        for (std::size_t i = static_cast<std::size_t>(std::max(keep, 0)); i < list.size(); ++i) {
          if (lease_.is_leader()) {
            (void)client_.remove_config(list[i]->source.id);
          }
        }
      };
      prune(succeeded, limits.succeeded);
      prune(failed, limits.failed);
    }
  }

  bool run_active_for(const std::string& schedule) {
    std::lock_guard lock(runs_mutex_);
    for (const auto& [name, r] : runs_) {
      if (!r->finished && run_schedule_.contains(name) && run_schedule_[name] == schedule) {
        return true;
      }
    }
    return false;
  }

  bool reconcile_schedule(const std::string& name) {
    objects::catalog_entry entry;
    std::set<std::string> backups;
    bool unfinished_backup = false;
    {
      std::lock_guard lock(cache_mutex_);
      const auto it = cache_.schedules.find(name);
      if (it == cache_.schedules.end()) {
        return true;  // removed: its running Backup, if any, finishes by itself
      }
      entry = it->second;
      for (const auto& [bname, b] : cache_.backups) {
        if (std::get<api::backup>(*b.object()).spec.schedule_ref == name) {
          backups.insert(bname);
          if (!backup::is_terminal(label_of(b, objects::label::phase))) {
            unfinished_backup = true;
          }
        }
      }
      // Created by this controller but not yet seen by a resync.
      if (const auto c = created_.find(name); c != created_.end() && !backups.contains(c->second)) {
        unfinished_backup = true;
      }
    }
    const auto& schedule = std::get<api::backup_schedule>(*entry.object());
    reconcilers::schedule_state state;
    state.last_scheduled = parse_utc(label_of(entry, last_scheduled_label));
    state.since = now_seconds();
    if (const auto created = parse_utc(entry.source.created_at.substr(0, 19) + "Z")) {
      state.since = *created;
    }
    // A Backup of this schedule that has not ended (running, or created and
    // not yet started) makes a new firing Skipped, not a second Backup: after
    // an outage, only one catch-up run.
    state.run_active = run_active_for(name) || unfinished_backup;
    state.backups = backups;
    const auto now = now_seconds();
    const auto decision = reconcilers::plan_schedule(schedule, state, now, opts_.starting_deadline);

    if (decision.missed_earlier) {
      spdlog::warn(
          "event=missed_runs schedule={} msg=\"firings older than the starting deadline "
          "were not run\"",
          name);
    }
    if (decision.create_backup) {
      if (!lease_.is_leader()) {
        return true;
      }
      api::backup b;
      b.metadata.name = *decision.create_backup;
      b.spec.schedule_ref = name;
      const auto text = api::encode_yaml(b);
      auto created = client_.create_config(
          objects::config_name_for(b, text), text,
          {{std::string(objects::label::object), "true"},
           {std::string(objects::label::kind), "Backup"},
           {std::string(objects::label::name), b.metadata.name},
           {std::string(backup_schedule_label), name},
           {std::string(objects::label::phase), std::string(backup::phase::pending)}});
      metrics_.engine_request(created || created.error().is(engine::errc::conflict));
      if (!created && !created.error().is(engine::errc::conflict)) {
        spdlog::warn("event=backup_create_failed schedule={} error=\"{}\"", name,
                     created.error().describe());
        return false;
      }
      spdlog::info("event=backup_created schedule={} backup={}", name, *decision.create_backup);
      {
        std::lock_guard lock(cache_mutex_);
        created_[name] = *decision.create_backup;
      }
      queue_.add(std::string(resync_key));
    }
    if (decision.skipped) {
      metrics_.backup_finished(name, metrics::backup_result::skipped, 0s, 0s, 0,
                               std::chrono::system_clock::now());
      spdlog::warn("event=run_skipped schedule={} msg=\"the previous run is still active\"", name);
    }
    if (decision.scheduled_for && lease_.is_leader()) {
      const auto stamp = objects::format_utc(*decision.scheduled_for);
      auto written = objects::update_labels(client_, entry.source.id, [&](label_map& labels) {
        labels[std::string(last_scheduled_label)] = stamp;
      });
      if (!written) {
        spdlog::warn("event=status_write_failed schedule={} error=\"{}\"", name,
                     written.error().describe());
        return false;
      }
    }
    if (decision.next_run) {
      metrics_.set_next_run(name, *decision.next_run);
      queue_.add_after(std::string(schedule_prefix) + name, *decision.next_run - now + 1s);
    }
    return true;
  }

  bool reconcile_backup(const std::string& name) {
    objects::catalog_entry entry;
    std::optional<objects::catalog_entry> schedule_entry;
    {
      std::lock_guard lock(cache_mutex_);
      const auto it = cache_.backups.find(name);
      if (it == cache_.backups.end()) {
        return true;
      }
      entry = it->second;
      const auto& ref = std::get<api::backup>(*entry.object()).spec.schedule_ref;
      if (const auto s = cache_.schedules.find(ref); s != cache_.schedules.end()) {
        schedule_entry = s->second;
      }
    }
    const auto phase = label_of(entry, objects::label::phase);
    if (backup::is_terminal(phase)) {
      return true;
    }
    {
      std::lock_guard lock(runs_mutex_);
      if (runs_.contains(name)) {
        return true;  // running here
      }
    }
    if (!phase.empty() && phase != backup::phase::pending) {
      // Mid-run but not running here: its controller died. Recovery brings
      // the workloads back; the run is over.
      write_phase(entry.source.id, backup::phase::failed, "controller restarted during " + phase);
      return true;
    }
    if (run_active_for(std::get<api::backup>(*entry.object()).spec.schedule_ref)) {
      // One run of a schedule at a time: an on-demand Backup waits its turn.
      queue_.add_after(std::string(backup_prefix) + name, 5s);
      return true;
    }
    if (!schedule_entry) {
      write_phase(entry.source.id, backup::phase::failed,
                  "schedule " + std::get<api::backup>(*entry.object()).spec.schedule_ref +
                      " does not exist");
      return true;
    }
    start_run(name, entry.source.id, std::get<api::backup_schedule>(*schedule_entry->object()));
    return true;
  }

  // The run name a Restore quiesces under (lifeboat.held-by, journals): its
  // own namespace, so that a Restore never shares a name with a Backup.
  static std::string restore_run_name(const std::string& name) { return "restore-" + name; }

  bool reconcile_restore(const std::string& name) {
    objects::catalog_entry entry;
    std::optional<objects::catalog_entry> backup_entry;
    {
      std::lock_guard lock(cache_mutex_);
      const auto it = cache_.restores.find(name);
      if (it == cache_.restores.end()) {
        return true;
      }
      entry = it->second;
      const auto& ref = std::get<api::restore>(*entry.object()).spec.backup_ref;
      if (ref) {
        if (const auto b = cache_.backups.find(*ref); b != cache_.backups.end()) {
          backup_entry = b->second;
        }
      }
    }
    const auto phase = label_of(entry, objects::label::phase);
    if (restore::is_terminal(phase)) {
      return true;
    }
    const std::string run_name = restore_run_name(name);
    {
      std::lock_guard lock(runs_mutex_);
      if (runs_.contains(run_name)) {
        return true;  // running here
      }
    }
    auto fail = [&](const std::string& why) {
      write_phase(entry.source.id, restore::phase::failed, why,
                  {{std::string(finished_label), objects::format_utc(now_seconds())}});
      metrics_.restore_finished(std::string(phase.empty() || phase == restore::phase::pending
                                                ? restore::outcome::invalid
                                                : "interrupted"));
      spdlog::warn("event=restore_failed restore={} msg=\"{}\"", name, why);
      return true;
    };
    if (!phase.empty() && phase != restore::phase::pending) {
      // Mid-run but not running here: its controller died. Recovery brings
      // the workloads back; a restore is never started over by itself (the
      // volume may be half written: the user decides).
      return fail("controller restarted during " + phase +
                  (phase == restore::phase::verifying
                       ? std::string("; nothing was written: apply the Restore again")
                       : std::string("; the target volumes may be partly restored: apply a new "
                                     "Restore (with wipe) to start over")));
    }
    api::restore restore = std::get<api::restore>(*entry.object());
    if (restore.spec.backup_ref) {
      const std::string& ref = *restore.spec.backup_ref;
      if (!backup_entry) {
        return fail("backup " + ref + " does not exist");
      }
      const auto backup_phase = label_of(*backup_entry, objects::label::phase);
      const auto archive = label_of(*backup_entry, archive_label);
      if (backup_phase != backup::phase::succeeded || archive.empty()) {
        return fail("backup " + ref + " has no archive (phase " +
                    (backup_phase.empty() ? std::string("unknown") : backup_phase) + ")");
      }
      restore.spec.archive = archive;
      restore.spec.backup_ref.reset();
    }
    start_restore(name, run_name, entry.source.id, restore);
    return true;
  }

  void start_restore(const std::string& name, const std::string& run_name,
                     const std::string& config_id, const api::restore& restore) {
    auto r = std::make_unique<active_run>();
    auto* run = r.get();
    {
      std::lock_guard lock(runs_mutex_);
      runs_.emplace(run_name, std::move(r));
    }
    spdlog::info("event=restore_started restore={} archive={}", name,
                 restore.spec.archive.value_or(""));
    write_phase(config_id, restore::phase::pending, "",
                {{std::string(started_label), objects::format_utc(now_seconds())}});
    run->thread = std::thread([this, run, name, run_name, config_id, restore] {
      const auto result = restorer_.run(
          restore, run_name,
          [&](std::string_view phase, const std::string& message) {
            write_phase(config_id, phase, message);
          },
          [&](int workloads) {
            run->held = workloads;
            update_held();
          },
          run->cancel);
      metrics_.restore_finished(std::string(result.outcome));
      write_phase(config_id, result.ok ? restore::phase::succeeded : restore::phase::failed,
                  result.message,
                  {{std::string(finished_label), objects::format_utc(now_seconds())},
                   {std::string(archive_label), result.archive}});
      spdlog::info("event=restore_finished restore={} ok={} result={} msg=\"{}\"", name, result.ok,
                   result.outcome, result.message);
      run->finished = true;
      queue_.add(std::string(resync_key));
    });
  }

  void write_phase(const std::string& config_id, std::string_view phase, const std::string& message,
                   const label_map& extra = {}) {
    if (!lease_.is_leader()) {
      return;
    }
    auto written = objects::update_labels(client_, config_id, [&](label_map& labels) {
      labels[std::string(objects::label::phase)] = std::string(phase);
      if (message.empty()) {
        labels.erase(std::string(objects::label::message));
      } else {
        labels[std::string(objects::label::message)] = message.substr(0, 1000);
      }
      for (const auto& [k, v] : extra) {
        labels[k] = v;
      }
    });
    if (!written) {
      spdlog::warn("event=status_write_failed config={} error=\"{}\"", config_id,
                   written.error().describe());
    }
  }

  void start_run(const std::string& name, const std::string& config_id,
                 const api::backup_schedule& schedule) {
    auto r = std::make_unique<active_run>();
    auto* run = r.get();
    {
      std::lock_guard lock(runs_mutex_);
      run_schedule_[name] = schedule.metadata.name;
      runs_.emplace(name, std::move(r));
    }
    spdlog::info("event=run_started schedule={} backup={}", schedule.metadata.name, name);
    write_phase(config_id, backup::phase::quiescing, "",
                {{std::string(started_label), objects::format_utc(now_seconds())}});
    run->thread = std::thread([this, run, name, config_id, schedule] {
      const auto result = runner_.run(
          schedule, name,
          [&](std::string_view phase, const std::string& message) {
            write_phase(config_id, phase, message);
          },
          [&](int workloads) {
            run->held = workloads;
            update_held();
          },
          run->cancel);
      const auto finished = std::chrono::system_clock::now();
      metrics_.backup_finished(
          schedule.metadata.name,
          result.ok ? metrics::backup_result::success : metrics::backup_result::failure,
          result.duration, result.downtime, result.size_bytes, finished);
      write_phase(
          config_id, result.ok ? backup::phase::succeeded : backup::phase::failed, result.message,
          {{std::string(finished_label), objects::format_utc(now_seconds())},
           {std::string(archive_label), result.archive},
           {std::string(size_label), std::to_string(static_cast<long long>(result.size_bytes))}});
      spdlog::info("event=run_finished schedule={} backup={} ok={} msg=\"{}\"",
                   schedule.metadata.name, name, result.ok, result.message);
      run->finished = true;
      queue_.add(std::string(resync_key));
    });
  }

  void update_held() {
    int total = 0;
    std::lock_guard lock(runs_mutex_);
    for (const auto& [name, r] : runs_) {
      total += r->held;
    }
    metrics_.set_workloads_held(total);
  }

  void join_runs(bool all) {
    std::vector<std::unique_ptr<active_run>> done;
    {
      std::lock_guard lock(runs_mutex_);
      for (auto it = runs_.begin(); it != runs_.end();) {
        if (all || it->second->finished) {
          done.push_back(std::move(it->second));
          run_schedule_.erase(it->first);
          it = runs_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& r : done) {
      if (r->thread.joinable()) {
        r->thread.join();
      }
    }
  }

  const engine::client& client_;
  const options opts_;
  std::string identity_;
  backup::backup_runner& runner_;
  restore::restore_runner& restorer_;
  quiesce::journal_store& journals_;
  metrics::registry& metrics_;
  runtime::real_clock clock_;
  runtime::work_queue queue_;
  runtime::leader_lease lease_;

  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;

  std::mutex stream_mutex_;
  std::optional<engine::event_stream> stream_;
  bool stopping_ = false;

  std::mutex cache_mutex_;
  cache cache_;
  std::map<std::string, std::string> created_;  // schedule -> the last Backup created for it

  std::mutex runs_mutex_;
  std::map<std::string, std::unique_ptr<active_run>> runs_;
  std::map<std::string, std::string> run_schedule_;

  std::atomic<bool> synced_{false};
  std::atomic<bool> leader_known_{false};
};

}  // namespace

int run(const engine::client& client, const options& opts, backup::backup_runner& runner,
        restore::restore_runner& restorer, quiesce::journal_store& journals,
        metrics::registry& metrics, const std::atomic<bool>& stop, std::atomic<bool>& ready) {
  try {
    controller_loop loop(client, opts, runner, restorer, journals, metrics);
    return loop.run(stop, ready);
  } catch (const std::invalid_argument& e) {
    spdlog::critical("event=startup_failed error=\"{}\"", e.what());
    return 2;
  }
}

}  // namespace lifeboat::controller
