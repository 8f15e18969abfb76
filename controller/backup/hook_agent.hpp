#pragma once

#include "controller/backup/agent_job.hpp"
#include "controller/backup/exec_hooks.hpp"
#include "controller/engine/client.hpp"
#include "reconcilers/exec_hooks.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Exec hooks of tasks on other nodes. The engine's exec API reaches only the
// containers of its own node, so for each other node with commands at a hook
// point the controller starts an agent job there (`lifeboat agent-exec`,
// with that node's engine socket mounted) that runs them through run_execs,
// as the controller runs its own node's, and reports each outcome on its
// standard output, which the controller reads through the service logs: the
// same channel as the reading agents (agent.hpp), no protocol of its own.
namespace lifeboat::backup {

/// The environment variable that carries an agent-exec job's commands, as
/// encode_hook_request writes them.
inline constexpr std::string_view hooks_variable = "LIFEBOAT_HOOKS";

/// The longest line an agent-exec job writes, newline included: the engine's
/// log drivers split longer lines (at 16 KiB), and a split line would not
/// parse. Outputs are cut (their start dropped) to fit.
inline constexpr std::size_t hook_line_limit = std::size_t{12} * 1024;

/// The label Swarm gives each task's container: how an agent finds the
/// container of a task on its node.
inline constexpr std::string_view task_id_label = "com.docker.swarm.task.id";

/// What an agent-exec job is asked to run on its node.
struct hook_request {
  std::string point;  ///< "archive-pre", ...: for its messages
  /// Each with task_id, container_name (its service's name), label, cmd and
  /// user; container_id is found on the node.
  std::vector<reconcilers::hook_exec> execs;
  std::vector<std::string> env;  ///< "KEY=value", added to each exec's environment
  std::chrono::milliseconds timeout{0};
};

/// `request` as one JSON document, for hooks_variable.
std::string encode_hook_request(const hook_request& request);
/// The request in `text`, or an error saying what is wrong with it.
engine::result<hook_request> decode_hook_request(std::string_view text);

/// One line of an agent-exec job's report:
///   {"lifeboat-hook":"exec","task":"...","ok":false,"outcome":"exit 3","output":"..."}
///   {"lifeboat-hook":"finished","ok":true,"message":"..."}
struct hook_report_line {
  enum class kind { exec, finished } what = kind::finished;
  std::string task_id;  ///< exec: the task whose command it was
  bool ok = false;
  /// exec: as exec_outcome::outcome; finished: why it failed as a whole.
  std::string outcome;
  std::string output;  ///< exec: the tail of its output
};

/// `line` as one line of JSON without its newline, at most
/// hook_line_limit - 1 bytes: the output's start (then the outcome's) is
/// dropped as far as needed.
std::string encode_hook_report_line(const hook_report_line& line);
/// The report on `line`; nullopt when the line is no report (other output);
/// an error when it claims to be one but is malformed or cut short.
engine::result<std::optional<hook_report_line>> decode_hook_report_line(std::string_view line);

/// `lifeboat agent-exec`: finds the container of each task of `request` on
/// `client`'s node (by task_id_label), runs the commands through run_execs
/// and writes one report line per exec to `out` (in the order of the
/// request), then the finished line. A task without a running container
/// here fails its exec. Returns the process exit code: 0 when every command
/// succeeded.
int run_hook_agent(const engine::client& client, const hook_request& request, std::FILE* out,
                   const std::atomic<bool>& cancel);

/// The agent job running `request` on `node_id`: `lifeboat agent-exec`
/// with the request in hooks_variable and `node_socket` (a path on the node,
/// Swarm templates allowed) bound at the default socket path, labelled as
/// agent of `run_name` and of `schedule`.
job_definition hook_job(const std::string& run_name, const std::string& schedule,
                        const std::string& node_id, const std::string& image,
                        const std::string& node_socket, const hook_request& request);

}  // namespace lifeboat::backup
