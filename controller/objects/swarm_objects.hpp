#pragma once

#include "controller/engine/client.hpp"
#include "controller/objects/catalog.hpp"
#include "controller/objects/status.hpp"

#include <chrono>
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

/// `lifeboat apply`: the config name for an object, content-addressed so that
/// re-applying the same text is a no-op and a change makes a new version:
/// "<name>.<kind>.<8 hex digits of a hash of the text>", at most 64 characters.
std::string config_name_for(const api::object& object, std::string_view text);

}  // namespace lifeboat::objects
