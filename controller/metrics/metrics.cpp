#include "controller/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>

namespace lifeboat::metrics {

namespace p = prometheus;

namespace {

std::string_view to_string(backup_result r) {
  switch (r) {
    case backup_result::success:
      return "success";
    case backup_result::failure:
      return "failure";
    case backup_result::skipped:
      return "skipped";
  }
  return "failure";
}

// Backups take seconds to hours; downtime should be seconds.
const p::Histogram::BucketBoundaries duration_buckets{1,   5,   15,   30,   60,   120,
                                                      300, 600, 1800, 3600, 7200, 21600};
const p::Histogram::BucketBoundaries downtime_buckets{0.5, 1,   2,   5,   10,  30,
                                                      60,  120, 300, 600, 1800};
const p::Histogram::BucketBoundaries reconcile_buckets{0.001, 0.005, 0.01, 0.05, 0.1,
                                                       0.5,   1,     5,    30};

struct destination_series {
  p::Counter* succeeded = nullptr;
  p::Counter* failed = nullptr;
  p::Counter* bytes = nullptr;
  p::Histogram* duration = nullptr;
};

// The series one schedule owns, so they can be removed together.
struct schedule_series {
  std::map<std::string, destination_series, std::less<>> destinations;
  std::map<std::string, p::Counter*, std::less<>> failures;  // by reason
  std::map<backup_result, p::Counter*> backups;
  p::Histogram* duration = nullptr;
  p::Histogram* downtime = nullptr;
  p::Gauge* size = nullptr;
  p::Gauge* last_success = nullptr;
  p::Gauge* next_run = nullptr;
};

double seconds_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

struct registry::impl {
  std::shared_ptr<p::Registry> reg = std::make_shared<p::Registry>();

  p::Family<p::Counter>& backups = p::BuildCounter()
                                       .Name("lifeboat_backups_total")
                                       .Help("Backup runs by schedule and result.")
                                       .Register(*reg);
  p::Family<p::Histogram>& duration = p::BuildHistogram()
                                          .Name("lifeboat_backup_duration_seconds")
                                          .Help("Time from the start of a run to its end.")
                                          .Register(*reg);
  p::Family<p::Histogram>& downtime =
      p::BuildHistogram()
          .Name("lifeboat_backup_downtime_seconds")
          .Help("Time the workloads of a run were held (scaled down or stopped).")
          .Register(*reg);
  p::Family<p::Gauge>& size = p::BuildGauge()
                                  .Name("lifeboat_backup_size_bytes")
                                  .Help("Size of the last successful archive.")
                                  .Register(*reg);
  p::Family<p::Gauge>& last_success = p::BuildGauge()
                                          .Name("lifeboat_backup_last_success_timestamp_seconds")
                                          .Help("Unix time of the last successful run.")
                                          .Register(*reg);
  p::Family<p::Gauge>& next_run = p::BuildGauge()
                                      .Name("lifeboat_schedule_next_run_timestamp_seconds")
                                      .Help("Unix time of the schedule's next run.")
                                      .Register(*reg);
  p::Family<p::Counter>& failures =
      p::BuildCounter()
          .Name("lifeboat_backup_failures_total")
          .Help("Failed backup runs by schedule and the kind of failure that ended them.")
          .Register(*reg);
  p::Family<p::Counter>& uploads =
      p::BuildCounter()
          .Name("lifeboat_destination_uploads_total")
          .Help("Archives sent to a destination (written or copied) by schedule and result.")
          .Register(*reg);
  p::Family<p::Counter>& upload_bytes = p::BuildCounter()
                                            .Name("lifeboat_destination_upload_bytes_total")
                                            .Help("Archive bytes that reached a destination.")
                                            .Register(*reg);
  p::Family<p::Histogram>& upload_duration =
      p::BuildHistogram()
          .Name("lifeboat_destination_upload_duration_seconds")
          .Help("Time an archive took to reach a destination (the first one: while written).")
          .Register(*reg);
  p::Gauge& workloads_held = p::BuildGauge()
                                 .Name("lifeboat_workloads_held")
                                 .Help("Services and containers held by runs right now.")
                                 .Register(*reg)
                                 .Add({});
  p::Family<p::Counter>& restores = p::BuildCounter()
                                        .Name("lifeboat_restores_total")
                                        .Help("Restore runs by result.")
                                        .Register(*reg);
  // Both results exist from the start, so increase() sees the first failure.
  p::Family<p::Counter>& notifications = p::BuildCounter()
                                             .Name("lifeboat_notifications_total")
                                             .Help(
                                                 "Notifications after runs, one per URL, by "
                                                 "result (sent or failed after its retries).")
                                             .Register(*reg);
  p::Counter& notifications_sent = notifications.Add({{"result", "sent"}});
  p::Counter& notifications_failed = notifications.Add({{"result", "failed"}});
  p::Counter& recoveries = p::BuildCounter()
                               .Name("lifeboat_recoveries_total")
                               .Help("Runs whose held workloads were brought back by recovery.")
                               .Register(*reg)
                               .Add({});
  p::Counter& run_exceptions =
      p::BuildCounter()
          .Name("lifeboat_run_exceptions_total")
          .Help("Runs that ended by an unexpected exception (a bug): the run failed with it.")
          .Register(*reg)
          .Add({});
  p::Gauge& invalid_objects = p::BuildGauge()
                                  .Name("lifeboat_invalid_objects")
                                  .Help("Object configs that do not decode or validate.")
                                  .Register(*reg)
                                  .Add({});
  p::Family<p::Counter>& reconciles = p::BuildCounter()
                                          .Name("lifeboat_reconcile_total")
                                          .Help("Reconciles by reconciler and result.")
                                          .Register(*reg);
  p::Family<p::Histogram>& reconcile_duration = p::BuildHistogram()
                                                    .Name("lifeboat_reconcile_duration_seconds")
                                                    .Help("Time one reconcile took.")
                                                    .Register(*reg);
  p::Gauge& workqueue_depth = p::BuildGauge()
                                  .Name("lifeboat_workqueue_depth")
                                  .Help("Keys waiting in the work queue.")
                                  .Register(*reg)
                                  .Add({});
  p::Family<p::Counter>& engine_requests = p::BuildCounter()
                                               .Name("lifeboat_engine_requests_total")
                                               .Help("Engine API requests by result.")
                                               .Register(*reg);
  p::Counter& engine_ok = engine_requests.Add({{"result", "success"}});
  p::Counter& engine_failed = engine_requests.Add({{"result", "error"}});
  p::Counter& watch_restarts = p::BuildCounter()
                                   .Name("lifeboat_watch_restarts_total")
                                   .Help("Times the events stream was re-opened.")
                                   .Register(*reg)
                                   .Add({});
  p::Gauge& leader = p::BuildGauge()
                         .Name("lifeboat_leader")
                         .Help("1 while this controller holds the lease.")
                         .Register(*reg)
                         .Add({});

  std::mutex mutex;
  std::map<std::string, schedule_series> schedules;

  // Requires `mutex`.
  schedule_series& series(const std::string& schedule) {
    auto [it, inserted] = schedules.try_emplace(schedule);
    if (inserted) {
      auto& s = it->second;
      for (auto r : {backup_result::success, backup_result::failure, backup_result::skipped}) {
        s.backups[r] =
            &backups.Add({{"schedule", schedule}, {"result", std::string(to_string(r))}});
      }
      s.duration = &duration.Add({{"schedule", schedule}}, duration_buckets);
      s.downtime = &downtime.Add({{"schedule", schedule}}, downtime_buckets);
      s.size = &size.Add({{"schedule", schedule}});
      s.last_success = &last_success.Add({{"schedule", schedule}});
      s.next_run = &next_run.Add({{"schedule", schedule}});
    }
    return it->second;
  }
};

registry::registry() : impl_(std::make_unique<impl>()) {}
registry::~registry() = default;

prometheus::Registry& registry::prometheus_registry() { return *impl_->reg; }

void registry::add_schedule(const std::string& schedule) {
  const std::lock_guard lock(impl_->mutex);
  impl_->series(schedule);
}

void registry::remove_schedule(const std::string& schedule) {
  const std::lock_guard lock(impl_->mutex);
  const auto it = impl_->schedules.find(schedule);
  if (it == impl_->schedules.end()) {
    return;
  }
  auto& s = it->second;
  for (auto& [r, counter] : s.backups) {
    impl_->backups.Remove(counter);
  }
  impl_->duration.Remove(s.duration);
  impl_->downtime.Remove(s.downtime);
  impl_->size.Remove(s.size);
  impl_->last_success.Remove(s.last_success);
  impl_->next_run.Remove(s.next_run);
  for (auto& [name, d] : s.destinations) {
    impl_->uploads.Remove(d.succeeded);
    impl_->uploads.Remove(d.failed);
    impl_->upload_bytes.Remove(d.bytes);
    impl_->upload_duration.Remove(d.duration);
  }
  for (auto& [reason, counter] : s.failures) {
    impl_->failures.Remove(counter);
  }
  impl_->schedules.erase(it);
}

void registry::backup_finished(const std::string& schedule, backup_result result,
                               std::chrono::duration<double> duration,
                               std::chrono::duration<double> downtime, double size_bytes,
                               std::chrono::system_clock::time_point finished_at) {
  const std::lock_guard lock(impl_->mutex);
  auto& s = impl_->series(schedule);
  s.backups[result]->Increment();
  if (result == backup_result::skipped) {
    return;
  }
  s.duration->Observe(duration.count());
  if (result == backup_result::success) {
    s.downtime->Observe(downtime.count());
    s.size->Set(size_bytes);
    s.last_success->Set(seconds_since_epoch(finished_at));
  }
}

void registry::set_next_run(const std::string& schedule, std::chrono::system_clock::time_point at) {
  const std::lock_guard lock(impl_->mutex);
  impl_->series(schedule).next_run->Set(seconds_since_epoch(at));
}

void registry::backup_failed(const std::string& schedule, std::string_view reason) {
  std::string label(reason.empty() ? "unknown" : reason);
  std::replace(label.begin(), label.end(), ' ', '_');
  const std::lock_guard lock(impl_->mutex);
  auto& s = impl_->series(schedule);
  auto it = s.failures.find(label);
  if (it == s.failures.end()) {
    it =
        s.failures.emplace(label, &impl_->failures.Add({{"schedule", schedule}, {"reason", label}}))
            .first;
  }
  it->second->Increment();
}

void registry::upload_finished(const std::string& schedule, const std::string& destination, bool ok,
                               double bytes, std::chrono::duration<double> took) {
  const std::lock_guard lock(impl_->mutex);
  auto& s = impl_->series(schedule);
  auto it = s.destinations.find(destination);
  if (it == s.destinations.end()) {
    const p::Labels labels{{"schedule", schedule}, {"destination", destination}};
    auto with_result = [&](const char* result) {
      auto l = labels;
      l.emplace("result", result);
      return &impl_->uploads.Add(l);
    };
    it = s.destinations
             .emplace(destination,
                      destination_series{with_result("success"), with_result("failure"),
                                         &impl_->upload_bytes.Add(labels),
                                         &impl_->upload_duration.Add(labels, duration_buckets)})
             .first;
  }
  auto& d = it->second;
  if (!ok) {
    d.failed->Increment();
    return;
  }
  d.succeeded->Increment();
  d.bytes->Increment(bytes);
  d.duration->Observe(took.count());
}

void registry::set_workloads_held(double n) { impl_->workloads_held.Set(n); }
void registry::add_recovery() { impl_->recoveries.Increment(); }
void registry::add_run_exception() { impl_->run_exceptions.Increment(); }
void registry::restore_finished(const std::string& result) {
  impl_->restores.Add({{"result", result}}).Increment();
}
void registry::set_invalid_objects(double n) { impl_->invalid_objects.Set(n); }

void registry::reconciled(const std::string& reconciler, bool ok,
                          std::chrono::duration<double> took) {
  impl_->reconciles.Add({{"reconciler", reconciler}, {"result", ok ? "success" : "error"}})
      .Increment();
  impl_->reconcile_duration.Add({{"reconciler", reconciler}}, reconcile_buckets)
      .Observe(took.count());
}

void registry::set_workqueue_depth(double n) { impl_->workqueue_depth.Set(n); }

void registry::engine_request(bool ok) {
  (ok ? impl_->engine_ok : impl_->engine_failed).Increment();
}

void registry::notification_finished(bool sent) {
  (sent ? impl_->notifications_sent : impl_->notifications_failed).Increment();
}

void registry::add_watch_restart() { impl_->watch_restarts.Increment(); }
void registry::set_leader(bool leader) { impl_->leader.Set(leader ? 1 : 0); }

std::string registry::serialize() const {
  std::ostringstream out;
  p::TextSerializer().Serialize(out, impl_->reg->Collect());
  return out.str();
}

}  // namespace lifeboat::metrics
