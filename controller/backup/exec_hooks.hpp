#pragma once

#include "controller/backup/phase_hooks.hpp"
#include "controller/engine/client.hpp"
#include "reconcilers/exec_hooks.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

// docker-volume-backup's exec hooks: at each hook point, the command a
// container's `docker-volume-backup.<point>` label gives runs in that
// container through the engine's exec API. Which containers and commands is
// planned by reconcilers/exec_hooks.hpp; this runs them: those of the
// controller's node itself, those of other nodes through one agent job per
// node (`lifeboat agent-exec`, backup/hook_agent.hpp).
namespace lifeboat::backup {

/// The environment variable a hook is given from process-post on: where the
/// published archive is, as the run reports it (result.archive: a path in
/// the controller's destination, or `s3 bucket/key`-style for remote ones);
/// not a path inside the hook's container. Unset before the archive is
/// published.
inline constexpr std::string_view archive_path_variable = "COMMAND_RUNTIME_ARCHIVE_FILEPATH";

/// The output of one command kept for messages and logs: its last 64 KiB.
inline constexpr std::size_t hook_output_limit = std::size_t{64} * 1024;

/// What one exec came to, for the logs.
struct exec_hook_report {
  std::string point;  ///< "archive-pre", ...
  /// Here: the container's name. On another node: "<service> task <id>".
  std::string container;
  std::string node;   ///< the other node it ran on; empty: the controller's
  std::string label;  ///< the label its command came from
  bool ok = false;
  /// "exit 0", "exit 3", "timed out after 5m0s", or the engine's error.
  std::string outcome;
  std::string output;  ///< the last hook_output_limit bytes of stdout and stderr
};

/// Where a node's engine socket is unless --node-socket says otherwise.
inline constexpr std::string_view default_node_socket = "/var/run/docker.sock";

struct exec_hook_options {
  /// Called once per exec after it ended (or was given up), on the run's
  /// thread; null: not reported. The controller logs it at debug.
  std::function<void(const exec_hook_report&)> on_exec;
  /// Overrides the schedule's `timeouts.hooks` (tests).
  std::optional<std::chrono::milliseconds> timeout;
  /// The image of the agent jobs running commands on other nodes, present
  /// on every node; empty: the image of the controller's own task, if it
  /// runs as one. With neither, a point with commands on other nodes fails.
  std::string agent_image;
  /// The engine's socket on each node, bind-mounted into its agent job;
  /// Swarm expands templates such as {{.Node.Hostname}} in it.
  std::string node_socket = std::string(default_node_socket);
};

/// What one exec came to.
struct exec_outcome {
  bool ok = false;
  /// "exit 0", "exit 3", "timed out after 5m0s", or the engine's error.
  std::string outcome;
  std::string output;  ///< the last hook_output_limit bytes of stdout and stderr
};

/// Runs `execs` (their container_id set) at once in the engine's containers,
/// each as its user with `env` added, and waits for all of them, at most
/// `timeout` or until `cancel` is set; returns their outcomes in the order
/// of `execs`. A timed-out exec is given up, not stopped (the engine cannot
/// stop one). Shared by the controller's own node and the agents of other
/// nodes, so that a command behaves the same wherever it runs. Returns once
/// every engine call it made has ended.
std::vector<exec_outcome> run_execs(const engine::client& client,
                                    const std::vector<reconcilers::hook_exec>& execs,
                                    const std::vector<std::string>& env,
                                    std::chrono::milliseconds timeout,
                                    const std::atomic<bool>& cancel);

/// The exec hooks as phase_hooks for engine_runner. At each point it lists
/// the running containers of the engine's node (task containers of services
/// included) and the running tasks of other nodes, plans the point
/// (reconcilers::plan_hook_point with the schedule's execLabel) and runs every
/// planned exec at once, each as its label's `.user`, with
/// COMMAND_RUNTIME_ARCHIVE_FILEPATH set once the archive is published. It
/// waits for all of them, at most the schedule's `timeouts.hooks` (or until
/// the run is cancelled). The point fails when a command exits non-zero,
/// times out, cannot be started, or cannot be split (then nothing of the
/// point runs); the message names each failed container and label with the
/// tail of its output. The commands of tasks on another node run there,
/// through one agent job per node (hook_agent.hpp), at the same time as
/// this node's; their failures name the node. A timed-out command is given
/// up, not stopped: the engine has no way to kill an exec, so it may still
/// be running in its container.
/// `client` must outlive the returned function, which may be called from any
/// one thread at a time.
phase_hooks make_exec_hooks(const engine::client& client, exec_hook_options options = {});

}  // namespace lifeboat::backup
