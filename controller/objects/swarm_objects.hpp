#pragma once

#include "controller/engine/client.hpp"
#include "controller/objects/catalog.hpp"
#include "controller/objects/status.hpp"

#include <chrono>
#include <functional>
#include <vector>

// Discovery and status against a real swarm: the I/O around catalog.hpp and
// status.hpp.
namespace lifeboat::objects {

/// Lists the configs labelled `lifeboat.object` and turns them into sources.
engine::result<std::vector<object_source>> list_object_configs(const engine::client& client);

struct sync_report {
  int written = 0;                    ///< configs whose status labels were updated
  int unchanged = 0;                  ///< configs that already showed their status
  std::vector<std::string> failures;  ///< "config: reason", for configs left unwritten
};

/// Writes each entry's desired status (status.hpp) to its config's labels, by
/// a versioned update; only where it changed. A conflict (someone wrote first)
/// re-reads the config and tries again, a few times. Entries from files are
/// skipped. Never throws; failures are reported, not fatal.
sync_report sync_status(const engine::client& client, const std::vector<catalog_entry>& catalog,
                        std::chrono::sys_seconds now);

/// Changes the labels of config `id` with `change`, by a versioned update; on a
/// conflict (someone wrote first) re-reads and applies `change` again, a few
/// times. `change` may be called more than once. No write when it changes
/// nothing.
engine::result<void> update_labels(const engine::client& client, const std::string& id,
                                   const std::function<void(label_map&)>& change);

/// `lifeboat apply`: the config name for an object, content-addressed so that
/// re-applying the same text is a no-op and a change makes a new version:
/// "<name>.<kind>.<8 hex digits of a hash of the text>", at most 64 characters.
std::string config_name_for(const api::object& object, std::string_view text);

}  // namespace lifeboat::objects
