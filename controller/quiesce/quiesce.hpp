#pragma once

#include "controller/engine/client.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "reconcilers/quiesce.hpp"

#include <chrono>
#include <functional>
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

/// Lists services (with their raw specs' ForceUpdate), tasks and containers.
engine::result<observed_state> observe(const engine::client& client);

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
};

/// Time and waiting, injected so tests can run without real time passing.
struct pacing {
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
  std::function<void(std::chrono::milliseconds)> sleep;  ///< default: this_thread::sleep_for
  std::chrono::milliseconds poll{250};
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

struct held_outcome {
  outcome quiesce;  ///< scaling down and stopping
  bool body_ran = false;
  outcome resume;                     ///< bringing everything back; always attempted
  std::chrono::milliseconds held{0};  ///< from the first action until resumed
};

/// Quiesces, runs `body` while the workloads are held (with how many services
/// and containers were quiesced), then resumes — always: also when quiescing
/// failed or timed out, and when `body` throws (then the exception propagates
/// after resuming).
held_outcome with_quiesced(const engine::client& client, journal_store& journals,
                           const quiesce_run& run, std::chrono::milliseconds scale_down_timeout,
                           std::chrono::milliseconds scale_up_timeout,
                           const std::function<void(int workloads)>& body, const pacing& pace = {});

struct recovery_report {
  std::vector<std::string> recovered;  ///< runs whose workloads were brought back
  std::vector<std::string> failures;   ///< "run: reason"
};

/// Brings back everything held by a run that is not in `active_runs`: services
/// labelled held-by and containers in journals. Used at start-up, on every
/// resync and by `lifeboat recover`.
recovery_report recover(const engine::client& client, journal_store& journals,
                        const std::set<std::string>& active_runs, std::chrono::milliseconds timeout,
                        const pacing& pace = {});

}  // namespace lifeboat::quiesce
