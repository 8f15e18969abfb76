#include "controller/backup/exec_hooks.hpp"

#include "api/duration.hpp"
#include "controller/backup/agent_job.hpp"
#include "controller/backup/hook_agent.hpp"
#include "reconcilers/exec_hooks.hpp"
#include "reconcilers/placement.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace lifeboat::backup {

namespace {

using clock = std::chrono::steady_clock;

// How often a wait for the hooks looks at the run's cancel flag.
constexpr std::chrono::milliseconds cancel_poll{200};
// How often the exit code is asked for when the output ended before the
// engine marked the exec as finished.
constexpr std::chrono::milliseconds exit_poll{50};
// How long an agent job running another node's hooks may take beyond the
// hooks' own timeout: Swarm places it and the node starts its container.
constexpr std::chrono::seconds agent_start_margin{60};

// What one hook point sees of the engine: the running containers of this
// node, and the running tasks of other nodes whose service's containers
// carry labels.
struct hook_targets {
  std::vector<reconcilers::hook_container> here;
  std::vector<reconcilers::hook_remote_task> elsewhere;
};

engine::result<hook_targets> observe_targets(const engine::client& client) {
  hook_targets out;
  auto containers = client.list_containers({}, /*all=*/false);
  if (!containers) {
    return containers.error();
  }
  for (auto& c : *containers) {
    std::string name = c.names.empty() ? c.id.substr(0, 12) : c.names.front();
    if (name.starts_with('/')) {
      name.erase(0, 1);
    }
    out.here.push_back({c.id, std::move(name), std::move(c.container_labels), c.state});
  }
  auto info = client.info();
  if (!info) {
    return info.error();
  }
  const std::string& self = info->swarm.node_id;
  if (info->swarm.local_node_state != "active" || self.empty() || !info->swarm.control_available) {
    // Not a swarm manager: only this engine's containers exist for us.
    return out;
  }
  // Every task meant to run, not filtered by service: a service removed
  // between the two listings cannot fail the listing.
  auto tasks = client.list_tasks({{"desired-state", {"running"}}});
  if (!tasks) {
    return tasks.error();
  }
  std::vector<const engine::task*> remote;
  for (const auto& t : *tasks) {
    if (t.state == "running" && !t.node_id.empty() && t.node_id != self) {
      remote.push_back(&t);
    }
  }
  if (remote.empty()) {
    return out;
  }
  auto services = client.list_services({}, /*with_status=*/false);
  if (!services) {
    return services.error();
  }
  std::map<std::string, const engine::service*> by_id;
  for (const auto& s : *services) {
    by_id[s.id] = &s;
  }
  // Host names read better than IDs; a node list that fails keeps the IDs.
  std::map<std::string, std::string> names;
  if (auto nodes = client.list_nodes()) {
    std::map<std::string, std::string> hostnames;
    for (const auto& n : *nodes) {
      hostnames[n.id] = n.hostname;
    }
    names = reconcilers::node_names(hostnames);
  }
  for (const auto* t : remote) {
    const auto service = by_id.find(t->service_id);
    if (service == by_id.end()) {
      continue;
    }
    const auto name = names.find(t->node_id);
    out.elsewhere.push_back({t->id, service->second->name, t->node_id,
                             name == names.end() ? t->node_id : name->second,
                             service->second->container_labels});
  }
  return out;
}

// The output for a message: without the blank lines it ends with.
std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// One exec's state, shared by its thread and the waiting one; guarded by
// point_run::mutex_.
struct exec_slot {
  const reconcilers::hook_exec* exec = nullptr;
  bool done = false;
  bool ok = false;
  std::string outcome;
  std::string output;
  engine::http::body_reader* reader = nullptr;  // while its output is read
};

// The execs of one point, run at once, each on a thread of its own.
class point_run {
 public:
  point_run(const engine::client& client, const std::vector<reconcilers::hook_exec>& execs,
            std::vector<std::string> env, std::chrono::milliseconds timeout)
      : client_(client), env_(std::move(env)), timeout_(timeout), slots_(execs.size()) {
    for (std::size_t i = 0; i < execs.size(); ++i) {
      slots_[i].exec = &execs[i];
    }
  }

  // Runs every exec and waits for all of them, until `timeout` or `cancel`;
  // then gives up on the rest (their output is no longer read) and returns
  // each slot's outcome. Returns only once every thread has ended: those
  // given up end at once, engine calls in flight within the client's request
  // timeout.
  std::vector<exec_slot> run(const std::atomic<bool>& cancel) {
    const auto deadline = clock::now() + timeout_;
    {
      std::vector<std::jthread> threads;
      threads.reserve(slots_.size());
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        threads.emplace_back([this, i, deadline] { run_one(i, deadline); });
      }
      std::unique_lock lock(mutex_);
      for (;;) {
        if (std::all_of(slots_.begin(), slots_.end(), [](const exec_slot& s) { return s.done; })) {
          break;
        }
        const auto now = clock::now();
        if (now >= deadline || cancel) {
          give_up(
              cancel ? "the run was cancelled"
                     : "timed out after " +
                           api::format_duration(std::chrono::ceil<std::chrono::seconds>(timeout_)));
          break;
        }
        changed_.wait_until(lock, std::min(deadline, now + cancel_poll));
      }
    }
    return std::move(slots_);
  }

 private:
  // Marks every slot still running as failed with `why` and stops reading
  // its output. Called with mutex_ held.
  void give_up(const std::string& why) {
    stopped_ = true;
    for (auto& s : slots_) {
      if (s.done) {
        continue;
      }
      s.done = true;
      s.ok = false;
      s.outcome = why + " (an exec cannot be stopped: it may still be running)";
      if (s.reader != nullptr) {
        s.reader->cancel();
      }
    }
  }

  // Records an outcome unless the slot was given up meanwhile.
  void finish(std::size_t i, bool ok, std::string outcome, std::string output) {
    const std::lock_guard lock(mutex_);
    auto& s = slots_[i];
    s.reader = nullptr;
    if (!output.empty()) {
      s.output = std::move(output);
    }
    if (s.done) {
      return;
    }
    s.done = true;
    s.ok = ok;
    s.outcome = std::move(outcome);
    changed_.notify_all();
  }

  void run_one(std::size_t i, clock::time_point deadline) {
    const auto& e = *slots_[i].exec;
    auto id = client_.create_exec(e.container_id, e.cmd, {e.user, env_});
    if (!id) {
      finish(i, false, "the exec could not be created: " + id.error().describe(), {});
      return;
    }
    auto reader = client_.open_exec(*id, timeout_);
    if (!reader) {
      finish(i, false, "the exec could not be started: " + reader.error().describe(), {});
      return;
    }
    {
      const std::lock_guard lock(mutex_);
      if (stopped_) {
        return;
      }
      slots_[i].reader = &*reader;
    }
    auto output = engine::read_exec_output(*reader, hook_output_limit, engine::output_keep::last);
    if (!output) {
      finish(i, false, "reading its output failed: " + output.error().describe(), {});
      return;
    }
    // The output ends when the command does; the exit code may show a moment
    // later.
    for (;;) {
      auto status = client_.inspect_exec(*id);
      if (!status) {
        finish(i, false, "its exit code could not be read: " + status.error().describe(),
               std::move(*output));
        return;
      }
      if (!status->running && status->exit_code) {
        const int code = *status->exit_code;
        finish(i, code == 0, fmt::format("exit {}", code), std::move(*output));
        return;
      }
      if (clock::now() >= deadline) {
        finish(i, false, "its exit code was not known in time", std::move(*output));
        return;
      }
      {
        const std::lock_guard lock(mutex_);
        if (stopped_) {
          slots_[i].output = std::move(*output);
          return;
        }
      }
      std::this_thread::sleep_for(exit_poll);
    }
  }

  const engine::client& client_;
  const std::vector<std::string> env_;
  const std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stopped_ = false;
  std::vector<exec_slot> slots_;
};

// What one other node's agent job came to: an outcome per exec it reported
// (in the order of its execs), and why the job failed as a whole, if it did.
struct node_run {
  std::vector<std::optional<exec_outcome>> outcomes;
  std::string error;
};

// Runs `node`'s execs in an agent job there and follows it to its end.
node_run run_on_node(const engine::client& client, const std::string& image,
                     const std::string& node_socket, const hook_context& context,
                     const reconcilers::node_hook_execs& node, hook_request request) {
  node_run out;
  out.outcomes.resize(node.execs.size());
  request.execs = node.execs;
  const auto timeout = request.timeout;
  auto job = agent_job::start(client, hook_job(context.run_name, context.schedule.metadata.name,
                                               node.node_id, image, node_socket, request));
  if (!job) {
    out.error = "its agent job could not be created: " + job.error().describe();
    return out;
  }
  std::string bad_line;
  auto followed = job->follow(
      [&](std::string_view line) {
        auto report = decode_hook_report_line(line);
        if (!report) {
          bad_line = report.error().describe();
          return true;
        }
        if (!*report) {
          return false;
        }
        if ((*report)->what == hook_report_line::kind::finished) {
          if (!(*report)->ok && !(*report)->outcome.empty() &&
              std::none_of(out.outcomes.begin(), out.outcomes.end(),
                           [](const auto& o) { return o && !o->ok; })) {
            out.error = (*report)->outcome;
          }
          return true;
        }
        for (std::size_t i = 0; i < node.execs.size(); ++i) {
          if (node.execs[i].task_id == (*report)->task_id && !out.outcomes[i]) {
            out.outcomes[i] = exec_outcome{(*report)->ok, std::move((*report)->outcome),
                                           std::move((*report)->output)};
            break;
          }
        }
        return false;
      },
      // The commands' own time, and a margin for Swarm to place the job and
      // the node to start its container.
      context.cancel, timeout + agent_start_margin);
  if (!followed) {
    out.error = "its agent job failed: " + followed.error().describe();
  } else if (!bad_line.empty()) {
    out.error = "its agent job's report could not be read: " + bad_line;
  }
  return out;
}

hook_result run_point(const engine::client& client, const exec_hook_options& options,
                      hook_point point, const hook_context& context) {
  hook_result result;
  const std::string point_name(to_string(point));
  auto targets = observe_targets(client);
  if (!targets) {
    result.ok = false;
    result.message = "listing the containers with hooks failed: " + targets.error().describe();
    return result;
  }
  const auto plan = reconcilers::plan_hook_point(point_name, context.schedule.spec.exec_label,
                                                 targets->here, targets->elsewhere);
  if (!plan.errors.empty()) {
    result.ok = false;
    result.message = fmt::format("{} (nothing of this point ran)", fmt::join(plan.errors, "; "));
    return result;
  }
  if (plan.execs.empty() && plan.elsewhere.empty()) {
    return result;
  }
  std::string image;
  if (!plan.elsewhere.empty()) {
    image =
        options.agent_image.empty() ? engine::own_image(client).value_or("") : options.agent_image;
    if (image.empty()) {
      std::vector<std::string> where;
      for (const auto& node : plan.elsewhere) {
        for (const auto& e : node.execs) {
          where.push_back(fmt::format("service {} task {} on node {} ({})", e.container_name,
                                      e.task_id, node.node_name, e.label));
        }
      }
      result.ok = false;
      result.message = fmt::format(
          "{}: commands on other nodes run in an agent job there, and no agent image is "
          "configured (--agent-image; nothing of this point ran)",
          fmt::join(where, "; "));
      return result;
    }
  }
  std::vector<std::string> env;
  if (!context.archive_location.empty()) {
    env.push_back(std::string(archive_path_variable) + "=" + context.archive_location);
  }
  const auto timeout = options.timeout.value_or(
      std::chrono::duration_cast<std::chrono::milliseconds>(context.schedule.spec.timeouts.hooks));
  std::vector<node_run> remote(plan.elsewhere.size());
  std::vector<exec_outcome> local;
  {
    // Every node's commands at once, as the commands of one node run.
    std::vector<std::jthread> jobs;
    jobs.reserve(plan.elsewhere.size());
    for (std::size_t i = 0; i < plan.elsewhere.size(); ++i) {
      jobs.emplace_back([&, i] {
        remote[i] = run_on_node(client, image, options.node_socket, context, plan.elsewhere[i],
                                {point_name, {}, env, timeout});
      });
    }
    local = run_execs(client, plan.execs, env, timeout, context.cancel);
  }
  std::vector<std::string> failures;
  for (std::size_t i = 0; i < plan.execs.size(); ++i) {
    const auto& e = plan.execs[i];
    const auto& s = local[i];
    if (options.on_exec) {
      options.on_exec({point_name, e.container_name, {}, e.label, s.ok, s.outcome, s.output});
    }
    if (!s.ok) {
      const auto output = trimmed(s.output);
      failures.push_back(fmt::format("container {} ({}): {}{}", e.container_name, e.label,
                                     s.outcome, output.empty() ? "" : ": " + output));
    }
  }
  for (std::size_t n = 0; n < plan.elsewhere.size(); ++n) {
    const auto& node = plan.elsewhere[n];
    const auto& ran = remote[n];
    for (std::size_t i = 0; i < node.execs.size(); ++i) {
      const auto& e = node.execs[i];
      const auto name = fmt::format("{} task {}", e.container_name, e.task_id);
      if (!ran.outcomes[i]) {
        if (ran.error.empty()) {
          // The job finished without a word on this one: cannot happen with
          // an agent of this version, but must not pass as success.
          failures.push_back(fmt::format("service {} on node {} ({}): not reported by its agent",
                                         name, node.node_name, e.label));
        }
        continue;
      }
      const auto& s = *ran.outcomes[i];
      if (options.on_exec) {
        options.on_exec({point_name, name, node.node_name, e.label, s.ok, s.outcome, s.output});
      }
      if (!s.ok) {
        const auto output = trimmed(s.output);
        failures.push_back(fmt::format("service {} on node {} ({}): {}{}", name, node.node_name,
                                       e.label, s.outcome, output.empty() ? "" : ": " + output));
      }
    }
    if (!ran.error.empty()) {
      failures.push_back(fmt::format("node {}: {}", node.node_name, ran.error));
    }
  }
  if (!failures.empty()) {
    result.ok = false;
    result.message = fmt::format("{}", fmt::join(failures, "; "));
  }
  return result;
}

}  // namespace

std::vector<exec_outcome> run_execs(const engine::client& client,
                                    const std::vector<reconcilers::hook_exec>& execs,
                                    const std::vector<std::string>& env,
                                    std::chrono::milliseconds timeout,
                                    const std::atomic<bool>& cancel) {
  if (execs.empty()) {
    return {};
  }
  point_run running(client, execs, env, timeout);
  auto slots = running.run(cancel);
  std::vector<exec_outcome> out;
  out.reserve(slots.size());
  for (auto& s : slots) {
    out.push_back({s.ok, std::move(s.outcome), std::move(s.output)});
  }
  return out;
}

phase_hooks make_exec_hooks(const engine::client& client, exec_hook_options options) {
  return [&client, options = std::move(options)](hook_point point, const hook_context& context) {
    return run_point(client, options, point, context);
  };
}

}  // namespace lifeboat::backup
