#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

// Typed views of the engine's JSON, holding what lifeboat reads. Objects that
// lifeboat writes back whole (service and config specs) also keep their raw
// spec, so an update never drops a field that this code does not know about.
namespace lifeboat::engine {

using labels = std::map<std::string, std::string>;

/// Query filters as the engine takes them: {"label": ["a=b"], "name": ["x"]}.
using filters = std::map<std::string, std::vector<std::string>>;

struct version_info {
  std::string version;          ///< engine version, e.g. "20.10.24"
  std::string api_version;      ///< the engine's newest API version
  std::string min_api_version;  ///< the engine's oldest API version
  std::string os;
  std::string arch;
  std::string kernel_version;
};

struct swarm_info {
  std::string node_id;
  std::string node_addr;
  std::string local_node_state;    ///< "inactive", "pending", "active", "error", "locked"
  bool control_available = false;  ///< true on a manager
  std::string cluster_id;
  int managers = 0;
  int nodes = 0;
};

struct engine_info {
  std::string id;
  std::string name;  ///< host name
  std::string server_version;
  int ncpu = 0;
  std::int64_t mem_total = 0;
  swarm_info swarm;
};

struct node {
  std::string id;
  std::uint64_t version = 0;
  std::string hostname;
  std::string role;          ///< "manager" or "worker"
  std::string availability;  ///< "active", "pause", "drain"
  std::string state;         ///< "ready", "down", ...
  std::string addr;
  labels node_labels;  ///< Spec.Labels
};

enum class service_mode { replicated, global, replicated_job, global_job, unknown };

struct service {
  std::string id;
  std::uint64_t version = 0;  ///< Version.Index, for updates
  std::string name;
  labels service_labels;    ///< Spec.Labels (`deploy.labels` in a stack file)
  labels container_labels;  ///< Spec.TaskTemplate.ContainerSpec.Labels
  service_mode mode = service_mode::unknown;
  std::optional<std::uint64_t> replicas;  ///< replicated services only
  std::string restart_condition;  ///< TaskTemplate.RestartPolicy.Condition ("any" when unset)
  std::string created_at;
  std::string updated_at;
  std::optional<std::uint64_t> running_tasks;  ///< ServiceStatus, from list with status=true
  std::optional<std::uint64_t> desired_tasks;
  boost::json::object spec;  ///< the whole Spec, to send back on update
};

struct task {
  std::string id;
  std::string service_id;
  std::string node_id;
  std::uint64_t slot = 0;
  std::string desired_state;  ///< "running", "shutdown", ...
  std::string state;          ///< Status.State: "new" ... "running", "complete", "failed", ...
  std::string message;
  std::string err;
  std::string container_id;  ///< Status.ContainerStatus.ContainerID, when one exists
  std::optional<int> exit_code;
  std::string created_at;
  std::string updated_at;
};

struct mount_point {
  std::string type;  ///< "volume", "bind", ...
  std::string name;  ///< volume name
  std::string source;
  std::string destination;
  bool read_write = true;
};

struct container_summary {
  std::string id;
  std::vector<std::string> names;
  std::string image;
  std::string state;  ///< "created", "running", "exited", ...
  std::string status;
  labels container_labels;
  std::vector<mount_point> mounts;
  std::int64_t created = 0;  ///< Unix seconds, by the engine's clock
};

struct container {
  std::string id;
  std::string name;
  std::string image;
  std::string status;  ///< State.Status
  bool running = false;
  int exit_code = 0;
  std::string started_at;
  std::string finished_at;
  labels container_labels;
  std::string restart_policy;  ///< HostConfig.RestartPolicy.Name
  std::vector<mount_point> mounts;
};

/// What an exec runs as, besides its command.
struct exec_options {
  std::string user;              ///< "user", "uid", "user:group"; empty: the container's
  std::vector<std::string> env;  ///< "KEY=value", added to the container's environment
};

struct exec_status {
  bool running = false;
  std::optional<int> exit_code;
};

struct config {
  std::string id;
  std::uint64_t version = 0;
  std::string name;
  labels config_labels;
  std::string data;  ///< decoded from the base64 Spec.Data
  std::string created_at;
  std::string updated_at;
  boost::json::object spec;
};

struct volume {
  std::string name;
  std::string driver;
  std::string mountpoint;
  std::string scope;
  std::string created_at;
  labels volume_labels;
  labels options;
};

/// True when the volume's data is a mount that dockerd makes only while a
/// container uses the volume (the local driver with options: bind, NFS, CIFS,
/// tmpfs; or any other driver). Its Mountpoint is an empty folder whenever no
/// container runs, so such a volume is read and written only through a
/// container that mounts it, never at its Mountpoint.
inline bool data_is_a_mount(const volume& v) { return v.driver != "local" || !v.options.empty(); }

/// One message of GET /events.
struct event {
  std::string type;    ///< "service", "config", "container", "volume", "node", ...
  std::string action;  ///< "create", "update", "remove", "start", "die", ...
  std::string actor_id;
  labels attributes;  ///< Actor.Attributes (name, and the object's labels for containers)
  std::string scope;  ///< "local" or "swarm"
  std::int64_t time_nano = 0;
};

}  // namespace lifeboat::engine
