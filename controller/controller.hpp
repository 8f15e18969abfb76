#pragma once

#include "controller/backup/runner.hpp"
#include "controller/engine/client.hpp"
#include "controller/metrics/metrics.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "controller/restore/runner.hpp"
#include "controller/runtime/clock.hpp"

#include <atomic>
#include <chrono>
#include <string>

// `lifeboat controller`: the long-running reconciliation loop.
//
// Threads: one follows the engine's events and turns them into work-queue
// keys; one runs the leader lease and the periodic resync; `workers` take keys
// from the queue and reconcile them; each backup runs on a thread of its own,
// so long work never blocks the loop. Only the leader reconciles.
//
// Keys: "resync" (re-list object configs, write discovery status, recover
// what dead runs hold, enforce history limits, queue every object),
// "schedule/<name>" (start a run when due, then wait until the next firing),
// "backup/<name>" (start a pending Backup; fail one left behind by a dead
// controller), "restore/<name>" (the same for a Restore, once: a Restore that
// ended, or was interrupted by a dead controller, is never run again).
namespace lifeboat::controller {

struct options {
  std::string identity;  ///< lease identity; default: the host name
  std::string lease_name = "lifeboat-lease";
  std::chrono::milliseconds lease_duration{std::chrono::seconds{15}};
  std::chrono::milliseconds renew_deadline{std::chrono::seconds{10}};
  std::chrono::milliseconds retry_period{std::chrono::seconds{2}};
  std::chrono::seconds resync{std::chrono::seconds{60}};
  /// How old a missed firing may be and still run (the catch-up rule).
  std::chrono::seconds starting_deadline{std::chrono::hours{1}};
  int workers = 2;
  /// After SIGTERM, how long a recovery in progress may still wait for
  /// workloads to come back: well inside the stack's stop_grace_period (5m),
  /// beside the time cancelled runs take to resume what they hold.
  std::chrono::milliseconds recovery_stop_window{std::chrono::seconds{30}};
};

/// Runs until `stop` becomes true (SIGTERM), then cancels running backups,
/// waits for them to resume their workloads, releases the lease and returns 0.
/// Returns non-zero for start-up errors (invalid options).
int run(const engine::client& client, const options& opts, backup::backup_runner& runner,
        restore::restore_runner& restorer, quiesce::journal_store& journals,
        metrics::registry& metrics, const std::atomic<bool>& stop, std::atomic<bool>& ready);

}  // namespace lifeboat::controller
