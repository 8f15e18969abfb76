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

/// A durable map run -> journal. save() returns only once the journal is
/// durable; an empty journal deletes the run's record. Called from one thread
/// at a time per run.
class journal_store {
 public:
  virtual ~journal_store() = default;

  /// The run's journal; empty entries when there is none.
  virtual engine::result<journal> load(std::string_view run) = 0;
  /// Every journal with entries, for recovery.
  virtual engine::result<std::vector<journal>> load_all() = 0;
  virtual engine::result<void> save(const journal& j) = 0;
};

/// Journals in Swarm: one config per run holding stopped containers, named
/// "lifeboat-journal.<run>" and labelled `lifeboat.journal.run=<run>`, with the
/// journal as JSON in the label `lifeboat.journal`. Configs are Raft-replicated,
/// so the journal survives the controller's node.
std::unique_ptr<journal_store> make_config_journal_store(const engine::client& client);

/// Journals in a JSON file, for an engine that is not a swarm manager. Written
/// to a temporary file, fsynced and renamed, so a crash leaves the old or the
/// new file, never a torn one.
std::unique_ptr<journal_store> make_file_journal_store(std::string path);

/// JSON codec of a journal's entries (exposed for tests).
std::string encode_entries(const journal& j);
engine::result<journal> decode_entries(std::string_view run, std::string_view json);

}  // namespace lifeboat::quiesce
