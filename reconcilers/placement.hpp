#pragma once

#include "reconcilers/observed.hpp"

#include <map>
#include <string>
#include <vector>

// Where volumes live. A named volume exists on the node whose engine created
// it: a service's task creates it on the node it is placed on, and a volume
// of the same name on another node is another volume. The controller reads
// (and restores) only its own node's volumes, so a run must know when the
// data it is asked for is elsewhere rather than read an empty namesake.
// Pure: the controller lists services and tasks and acts on the answer.
namespace lifeboat::reconcilers {

/// Where one task of a service was placed.
struct task_placement {
  std::string service_id;
  std::string node_id;
  std::string desired_state;  ///< "running", "shutdown", ...
  std::string created_at;     ///< RFC 3339, as the engine gives it
};

/// A volume whose data is on other nodes, and why lifeboat thinks so.
struct volume_elsewhere {
  std::string volume;
  std::vector<std::string> node_ids;       ///< sorted, without the controller's node
  std::vector<std::string> service_names;  ///< the services placing it there, sorted
  /// Another service mounting it keeps it on this node as well: the volume
  /// of that name here holds data too, and is read beside the others.
  bool also_here = false;
};

/// The volumes among `volumes` that services mounting them keep on nodes
/// other than `self_node`. A service counts where its tasks are meant to run
/// now (desired state running); one with none (scaled to 0, or finished)
/// counts where its newest task ran, where its data was last written. Tasks
/// not yet placed on a node are ignored. Sorted by volume name.
std::vector<volume_elsewhere> volumes_elsewhere(const std::vector<std::string>& volumes,
                                                const std::vector<observed_service>& services,
                                                const std::vector<task_placement>& tasks,
                                                const std::string& self_node);

/// The name by which each node is known in archive names and messages, from
/// node ID -> host name: the host name, or the node's ID when it has none or
/// another node has the same one (Swarm allows that: cloned machines), so
/// that two nodes never write archives of the same name.
std::map<std::string, std::string> node_names(const std::map<std::string, std::string>& hostnames);

}  // namespace lifeboat::reconcilers
