#pragma once

#include "controller/engine/error.hpp"
#include "controller/objects/catalog.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

// Where the controller loop reads and writes lifeboat objects: Swarm configs
// labelled `lifeboat.object`. An interface so that the loop's unit tests run
// against an in-memory swarm that records every write.
namespace lifeboat::engine {
class client;
}

namespace lifeboat::controller {

class object_store {
 public:
  virtual ~object_store() = default;

  /// Every object config, as discovery reads it.
  virtual engine::result<std::vector<objects::object_source>> list() const = 0;
  /// One config, read now (not from a listing). errc::not_found when gone.
  virtual engine::result<objects::object_source> get(const std::string& id) const = 0;
  /// Creates a config. A name that exists fails with errc::conflict.
  virtual engine::result<void> create(const std::string& name, const std::string& data,
                                      const objects::label_map& labels) = 0;
  /// Changes the labels of config `id` by a versioned update; on a conflict
  /// re-reads and applies `change` again (so it may run more than once).
  /// Writes nothing when `change` changes nothing.
  virtual engine::result<void> update_labels(
      const std::string& id, const std::function<void(objects::label_map&)>& change) = 0;
  virtual engine::result<void> remove(const std::string& id) = 0;
};

/// The store over a real engine. `client` must outlive it.
std::unique_ptr<object_store> make_swarm_store(const engine::client& client);

}  // namespace lifeboat::controller
