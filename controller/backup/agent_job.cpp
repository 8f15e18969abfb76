#include "controller/backup/agent_job.hpp"

#include "api/decode.hpp"
#include "controller/backup/volumes.hpp"

#include <boost/json/value.hpp>

#include <thread>

namespace lifeboat::backup {

namespace json = boost::json;

namespace {

// How often the task's state and the agent's output are looked at: the
// workloads resume within this of the agent having read the volumes.
constexpr std::chrono::milliseconds poll_interval{250};

json::object job_spec(const job_definition& job) {
  json::array args;
  for (const auto& a : job.args) {
    args.emplace_back(a);
  }
  json::array env;
  for (const auto& e : job.env) {
    env.emplace_back(e);
  }
  json::array mounts;
  for (const auto& m : job.mounts) {
    json::object mount{{"Type", m.type}, {"Source", m.source}, {"Target", m.target}};
    if (m.read_only) {
      mount["ReadOnly"] = true;
    }
    mounts.emplace_back(std::move(mount));
  }
  json::object labels{{agent_of_label, job.run_name}};
  for (const auto& [key, value] : job.labels) {
    labels[key] = value;
  }
  return json::object{
      // No name: Swarm makes one, so no run name can exceed its length limit.
      {"Labels", labels},
      {"TaskTemplate",
       json::object{
           // The task's container carries the labels too: Swarm leaves the
           // exited container of a finished job on its node for a long time
           // after the service is gone (over 3 minutes on 20.10), still
           // holding the volumes, and the node's side can find it by them.
           {"ContainerSpec", json::object{{"Image", job.image},
                                          {"Labels", labels},
                                          {"Args", std::move(args)},
                                          {"Env", std::move(env)},
                                          {"Mounts", std::move(mounts)},
                                          {"StopGracePeriod", 10'000'000'000}}},
           {"Placement", json::object{{"Constraints", json::array{"node.id==" + job.node_id}}}},
           {"RestartPolicy", json::object{{"Condition", "none"}}}}},
      {"Mode", json::object{{"ReplicatedJob",
                             json::object{{"MaxConcurrent", 1}, {"TotalCompletions", 1}}}}}};
}

bool task_ended(const std::string& state) {
  return state == "complete" || state == "failed" || state == "rejected" || state == "shutdown" ||
         state == "orphaned" || state == "remove";
}

}  // namespace

job_definition backup_job(const agent_job_spec& spec) {
  job_definition job;
  job.run_name = spec.run_name;
  job.labels[std::string(api::label::schedule)] = spec.schedule.metadata.name;
  job.node_id = spec.node_id;
  job.image = spec.image;
  job.args = {"agent", "--run", spec.run_name, "--file-name", spec.file_name};
  for (const auto& v : spec.volumes) {
    job.args.emplace_back("--volume");
    job.args.push_back(v);
    job.mounts.push_back({"volume", v, mount_path(v), true});
  }
  for (const auto& folder : spec.bind_folders) {
    job.mounts.push_back({"bind", folder, folder, false});
  }
  // The schedule travels in the environment: it holds no secrets (those are
  // files), and a config would be one more object to clean up after a crash.
  job.env.push_back("LIFEBOAT_AGENT_SCHEDULE=" + api::encode_yaml(spec.schedule));
  return job;
}

engine::result<agent_job> agent_job::start(const engine::client& client,
                                           const agent_job_spec& spec) {
  return start(client, backup_job(spec));
}

engine::result<agent_job> agent_job::start(const engine::client& client,
                                           const job_definition& job) {
  auto id = client.create_service(job_spec(job));
  if (!id) {
    return id.error();
  }
  return agent_job(client, std::move(*id));
}

agent_job::agent_job(agent_job&& other) noexcept
    : client_(other.client_), id_(std::move(other.id_)) {
  other.id_.clear();
}

agent_job::~agent_job() {
  if (!id_.empty()) {
    (void)client_->remove_service(id_);
  }
}

engine::result<void> agent_job::follow(const std::function<bool(std::string_view line)>& on_line,
                                       const std::atomic<bool>& cancel,
                                       std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  // The logs are read whole at each look (the engine cannot follow a
  // service's logs from an offset): what came before was handled.
  std::size_t handled = 0;
  for (;;) {
    // The task first: output read after it ended is complete.
    auto tasks = client_->list_tasks({{"service", {id_}}});
    if (!tasks) {
      return tasks.error();
    }
    const engine::task* task = tasks->empty() ? nullptr : &tasks->front();
    const bool ended = task != nullptr && task_ended(task->state);
    // A node that went down (its engine stopped, its machine lost) leaves
    // its task "running" in the manager's view for as long as Swarm keeps
    // orphans (a day): the node's state is what tells. Asked before the
    // logs, which a manager would wait for from a node that is gone.
    if (!ended && task != nullptr && !task->node_id.empty()) {
      if (auto nodes = client_->list_nodes({{"id", {task->node_id}}});
          nodes && !nodes->empty() && nodes->front().state == "down") {
        return engine::make_error(engine::errc::unavailable,
                                  "node " + nodes->front().hostname +
                                      " went down while its agent was running (task " +
                                      task->state + ")");
      }
    }
    auto output = client_->service_logs(id_);
    if (!output && output.error().is(engine::errc::timeout) && !ended) {
      // The node did not send its logs in time: it may be on its way down,
      // which the next look at its state tells.
      output = std::string();
    } else if (!output) {
      return output.error();
    }
    // A line without its newline yet is handled once it has one, or once
    // the task ended (then nothing more comes).
    while (handled < output->size()) {
      auto end = output->find('\n', handled);
      if (end == std::string::npos) {
        if (!ended) {
          break;
        }
        end = output->size();
      }
      const auto line = std::string_view(*output).substr(handled, end - handled);
      handled = end + 1;
      if (on_line(line)) {
        return {};
      }
    }
    if (ended) {
      std::string why = task->err.empty() ? task->message : task->err;
      return engine::make_error(engine::errc::server_error,
                                "the agent on node " + task->node_id + " ended (" + task->state +
                                    (why.empty() ? "" : ": " + why) + ") without a report");
    }
    if (cancel) {
      return engine::make_error(engine::errc::cancelled, "the run was cancelled");
    }
    if (std::chrono::steady_clock::now() >= until) {
      return engine::make_error(engine::errc::timeout,
                                "the agent did not finish in time" +
                                    (task == nullptr ? std::string(" (its task was never created)")
                                                     : " (its task is " + task->state +
                                                           " on node " + task->node_id + ")"));
    }
    std::this_thread::sleep_for(poll_interval);
  }
}

engine::result<agent_event> agent_job::wait(const std::function<void()>& on_volumes_read,
                                            const std::atomic<bool>& cancel,
                                            std::chrono::milliseconds timeout) const {
  bool read_reported = false;
  std::optional<agent_event> finished;
  auto followed = follow(
      [&](std::string_view line) {
        auto e = decode_agent_event(line);
        if (!e) {
          return false;
        }
        if (e->what == agent_event::kind::volumes_read) {
          if (!read_reported) {
            read_reported = true;
            on_volumes_read();
          }
          return false;
        }
        finished = std::move(*e);
        return true;
      },
      cancel, timeout);
  if (!followed) {
    return followed.error();
  }
  return std::move(*finished);
}

engine::result<std::size_t> remove_leftover_agent_jobs(
    const engine::client& client, const std::function<bool(const std::string& run)>& alive,
    const std::string& schedule) {
  engine::filters labelled{{"label", {std::string(agent_of_label)}}};
  if (!schedule.empty()) {
    labelled["label"].push_back(std::string(api::label::schedule) + "=" + schedule);
  }
  auto jobs = client.list_services(labelled, false);
  if (!jobs) {
    return jobs.error();
  }
  std::size_t removed = 0;
  for (const auto& j : *jobs) {
    const auto it = j.service_labels.find(std::string(agent_of_label));
    if (it == j.service_labels.end() || alive(it->second)) {
      continue;
    }
    if (auto r = client.remove_service(j.id); r || r.error().is(engine::errc::not_found)) {
      ++removed;
    } else {
      return r.error();
    }
  }
  return removed;
}

void write_report_line(std::FILE* out, std::string_view line) {
  std::fwrite(line.data(), 1, line.size(), out);
  std::fputc('\n', out);
  std::fflush(out);
}

}  // namespace lifeboat::backup
