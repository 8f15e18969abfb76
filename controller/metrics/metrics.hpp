#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}

// lifeboat's Prometheus metrics (prometheus-cpp core). Names and labels are
// the contract with users' dashboards and alerts: change them only with care.
namespace lifeboat::metrics {

enum class backup_result { success, failure, skipped };

/// Every metric of the controller. All members may be called from any thread
/// (prometheus-cpp's metrics are atomic; the per-schedule maps are locked).
class registry {
 public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// Creates the per-schedule series at 0, so that rate() and alerts work
  /// before the first run. Idempotent.
  void add_schedule(const std::string& schedule);
  /// Removes every per-schedule series: a deleted schedule leaves no stale data.
  void remove_schedule(const std::string& schedule);

  /// lifeboat_backups_total{schedule,result}, and for a finished run
  /// (success or failure) its duration; for a success also downtime, size
  /// and the last-success timestamp.
  void backup_finished(const std::string& schedule, backup_result result,
                       std::chrono::duration<double> duration,
                       std::chrono::duration<double> downtime, double size_bytes,
                       std::chrono::system_clock::time_point finished_at);
  void set_next_run(const std::string& schedule, std::chrono::system_clock::time_point at);
  /// lifeboat_backup_failures_total{schedule,reason}: why failed runs failed,
  /// `reason` as backup::run_result::failure says it with '_' for ' '
  /// ("no_space", "destination_refused", "engine_unavailable", ...).
  void backup_failed(const std::string& schedule, std::string_view reason);
  /// lifeboat_destination_uploads_total{schedule,destination,result}, and for
  /// an upload that reached the destination its bytes
  /// (lifeboat_destination_upload_bytes_total) and time
  /// (lifeboat_destination_upload_duration_seconds). `destination` is as the
  /// run describes it ("s3 backups/db/"), never with a secret.
  void upload_finished(const std::string& schedule, const std::string& destination, bool ok,
                       double bytes, std::chrono::duration<double> took);

  /// lifeboat_restores_total{result}: one per finished Restore, `result` as
  /// restore::outcome spells it (succeeded, refused, corrupt...).
  void restore_finished(const std::string& result);

  /// lifeboat_notifications_total{result="sent"|"failed"}: one per URL a
  /// finished run was notified to.
  void notification_finished(bool sent);

  void set_workloads_held(double n);
  void add_recovery();
  void add_run_exception();
  void set_invalid_objects(double n);
  void reconciled(const std::string& reconciler, bool ok, std::chrono::duration<double> took);
  void set_workqueue_depth(double n);
  void engine_request(bool ok);
  void add_watch_restart();
  void set_leader(bool leader);

  /// The text exposition format, as served on /metrics.
  std::string serialize() const;

  prometheus::Registry& prometheus_registry();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace lifeboat::metrics
