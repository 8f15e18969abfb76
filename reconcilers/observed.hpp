#pragma once

// What the quiesce planner (reconcilers/quiesce.hpp) sees of the engine: plain
// data that the controller fills from its engine client's types, so that this
// library never depends on the controller. Only the fields the planner reads
// are here.

#include "api/labels.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lifeboat::reconcilers {

using label_map = std::map<std::string, std::string>;

/// docker-volume-backup's label. Its value is a group; a run quiesces the
/// workloads whose value equals the run's group.
inline constexpr std::string_view stop_during_backup_label =
    "docker-volume-backup.stop-during-backup";
inline constexpr std::string_view default_stop_group = "true";
/// The same selection, but the workload is not brought back after the run.
inline constexpr std::string_view stop_during_backup_no_restart_label =
    api::label::stop_during_backup_no_restart;

/// Service labels lifeboat writes in the same versioned update that scales a
/// service to zero, and removes in the update that scales it back: the replica
/// count to restore (decimal) and the name of the run that holds the service.
inline constexpr std::string_view prior_replicas_label = api::label::prior_replicas;
inline constexpr std::string_view held_by_label = api::label::held_by;
/// Written with the two above for a service selected by its no-restart label.
inline constexpr std::string_view held_no_restart_label = api::label::held_no_restart;
/// Written by the update that releases such a service and leaves it at zero.
inline constexpr std::string_view left_stopped_by_label = api::label::left_stopped_by;
inline constexpr std::string_view left_stopped_replicas_label = api::label::left_stopped_replicas;

/// Labels Swarm puts on every task container; the controller fills
/// observed_container::service_id from the first.
inline constexpr std::string_view swarm_service_id_label = "com.docker.swarm.service.id";
inline constexpr std::string_view swarm_service_name_label = "com.docker.swarm.service.name";
inline constexpr std::string_view swarm_task_id_label = "com.docker.swarm.task.id";

/// Spec.Mode of a service. `unknown` stands for a mode this build does not
/// know (a newer engine); it is treated like any mode that cannot be scaled.
enum class service_mode { replicated, global, replicated_job, global_job, unknown };

/// "replicated", "global", "replicated-job", "global-job" (the spelling of
/// `docker service create --mode`), or "unknown".
constexpr std::string_view to_string(service_mode mode) {
  switch (mode) {
    case service_mode::replicated:
      return "replicated";
    case service_mode::global:
      return "global";
    case service_mode::replicated_job:
      return "replicated-job";
    case service_mode::global_job:
      return "global-job";
    case service_mode::unknown:
      return "unknown";
  }
  return "unknown";
}

struct observed_service {
  std::string id;
  std::uint64_t version = 0;  ///< Version.Index: every update must carry it
  std::string name;
  label_map service_labels;    ///< Spec.Labels (`deploy.labels` in a stack file)
  label_map container_labels;  ///< Spec.TaskTemplate.ContainerSpec.Labels
  service_mode mode = service_mode::unknown;
  std::optional<std::uint64_t> replicas;  ///< replicated services only
  /// Spec.TaskTemplate.RestartPolicy.Condition: "any", "on-failure" or "none".
  /// Empty means unset, which Swarm treats as "any".
  std::string restart_condition;
  /// Spec.TaskTemplate.ForceUpdate. Incrementing it redeploys every task; the
  /// planner compares it with the value journaled at stop time to tell whether
  /// stopped tasks have been brought back since.
  std::uint64_t force_update = 0;
  /// The Source of every mount of Spec.TaskTemplate.ContainerSpec.Mounts with
  /// Type "volume": the names of the volumes its tasks mount, as the engine
  /// names them (`<stack>_<volume>` for a volume of a stack). Anonymous
  /// volumes (no Source) are not listed.
  std::vector<std::string> volumes = {};

  bool operator==(const observed_service&) const = default;
};

/// Task states from `new` through `running` (Swarm's order). A task in one of
/// them has, or is about to have, a running container; any other state
/// (complete, shutdown, failed, rejected, orphaned, remove) is final.
constexpr bool is_active_task_state(std::string_view state) {
  return state == "new" || state == "allocated" || state == "pending" || state == "assigned" ||
         state == "accepted" || state == "preparing" || state == "ready" || state == "starting" ||
         state == "running";
}

struct observed_task {
  std::string id;
  std::string service_id;
  std::string state;          ///< Status.State
  std::string desired_state;  ///< DesiredState: "running", "shutdown", ...
  std::string container_id;   ///< Status.ContainerStatus.ContainerID; may be empty
  /// Status.ContainerStatus.ExitCode, once the container has ended.
  std::optional<int> exit_code = {};

  bool operator==(const observed_task&) const = default;
};

/// Container states in which its processes may still write: "running",
/// "paused" and "restarting". "created", "exited", "dead" and "removing" do not.
constexpr bool is_running_container_state(std::string_view state) {
  return state == "running" || state == "paused" || state == "restarting";
}

/// A container on the controller's own node (the engine lists no other).
struct observed_container {
  std::string id;
  std::string name;
  label_map container_labels;
  std::string state;           ///< State.Status: "running", "exited", "created", ...
  std::string restart_policy;  ///< HostConfig.RestartPolicy.Name; informative only
  /// The com.docker.swarm.service.id label; empty when the container is not
  /// a Swarm task.
  std::string service_id;
  /// The Name of every entry of Mounts with Type "volume".
  std::vector<std::string> volumes = {};

  bool operator==(const observed_container&) const = default;
};

/// One consistent listing. Order does not matter: the planner sorts.
struct observed_state {
  std::vector<observed_service> services;
  std::vector<observed_task> tasks;
  std::vector<observed_container> containers;

  bool operator==(const observed_state&) const = default;
};

/// A container a run stopped, as written to the run's journal before the stop.
struct journal_entry {
  std::string container_id;
  std::string service_id;  ///< empty for a container that is not a Swarm task
  /// The service's force_update when the entry was written (0 without a
  /// service). A larger observed value means the service has been redeployed
  /// since, which brought the stopped task back.
  std::uint64_t force_update = 0;
  /// Stopped for a no-restart label: resuming leaves it stopped.
  bool no_restart = false;

  bool operator==(const journal_entry&) const = default;
};

/// The containers a run has stopped (or is about to stop), kept with the run
/// (labels of its Backup object). It is the only record of them: a stopped
/// container carries no mark of the run.
struct journal {
  std::string run;  ///< the run's name; may be empty when `entries` is empty
  std::vector<journal_entry> entries;

  bool operator==(const journal&) const = default;
};

/// A run's ownership record: which process runs it and when that process last
/// said it was alive. The run writes it before its first action, renews it
/// while it runs, and deletes it once everything is back. Recovery releases a
/// run whose record has expired, is missing, or is its own but not active.
struct run_owner {
  std::string run;
  std::string owner;  ///< identity of the owning process
  /// When the owner last renewed the record, by the owner's clock.
  std::chrono::system_clock::time_point heartbeat{};
  /// The owner's promise: it renews the record before heartbeat + expiry, or
  /// the run counts as dead. Clocks of the hosts must agree to well within it.
  std::chrono::milliseconds expiry{0};

  bool operator==(const run_owner&) const = default;
};

}  // namespace lifeboat::reconcilers
