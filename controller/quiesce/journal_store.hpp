#pragma once

#include "controller/engine/client.hpp"
#include "reconcilers/observed.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

// Where a run's journal (the containers it stopped) is kept, so that a crash
// between a stop and the matching start never loses track of a container.
namespace lifeboat::quiesce {

using reconcilers::journal;
using reconcilers::run_owner;

/// A durable map run -> journal, and run -> ownership record (see
/// reconcilers::run_owner). save() returns only once the journal is durable;
/// an empty journal deletes the run's journal. Every call may come from any
/// thread: a run renews its record from a thread of its own while it writes
/// its journal.
class journal_store {
 public:
  virtual ~journal_store() = default;

  /// The run's journal; empty entries when there is none.
  virtual engine::result<journal> load(std::string_view run) = 0;
  /// Every journal with entries, for recovery. One that cannot be read (bad
  /// JSON, stored under another run's name) is skipped with a line in
  /// `skipped` naming it, and left where it is: it may be the only record of
  /// stopped containers, for a person to read.
  virtual engine::result<std::vector<journal>> load_all(std::vector<std::string>& skipped) = 0;
  virtual engine::result<void> save(const journal& j) = 0;

  /// Creates the ownership record of `o.run`. One that exists already is
  /// overwritten if it is `o.owner`'s (a retry), else errc::conflict.
  virtual engine::result<void> claim_run(const run_owner& o) = 0;
  /// Renews `o.run`'s record with `o`'s heartbeat and expiry: errc::not_found
  /// when it is gone (recovery released the run), errc::conflict when it is
  /// another owner's.
  virtual engine::result<void> renew_run(const run_owner& o) = 0;
  /// Deletes `run`'s record; one that does not exist is no error.
  virtual engine::result<void> drop_run(std::string_view run) = 0;
  /// Every ownership record. A record whose heartbeat or expiry cannot be read
  /// comes with a zero one, so it counts as expired. A record stored under
  /// another run's name is skipped with a line in `skipped`: trusted, it
  /// would keep the run it names held for as long as it claims.
  virtual engine::result<std::vector<run_owner>> load_owners(std::vector<std::string>& skipped) = 0;
};

/// Journals in Swarm: one config per run holding stopped containers, named
/// journal_config_name(run) and labelled `lifeboat.journal.run=<run>`, with the
/// journal as JSON in the label `lifeboat.journal`. Configs are Raft-replicated,
/// so the journal survives the controller's node. Ownership records are
/// configs too, named run_record_config_name(run), with the labels lifeboat.owner.run,
/// lifeboat.owner (the owner), lifeboat.owner.heartbeat (Unix milliseconds)
/// and lifeboat.owner.expiry (milliseconds); renewals update the labels.
std::unique_ptr<journal_store> make_config_journal_store(const engine::client& client);

/// Journals in a JSON file, for an engine that is not a swarm manager, and
/// ownership records in `<path>.owners` beside it. Written to a temporary
/// file, fsynced and renamed, so a crash leaves the old or the new file, never
/// a torn one; every read-modify-write holds an flock on `<path>.lock`, so
/// processes sharing the file do not lose each other's writes.
std::unique_ptr<journal_store> make_file_journal_store(std::string path);

/// The config names of a run's journal and ownership record: "lifeboat-journal.<run>"
/// and "lifeboat-run.<run>", or, when that is longer than Swarm allows (64),
/// cut to 64 with a hash of the run name at the end (exposed for tests).
std::string journal_config_name(std::string_view run);
std::string run_record_config_name(std::string_view run);

/// JSON codec of a journal's entries (exposed for tests).
std::string encode_entries(const journal& j);
engine::result<journal> decode_entries(std::string_view run, std::string_view json);

}  // namespace lifeboat::quiesce
