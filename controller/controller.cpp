#include "controller/controller.hpp"

#include "controller/backup/agent_job.hpp"

#include "controller/logging/log.hpp"
#include "controller/loop/object_store.hpp"
#include "controller/loop/reconciler.hpp"
#include "controller/notify/listener.hpp"
#include "controller/quiesce/quiesce.hpp"
#include "controller/runtime/lease.hpp"
#include "controller/runtime/work_queue.hpp"

#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

namespace lifeboat::controller {

namespace {

using namespace std::chrono_literals;

// The lease identity must differ between any two controllers: two replicas
// can share a host name and both run as PID 1 in their containers.
std::string default_identity() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::random_device random;
  return fmt::format("{}-{}-{:08x}", host, ::getpid(), random());
}

// Metrics and logs: the run listeners this process always has.
class metrics_and_logs final : public run_listener {
 public:
  explicit metrics_and_logs(metrics::registry& metrics) : metrics_(metrics) {}

  void schedule_seen(const std::string& schedule,
                     std::optional<std::chrono::sys_seconds> next_run) override {
    metrics_.add_schedule(schedule);
    if (next_run) {
      metrics_.set_next_run(schedule, *next_run);
    }
  }
  void schedule_removed(const std::string& schedule) override {
    metrics_.remove_schedule(schedule);
    spdlog::info("event=schedule_removed schedule={}", logging::value(schedule));
  }
  void backup_created(const std::string& schedule, const std::string& backup) override {
    spdlog::info("event=backup_created schedule={} backup={}", logging::value(schedule),
                 logging::value(backup));
  }
  void backup_skipped(const std::string& schedule) override {
    metrics_.backup_finished(schedule, metrics::backup_result::skipped, 0s, 0s, 0,
                             std::chrono::system_clock::now());
    spdlog::warn("event=run_skipped schedule={} msg=\"the previous run is still active\"",
                 logging::value(schedule));
  }
  void backup_finished(const std::string& schedule, const std::string& backup,
                       const backup::run_result& result,
                       std::chrono::system_clock::time_point finished) override {
    metrics_.backup_finished(
        schedule, result.ok ? metrics::backup_result::success : metrics::backup_result::failure,
        result.duration, result.downtime, result.size_bytes, finished);
    if (!result.ok) {
      metrics_.backup_failed(schedule, result.failure);
    }
    for (const auto& d : result.destinations) {
      metrics_.upload_finished(schedule, d.destination, d.ok, d.bytes, d.duration);
    }
    spdlog::info("event=run_finished schedule={} backup={} ok={} msg={}", logging::value(schedule),
                 logging::value(backup), result.ok, logging::value(result.message));
  }
  void restore_finished(const std::string& restore, const restore::run_result& result) override {
    metrics_.restore_finished(std::string(result.outcome));
    spdlog::info("event=restore_finished restore={} ok={} result={} msg={}",
                 logging::value(restore), result.ok, logging::value(result.outcome),
                 logging::value(result.message));
  }
  void restore_refused(const std::string& restore, const std::string& outcome,
                       const std::string& why) override {
    metrics_.restore_finished(outcome);
    spdlog::warn("event=restore_failed restore={} msg={}", logging::value(restore),
                 logging::value(why));
  }
  void invalid_objects(int count) override { metrics_.set_invalid_objects(count); }
  void engine_call(bool ok) override { metrics_.engine_request(ok); }

 private:
  metrics::registry& metrics_;
};

class queue_adapter final : public key_queue {
 public:
  explicit queue_adapter(runtime::work_queue& queue) : queue_(queue) {}
  void add(const std::string& key) override { queue_.add(key); }
  void add_after(const std::string& key, runtime::clock::duration delay) override {
    queue_.add_after(key, delay);
  }

 private:
  runtime::work_queue& queue_;
};

// The runs of this process, each on a thread of its own so that long work
// never blocks the loop. Nothing a runner throws escapes its thread: it is
// logged, counted, and the run fails with it.
class run_threads final : public run_launcher {
 public:
  run_threads(backup::backup_runner& backups, restore::restore_runner& restores,
              metrics::registry& metrics)
      : backups_(backups),
        restores_(restores),
        metrics_(metrics),
        notifier_(sender_, &notify::sleep_for, &notify::read_file,
                  [&metrics](bool sent) { metrics.notification_finished(sent); }) {}

  ~run_threads() override {
    cancel_all();
    reap(/*all=*/true);
  }

  /// Set once, before any run starts.
  void attach(reconciler& r) { reconciler_ = &r; }

  bool running(const std::string& run_name) const override {
    std::lock_guard lock(mutex_);
    const auto it = runs_.find(run_name);
    return it != runs_.end() && !it->second->finished;
  }

  bool running_for_schedule(const std::string& schedule) const override {
    std::lock_guard lock(mutex_);
    return std::any_of(runs_.begin(), runs_.end(), [&](const auto& r) {
      return !r.second->finished && r.second->schedule == schedule;
    });
  }

  std::set<std::string> running_names() const override {
    std::lock_guard lock(mutex_);
    std::set<std::string> names;
    for (const auto& [name, r] : runs_) {
      names.insert(name);  // finished but not joined still counts: its resume may be under way
    }
    return names;
  }

  void start_backup(const backup_launch& launch) override {
    spdlog::info("event=run_started schedule={} backup={}",
                 logging::value(launch.schedule.metadata.name), logging::value(launch.name));
    start(launch.name, launch.schedule.metadata.name, [this, launch](run& r) {
      backup::run_result result;
      try {
        result = backups_.run(
            launch.schedule, launch.name,
            [&](std::string_view phase, const std::string& message) {
              reconciler_->report_phase(launch.config_id, phase, message);
            },
            [&](int workloads) { held(r, workloads); }, r.cancel);
      } catch (const std::exception& e) {
        result.ok = false;
        result.message = internal_error(launch.name, e.what());
      }
      reconciler_->finish_backup(launch, result);
      // After the status is written, so a slow receiver delays nothing the
      // run reports; the run counts as running until this returns (at most
      // the bounded retries per URL), which a next tick of the same schedule
      // sees as "still active".
      if (launch.schedule.spec.notifications) {
        notify_backup(launch, result);
      }
    });
  }

  void start_restore(const restore_launch& launch) override {
    spdlog::info(
        "event=restore_started restore={} archive={}", logging::value(launch.name),
        logging::value(launch.restore.spec.source ? std::string(api::destination_kind(
                                                        launch.restore.spec.source->destination)) +
                                                        " " + launch.restore.spec.source->name
                                                  : launch.restore.spec.archive.value_or("")));
    start(launch.run_name, "", [this, launch](run& r) {
      restore::run_result result;
      std::string reached;  // the last phase entered, for the notification
      try {
        result = restores_.run(
            launch.restore, launch.run_name,
            [&](std::string_view phase, const std::string& message) {
              reached = phase;
              reconciler_->report_phase(launch.config_id, phase, message);
            },
            [&](int workloads) { held(r, workloads); }, r.cancel);
      } catch (const std::exception& e) {
        result.ok = false;
        result.outcome = restore::outcome::cancelled;
        result.message = internal_error(launch.run_name, e.what());
      }
      reconciler_->finish_restore(launch, result);
      // After the status is written, as for backups.
      if (launch.notifications) {
        notify_restore(launch, reached, result);
      }
    });
  }

  void report_unrun_restore(const restore_launch& launch, const restore::run_result& result,
                            const std::string& reached) override {
    if (!launch.notifications) {
      return;
    }
    // On a thread of its own, as a run's: the retries must not hold up a
    // worker. Named apart from any run (it holds nothing, and a Restore of
    // the same name applied again must not meet it).
    std::string name;
    {
      std::lock_guard lock(mutex_);
      name = "notify-" + launch.run_name + "-" + std::to_string(++notify_threads_);
    }
    start(name, "",
          [this, launch, result, reached](run& /*r*/) { notify_restore(launch, reached, result); });
  }

  /// Asks every run to stop; each resumes its workloads before it ends.
  void cancel_all() {
    std::lock_guard lock(mutex_);
    for (auto& [name, r] : runs_) {
      r->cancel = true;
    }
  }

  /// Joins finished runs (all runs, waiting for them, when `all`).
  void reap(bool all) {
    std::vector<std::unique_ptr<run>> done;
    {
      std::lock_guard lock(mutex_);
      for (auto it = runs_.begin(); it != runs_.end();) {
        if (all || it->second->finished) {
          done.push_back(std::move(it->second));
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
    update_held();
  }

 private:
  struct run {
    std::string schedule;
    std::thread thread;
    std::atomic<int> held{0};
    std::atomic<bool> cancel{false};
    std::atomic<bool> finished{false};
  };

  std::string internal_error(const std::string& run_name, const char* what) {
    metrics_.add_run_exception();
    spdlog::error("event=run_exception run={} error={}", logging::value(run_name),
                  logging::value(what));
    return fmt::format("internal error: {} (workloads were resumed by the run or are by recovery)",
                       what);
  }

  void start(const std::string& name, const std::string& schedule, std::function<void(run&)> body) {
    auto r = std::make_unique<run>();
    r->schedule = schedule;
    run* raw = r.get();
    std::lock_guard lock(mutex_);
    runs_[name] = std::move(r);
    raw->thread = std::thread([raw, body = std::move(body)] {
      body(*raw);
      raw->finished = true;
    });
  }

  void notify_backup(const backup_launch& launch, const backup::run_result& result) {
    try {
      notifier_.notify(*launch.schedule.spec.notifications,
                       notify::summarize(launch.schedule.metadata.name, launch.name, result));
    } catch (const std::exception& e) {
      metrics_.add_run_exception();
      spdlog::error("event=notification_exception backup={} error={}", logging::value(launch.name),
                    logging::value(e.what()));
    }
  }

  void notify_restore(const restore_launch& launch, const std::string& reached,
                      const restore::run_result& result) {
    try {
      notifier_.notify(*launch.notifications,
                       notify::summarize_restore(launch.restore, launch.backup_ref, launch.schedule,
                                                 reached, result));
    } catch (const std::exception& e) {
      metrics_.add_run_exception();
      spdlog::error("event=notification_exception restore={} error={}", logging::value(launch.name),
                    logging::value(e.what()));
    }
  }

  void held(run& r, int workloads) {
    r.held = workloads;
    update_held();
  }

  void update_held() {
    int total = 0;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [name, r] : runs_) {
        total += r->held;
      }
    }
    metrics_.set_workloads_held(total);
  }

  backup::backup_runner& backups_;
  restore::restore_runner& restores_;
  metrics::registry& metrics_;
  notify::curl_sender sender_;
  notify::run_notifier notifier_;
  reconciler* reconciler_ = nullptr;
  mutable std::mutex mutex_;
  std::uint64_t notify_threads_ = 0;  // guarded by mutex_
  std::map<std::string, std::unique_ptr<run>> runs_;
};

// Threads: one follows the engine's events and turns them into work-queue
// keys; one runs the leader lease and the periodic resync; `workers` take
// keys from the queue and reconcile them; each run has a thread of its own.
// Only the leader reconciles.
class controller_loop {
 public:
  controller_loop(const engine::client& client, const options& opts, backup::backup_runner& runner,
                  restore::restore_runner& restorer, quiesce::journal_store& journals,
                  metrics::registry& metrics)
      : client_(client),
        opts_(opts),
        journals_(journals),
        metrics_(metrics),
        listener_(metrics),
        store_(make_swarm_store(client)),
        queue_(clock_),
        queue_adapter_(queue_),
        runs_(runner, restorer, metrics),
        lease_(client, make_lease_options(), clock_),
        reconciler_(*store_, runs_, queue_adapter_, listener_, clock_, make_hooks(),
                    {.starting_deadline = opts.starting_deadline}) {
    runs_.attach(reconciler_);
  }

  int run(const std::atomic<bool>& stop, std::atomic<bool>& ready) {
    std::thread events([&] { follow_events(stop); });
    std::vector<std::thread> workers;
    for (int i = 0; i < std::max(1, opts_.workers); ++i) {
      workers.emplace_back([this] { work(); });
    }
    auto next_resync = clock_.now();
    while (!stop) {
      const auto round = lease_.try_acquire_or_renew();
      metrics_.set_leader(round.leading);
      ready = reconciler_.synced();
      if (clock_.now() >= next_resync) {
        queue_.add(std::string(resync_key));
        next_resync = clock_.now() + opts_.resync;
      }
      metrics_.set_workqueue_depth(static_cast<double>(queue_.len()));
      sleep_unless(stop, opts_.retry_period);
    }

    // Runs first: each resumes what it holds. Workers next (a recovery in
    // progress ends by its own deadline); then the runs' threads are joined.
    spdlog::info("event=shutdown msg=\"stopping: cancelling runs, resuming workloads\"");
    {
      std::lock_guard lock(stop_by_mutex_);
      recovery_stop_by_ = std::chrono::steady_clock::now() + opts_.recovery_stop_window;
    }
    runs_.cancel_all();
    queue_.shutdown();
    for (auto& w : workers) {
      w.join();
    }
    runs_.reap(/*all=*/true);
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
      spdlog::info("event=leadership leading={} identity={}", leading, logging::value(identity_));
      if (leading) {
        queue_.add(std::string(resync_key));
      } else {
        // Another controller may lead now and recover what our runs hold:
        // they must stop first (each resumes its workloads).
        runs_.cancel_all();
      }
    };
    return o;
  }

  reconciler_hooks make_hooks() {
    reconciler_hooks hooks;
    hooks.leading = [this] { return lease_.is_leader(); };
    hooks.recover = [this](const std::function<std::set<std::string>()>& active) {
      recover(active);
    };
    hooks.reap = [this] { runs_.reap(/*all=*/false); };
    return hooks;
  }

  void sleep_unless(const std::atomic<bool>& stop, std::chrono::milliseconds d) {
    std::unique_lock lock(sleep_mutex_);
    sleep_cv_.wait_for(lock, d, [&] { return stop.load(); });
  }

  // Whatever a run that is not active here holds goes back.
  void recover(const std::function<std::set<std::string>()>& active) {
    quiesce::pacing pace;
    pace.stop_by = [this]() -> std::optional<std::chrono::steady_clock::time_point> {
      std::lock_guard lock(stop_by_mutex_);
      return recovery_stop_by_;
    };
    const auto report = quiesce::recover_beside_live_runs(client_, journals_, active, 5min, pace);
    for (const auto& run : report.recovered) {
      metrics_.add_recovery();
      spdlog::warn("event=recovered run={}", logging::value(run));
    }
    for (const auto& c : report.removed) {
      spdlog::warn("event=helper_container_removed container={}", logging::value(c));
    }
    for (const auto& left : report.left_stopped) {
      spdlog::warn("event=left_stopped detail={}", logging::value(left));
    }
    for (const auto& f : report.failures) {
      spdlog::error("event=recovery_failed detail={}", logging::value(f));
    }
    // Agent jobs of runs that are not active here. The active set is taken
    // after the jobs are listed: a run starting meanwhile is counted, never
    // taken for dead.
    std::optional<std::set<std::string>> live;
    auto removed = backup::remove_leftover_agent_jobs(client_, [&](const std::string& run) {
      if (!live) {
        live = active();
      }
      return live->contains(run);
    });
    if (!removed) {
      spdlog::error("event=recovery_failed detail={}",
                    logging::value("removing agent jobs: " + removed.error().describe()));
    } else if (*removed > 0) {
      spdlog::warn("event=agent_jobs_removed count={}", *removed);
    }
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
        spdlog::warn("event=watch_failed error={}", logging::value(stream.error().describe()));
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
            spdlog::warn("event=watch_restart error={}", logging::value(e.error().describe()));
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
      const auto start = clock_.now();
      bool ok = true;
      const std::string reconciler_name = key->starts_with(schedule_prefix)  ? "schedule"
                                          : key->starts_with(backup_prefix)  ? "backup"
                                          : key->starts_with(restore_prefix) ? "restore"
                                                                             : "resync";
      try {
        if (lease_.is_leader()) {
          ok = reconciler_.reconcile(*key);
        }
        // Not leading: not ours to act on; becoming leader queues a resync.
      } catch (const std::exception& e) {
        // A bug, not a user's object: count it, log it, retry later.
        spdlog::error("event=reconcile_exception key={} error={}", logging::value(*key),
                      logging::value(e.what()));
        ok = false;
      }
      metrics_.reconciled(reconciler_name, ok, std::chrono::duration<double>(clock_.now() - start));
      if (ok) {
        queue_.forget(*key);
      } else {
        queue_.add_rate_limited(*key);
      }
      queue_.done(*key);
      metrics_.set_workqueue_depth(static_cast<double>(queue_.len()));
    }
  }

  const engine::client& client_;
  const options opts_;
  std::string identity_;
  quiesce::journal_store& journals_;
  metrics::registry& metrics_;
  metrics_and_logs listener_;
  std::unique_ptr<object_store> store_;
  runtime::real_clock clock_;
  runtime::work_queue queue_;
  queue_adapter queue_adapter_;
  run_threads runs_;
  runtime::leader_lease lease_;
  reconciler reconciler_;

  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;

  std::mutex stream_mutex_;
  std::optional<engine::event_stream> stream_;
  bool stopping_ = false;
  // Set at shutdown: a recovery in progress gives up by then.
  std::mutex stop_by_mutex_;
  std::optional<std::chrono::steady_clock::time_point> recovery_stop_by_;
};

}  // namespace

int run(const engine::client& client, const options& opts, backup::backup_runner& runner,
        restore::restore_runner& restorer, quiesce::journal_store& journals,
        metrics::registry& metrics, const std::atomic<bool>& stop, std::atomic<bool>& ready) {
  try {
    controller_loop loop(client, opts, runner, restorer, journals, metrics);
    return loop.run(stop, ready);
  } catch (const std::invalid_argument& e) {
    spdlog::critical("event=startup_failed error={}", logging::value(e.what()));
    return 2;
  }
}

}  // namespace lifeboat::controller
