#pragma once

// The quiesce planner: which services to scale to zero and which containers
// to stop for a run, and how to bring them all back. A pure function of
// (run, observed state, journal) -> actions, compatible with the Swarm mode of
// offen/docker-volume-backup:
//
// - A replicated service whose service labels (`deploy.labels`) carry
//   docker-volume-backup.stop-during-backup=<group> is scaled to zero and back.
//   The update that scales it down also writes lifeboat.prior-replicas and
//   lifeboat.held-by, so a crash never loses the count to restore.
// - A container whose own labels carry it is stopped and brought back: with
//   `docker start` outside Swarm, with a forced update of its service (Swarm
//   does not revive a stopped task) for a Swarm task. Stopped containers are
//   recorded in the run's journal before they are stopped.
// - docker-volume-backup.stop-during-backup-no-restart=<group> selects the
//   same way, but the workload is left stopped (at zero) after the run: the
//   hold is recorded as crash-safely (lifeboat.held-no-restart with the
//   service's other labels, a flag in the journal entry), so that neither
//   resuming nor recovery brings it back. A service is released with
//   lifeboat.left-stopped-by=<run> and lifeboat.left-stopped-replicas=<count>.
// - With label_match one_of, a label value "a, b" selects the workload for
//   the groups "a" and "b" (docker-volume-backup's LABEL_MATCH_BEHAVIOR).
//
// Nothing here does I/O, reads a clock or throws (beyond std::bad_alloc); every
// function may be called from any thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api/objects.hpp"
#include "reconcilers/observed.hpp"

namespace lifeboat::reconcilers {

/// A run that quiesces workloads: a Backup or a Restore.
struct quiesce_run {
  std::string name;  ///< not empty; written into lifeboat.held-by
  /// The label value to select. Empty selects nothing by label (a restore
  /// that selects by `volumes` alone).
  std::string group = std::string(default_stop_group);
  /// Volume names (as the engine names them: `<stack>_<volume>` for a stack's
  /// volume) whose every writer must be quiesced, labelled or not: a restore
  /// selects the volumes it writes. Adds to the selection by `group`.
  std::vector<std::string> volumes = {};
  /// How `group` is matched against label values.
  api::label_match label_match = api::label_match::exact;
};

/// Whether the label value `value` selects `group` under `match`: exact, the
/// value is the group; one_of, one of its comma-separated items is, once
/// spaces and tabs around the item are dropped. An empty group selects
/// nothing, and no empty item matches.
bool matches_group(std::string_view value, std::string_view group, api::label_match match);

enum class quiesce_goal {
  /// Everything the run selects is scaled to zero or stopped.
  quiesced,
  /// Everything the run holds (services with held-by=<run>, containers in its
  /// journal) is back. Also the goal of recovery, for a run no longer active.
  restored,
};

/// "quiesced" or "restored".
std::string_view to_string(quiesce_goal goal);

// Actions. Each names its target by ID (what the executor calls the engine
// with) and by name (for logs). Service updates carry the version index they
// were planned against: a stale one fails with "update out of sequence", and
// the caller re-reads, re-plans and retries.

/// One versioned service update: Mode.Replicated.Replicas = 0 and the labels of
/// labels_to_set() added to Spec.Labels.
struct scale_to_zero {
  std::string service_id;
  std::string service_name;
  std::uint64_t version = 0;
  std::uint64_t prior_replicas = 0;  ///< > 0
  std::string held_by;               ///< the run's name
  bool no_restart = false;           ///< selected by the no-restart label

  /// {prior_replicas_label: "<prior_replicas>", held_by_label: held_by}, and
  /// held_no_restart_label: "true" when no_restart.
  label_map labels_to_set() const;

  bool operator==(const scale_to_zero&) const = default;
};

/// One versioned service update: Mode.Replicated.Replicas = replicas and both
/// prior_replicas_label and held_by_label removed from Spec.Labels.
struct restore_replicas {
  std::string service_id;
  std::string service_name;
  std::uint64_t version = 0;
  std::uint64_t replicas = 0;

  bool operator==(const restore_replicas&) const = default;
};

/// One versioned service update that releases a service held for a
/// no-restart label and leaves it at zero: held_by_label,
/// prior_replicas_label and held_no_restart_label removed from Spec.Labels,
/// the labels of labels_to_set() added; replicas untouched.
struct leave_stopped {
  std::string service_id;
  std::string service_name;
  std::uint64_t version = 0;
  /// The count it had before the run; none when its label was unreadable.
  std::optional<std::uint64_t> prior_replicas;
  std::string run;

  /// {left_stopped_by_label: run, left_stopped_replicas_label: "<prior>"
  /// (when known)}.
  label_map labels_to_set() const;

  bool operator==(const leave_stopped&) const = default;
};

/// Write `content` as the run's journal, replacing what was there. Always
/// planned before the stops it covers, and holds the entries already journaled
/// too, so that applying it alone is enough.
struct record_journal {
  journal content;

  bool operator==(const record_journal&) const = default;
};

/// `POST /containers/{id}/stop`.
struct stop_container {
  std::string container_id;
  std::string container_name;

  bool operator==(const stop_container&) const = default;
};

/// `POST /containers/{id}/start`, for a container that is not a Swarm task.
struct start_container {
  std::string container_id;
  std::string container_name;

  bool operator==(const start_container&) const = default;
};

/// One versioned service update that sets Spec.TaskTemplate.ForceUpdate to
/// `force_update` (the observed value plus one): Swarm replaces every task,
/// which brings back the tasks whose containers the run stopped.
struct redeploy_service {
  std::string service_id;
  std::string service_name;
  std::uint64_t version = 0;
  std::uint64_t force_update = 0;

  bool operator==(const redeploy_service&) const = default;
};

/// Empty the run's journal. Planned after every start and redeploy it covers.
struct clear_journal {
  std::string run;

  bool operator==(const clear_journal&) const = default;
};

using quiesce_action =
    std::variant<scale_to_zero, restore_replicas, leave_stopped, record_journal, stop_container,
                 start_container, redeploy_service, clear_journal>;

/// One line for logs and events, naming the target and what changes, e.g.
/// "scale service app_db (id s1, version 7) from 2 replicas to 0, held by nightly-1".
std::string describe(const quiesce_action& action);

struct quiesce_plan {
  /// To apply in this order, stopping at the first failure (then re-read and
  /// re-plan). quiesced: record_journal, stop_container..., scale_to_zero....
  /// restored: restore_replicas and leave_stopped..., start_container...,
  /// redeploy_service..., clear_journal. Within a kind, sorted by service or container name (then
  /// ID), whatever the order of the observed state.
  std::vector<quiesce_action> actions;
  /// Why the run must fail. For the quiesced goal a non-empty list comes with
  /// no actions: nothing is touched (the caller then plans `restored` to
  /// release whatever an earlier pass of the same run may have touched). For
  /// the restored goal an error concerns one workload that cannot be brought
  /// back automatically; `actions` still brings back everything else and
  /// should be applied. Errors about the arguments come first, then those
  /// about workloads, by service name.
  std::vector<std::string> errors;
  /// restored: the workloads the run leaves stopped for their no-restart
  /// label, still to release or not brought back: "service app_db (2
  /// replicas)", "container app_worker". Services, then containers, by name.
  std::vector<std::string> left_stopped = {};
};

/// Plans the step from `observed` toward `goal` for `run`. `recorded` is the
/// run's journal as last written (empty if none). On a state that already
/// matches the goal, returns no actions and no errors.
///
/// Both labels, stop-during-backup and stop-during-backup-no-restart, select
/// by the run's group (under run.label_match); "labelled" below means either.
/// quiesced:
/// - Error: a service or container that carries both labels, one of them
///   selecting the run's group (the service's labels and its containers'
///   labels checked apart).
/// - A service labelled with the run's group in its service labels: if it is
///   replicated, not held and has replicas, scale_to_zero with the current
///   count. At zero replicas and not held: untouched and not recorded (never a
///   "prior 0"). Held by another run: error. Not replicated: error.
/// - A service held by this run is kept at zero: if someone scaled it up, it
///   is scaled to zero again with the recorded prior count.
/// - A container labelled with the run's group, or already in the journal,
///   that is running (running, paused, restarting) is journaled, then stopped;
///   its entry says no_restart when its no-restart label selected it.
///   Exited containers (Swarm's task history among them) are left alone.
/// - Errors, for services whose task containers are selected (by the
///   service's container labels or by a running container's own labels): the
///   service is selected by its service labels too (conflict); its restart
///   condition is "any" or unset (Swarm would restart the container at once);
///   it is a job (stopping a job's task ends the job, a redeploy reruns it).
/// - Error: a task container in the journal whose task then failed (its
///   process did not exit 0 on SIGTERM and was killed) under restart
///   condition "on-failure": Swarm starts a replacement at once, so stopping
///   cannot hold the service. The message names the exit code and the fix.
///   Plain containers are never refused: Docker does not restart a container
///   that was stopped by hand, whatever its restart policy.
///
/// Selection by volume (run.volumes), on top of the labels:
/// - A service whose task template mounts one of the volumes is treated like
///   a service labelled in its service labels: a replicated one is scaled to
///   zero (same rules: held by another run, no replica count: error; at zero
///   and not held: untouched). A global service (or of an unknown mode) is an
///   error: it cannot be scaled to zero, and Swarm restarts stopped tasks. A
///   job is an error while any of its tasks is from `new` to `running`; a job
///   that has finished writes nothing and is left alone.
/// - A running container that mounts one of the volumes: a plain container
///   (or the task of a service that no longer exists) is journaled and
///   stopped; a task of a service this run scales to zero is left to Swarm's
///   scale-down (never stopped separately, so no restart condition matters);
///   a task of any other service (global, job, or one whose current spec no
///   longer mounts the volume) is an error naming the container, unless its
///   service is refused already. Containers that are not running (lifeboat's
///   own volume containers are created, never started) are left alone.
/// - A service this run scales to zero only because of its volumes is not
///   checked for its container labels: its containers are never stopped.
/// - The engine lists only the containers of its own node: a plain container
///   on another node is not seen. Services are seen on every node.
/// Volume errors follow the label errors of the same service; errors about
/// containers that are not covered by a service's come last, by container
/// name.
///
/// restored:
/// - A service held by this run: restore_replicas with the recorded prior
///   count; an unreadable count is an error for that service alone. One
///   labelled held_no_restart_label: leave_stopped instead.
/// - A journaled plain container that exists and is not running: start.
///   Entries marked no_restart are neither started nor redeployed (a
///   service whose every stopped task is no_restart is not redeployed).
/// - A service with journaled task containers that are not back: one
///   redeploy. A task container is back when it is running, or when the
///   service's force_update has grown since it was journaled. Entries of
///   services that no longer exist are dropped.
/// - A non-empty journal: clear_journal, last.
quiesce_plan plan_quiesce(const quiesce_run& run, quiesce_goal goal, const observed_state& observed,
                          const journal& recorded);

/// Whether a plan or check for `run` can need the tasks of `s`: it carries a
/// lifeboat.* or docker-volume-backup.* label (on the service or its
/// containers), mounts one of the run's volumes, or has containers in the
/// run's journal. The loops that poll while workloads are held list only
/// these services' tasks: a swarm's whole task history, every 250 ms, is
/// what kept the controller's memory high.
bool tasks_matter(const quiesce_run& run, const observed_service& s, const journal& recorded);

/// The run that holds `s` (its lifeboat.held-by), empty if none.
std::string_view holder(const observed_service& s);

/// The prior count in `s`'s lifeboat.prior-replicas; none when missing or not
/// decimal digits only.
std::optional<std::uint64_t> recorded_prior(const observed_service& s);

/// Whether `run` selects `s` as a whole: by its service labels (the run's
/// group) or by a volume its task template mounts.
bool selects_service(const quiesce_run& run, const observed_service& s);

enum class workload_kind { service, container, journal };

/// "service", "container" or "journal".
std::string_view to_string(workload_kind kind);

/// Something the goal still waits for.
struct pending_workload {
  workload_kind kind = workload_kind::service;
  std::string id;      ///< service or container ID; the run's name for a journal
  std::string name;    ///< service or container name; the run's name for a journal
  std::string reason;  ///< e.g. "1 task still running"

  bool operator==(const pending_workload&) const = default;
};

struct convergence {
  /// Sorted: services, containers, then the journal; each by name, then ID.
  std::vector<pending_workload> pending;

  bool converged() const { return pending.empty(); }
};

/// "waiting for service app_db: 1 task still running".
std::string describe(const pending_workload& pending);

/// The pending workloads described and joined with "; ", or "converged".
/// Meant for the message of a run that timed out.
std::string describe(const convergence& c);

/// Whether `goal` has been reached, judged by observed task and container
/// states, never by desired counts alone. The caller polls this (tasks emit no
/// events) and owns the timeout: scaleDown for quiesced, scaleUp for restored.
///
/// quiesced: every action plan_quiesce would still plan is pending; a service
/// held by this run, or selected and at zero replicas, is pending while any of
/// its tasks is in a state from `new` to `running`; a selected or journaled
/// container is pending while it runs, and a journaled task container also
/// until Swarm records its task's end (complete, or failed: then refused).
///
/// restored: every action plan_quiesce would still plan is pending, and so is
/// a service still held by this run. A restored workload carries no mark of
/// the run, so what it waits for comes from `applied`, the actions applied for
/// this goal so far: after restore_replicas, until as many tasks run (state
/// and desired state `running`) as the replicas restored; after
/// start_container, until the container runs; after redeploy_service, until no
/// task meant to run is still starting and, for a replicated service, as many
/// run as its replicas. Workloads that no longer exist are not waited for.
convergence check_convergence(const quiesce_run& run, quiesce_goal goal,
                              const observed_state& observed, const journal& recorded,
                              std::span<const quiesce_action> applied = {});

/// The names of the runs that hold anything: the held-by label of every
/// service, and the run of every journal in `journals` that has entries.
/// Sorted, without duplicates. Recovery plans `restored` for each of them that
/// is not an active run.
std::vector<std::string> held_runs(const observed_state& observed,
                                   std::span<const journal> journals = {});

/// What recovery does with the runs that hold anything or have an ownership
/// record. Each list is sorted.
struct recovery_plan {
  /// Runs to bring back (goal `restored`); their records are deleted first,
  /// so that an owner still alive after all learns that it lost the run.
  std::vector<std::string> release;
  /// Releasable runs that hold nothing: their records are deleted.
  std::vector<std::string> forget;
  /// Runs left alone, each with why: "active in this process", "owned by
  /// host:12:ab, alive (renewed 3s ago, expires in 57s)".
  std::map<std::string, std::string> kept;

  bool operator==(const recovery_plan&) const = default;
};

/// Which runs recovery may release, as process `self` with `active` runs of
/// its own, at `now` (wall clock). A run is released when it is not in
/// `active` and: its record is `self`'s (this process no longer runs it), or
/// its record has expired (now >= heartbeat + expiry: its owner died or lost
/// the engine), or it has no record (a run of a lifeboat without ownership
/// records, or a record lost). A run records its ownership before its first
/// action, so a holding observed before the records were read always has its
/// record among them while its run lives: observe first, then read records.
///
/// `gone_owners` are owners known to be dead before their expiry: processes
/// on this host whose PID no longer exists (a `lifeboat backup` killed with
/// -9 and then `lifeboat recover` on the same machine need not wait for the
/// expiry). Their runs are released like expired ones.
recovery_plan plan_recovery(const observed_state& observed, std::span<const journal> journals,
                            std::span<const run_owner> owners, std::string_view self,
                            const std::set<std::string>& active,
                            std::chrono::system_clock::time_point now,
                            const std::set<std::string>& gone_owners = {});

/// A container a run created to read or write volumes through the engine
/// (labelled helper_container_label=true, named "<prefix><run>"): never
/// started, it only holds the volumes' mounts, and a killed run leaves it.
inline constexpr std::string_view helper_container_label = api::label::volume_container;
inline constexpr std::string_view helper_container_prefixes[] = {
    "lifeboat-read-", "lifeboat-restore-", "lifeboat-wipe-", "lifeboat-measure-"};

struct helper_container {
  std::string id;
  std::string run;  ///< from its name; empty when the name has no known prefix
  std::chrono::system_clock::time_point created{};
};

/// The run a helper container named `name` ("/lifeboat-read-nightly-1" as
/// the engine lists it) belongs to; empty when it is not such a name.
std::string helper_run_of(std::string_view name);

/// The ids of the helper containers recovery removes: those of runs not in
/// `active`, whose ownership record is missing, expired, `self`'s or of a
/// gone owner (as plan_recovery judges), and which were created at least
/// `grace` before `now` — a live run creates its volume container before it
/// records its ownership (the record covers the hold), so a young container
/// without a record may be a run starting; `grace` is the ownership expiry.
/// A container whose run cannot be told from its name is left alone.
std::vector<std::string> leftover_helpers(std::span<const helper_container> helpers,
                                          std::span<const run_owner> owners, std::string_view self,
                                          const std::set<std::string>& active,
                                          std::chrono::system_clock::time_point now,
                                          std::chrono::milliseconds grace,
                                          const std::set<std::string>& gone_owners = {});

}  // namespace lifeboat::reconcilers
