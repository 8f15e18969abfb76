#pragma once

#include "api/labels.hpp"
#include "controller/backup/agent.hpp"
#include "controller/engine/client.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The controller's side of a per-node agent: a `replicated-job` service
// pinned to one node, running lifeboat's image as `lifeboat agent`, with the
// node's volumes mounted read-only. Its task's state and its standard output
// (read through the engine's service logs, which a manager has for every
// node) are the only channel.
namespace lifeboat::backup {

/// Every agent job carries this label, set to the run's name: recovery finds
/// the jobs of dead runs by it.
inline constexpr std::string_view agent_of_label = api::label::agent_of;

struct agent_job_spec {
  std::string run_name;
  std::string node_id;
  std::string image;  ///< lifeboat's own image, present on the node
  api::backup_schedule schedule;
  std::string file_name;
  std::vector<std::string> volumes;
  /// Folders of the node mounted at the same path (a `local` destination's
  /// folder there).
  std::vector<std::string> bind_folders;
};

/// A mount of an agent job's container.
struct job_mount {
  std::string type;  ///< "volume" or "bind"
  std::string source;
  std::string target;
  bool read_only = false;

  bool operator==(const job_mount&) const = default;
};

/// Any agent job (a backup's reading agent, a restore's): what the service
/// runs, where, and the labels by which recovery finds it.
struct job_definition {
  std::string run_name;  ///< the agent_of label of the service and of its container
  /// More labels of both (the schedule's or the restore's name).
  std::map<std::string, std::string> labels;
  std::string node_id;
  std::string image;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<job_mount> mounts;
};

/// The job of a backup agent: `lifeboat agent` with the volumes read-only
/// at mount_path(), the folders bound at their own path, the schedule in
/// LIFEBOAT_AGENT_SCHEDULE.
/// An agent's report line: `line` and a newline on `out`, flushed at once (the
/// controller polls the job's logs: a buffered line would arrive late).
void write_report_line(std::FILE* out, std::string_view line);

job_definition backup_job(const agent_job_spec& spec);

class agent_job {
 public:
  /// Creates the job service; the task starts as soon as Swarm places it.
  static engine::result<agent_job> start(const engine::client& client, const agent_job_spec& spec);
  static engine::result<agent_job> start(const engine::client& client, const job_definition& job);

  agent_job(agent_job&& other) noexcept;
  agent_job& operator=(agent_job&&) = delete;
  agent_job(const agent_job&) = delete;
  /// Removes the job service (its task container goes with it).
  ~agent_job();

  const std::string& service_id() const { return id_; }

  /// Stops owning the job, which then outlives this handle; returns its ID.
  std::string release() && { return std::exchange(id_, {}); }

  /// Calls `on_line` once for each line the job's task writes to its
  /// standard output, in order, as they appear (without the newline), until
  /// it returns true: the agent's last report. Fails when the task ends
  /// before that (the agent died, its node went down), on `timeout`, or when
  /// `cancel` is set; the message names the node.
  engine::result<void> follow(const std::function<bool(std::string_view line)>& on_line,
                              const std::atomic<bool>& cancel,
                              std::chrono::milliseconds timeout) const;

  /// Waits until the agent finished, calling `on_volumes_read` once when it
  /// reports that. Fails when the task ends without a report (the agent died,
  /// its node went down), on `timeout`, or when `cancel` is set.
  engine::result<agent_event> wait(const std::function<void()>& on_volumes_read,
                                   const std::atomic<bool>& cancel,
                                   std::chrono::milliseconds timeout) const;

 private:
  agent_job(const engine::client& client, std::string id) : client_(&client), id_(std::move(id)) {}

  const engine::client* client_;
  std::string id_;
};

/// Removes the agent jobs of runs for which `alive` is false (only those of
/// `schedule` when it is given); returns how many were removed.
engine::result<std::size_t> remove_leftover_agent_jobs(
    const engine::client& client, const std::function<bool(const std::string& run)>& alive,
    const std::string& schedule = {});

}  // namespace lifeboat::backup
