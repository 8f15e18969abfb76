#include "controller/quiesce/quiesce.hpp"

#include <thread>

namespace lifeboat::quiesce {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

reconcilers::service_mode to_observed(engine::service_mode m) {
  switch (m) {
    case engine::service_mode::replicated:
      return reconcilers::service_mode::replicated;
    case engine::service_mode::global:
      return reconcilers::service_mode::global;
    case engine::service_mode::replicated_job:
      return reconcilers::service_mode::replicated_job;
    case engine::service_mode::global_job:
      return reconcilers::service_mode::global_job;
    case engine::service_mode::unknown:
      break;
  }
  return reconcilers::service_mode::unknown;
}

std::uint64_t force_update_of(const json::object& spec) {
  const auto* tt = spec.if_contains("TaskTemplate");
  if (tt == nullptr || !tt->is_object()) {
    return 0;
  }
  const auto* fu = tt->as_object().if_contains("ForceUpdate");
  if (fu == nullptr) {
    return 0;
  }
  if (fu->is_uint64()) {
    return fu->as_uint64();
  }
  return fu->is_int64() && fu->as_int64() > 0 ? static_cast<std::uint64_t>(fu->as_int64()) : 0;
}

json::object& child(json::object& o, std::string_view key) {
  auto& v = o[key];
  if (!v.is_object()) {
    v = json::object{};
  }
  return v.as_object();
}

// Re-reads the service and applies `change` to its current spec at `version`.
engine::result<void> update_service(const engine::client& client, const std::string& id,
                                    std::uint64_t version,
                                    const std::function<void(json::object&)>& change) {
  auto current = client.inspect_service(id);
  if (!current) {
    return current.error();
  }
  if (current->version != version) {
    return engine::make_error(engine::errc::conflict,
                              "service " + current->name + " changed since it was observed");
  }
  auto spec = current->spec;
  change(spec);
  return client.update_service(id, version, spec);
}

void wait(const pacing& pace, std::chrono::milliseconds d) {
  if (pace.sleep) {
    pace.sleep(d);
  } else {
    std::this_thread::sleep_for(d);
  }
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    out += out.empty() ? "" : "; ";
    out += p;
  }
  return out;
}

int count_workloads(const std::vector<quiesce_action>& applied) {
  int n = 0;
  for (const auto& a : applied) {
    n += std::holds_alternative<reconcilers::scale_to_zero>(a) ||
                 std::holds_alternative<reconcilers::stop_container>(a)
             ? 1
             : 0;
  }
  return n;
}

}  // namespace

engine::result<observed_state> observe(const engine::client& client) {
  auto services = client.list_services({}, false);
  if (!services) {
    return services.error();
  }
  auto tasks = client.list_tasks();
  if (!tasks) {
    return tasks.error();
  }
  auto containers = client.list_containers({}, true);
  if (!containers) {
    return containers.error();
  }
  observed_state out;
  for (auto& s : *services) {
    out.services.push_back({s.id, s.version, s.name, s.service_labels, s.container_labels,
                            to_observed(s.mode), s.replicas, s.restart_condition,
                            force_update_of(s.spec)});
  }
  for (auto& t : *tasks) {
    out.tasks.push_back({t.id, t.service_id, t.state, t.desired_state, t.container_id});
  }
  for (auto& c : *containers) {
    std::string name = c.names.empty() ? c.id : c.names.front();
    if (name.starts_with('/')) {
      name.erase(0, 1);
    }
    const auto service = c.container_labels.find(std::string(reconcilers::swarm_service_id_label));
    out.containers.push_back({c.id, name, c.container_labels, c.state, "",
                              service != c.container_labels.end() ? service->second : ""});
  }
  return out;
}

engine::result<void> apply(const engine::client& client, journal_store& journals,
                           const quiesce_action& action) {
  return std::visit(
      [&](const auto& a) -> engine::result<void> {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, reconcilers::scale_to_zero>) {
          return update_service(client, a.service_id, a.version, [&](json::object& spec) {
            child(child(spec, "Mode"), "Replicated")["Replicas"] = 0;
            auto& labels = child(spec, "Labels");
            for (const auto& [k, v] : a.labels_to_set()) {
              labels[k] = v;
            }
          });
        } else if constexpr (std::is_same_v<T, reconcilers::restore_replicas>) {
          return update_service(client, a.service_id, a.version, [&](json::object& spec) {
            child(child(spec, "Mode"), "Replicated")["Replicas"] = a.replicas;
            auto& labels = child(spec, "Labels");
            labels.erase(reconcilers::prior_replicas_label);
            labels.erase(reconcilers::held_by_label);
          });
        } else if constexpr (std::is_same_v<T, reconcilers::redeploy_service>) {
          return update_service(client, a.service_id, a.version, [&](json::object& spec) {
            child(spec, "TaskTemplate")["ForceUpdate"] = a.force_update;
          });
        } else if constexpr (std::is_same_v<T, reconcilers::record_journal>) {
          return journals.save(a.content);
        } else if constexpr (std::is_same_v<T, reconcilers::clear_journal>) {
          return journals.save(reconcilers::journal{a.run, {}});
        } else if constexpr (std::is_same_v<T, reconcilers::stop_container>) {
          auto stopped = client.stop_container(a.container_id, 30s);
          if (!stopped && stopped.error().is(engine::errc::not_found)) {
            return {};  // gone already: nothing left to stop
          }
          return stopped;
        } else {
          static_assert(std::is_same_v<T, reconcilers::start_container>);
          return client.start_container(a.container_id);
        }
      },
      action);
}

outcome reach(const engine::client& client, journal_store& journals, const quiesce_run& run,
              quiesce_goal goal, std::chrono::milliseconds timeout, const pacing& pace) {
  const auto deadline = pace.now() + timeout;
  std::vector<quiesce_action> applied;
  std::string last_problem;
  for (;;) {
    auto observed = observe(client);
    auto recorded = observed ? journals.load(run.name) : engine::result<journal>(observed.error());
    if (observed && recorded) {
      const auto plan = reconcilers::plan_quiesce(run, goal, *observed, *recorded);
      if (goal == quiesce_goal::quiesced && !plan.errors.empty()) {
        return {false, join(plan.errors), count_workloads(applied)};
      }
      if (plan.actions.empty()) {
        const auto conv = reconcilers::check_convergence(run, goal, *observed, *recorded, applied);
        if (conv.converged()) {
          return {plan.errors.empty(), join(plan.errors), count_workloads(applied)};
        }
        last_problem = reconcilers::describe(conv);
      }
      for (const auto& action : plan.actions) {
        auto done = apply(client, journals, action);
        if (!done) {
          // A conflict means the state moved: observe and plan again.
          last_problem = reconcilers::describe(action) + ": " + done.error().describe();
          break;
        }
        applied.push_back(action);
      }
    } else {
      last_problem = observed ? recorded.error().describe() : observed.error().describe();
    }
    if (pace.now() >= deadline) {
      return {false,
              std::string(goal == quiesce_goal::quiesced ? "quiescing" : "resuming") +
                  " timed out: " + last_problem,
              count_workloads(applied)};
    }
    wait(pace, pace.poll);
  }
}

held_outcome with_quiesced(const engine::client& client, journal_store& journals,
                           const quiesce_run& run, std::chrono::milliseconds scale_down_timeout,
                           std::chrono::milliseconds scale_up_timeout,
                           const std::function<void(int workloads)>& body, const pacing& pace) {
  held_outcome result;
  const auto start = pace.now();
  result.quiesce = reach(client, journals, run, quiesce_goal::quiesced, scale_down_timeout, pace);
  if (result.quiesce.ok) {
    try {
      result.body_ran = true;
      body(result.quiesce.workloads);
    } catch (...) {
      result.resume = reach(client, journals, run, quiesce_goal::restored, scale_up_timeout, pace);
      throw;
    }
  }
  result.resume = reach(client, journals, run, quiesce_goal::restored, scale_up_timeout, pace);
  result.held = std::chrono::duration_cast<std::chrono::milliseconds>(pace.now() - start);
  return result;
}

recovery_report recover(const engine::client& client, journal_store& journals,
                        const std::set<std::string>& active_runs, std::chrono::milliseconds timeout,
                        const pacing& pace) {
  recovery_report report;
  auto observed = observe(client);
  if (!observed) {
    report.failures.push_back("observing the engine: " + observed.error().describe());
    return report;
  }
  auto all = journals.load_all();
  if (!all) {
    report.failures.push_back("reading journals: " + all.error().describe());
    return report;
  }
  for (const auto& run : reconcilers::held_runs(*observed, *all)) {
    if (active_runs.contains(run)) {
      continue;
    }
    const auto result =
        reach(client, journals, quiesce_run{run, ""}, quiesce_goal::restored, timeout, pace);
    if (result.ok) {
      report.recovered.push_back(run);
    } else {
      report.failures.push_back(run + ": " + result.message);
    }
  }
  return report;
}

}  // namespace lifeboat::quiesce
