#pragma once

#include "controller/engine/client.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "reconcilers/quiesce.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

// The I/O around the pure quiesce planner (reconcilers/quiesce.hpp): observe
// the engine, apply planned actions, and drive a run to a goal with a timeout.
namespace lifeboat::quiesce {

using reconcilers::observed_state;
using reconcilers::quiesce_action;
using reconcilers::quiesce_goal;
using reconcilers::quiesce_run;

/// Lists services (with their raw specs' ForceUpdate and volume mounts), tasks
/// and containers (all of them, running or not, with their volume mounts).
engine::result<observed_state> observe(const engine::client& client);

/// observe(), with the tasks of only the services for which `tasks_of` is
/// true (one filtered listing; none when no service is).
engine::result<observed_state> observe(
    const engine::client& client,
    const std::function<bool(const reconcilers::observed_service&)>& tasks_of);

/// What the planner sees of one listed service: ForceUpdate and the volume
/// mounts come from its raw Spec. Used by observe(); exposed for tests.
reconcilers::observed_service to_observed(const engine::service& s);
/// What the planner sees of one listed container: the name without its
/// leading '/', the service ID from its Swarm label, the names of its volume
/// mounts. Used by observe(); exposed for tests.
reconcilers::observed_container to_observed(const engine::container_summary& c);

/// Carries out one action. Service updates re-inspect the service and send
/// its current spec with only the planned fields changed, at the planned
/// version: if the service changed since it was observed, the engine refuses
/// the stale version (errc::conflict) and the caller re-plans.
engine::result<void> apply(const engine::client& client, journal_store& journals,
                           const quiesce_action& action);

struct outcome {
  bool ok = false;
  std::string message;  ///< why not ok; for a restore, also what could not be brought back
  int workloads = 0;    ///< services and containers acted upon
  /// restored: the workloads left stopped for their no-restart label
  /// (reconcilers::quiesce_plan::left_stopped), whatever `ok`.
  std::vector<std::string> left_stopped = {};
};

/// This process's identity as the owner of runs: "<host>/<pid>/<random>",
/// the same for the process's whole life and different in every process.
const std::string& process_identity();

/// How a run tells other processes that it is alive (reconcilers::run_owner).
struct run_ownership {
  std::string owner = process_identity();
  /// How often with_quiesced() renews the record, from a thread of its own.
  std::chrono::milliseconds renew_every{std::chrono::seconds{10}};
  /// How long a record stays alive without a renewal: several renewals, so
  /// that a slow engine or a small clock difference between hosts does not
  /// release a live run.
  std::chrono::milliseconds expiry{std::chrono::seconds{60}};
  /// The wall clock heartbeats are written and judged by (other processes,
  /// on other hosts, read them).
  std::function<std::chrono::system_clock::time_point()> wall_now = [] {
    return std::chrono::system_clock::now();
  };
};

/// Time and waiting, injected so tests can run without real time passing.
struct pacing {
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
  std::function<void(std::chrono::milliseconds)> sleep;  ///< default: this_thread::sleep_for
  /// Between observations while converging. Every poll interval is time a
  /// workload may stay down after its tasks have already stopped or started
  /// (hack/bench-downtime.sh: 250 ms left lifeboat's own share of the
  /// no-task window at 90-270 ms, 50 ms at 46-180 ms).
  std::chrono::milliseconds poll{50};
  run_ownership ownership;
  /// When set and returning a time, waits end by then whatever their timeout:
  /// a controller told to stop must exit inside its stop grace period (what a
  /// recovery leaves held, the next controller's recovery brings back).
  std::function<std::optional<std::chrono::steady_clock::time_point>()> stop_by;
};

/// Observes, plans and applies until `goal` has converged for `run`, or until
/// `timeout`. Tasks emit no events, so convergence is polled.
///
/// quiesced: fails at once, touching nothing more, when the planner refuses
/// the run (conflict, restart policy `any`, global service...); fails when not
/// converged within `timeout`. Either way the caller must then drive
/// `restored` to release what this run holds — with_quiesced() does.
/// restored: applies everything it can; ok is false when something could not
/// be brought back or did not converge within `timeout` (reported, and the
/// workloads stay released as far as the engine allowed).
///
/// Engine errors (the engine restarting, a conflict) are retried until the
/// deadline. Blocks the calling thread; one call per run at a time.
outcome reach(const engine::client& client, journal_store& journals, const quiesce_run& run,
              quiesce_goal goal, std::chrono::milliseconds timeout, const pacing& pace = {});

/// What a run held when quiescing converged: holds_still_hold() compares the
/// engine with it, and resuming uses it to bring back a service whose labels
/// were removed while it was held.
struct hold_baseline {
  struct service {
    std::string id;
    std::string name;
    std::uint64_t prior_replicas = 0;  ///< its lifeboat.prior-replicas
    bool no_restart = false;           ///< labelled lifeboat.held-no-restart=true
  };
  std::string run;
  std::vector<service> services;  ///< held by the run: scaled to zero, labelled held-by
  /// The services whose tasks the run watches: those it held, those whose
  /// containers it stopped, and those it selects that were at zero.
  std::set<std::string> watched_services;
  /// Every task of those services then: one not among them started while the
  /// run held its workloads.
  std::set<std::string> task_ids;
  reconcilers::journal stopped;  ///< the containers the run had stopped
};

/// What the body of with_quiesced() is given.
struct holding {
  int workloads = 0;  ///< services and containers quiesced
  hold_baseline baseline;
};

/// Whether `run` still holds everything it held at `baseline`, judged from
/// the engine now: every service it scaled to zero is still at zero and
/// labelled as held by it, no task of a held, emptied or stopped workload
/// started since (a `docker service scale`, a rollback, `docker stack deploy`
/// dropping lifeboat's labels, an on-failure restart, even one that ended
/// again), no stopped container runs, and nothing the run selects needs to be
/// quiesced again. The error (errc::conflict) names each workload that came
/// back and how; other engine errors are returned as they are (the caller
/// cannot tell, and must not publish either). Call it while the workloads are
/// still held, after reading and before publishing what was read.
engine::result<void> holds_still_hold(const engine::client& client, journal_store& journals,
                                      const quiesce_run& run, const hold_baseline& baseline);

struct held_outcome {
  outcome quiesce;  ///< scaling down and stopping
  bool body_ran = false;
  outcome resume;                     ///< bringing everything back; always attempted
  std::chrono::milliseconds held{0};  ///< from the first action until resumed
};

/// Quiesces, runs `body` while the workloads are held (with how many services
/// and containers were quiesced, and the baseline for holds_still_hold()),
/// then resumes — always: also when quiescing failed or timed out, and when
/// `body` throws (then the exception propagates after resuming). Resuming
/// first gives a service of the baseline that lost its lifeboat labels while
/// at zero replicas its labels back, so that its prior count is restored.
///
/// Ownership: before its first action the run claims its ownership record
/// (journal_store::claim_run) as pace.ownership.owner; if it cannot, nothing
/// is touched and quiesce.ok is false. A thread renews the record every
/// renew_every until everything is back; the record is deleted once resume
/// is ok (else it is left to expire, and recovery takes over). If the record
/// was gone, another owner's, or not renewed within expiry while the body
/// ran, another process may have released the workloads mid-body: quiesce.ok
/// is then false, with why, even though the body ran.
held_outcome with_quiesced(const engine::client& client, journal_store& journals,
                           const quiesce_run& run, std::chrono::milliseconds scale_down_timeout,
                           std::chrono::milliseconds scale_up_timeout,
                           const std::function<void(const holding& held)>& body,
                           const pacing& pace = {});
/// The same, for a body that needs only the count of workloads.
held_outcome with_quiesced(const engine::client& client, journal_store& journals,
                           const quiesce_run& run, std::chrono::milliseconds scale_down_timeout,
                           std::chrono::milliseconds scale_up_timeout,
                           const std::function<void(int workloads)>& body, const pacing& pace = {});

struct recovery_report {
  std::vector<std::string> recovered;       ///< runs whose workloads were brought back
  std::vector<std::string> failures;        ///< "run: reason"
  std::map<std::string, std::string> kept;  ///< run → why it was left alone (a live owner)
  std::vector<std::string> removed;         ///< helper containers of dead runs, by name
  /// "run: service app_db (2 replicas)": what released runs left stopped for
  /// a no-restart label, as they were meant to.
  std::vector<std::string> left_stopped = {};
};

/// Brings back everything held (services labelled held-by, containers in
/// journals) by a run that reconcilers::plan_recovery() releases, as process
/// pace.ownership.owner with `active_runs` of its own, at
/// pace.ownership.wall_now(): not active here, and its ownership record
/// expired, missing, or this process's. A released run's record is deleted
/// before its workloads are brought back; records of releasable runs that
/// hold nothing are deleted. Used at start-up, on every resync and by
/// `lifeboat recover`.
recovery_report recover(const engine::client& client, journal_store& journals,
                        const std::set<std::string>& active_runs, std::chrono::milliseconds timeout,
                        const pacing& pace = {});

/// recover() for a process whose runs start while it recovers (a controller's
/// workers): `active_runs` is asked after the ownership records are read. A
/// run is registered as active before it claims its record, so a record read
/// is never that of a run started since and not yet counted, which a set taken
/// before the read would release as this process's own dead run.
recovery_report recover_beside_live_runs(const engine::client& client, journal_store& journals,
                                         const std::function<std::set<std::string>()>& active_runs,
                                         std::chrono::milliseconds timeout,
                                         const pacing& pace = {});

/// Why some of `volumes` cannot be read on this node: a message naming each
/// one whose data is on other nodes of the swarm (where the services that
/// mount it run; reconcilers::volumes_elsewhere), their services and nodes;
/// empty when every one is here, or outside a swarm. A run checks this
/// before it holds anything: a same-named volume here would be an empty
/// namesake, archived (or restored into) in place of the real data.
engine::result<std::string> volumes_on_other_nodes(const engine::client& client,
                                                   const std::vector<std::string>& volumes);

/// The volumes a run reads on one other node, through that node's agent.
struct node_volumes {
  std::string node_id;
  /// Its host name; its ID when another node has the same host name, or
  /// when the node list failed (reconcilers::node_names).
  std::string node_name;
  std::vector<std::string> volumes;
};

/// Where a run's volumes are (reconcilers::volumes_elsewhere).
struct volume_locations {
  /// Each other node keeping some of them, by node name.
  std::vector<node_volumes> elsewhere;
  /// Those kept only on other nodes: a volume of the same name here is an
  /// unrelated namesake and is not read.
  std::set<std::string> only_elsewhere;
};

/// Where each of `volumes` is; everything is here outside a swarm.
engine::result<volume_locations> locate_volumes(const engine::client& client,
                                                const std::vector<std::string>& volumes);

/// Where a restore writes `targets` (reconcilers::place_restore): an empty
/// node_id for this node (also outside a swarm), else another node, by ID
/// and name; error set when no single node fits.
struct restore_node {
  std::string node_id;
  std::string node_name;
  std::string error;
};
engine::result<restore_node> place_restore(const engine::client& client,
                                           const std::vector<std::string>& targets);

}  // namespace lifeboat::quiesce
