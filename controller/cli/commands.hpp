#pragma once

#include "controller/backup/engine_runner.hpp"
#include "controller/backup/exec_hooks.hpp"
#include "controller/controller.hpp"
#include "controller/engine/client.hpp"
#include "controller/quiesce/journal_store.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

#include <string>
#include <vector>

// The subcommands of the `lifeboat` binary that deal with objects. Each
// returns the process exit code and prints for people (stdout) and errors
// (stderr).
namespace lifeboat::cli {

/// `lifeboat validate FILE...`: 0 when every file decodes and validates, 1
/// otherwise; errors as `file:line:col: field.path: message`.
int validate(const std::vector<std::string>& files);

struct get_options {
  std::string what;         ///< schedules | backups | restores
  std::string output;       ///< table | json | yaml
  std::string objects_dir;  ///< read objects from here instead of the swarm
};

/// `lifeboat get schedules|backups|restores`.
int get(const engine::client_options& engine, const get_options& options);

/// `lifeboat apply -f FILE`: creates one config per object, content-addressed.
int apply(const engine::client_options& engine, const std::string& file);

/// `lifeboat sync-status`: one discovery pass that writes every object's
/// status to its config labels (what the controller does on each resync).
int sync_status(const engine::client_options& engine);

/// Connects to the engine; on failure prints "error: cannot reach the engine:
/// <why>" to stderr and returns nullopt, for commands to exit with 1.
std::optional<engine::client> connect_or_report(const engine::client_options& engine);

/// The journal store for this engine: configs on a swarm manager, else the
/// JSON state file at `state_file`.
engine::result<std::unique_ptr<quiesce::journal_store>> open_journals(
    const engine::client& client, const std::string& state_file);

/// Makes SIGTERM, SIGINT and SIGHUP set the returned flag instead of ending
/// the process, so that a run can resume its workloads and clean up first,
/// and ignores SIGPIPE (a reader that went away must not kill a run; see
/// cli/output.hpp). Idempotent.
const std::atomic<bool>& stop_on_signals();

/// The first signal stop_on_signals() caught, 0 when none: a run it stopped
/// exits with 128 + that number, like a process the signal ended, but only
/// after its workloads are back.
int stop_signal();

/// `lifeboat recover`: brings back every workload held by a run (services
/// scaled to zero, containers stopped), as the controller does at start-up.
int recover(const engine::client_options& engine, const std::string& state_file,
            std::chrono::seconds timeout);

struct controller_options {
  std::string metrics_addr = ":9090";
  std::string log_format = "text";  ///< text (key=value) or json
  std::string log_level = "info";   ///< debug shows each exec hook's output
  std::string helper_image;
  std::string agent_image;  ///< image of the agents on other nodes
  /// The engine's socket on each node, mounted into the agent jobs running
  /// exec hooks there; Swarm templates ({{.Node.Hostname}}) allowed.
  std::string node_socket = std::string(backup::default_node_socket);
  bool direct_read = true;  ///< read volumes directly when their mountpoint is readable
  std::uint64_t spool_limit = backup::runner_options::default_spool_limit;
  std::string state_file = "/var/lib/lifeboat/state.json";
  controller::options loop;
};

/// `lifeboat controller`: runs until SIGTERM; resumes every held workload
/// before it exits.
int controller(const engine::client_options& engine, const controller_options& options);

struct backup_once_options {
  std::string schedule_file;
  std::string helper_image;
  std::string agent_image;
  std::string node_socket = std::string(backup::default_node_socket);  ///< as controller_options'
  std::string state_file = "/var/lib/lifeboat/state.json";
  bool direct_read = true;
  std::uint64_t spool_limit = backup::runner_options::default_spool_limit;
};

/// `lifeboat backup --schedule FILE`: one run now, without a controller. Shows
/// the bytes read and written and the rate on a terminal.
int backup_once(const engine::client_options& engine, const backup_once_options& options);

/// The one BackupSchedule in `text` (a file's content, read from `source`);
/// errors, as `source:line:col: field.path: message`, go to stderr.
std::optional<api::backup_schedule> decode_one_schedule(const std::string& text,
                                                        const std::string& source);

struct agent_options {
  std::string run_name;
  std::string file_name;
  std::vector<std::string> volumes;
};

/// `lifeboat agent`: the per-node part of a run (backup/agent.hpp), started by
/// the controller as a Swarm job; the schedule comes in LIFEBOAT_AGENT_SCHEDULE.
int agent(const agent_options& options);

/// `lifeboat agent-exec`: runs the exec hooks of tasks on its node
/// (backup/hook_agent.hpp), started by the controller as a Swarm job; the
/// commands come in LIFEBOAT_HOOKS, the node's engine at `engine`.
int agent_exec(const engine::client_options& engine);

/// `lifeboat backup now SCHEDULE`: creates a Backup object for the controller.
int backup_now(const engine::client_options& engine, const std::string& schedule);

}  // namespace lifeboat::cli
