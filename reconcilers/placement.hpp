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

/// Where a restore must write its target volumes: on one node, since it
/// reads one archive and holds once.
struct restore_placement {
  /// The node, among those of `elsewhere`; empty: the controller's own node
  /// (no service keeps any target elsewhere; a target that no service mounts
  /// is looked for there, and created there with createVolume).
  std::string node_id;
  /// Set when no single node fits: a target kept on several nodes (two
  /// unrelated volumes of one name), or targets kept on different nodes.
  /// Names each volume, node (by `names`, else its ID) and service.
  std::string error;
};

/// The node of a restore of `targets`, from volumes_elsewhere() of them and
/// the node names of node_names() (an ID missing there is shown as itself).
/// A target kept on the controller's node and on another one, or on two
/// other nodes, is refused rather than guessed; so are targets kept on
/// different nodes (restore them in separate Restores), and a target no
/// service mounts beside targets kept on another node (where it lives cannot
/// be told from the services).
restore_placement place_restore(const std::vector<std::string>& targets,
                                const std::vector<volume_elsewhere>& elsewhere,
                                const std::map<std::string, std::string>& names);

/// The name by which each node is known in archive names and messages, from
/// node ID -> host name: the host name, or the node's ID when it has none or
/// another node has the same one (Swarm allows that: cloned machines), so
/// that two nodes never write archives of the same name.
std::map<std::string, std::string> node_names(const std::map<std::string, std::string>& hostnames);

}  // namespace lifeboat::reconcilers
