#include "controller/backup/agent_job.hpp"
#include "controller/cli/commands.hpp"
#include "controller/quiesce/quiesce.hpp"

#include <fmt/core.h>

#include <chrono>
#include <csignal>
#include <thread>

namespace lifeboat::cli {

namespace {

std::atomic<bool> stop_requested{false};
std::atomic<int> stop_signal_number{0};

extern "C" void request_stop(int signal) {
  int none = 0;
  stop_signal_number.compare_exchange_strong(none, signal);
  stop_requested = true;
}

}  // namespace

const std::atomic<bool>& stop_on_signals() {
  struct sigaction action {};
  action.sa_handler = request_stop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  // A closed terminal ends the run as SIGTERM does: workloads resumed first.
  sigaction(SIGHUP, &action, nullptr);
  // A reader that went away (`| head -1`) must not kill a run that holds
  // workloads: writes fail with EPIPE instead, and output is dropped.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
  return stop_requested;
}

int stop_signal() { return stop_signal_number.load(); }

std::optional<engine::client> connect_or_report(const engine::client_options& engine_options) {
  auto client = engine::client::connect(engine_options);
  if (!client) {
    fmt::print(stderr, "error: cannot reach the engine: {}\n", client.error().describe());
    return std::nullopt;
  }
  return std::move(*client);
}

engine::result<std::unique_ptr<quiesce::journal_store>> open_journals(
    const engine::client& client, const std::string& state_file) {
  auto info = client.info();
  if (!info) {
    return info.error();
  }
  // A swarm manager keeps journals in configs (replicated with the cluster);
  // a plain engine in the state file.
  if (info->swarm.control_available) {
    return quiesce::make_config_journal_store(client);
  }
  return quiesce::make_file_journal_store(state_file);
}

// How long an engine request of a dead process may still take to land.
constexpr std::chrono::seconds requests_in_flight_settle{2};

int recover(const engine::client_options& engine_options, const std::string& state_file,
            std::chrono::seconds timeout) {
  auto client = connect_or_report(engine_options);
  if (!client) {
    return 1;
  }
  auto journals = open_journals(*client, state_file);
  if (!journals) {
    fmt::print(stderr, "error: {}\n", journals.error().describe());
    return 1;
  }
  // Requests a dead process sent just before it died are still carried out
  // by dockerd: a helper container it was creating appears a moment later
  // (hack/chaos.sh saw one appear after recovery had listed none). Recovery
  // run at once after a kill lets them land first.
  std::this_thread::sleep_for(requests_in_flight_settle);
  // No run is active in this process: whatever is held was left behind,
  // unless a live process (a controller, a `lifeboat backup`) still owns it.
  const auto report = quiesce::recover(*client, **journals, {}, timeout);
  for (const auto& run : report.recovered) {
    fmt::print("recovered the workloads held by run {}\n", run);
  }
  for (const auto& left : report.left_stopped) {
    fmt::print("left stopped for its no-restart label, run {}\n", left);
  }
  for (const auto& [run, why] : report.kept) {
    fmt::print("left alone, run {}: {}\n", run, why);
  }
  for (const auto& container : report.removed) {
    fmt::print("removed the helper container {} of a dead run\n", container);
  }
  for (const auto& failure : report.failures) {
    fmt::print(stderr, "error: {}\n", failure);
  }
  // Agent jobs of runs that no live process owns.
  auto jobs = backup::remove_leftover_agent_jobs(
      *client, [&](const std::string& run) { return report.kept.contains(run); });
  if (!jobs) {
    fmt::print(stderr, "error: removing agent jobs: {}\n", jobs.error().describe());
  } else if (*jobs > 0) {
    fmt::print("removed {} agent job(s) of dead runs\n", *jobs);
  }
  if (report.recovered.empty() && report.failures.empty() && report.kept.empty() &&
      report.removed.empty() && jobs && *jobs == 0) {
    fmt::print("nothing is held\n");
  }
  return report.failures.empty() && jobs ? 0 : 1;
}

}  // namespace lifeboat::cli
