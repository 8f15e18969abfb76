#include "controller/backup/engine_runner.hpp"

#include "controller/archive/name_pattern.hpp"
#include "controller/archive/transforms.hpp"
#include "controller/backup/agent_job.hpp"
#include "controller/backup/volumes.hpp"
#include "controller/quiesce/quiesce.hpp"

#include <date/tz.h>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <thread>

namespace lifeboat::backup {

namespace {

using clock = std::chrono::steady_clock;

// True when this process can list and read the directory: the volume can be
// read directly instead of through the engine. Inside a container the
// engine's mountpoint path normally does not exist (unless the host's volume
// folder is mounted there), and lifeboat falls back to the engine.
bool readable_directory(const std::string& path) {
  if (path.empty()) {
    return false;
  }
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) && ::access(path.c_str(), R_OK | X_OK) == 0;
}

// The kind of an engine failure, for the run's status and metrics.
std::string_view engine_failure_kind(const engine::error& e) {
  return e.is(engine::errc::unavailable) ? "engine unavailable" : "engine error";
}

}  // namespace

engine_runner::engine_runner(const engine::client& client, quiesce::journal_store& journals,
                             archive_steps steps, runner_options options)
    : client_(client),
      journals_(journals),
      steps_(std::move(steps)),
      options_(std::move(options)) {}

run_result engine_runner::run(const api::backup_schedule& schedule, const std::string& run_name,
                              const phase_reporter& report, const held_reporter& holding,
                              const std::atomic<bool>& cancel) {
  const auto start = clock::now();
  run_result result;
  // Failures of post hook points: each fails the run, after its phase did
  // its work (a published archive stays published: it is consistent).
  std::vector<std::string> post_hook_failures;
  auto fail = [&](std::string message) {
    result.ok = false;
    for (const auto& f : post_hook_failures) {
      message += "; " + f;
    }
    result.message = std::move(message);
    result.duration = clock::now() - start;
    return result;
  };
  const auto& spec = schedule.spec;

  // A pre point that fails ends the run before its phase, and the phase's
  // post point does not run; a post point runs also when its phase failed.
  std::vector<std::string> hook_warnings;
  std::string pre_hook_failure;
  auto hooks_at = [&](hook_point point, const std::string& location = {}) {
    if (!options_.hooks) {
      return true;
    }
    const hook_context context{schedule, run_name, location, cancel};
    auto outcome = options_.hooks(point, context);
    for (auto& skipped : outcome.skipped) {
      hook_warnings.push_back(fmt::format("{} skipped {}", to_string(point), skipped));
    }
    if (outcome.ok) {
      return true;
    }
    auto failure = fmt::format("{} hook failed: {}", to_string(point), outcome.message);
    if (point.when == hook_when::pre) {
      result.failure = "hook failed";
      pre_hook_failure = std::move(failure);
    } else {
      post_hook_failures.push_back(std::move(failure));
    }
    return false;
  };

  // One destination failing does not stop the others: the archive goes to
  // every destination that can take it, and the run fails at the end naming
  // each one that could not. Only when none can is nothing held: a missing
  // mount fails the run here, naming the path.
  std::vector<std::unique_ptr<destinations::destination>> targets;
  std::vector<std::string> destination_failures;
  std::string_view first_failure_kind;
  auto destination_failed = [&](const destinations::destination& d, const archive::error& e,
                                std::string_view doing) {
    if (first_failure_kind.empty()) {
      first_failure_kind = archive::to_string(e.code);
    }
    const auto name = d.describe();
    std::string message = e.message;
    if (message.starts_with(name + ": ")) {
      message.erase(0, name.size() + 2);
    }
    destination_failures.push_back(name + ": " + std::string(doing) + message);
  };
  const auto reached = [&](const destinations::destination& d, double bytes,
                           clock::time_point since) {
    result.destinations.push_back({d.describe(), true, {}, bytes, clock::now() - since});
  };
  const auto missed = [&](const destinations::destination& d, const archive::error& e,
                          clock::time_point since) {
    result.destinations.push_back(
        {d.describe(), false, archive::to_string(e.code), 0, clock::now() - since});
  };
  for (const auto& d : spec.destinations) {
    auto target = destinations::make_destination(d);
    if (auto ok = target->check(); !ok) {
      destination_failed(*target, ok.error(), "");
      missed(*target, ok.error(), clock::now());
      continue;
    }
    targets.push_back(std::move(target));
  }
  auto joined_failures = [&] { return fmt::format("{}", fmt::join(destination_failures, "; ")); };
  if (targets.empty()) {
    result.failure = first_failure_kind;
    return fail(joined_failures());
  }

  // Where the volumes are: those kept on other nodes are read there, by one
  // agent per node; a namesake here of a volume kept only elsewhere is an
  // unrelated volume and is not read. Named volumes are located before they
  // are looked up here (where they may not exist).
  quiesce::volume_locations where;
  auto locate = [&](const std::vector<std::string>& wanted) -> std::optional<std::string> {
    auto located = quiesce::locate_volumes(client_, wanted);
    if (!located) {
      result.failure = engine_failure_kind(located.error());
      return "finding the nodes of the volumes: " + located.error().describe();
    }
    where = std::move(*located);
    return std::nullopt;
  };
  auto here_spec = spec;
  if (!spec.volumes.empty()) {
    if (auto failed = locate(spec.volumes)) {
      return fail(*failed);
    }
    std::erase_if(here_spec.volumes,
                  [&](const std::string& v) { return where.only_elsewhere.contains(v); });
  }
  std::vector<engine::volume> volumes;
  if (spec.volumes.empty() || !here_spec.volumes.empty()) {
    auto resolved = resolve_volumes(client_, here_spec);
    if (!resolved) {
      result.failure = engine_failure_kind(resolved.error());
      return fail(resolved.error().message);
    }
    volumes = std::move(*resolved);
  }
  if (spec.volumes.empty()) {
    std::vector<std::string> selected;
    for (const auto& v : volumes) {
      selected.push_back(v.name);
    }
    if (auto failed = locate(selected)) {
      return fail(*failed);
    }
    std::erase_if(volumes,
                  [&](const engine::volume& v) { return where.only_elsewhere.contains(v.name); });
  }
  std::vector<std::string> names;
  std::vector<volume_input> inputs;
  std::vector<std::string> through_engine;
  for (const auto& v : volumes) {
    names.push_back(v.name);
    volume_input input{v.name, {}};
    if (options_.direct_read && !engine::data_is_a_mount(v) && readable_directory(v.mountpoint)) {
      input.directory = v.mountpoint;
    } else {
      through_engine.push_back(v.name);
    }
    inputs.push_back(std::move(input));
  }
  std::size_t volume_count = names.size();
  for (const auto& node : where.elsewhere) {
    volume_count += node.volumes.size();
  }
  std::string agent_image;
  if (!where.elsewhere.empty()) {
    agent_image =
        options_.agent_image.empty() ? own_image(client_).value_or("") : options_.agent_image;
    if (agent_image.empty()) {
      result.failure = "invalid argument";
      return fail(
          "no image for the agents that read the volumes on other nodes: run lifeboat in a "
          "container, or pass --agent-image");
    }
    // Jobs of this schedule's earlier runs that died (one run per schedule
    // at a time).
    if (auto removed = remove_leftover_agent_jobs(
            client_, [&](const std::string& run) { return run == run_name; },
            schedule.metadata.name);
        !removed) {
      result.failure = engine_failure_kind(removed.error());
      return fail("removing leftover agent jobs: " + removed.error().describe());
    }
  }
  // Containers of runs of this schedule that died are removed first (a retry
  // of the same run has the same container name).
  if (auto removed = remove_leftover_volume_containers(client_, schedule.metadata.name); !removed) {
    result.failure = engine_failure_kind(removed.error());
    return fail("removing leftover volume containers: " + removed.error().describe());
  }
  // The volume container is only needed for volumes read through the engine.
  std::optional<volume_container> reader;
  if (!through_engine.empty()) {
    std::string image = options_.helper_image;
    if (image.empty()) {
      image = own_image(client_).value_or("");
    }
    if (image.empty()) {
      result.failure = "invalid argument";
      return fail(
          "no image for the volume container: run lifeboat in a container, or pass "
          "--helper-image");
    }
    auto created = volume_container::create(
        client_, image, through_engine, /*read_only=*/true, "lifeboat-read-" + run_name,
        {{std::string(volume_container_schedule_label), schedule.metadata.name}});
    if (!created) {
      result.failure = engine_failure_kind(created.error());
      return fail("creating the volume container: " + created.error().describe());
    }
    reader.emplace(std::move(*created));
  }

  // All destinations get the same file name, from the schedule's zone; each
  // other node's archive adds the node's name.
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const auto local_now = date::locate_zone(spec.timezone)->to_local(now);
  const std::string stem =
      api::expand_archive_name(spec.archive.name, schedule.metadata.name,
                               std::chrono::local_seconds{local_now.time_since_epoch()});
  const bool read_here = !inputs.empty();
  const auto extension = archive::archive_extension(archive::transform_chain(spec.archive));
  // The first destination is written while held; the others are copies.
  archive_request request;
  request.volumes = inputs;
  request.open = [&](const std::string& v) { return reader->read(v); };
  request.spec = spec.archive;
  request.destination = targets.front().get();
  request.file_name = stem + extension;
  request.cancel = &cancel;
  request.on_progress = options_.on_progress;
  request.spool_limit = options_.spool_limit;

  // One agent per other node: it writes its node's archive into every
  // destination itself (a `local` folder there is that node's).
  struct agent_part {
    const quiesce::node_volumes* node = nullptr;
    agent_job_spec spec;
    std::optional<engine::result<agent_event>> outcome;
  };
  std::vector<agent_part> agents;
  std::vector<std::string> bind_folders;
  for (const auto& target : targets) {
    if (auto folder = target->spool_folder(); !folder.empty()) {
      bind_folders.push_back(std::move(folder));
    }
  }
  for (const auto& node : where.elsewhere) {
    agents.push_back(
        {&node,
         {run_name, node.node_id, agent_image, schedule,
          archive::node_file_name(stem, node.node_name, extension), node.volumes, bind_folders},
         std::nullopt});
  }

  const quiesce::quiesce_run run{run_name, spec.stop_during_backup};
  std::optional<archive::result<archive_written>> written;
  // Downtime first: the workloads resume as soon as the volumes have been
  // read (here and by every agent), on a thread of their own, while the
  // writers compress and write the rest. with_quiesced() resumes again
  // afterwards, which finds nothing left to do after an early resume, and
  // everything when it did not happen or failed (its engine errors are
  // retried there until the deadline).
  std::optional<quiesce::outcome> early_resume;
  std::optional<clock::time_point> resumed_at;
  std::jthread resumer;
  // Whether everything stayed held while the volumes were read, checked
  // before anything is resumed: an archive read while a writer ran is never
  // published.
  const quiesce::hold_baseline* baseline = nullptr;
  std::optional<engine::result<void>> still_held;
  std::atomic<std::size_t> unread{(read_here ? 1 : 0) + agents.size()};
  auto source_read = [&] {
    if (unread.fetch_sub(1) != 1) {
      return;
    }
    report(phase::resuming, "volumes read; resuming the workloads while the archive is finished");
    resumer = std::jthread([&] {
      still_held = quiesce::holds_still_hold(client_, journals_, run, *baseline);
      early_resume = quiesce::reach(client_, journals_, run, quiesce::quiesce_goal::restored,
                                    spec.timeouts.scale_up);
      if (early_resume->ok) {
        resumed_at = clock::now();
        holding(0);
      }
    });
  };
  request.on_sources_read = source_read;
  auto agents_ok = [&] {
    return std::all_of(agents.begin(), agents.end(), [](const agent_part& a) {
      return a.outcome && *a.outcome && (*a.outcome)->ok;
    });
  };

  if (!hooks_at({hook_phase::archive, hook_when::pre})) {
    return fail(pre_hook_failure);
  }
  report(phase::quiescing, "");
  const auto held_from = clock::now();
  std::optional<clock::time_point> writing_from;
  const auto held = quiesce::with_quiesced(
      client_, journals_, run, spec.timeouts.scale_down, spec.timeouts.scale_up,
      [&](const quiesce::holding& hold) {
        baseline = &hold.baseline;
        holding(hold.workloads);
        report(phase::archiving,
               fmt::format("reading {} volume(s){}, {} workload(s) held", volume_count,
                           agents.empty()
                               ? ""
                               : fmt::format(" on {} node(s)", agents.size() + (read_here ? 1 : 0)),
                           hold.workloads));
        writing_from = clock::now();
        // The agents start reading at once; a job that cannot be created
        // ends the run before anything else is read.
        std::vector<agent_job> jobs;
        for (auto& a : agents) {
          auto job = agent_job::start(client_, a.spec);
          if (!job) {
            a.outcome = job.error();
            return;
          }
          jobs.push_back(std::move(*job));
        }
        {
          std::vector<std::jthread> waiting;
          for (std::size_t i = 0; i < jobs.size(); ++i) {
            waiting.emplace_back([&, i] {
              agents[i].outcome = jobs[i].wait(source_read, cancel, options_.agent_timeout);
            });
          }
          if (read_here) {
            written = steps_.write(request);
          }
        }  // every agent has finished or failed; their jobs go with `jobs`
        if (resumer.joinable()) {
          resumer.join();
        } else {
          if ((!read_here || (written && *written)) && agents_ok()) {
            still_held = quiesce::holds_still_hold(client_, journals_, run, hold.baseline);
          }
          report(phase::resuming, "");
        }
      });
  holding(0);
  hooks_at({hook_phase::archive, hook_when::post});
  result.downtime =
      resumed_at ? std::chrono::duration_cast<std::chrono::milliseconds>(*resumed_at - held_from)
                 : held.held;
  const std::string resume_failure =
      held.resume.ok ? "" : "; resuming failed: " + held.resume.message;
  if (!held.quiesce.ok) {
    result.failure = "quiesce failed";
    return fail("quiescing failed: " + held.quiesce.message + resume_failure);
  }
  // What each agent did, for the run's message; the first failure fails it.
  std::vector<std::string> agent_reports;
  std::optional<std::string> agent_failure;
  for (const auto& a : agents) {
    const auto& node = a.node->node_name;
    if (!a.outcome) {
      agent_failure = agent_failure.value_or("node " + node + ": the agent was not started");
    } else if (!*a.outcome) {
      agent_failure = agent_failure.value_or("node " + node + ": " + a.outcome->error().describe());
    } else if (!(*a.outcome)->ok) {
      agent_failure = agent_failure.value_or("node " + node + ": " + (*a.outcome)->message);
    } else {
      agent_reports.push_back(
          fmt::format("{}: {} volume(s) in {}, {}, agent peak RSS {}", node, a.node->volumes.size(),
                      (*a.outcome)->archive, (*a.outcome)->message,
                      human_bytes(static_cast<double>((*a.outcome)->peak_rss))));
      result.size_bytes += static_cast<double>((*a.outcome)->bytes);
      // An agent reports success only once its archive is in every
      // destination: one upload to each, as the manager's own archive is.
      for (const auto& t : targets) {
        reached(*t, static_cast<double>((*a.outcome)->bytes), writing_from.value_or(held_from));
      }
      if (result.archive.empty()) {
        result.archive = (*a.outcome)->archive;
      }
    }
  }
  if (read_here && (!written || !*written)) {
    // The write step abandons its own upload when it fails. A failure of the
    // destination's side (not of reading the volumes) is its upload's.
    if (written && writing_from) {
      const auto code = written->error().code;
      if (code == archive::errc::io_error || code == archive::errc::no_space ||
          code == archive::errc::refused) {
        missed(*targets.front(), written->error(), *writing_from);
      }
    }
    result.failure = written ? archive::to_string(written->error().code) : "internal error";
    const std::string why = written ? written->error().message : "the archive was not written";
    return fail("archiving failed: " + why + (agent_failure ? "; agent on " + *agent_failure : "") +
                resume_failure);
  }
  if (agent_failure) {
    result.failure = "agent failed";
    return fail("the agent on " + *agent_failure + resume_failure);
  }
  if (still_held && !*still_held) {
    result.failure = "quiesce failed";
    return fail("the archive was not published: " + still_held->error().describe() +
                resume_failure);
  }

  std::vector<std::string> warnings;
  std::vector<destinations::destination*> holding_archive;
  const archive_written* archive = read_here ? &**written : nullptr;
  std::string location = result.archive;
  if (archive != nullptr) {
    report(phase::shipping, "");
    if (!hooks_at({hook_phase::process, hook_when::pre})) {
      return fail(pre_hook_failure);
    }
    auto published = steps_.publish(*archive, *targets.front());
    hooks_at({hook_phase::process, hook_when::post},
             published ? published->first.location : std::string());
    if (!published) {
      missed(*targets.front(), published.error(), *writing_from);
      result.failure = archive::to_string(published.error().code);
      return fail("publishing the archive in " + targets.front()->describe() +
                  " failed: " + published.error().message);
    }
    reached(*targets.front(), static_cast<double>(archive->bytes), *writing_from);
    if (!published->second.empty()) {
      warnings.push_back(published->second);
    }
    // The archive's own destination has it; each other one gets a copy, and
    // is pruned only when its copy is there (never the newest good one lost).
    holding_archive.push_back(targets.front().get());
    // From here on the archive is published: every outcome reports it.
    location = published->first.location;
    result.archive = location;
    result.size_bytes += static_cast<double>(archive->bytes);
  } else {
    // Only agents wrote: every destination that was reachable has their
    // archives, and is pruned.
    for (const auto& t : targets) {
      holding_archive.push_back(t.get());
    }
  }
  if (!hooks_at({hook_phase::copy, hook_when::pre}, location)) {
    return fail(pre_hook_failure);
  }
  for (std::size_t i = 1; archive != nullptr && i < targets.size(); ++i) {
    const auto copying_from = clock::now();
    auto copied = destinations::copy_archive(*targets.front(), *targets[i], archive->file_name);
    if (!copied) {
      destination_failed(*targets[i], copied.error(), "copying the archive failed: ");
      missed(*targets[i], copied.error(), copying_from);
      continue;
    }
    reached(*targets[i], static_cast<double>(copied->size), copying_from);
    holding_archive.push_back(targets[i].get());
    if (auto w = targets[i]->point_latest(archive->file_name); !w.empty()) {
      warnings.push_back(w);
    }
  }

  hooks_at({hook_phase::copy, hook_when::post}, location);

  report(phase::pruning, "");
  if (!hooks_at({hook_phase::prune, hook_when::pre}, location)) {
    return fail(pre_hook_failure);
  }
  for (auto* target : holding_archive) {
    if (auto p = steps_.prune(schedule, *target); !p) {
      destination_failed(*target, p.error(), "pruning failed: ");
    }
  }
  hooks_at({hook_phase::prune, hook_when::post}, location);
  if (!destination_failures.empty()) {
    result.failure = first_failure_kind;
    return fail(fmt::format("the archive reached {} of {} destination(s) ({}); {}",
                            holding_archive.size(), spec.destinations.size(), location,
                            joined_failures()));
  }
  if (!post_hook_failures.empty()) {
    result.failure = "hook failed";
    return fail(fmt::format("the archive is in {}", location));
  }
  // The hooks' and destinations' warnings (latest links), then the archive's.
  warnings.insert(warnings.begin(), hook_warnings.begin(), hook_warnings.end());
  std::uint64_t warning_count = warnings.size();
  std::string read_paths;
  if (archive != nullptr) {
    warning_count += archive->warning_count;
    for (std::size_t i = 0; i < archive->warnings.size() && warnings.size() < 100; ++i) {
      warnings.push_back(archive->warnings[i]);
    }
    for (const auto& p : archive->read_paths) {
      read_paths += (read_paths.empty() ? "" : ", ") + p;
    }
  }
  std::string elsewhere;
  for (const auto& r : agent_reports) {
    elsewhere += "; " + r;
  }

  result.ok = true;
  result.duration = clock::now() - start;
  result.message = fmt::format(
      "{} volume(s) ({}), {}, held {:.1f}s{}{}{}", volume_count,
      read_paths.empty() ? "all on other nodes" : read_paths, human_bytes(result.size_bytes),
      result.downtime.count(), held.resume.ok ? "" : "; resuming: " + held.resume.message,
      warning_count == 0 ? ""
                         : fmt::format("; {} warning(s), first: {}", warning_count,
                                       warnings.empty() ? "" : warnings.front()),
      elsewhere);
  return result;
}

}  // namespace lifeboat::backup
