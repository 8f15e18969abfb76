#include "api/text.hpp"
#include "api/validate.hpp"
#include "controller/backup/agent.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/backup/engine_runner.hpp"
#include "controller/backup/exec_hooks.hpp"
#include "controller/backup/hook_agent.hpp"
#include "controller/cli/commands.hpp"
#include "controller/cli/output.hpp"
#include "controller/cli/progress.hpp"
#include "controller/controller.hpp"
#include "controller/logging/log.hpp"
#include "controller/metrics/http_server.hpp"
#include "controller/notify/listener.hpp"
#include "controller/objects/catalog.hpp"
#include "controller/objects/swarm_objects.hpp"
#include "controller/restore/engine_runner.hpp"
#include "reconcilers/schedule.hpp"

#include <fmt/core.h>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace lifeboat::cli {

namespace {

// Each exec hook's outcome and the tail of its output, at debug: a failed
// one is in the run's message too.
void log_exec_hook(const backup::exec_hook_report& r) {
  spdlog::debug("event=hook_ran point={} container={} node={} label={} ok={} result={} output={}",
                r.point, logging::value(r.container), logging::value(r.node),
                logging::value(r.label), r.ok, logging::value(r.outcome), logging::value(r.output));
}

}  // namespace

int controller(const engine::client_options& engine_options, const controller_options& options) {
  // One malloc arena for all threads, before any thread starts: glibc gives
  // each thread that allocates an arena of its own, and their unreturned
  // free space is what pushed the peak near the stack's 25M limit. Measured
  // with hack/bench-controller.sh (1 000 services, 200 schedules): peak RSS
  // 24.4 -> 18.3 MiB, CPU per resync unchanged (68 ms); the threads mostly
  // wait on the engine, so they rarely contend for the arena.
  ::mallopt(M_ARENA_MAX, 1);
  // Blocks of 128 KiB and more (a run's gzip blocks and stream buffers, the
  // body of a list of every service) are mapped on their own and unmapped when
  // freed. glibc otherwise raises this threshold after the first such free and
  // serves them from the heap, where the parse trees of the lists a run makes
  // while it compresses fragment it: with 300 services x 5 tasks and a 1 GiB
  // held run (hack/bench-controller.sh), peak 26.2 -> 25.0 MiB.
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  // main() accepts only the formats parse_format knows.
  logging::install(logging::parse_format(options.log_format).value_or(logging::format::text));
  // main() accepts only debug, info and warning.
  spdlog::set_level(spdlog::level::from_str(options.log_level));
  // The lease is a config: Swarm would refuse the name only at the first write.
  if (const auto why = api::check_config_name(options.loop.lease_name)) {
    spdlog::critical("event=startup_failed error={}", logging::value("--lease-name: " + *why));
    return 2;
  }
  const auto& stop_requested = stop_on_signals();
  auto client = engine::client::connect(engine_options);
  if (!client) {
    spdlog::critical("event=startup_failed error={}",
                     logging::value("cannot reach the engine: " + client.error().describe()));
    return 1;
  }
  auto journals = open_journals(*client, options.state_file);
  if (!journals) {
    spdlog::critical("event=startup_failed error={}", logging::value(journals.error().describe()));
    return 1;
  }
  metrics::registry registry;
  std::atomic<bool> ready{false};
  std::unique_ptr<metrics::http_server> server;
  try {
    server = std::make_unique<metrics::http_server>(
        options.metrics_addr,
        metrics::endpoints{[&] { return registry.serialize(); }, [&] { return ready.load(); }});
  } catch (const std::exception& e) {
    spdlog::critical("event=startup_failed error={}", logging::value(e.what()));
    return 1;
  }
  spdlog::info("event=started metrics={} api={}", logging::value(options.metrics_addr),
               logging::value(client->api_version()));
  backup::runner_options runner_options;
  runner_options.helper_image = options.helper_image;
  runner_options.agent_image = options.agent_image;
  runner_options.direct_read = options.direct_read;
  runner_options.spool_limit = options.spool_limit;
  runner_options.hooks = backup::make_exec_hooks(
      *client, {log_exec_hook, std::nullopt, options.agent_image, options.node_socket});
  backup::engine_runner runner(*client, **journals, backup::standard_archive_steps(),
                               std::move(runner_options));
  restore::runner_options restore_options;
  restore_options.helper_image = options.helper_image;
  restore_options.agent_image = options.agent_image;
  restore::engine_runner restorer(*client, **journals, std::move(restore_options));
  return controller::run(*client, options.loop, runner, restorer, **journals, registry,
                         stop_requested, ready);
}

std::optional<api::backup_schedule> decode_one_schedule(const std::string& text,
                                                        const std::string& source) {
  const auto decoded = api::decode(text);
  if (!decoded.ok()) {
    for (const auto& e : decoded.errors()) {
      say(stderr, "{}:{}\n", source, api::format_error(e));
    }
    return std::nullopt;
  }
  std::optional<api::backup_schedule> schedule;
  for (const auto& o : decoded.objects()) {
    if (const auto* s = std::get_if<api::backup_schedule>(&o)) {
      if (schedule) {
        say(stderr, "{}: holds more than one BackupSchedule\n", source);
        return std::nullopt;
      }
      schedule = *s;
    }
  }
  if (!schedule) {
    say(stderr, "{}: holds no BackupSchedule\n", source);
  }
  return schedule;
}

int backup_once(const engine::client_options& engine_options, const backup_once_options& options) {
  const std::string& schedule_file = options.schedule_file;
  std::ifstream in(schedule_file);
  if (!in) {
    say(stderr, "{}: cannot read the file\n", schedule_file);
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  const auto schedule = decode_one_schedule(text.str(), schedule_file);
  if (!schedule) {
    return 1;
  }
  auto client = connect_or_report(engine_options);
  if (!client) {
    return 1;
  }
  auto journals = open_journals(*client, options.state_file);
  if (!journals) {
    say(stderr, "error: {}\n", journals.error().describe());
    return 1;
  }
  const auto& stop_requested = stop_on_signals();
  // Named by its second. A run of this schedule killed within this second left
  // its ownership record under that name (recovery releases it once it
  // expires): this run waits for the first second whose name is free.
  std::set<std::string> taken;
  std::vector<std::string> unreadable;
  if (auto owners = (*journals)->load_owners(unreadable); owners) {
    for (const auto& o : *owners) {
      taken.insert(o.run);
    }
  }
  const auto at = reconcilers::first_free_run_second(
      schedule->metadata.name,
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()), taken);
  std::this_thread::sleep_until(at);
  const auto name = reconcilers::backup_name(schedule->metadata.name, at);
  terminal_progress progress;
  const auto started = std::chrono::steady_clock::now();
  backup::runner_options runner_options;
  runner_options.helper_image = options.helper_image;
  runner_options.agent_image = options.agent_image;
  runner_options.direct_read = options.direct_read;
  runner_options.spool_limit = options.spool_limit;
  // One line per exec hook among the phases; its output only when it failed
  // (in the run's message).
  runner_options.hooks = backup::make_exec_hooks(
      *client, {[&](const backup::exec_hook_report& r) {
                  const std::chrono::duration<double> t =
                      std::chrono::steady_clock::now() - started;
                  progress.clear();
                  say(stdout, "{:7.1f}s  {:<10} {} in {}{} ({}): {}\n", t.count(), "hook", r.point,
                      api::escape_controls(r.container),
                      r.node.empty() ? "" : " on node " + api::escape_controls(r.node), r.label,
                      api::escape_controls(r.outcome));
                },
                std::nullopt, options.agent_image, options.node_socket});
  if (progress.enabled()) {
    runner_options.on_progress = [&](const backup::archive_progress& p) {
      progress.update(p.content_bytes, p.output_bytes);
    };
  }
  backup::engine_runner runner(*client, **journals, backup::standard_archive_steps(),
                               std::move(runner_options));
  const auto result = runner.run(
      *schedule, name,
      [&](std::string_view phase, const std::string& message) {
        const std::chrono::duration<double> t = std::chrono::steady_clock::now() - started;
        progress.clear();
        say(stdout, "{:7.1f}s  {:<10} {}\n", t.count(), phase, api::escape_controls(message));
      },
      [](int) {}, stop_requested);
  progress.clear();
  if (!result.ok) {
    say(stderr, "backup {} failed: {}\n", name, api::escape_controls(result.message));
  } else {
    say(stdout, "backup {} succeeded: {}\n  {}\n", name, api::escape_controls(result.message),
        api::escape_controls(result.archive));
  }
  if (schedule->spec.notifications) {
    // After the outcome is printed; a failed notification never changes the
    // exit status.
    notify::curl_sender sender;
    const notify::run_notifier notifier(sender, &notify::sleep_for, &notify::read_file,
                                        [](bool) {});
    for (const auto& d :
         notifier.notify(*schedule->spec.notifications,
                         notify::summarize(schedule->metadata.name, name, result))) {
      say(d.ok ? stdout : stderr, "notification {} {}{}\n", api::escape_controls(d.target),
          d.ok ? "sent" : "failed: ", api::escape_controls(d.error));
    }
  }
  // Stopped by a signal (SIGTERM, SIGINT, a hang-up): the workloads are back
  // by now; the exit says what ended the run.
  if (const int signal = stop_signal(); signal != 0) {
    return 128 + signal;
  }
  return result.ok ? 0 : 1;
}

int agent(const agent_options& options) {
  const char* text = std::getenv("LIFEBOAT_AGENT_SCHEDULE");
  if (text == nullptr || *text == '\0') {
    say(stderr,
        "error: agent needs the schedule in LIFEBOAT_AGENT_SCHEDULE (the controller "
        "starts agents; see lifeboat backup for a run by hand)\n");
    return 2;
  }
  const auto schedule = decode_one_schedule(text, "LIFEBOAT_AGENT_SCHEDULE");
  if (!schedule) {
    return 1;
  }
  const auto& stop_requested = stop_on_signals();
  backup::agent_request request{*schedule, options.run_name, options.file_name, options.volumes};
  return backup::run_agent(request, stdout, stop_requested);
}

int agent_exec(const engine::client_options& engine_options) {
  const char* text = std::getenv(backup::hooks_variable.data());
  if (text == nullptr || *text == '\0') {
    say(stderr, "error: agent-exec needs the commands in {} (the controller starts it)\n",
        backup::hooks_variable);
    return 2;
  }
  const auto request = backup::decode_hook_request(text);
  if (!request) {
    say(stderr, "error: {}\n", request.error().describe());
    return 2;
  }
  auto client = connect_or_report(engine_options);
  if (!client) {
    // Reported as the job's failure: the controller sees no finished line.
    return 1;
  }
  return backup::run_hook_agent(*client, *request, stdout, stop_on_signals());
}

int backup_now(const engine::client_options& engine_options, const std::string& schedule) {
  // The Backup's name, <schedule>-<yyyymmddhhmmss>, must itself be valid.
  if (const auto why = api::check_object_name(schedule, api::max_schedule_name_length)) {
    say(stderr, "error: backup now: the schedule name {}: {}\n", api::quote(schedule), *why);
    return 2;
  }
  auto client = connect_or_report(engine_options);
  if (!client) {
    return 1;
  }
  api::backup b;
  b.metadata.name = reconcilers::backup_name(
      schedule, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  b.spec.schedule_ref = schedule;
  const auto text = api::encode_yaml(b);
  auto created = client->create_config(objects::config_name_for(b, text), text,
                                       {{std::string(objects::label::object), "true"},
                                        {std::string(objects::label::kind), "Backup"},
                                        {std::string(objects::label::name), b.metadata.name}});
  if (!created) {
    say(stderr, "error: {}\n", created.error().describe());
    return 1;
  }
  say(stdout, "Backup/{} created; the controller runs it\n", b.metadata.name);
  return 0;
}

}  // namespace lifeboat::cli
