#pragma once

#include "api/objects.hpp"

#include <atomic>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The per-node agent (ARCHITECTURE.md, "Volumes on other nodes"): the part of
// a backup run that must happen on the node where the volumes live. The
// controller holds the workloads (services are cluster-wide) and starts the
// agent as a Swarm job pinned to that node, with the volumes mounted; the
// agent reads them, writes the archive into the schedule's first destination,
// copies it to the others, applies retention to folders of its node, and
// reports on its standard output, which the controller reads through the
// engine's service logs: no channel of lifeboat's own between nodes.
namespace lifeboat::backup {

struct agent_request {
  api::backup_schedule schedule;
  std::string run_name;
  /// The archive's file name, chosen by the controller (one per node).
  std::string file_name;
  /// Each mounted at <volumes_root>/<volume>, read-only.
  std::vector<std::string> volumes;
  /// Where the job mounts them (mount_path); tests use a folder of their own.
  std::string volumes_root = "/lifeboat";
};

/// What the agent reports, one JSON object per line:
///   {"lifeboat-agent":"volumes-read"}  every volume was read to its end: the
///                                      workloads may resume
///   {"lifeboat-agent":"finished","ok":true,"archive":"...","bytes":123,
///    "peak_rss":456,"message":"..."}
struct agent_event {
  enum class kind { volumes_read, finished } what = kind::finished;
  bool ok = false;
  std::string archive;
  std::uint64_t bytes = 0;
  /// The agent process's peak resident memory, in bytes: reported so that
  /// what an agent costs a node shows in the run's message.
  std::uint64_t peak_rss = 0;
  std::string message;
  /// A restore agent's outcome (restore::outcome); empty for a backup's.
  std::string outcome;
};

std::string encode_agent_event(const agent_event& e);
/// The event on `line`, or nullopt when the line is not one (other output,
/// another task's line, a truncated line).
std::optional<agent_event> decode_agent_event(std::string_view line);

/// Runs the agent's part of a run and writes its events to `out`. Returns
/// the process exit code: 0 when the archive is in every destination.
int run_agent(const agent_request& request, std::FILE* out, const std::atomic<bool>& cancel);

}  // namespace lifeboat::backup
