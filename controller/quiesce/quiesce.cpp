#include "controller/quiesce/quiesce.hpp"

#include "reconcilers/placement.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <span>
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

// Spec.TaskTemplate.ContainerSpec.Mounts[] with Type "volume": their Sources.
std::vector<std::string> volume_sources(const json::object& spec) {
  std::vector<std::string> out;
  const auto* tt = spec.if_contains("TaskTemplate");
  const auto* cs =
      tt != nullptr && tt->is_object() ? tt->as_object().if_contains("ContainerSpec") : nullptr;
  const auto* mounts =
      cs != nullptr && cs->is_object() ? cs->as_object().if_contains("Mounts") : nullptr;
  if (mounts == nullptr || !mounts->is_array()) {
    return out;
  }
  for (const auto& m : mounts->as_array()) {
    const auto* o = m.if_object();
    if (o == nullptr) {
      continue;
    }
    const auto* type = o->if_contains("Type");
    const auto* source = o->if_contains("Source");
    if (type != nullptr && type->is_string() && type->as_string() == "volume" &&
        source != nullptr && source->is_string() && !source->as_string().empty()) {
      out.emplace_back(source->as_string());
    }
  }
  return out;
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

// Swarm keeps the spec an update replaced as PreviousSpec, and `docker
// service rollback` returns to it: after the restoring update that is the
// held spec, at zero replicas and labelled as held by a run that is over. The
// same spec sent once more makes the restored spec the previous one too, so a
// rollback changes nothing. Best effort: the restore itself succeeded; should
// this fail, a rollback brings back the held spec, which recovery (the
// controller's resync, `lifeboat recover`) then restores as a finished run's.
void forget_held_spec(const engine::client& client, const std::string& service_id) {
  auto current = client.inspect_service(service_id);
  if (current) {
    (void)client.update_service(service_id, current->version, current->spec);
  }
}

// How long a stop waits before it kills: for a Swarm task, its service's
// stop_grace_period (Swarm's own default when unset), the time the user gave
// the process and the time Swarm itself gives it on a scale-down; 30 s for
// any other container. A process that ignores SIGTERM is then killed no later
// than Swarm would, and its task's end is seen (check_restarted_tasks) soon.
std::chrono::seconds stop_grace(const engine::client& client, const std::string& container_id) {
  constexpr std::chrono::seconds plain{30};
  constexpr std::chrono::seconds swarm_default{10};
  auto c = client.inspect_container(container_id);
  if (!c) {
    return plain;
  }
  const auto service_id =
      c->container_labels.find(std::string(reconcilers::swarm_service_id_label));
  if (service_id == c->container_labels.end()) {
    return plain;
  }
  auto s = client.inspect_service(service_id->second);
  if (!s) {
    return swarm_default;
  }
  const auto* tt = s->spec.if_contains("TaskTemplate");
  const auto* cs =
      tt != nullptr && tt->is_object() ? tt->as_object().if_contains("ContainerSpec") : nullptr;
  const auto* grace =
      cs != nullptr && cs->is_object() ? cs->as_object().if_contains("StopGracePeriod") : nullptr;
  if (grace == nullptr || !grace->is_number()) {
    return swarm_default;
  }
  // Nanoseconds, rounded up to whole seconds (the stop API's unit).
  const auto ns = grace->to_number<double>();
  return std::chrono::seconds{static_cast<std::int64_t>(std::max(0.0, std::ceil(ns / 1e9)))};
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

std::string seconds_text(std::chrono::system_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
}

// Renews a run's ownership record every renew_every, from a thread of its
// own, until stop(). Once the record is gone, or has not been renewed within
// its expiry, the run may have been released by another process's recovery:
// check() says so.
class heartbeat {
 public:
  heartbeat(journal_store& journals, reconcilers::run_owner record, const run_ownership& own)
      : journals_(journals), record_(std::move(record)), own_(own), thread_([this] { loop(); }) {}

  ~heartbeat() { stop(); }
  heartbeat(const heartbeat&) = delete;
  heartbeat& operator=(const heartbeat&) = delete;

  /// Idempotent; returns once the thread has ended.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  /// Renews now, on the calling thread, and returns why the run may have
  /// been released since it was claimed; empty when it cannot have been.
  std::string check() {
    std::lock_guard lock(mutex_);
    renew_locked();
    return lost_;
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, own_.renew_every, [this] { return stopping_; })) {
      renew_locked();  // stop() waits for a renewal under way: it is short
    }
  }

  void renew_locked() {
    if (!lost_.empty()) {
      return;
    }
    auto next = record_;
    next.heartbeat = own_.wall_now();
    auto renewed = journals_.renew_run(next);
    if (renewed) {
      record_ = std::move(next);
      return;
    }
    if (renewed.error().is(engine::errc::not_found)) {
      lost_ = renewed.error().describe();
    } else if (next.heartbeat - record_.heartbeat >= record_.expiry) {
      lost_ = "the ownership record of run " + record_.run + " was not renewed for " +
              seconds_text(next.heartbeat - record_.heartbeat) + " (it expires after " +
              seconds_text(record_.expiry) + "): " + renewed.error().describe();
    }
    // Otherwise another attempt comes at the next tick.
  }

  journal_store& journals_;
  reconcilers::run_owner record_;  ///< as last renewed
  const run_ownership& own_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string lost_;
  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace

namespace {

std::set<std::string> gone_local_owners(std::span<const reconcilers::run_owner> owners) {
  // An identity is "<host>/<pid>/<nonce>" (process_identity). On our own host
  // (in a container: in our own PID namespace, as the host name is the
  // container's) a PID that no longer exists is a dead owner. A PID reused by
  // another process counts as alive: the run then waits for its expiry, the
  // safe side.
  std::array<char, 256> host{};
  ::gethostname(host.data(), host.size() - 1);
  const std::string prefix = std::string(host.data()) + "/";
  std::set<std::string> gone;
  for (const auto& o : owners) {
    if (!o.owner.starts_with(prefix)) {
      continue;
    }
    const auto rest = std::string_view(o.owner).substr(prefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) {
      continue;
    }
    pid_t pid = 0;
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + slash, pid);
    if (ec != std::errc{} || end != rest.data() + slash || pid <= 0) {
      continue;
    }
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      gone.insert(o.owner);
    }
  }
  return gone;
}

}  // namespace

const std::string& process_identity() {
  // Computed again in a forked child, which is another process.
  static std::mutex mutex;
  static pid_t pid = 0;
  static std::string identity;
  std::lock_guard lock(mutex);
  if (pid != ::getpid()) {
    pid = ::getpid();
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::random_device random;
    char nonce[17] = {};
    std::snprintf(nonce, sizeof nonce, "%08x%08x", random(), random());
    identity = std::string(host) + "/" + std::to_string(pid) + "/" + nonce;
  }
  return identity;
}

namespace {

// The engine refuses a task listing filtered by a service that is gone (404),
// and a service listed a moment ago may be removed before its tasks are
// listed: an agent job finishing, or a user's `docker service rm`. What lists
// services and then their tasks is done again then (up to three times in
// all), and sees the swarm without it.
template <typename Observe>
auto again_if_a_service_vanished(const Observe& observe) {
  constexpr int attempts = 3;
  auto observed = observe();
  for (int i = 1; i < attempts && !observed && observed.error().is(engine::errc::not_found); ++i) {
    observed = observe();
  }
  return observed;
}

engine::result<observed_state> observe_scoped_once(
    const engine::client& client,
    const std::function<bool(const reconcilers::observed_service&)>* tasks_of) {
  auto services = client.list_services({}, false);
  if (!services) {
    return services.error();
  }
  observed_state out;
  engine::filters task_filter;
  for (const auto& s : *services) {
    out.services.push_back(quiesce::to_observed(s));
    if (tasks_of != nullptr && (*tasks_of)(out.services.back())) {
      task_filter["service"].push_back(s.id);
    }
  }
  engine::result<std::vector<engine::task>> tasks = std::vector<engine::task>{};
  if (tasks_of == nullptr) {
    tasks = client.list_tasks();
  } else if (!task_filter.empty()) {
    tasks = client.list_tasks(task_filter);
  }
  if (!tasks) {
    return tasks.error();
  }
  auto containers = client.list_containers({}, true);
  if (!containers) {
    return containers.error();
  }
  for (auto& t : *tasks) {
    out.tasks.push_back(
        {t.id, t.service_id, t.state, t.desired_state, t.container_id, t.exit_code});
  }
  for (const auto& c : *containers) {
    out.containers.push_back(quiesce::to_observed(c));
  }
  return out;
}

// Only a listing of some services' tasks can meet one that vanished.
engine::result<observed_state> observe_scoped(
    const engine::client& client,
    const std::function<bool(const reconcilers::observed_service&)>* tasks_of) {
  if (tasks_of == nullptr) {
    return observe_scoped_once(client, tasks_of);
  }
  return again_if_a_service_vanished([&] { return observe_scoped_once(client, tasks_of); });
}

// What recovery plans from: the services whose lifeboat.held-by label names
// the run that holds them (a held service that lost its labels is still found
// through its run's journal). Only those: the engine filters by the label, so
// a resync on a swarm of many services reads a few, not all of them (300
// services listed during a held run were the controller's largest transient).
// Their tasks and the node's containers are left out too: each run released
// observes its own.
engine::result<observed_state> observe_holders(const engine::client& client) {
  auto services =
      client.list_services({{"label", {std::string(reconcilers::held_by_label)}}}, false);
  if (!services) {
    return services.error();
  }
  observed_state out;
  for (const auto& s : *services) {
    out.services.push_back(quiesce::to_observed(s));
  }
  return out;
}

}  // namespace

engine::result<observed_state> observe(const engine::client& client) {
  return observe_scoped(client, nullptr);
}

engine::result<observed_state> observe(
    const engine::client& client,
    const std::function<bool(const reconcilers::observed_service&)>& tasks_of) {
  return observe_scoped(client, &tasks_of);
}

reconcilers::observed_service to_observed(const engine::service& s) {
  return {s.id,
          s.version,
          s.name,
          s.service_labels,
          s.container_labels,
          to_observed(s.mode),
          s.replicas,
          s.restart_condition,
          force_update_of(s.spec),
          volume_sources(s.spec)};
}

reconcilers::observed_container to_observed(const engine::container_summary& c) {
  std::string name = c.names.empty() ? c.id : c.names.front();
  if (name.starts_with('/')) {
    name.erase(0, 1);
  }
  const auto service = c.container_labels.find(std::string(reconcilers::swarm_service_id_label));
  std::vector<std::string> volumes;
  for (const auto& m : c.mounts) {
    if (m.type == "volume" && !m.name.empty()) {
      volumes.push_back(m.name);
    }
  }
  return {c.id,
          name,
          c.container_labels,
          c.state,
          "",
          service != c.container_labels.end() ? service->second : "",
          std::move(volumes)};
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
            // A hold makes what an earlier run left stopped out of date.
            labels.erase(reconcilers::left_stopped_by_label);
            labels.erase(reconcilers::left_stopped_replicas_label);
            for (const auto& [k, v] : a.labels_to_set()) {
              labels[k] = v;
            }
          });
        } else if constexpr (std::is_same_v<T, reconcilers::restore_replicas>) {
          auto restored = update_service(client, a.service_id, a.version, [&](json::object& spec) {
            child(child(spec, "Mode"), "Replicated")["Replicas"] = a.replicas;
            auto& labels = child(spec, "Labels");
            labels.erase(reconcilers::prior_replicas_label);
            labels.erase(reconcilers::held_by_label);
          });
          if (restored) {
            forget_held_spec(client, a.service_id);
          }
          return restored;
        } else if constexpr (std::is_same_v<T, reconcilers::leave_stopped>) {
          auto released = update_service(client, a.service_id, a.version, [&](json::object& spec) {
            auto& labels = child(spec, "Labels");
            labels.erase(reconcilers::prior_replicas_label);
            labels.erase(reconcilers::held_by_label);
            labels.erase(reconcilers::held_no_restart_label);
            for (const auto& [k, v] : a.labels_to_set()) {
              labels[k] = v;
            }
          });
          if (released) {
            forget_held_spec(client, a.service_id);
          }
          return released;
        } else if constexpr (std::is_same_v<T, reconcilers::redeploy_service>) {
          return update_service(client, a.service_id, a.version, [&](json::object& spec) {
            child(spec, "TaskTemplate")["ForceUpdate"] = a.force_update;
          });
        } else if constexpr (std::is_same_v<T, reconcilers::record_journal>) {
          return journals.save(a.content);
        } else if constexpr (std::is_same_v<T, reconcilers::clear_journal>) {
          return journals.save(reconcilers::journal{a.run, {}});
        } else if constexpr (std::is_same_v<T, reconcilers::stop_container>) {
          auto stopped = client.stop_container(a.container_id, stop_grace(client, a.container_id));
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

namespace {

// reach(), also giving the observation and journal on which the goal was
// found converged (when it was).
outcome reach_observed(const engine::client& client, journal_store& journals,
                       const quiesce_run& run, quiesce_goal goal, std::chrono::milliseconds timeout,
                       const pacing& pace, observed_state* converged_on,
                       journal* converged_journal) {
  const auto deadline = pace.now() + timeout;
  std::vector<quiesce_action> applied;
  std::string last_problem;
  std::string unreadable_journal;
  std::set<std::string> watched;
  // What the run leaves stopped, as every plan so far named it: a service
  // leaves the plans once released.
  std::vector<std::string> left_stopped;
  const auto finish = [&](outcome o) {
    o.left_stopped = left_stopped;
    return o;
  };
  // The deadline, brought forward once the process is told to stop.
  const auto deadline_now = [&] {
    auto until = deadline;
    if (pace.stop_by) {
      if (const auto by = pace.stop_by(); by && *by < until) {
        until = *by;
      }
    }
    return until;
  };
  for (;;) {
    // The journal first: it names services whose tasks the plan needs.
    auto recorded = journals.load(run.name);
    const journal scope_journal = recorded ? *recorded : journal{};
    auto observed = observe(client, [&](const reconcilers::observed_service& s) {
      // A service this reach has seen held stays watched after its labels
      // are gone: convergence waits for its tasks to run again.
      if (reconcilers::holder(s) == run.name) {
        watched.insert(s.id);
      }
      return watched.contains(s.id) || reconcilers::tasks_matter(run, s, scope_journal);
    });
    if (observed && !recorded && goal == quiesce_goal::restored &&
        recorded.error().is(engine::errc::protocol_error)) {
      // A journal that cannot be read must not keep the run's services down:
      // their labels say what they had. Its containers cannot be known; the
      // journal is left for a person, and the outcome says so.
      unreadable_journal = recorded.error().describe();
      recorded = journal{run.name, {}};
    }
    if (observed && recorded) {
      const auto plan = reconcilers::plan_quiesce(run, goal, *observed, *recorded);
      for (const auto& left : plan.left_stopped) {
        if (std::find(left_stopped.begin(), left_stopped.end(), left) == left_stopped.end()) {
          left_stopped.push_back(left);
        }
      }
      if (goal == quiesce_goal::quiesced && !plan.errors.empty()) {
        return finish({false, join(plan.errors), count_workloads(applied)});
      }
      if (plan.actions.empty()) {
        const auto conv = reconcilers::check_convergence(run, goal, *observed, *recorded, applied);
        if (conv.converged()) {
          if (converged_on != nullptr) {
            *converged_on = std::move(*observed);
          }
          if (converged_journal != nullptr) {
            *converged_journal = std::move(*recorded);
          }
          if (!unreadable_journal.empty()) {
            auto errors = plan.errors;
            errors.push_back(
                "services brought back, but the journal of stopped containers "
                "could not be read (" +
                unreadable_journal +
                "); start any container it held by hand, then remove the "
                "journal config");
            return finish({false, join(errors), count_workloads(applied)});
          }
          return finish({plan.errors.empty(), join(plan.errors), count_workloads(applied)});
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
    if (pace.now() >= deadline_now()) {
      return finish({false,
                     std::string(goal == quiesce_goal::quiesced ? "quiescing" : "resuming") +
                         " timed out: " + last_problem,
                     count_workloads(applied)});
    }
    wait(pace, pace.poll);
  }
}

// The services whose tasks tell whether `run` holds its workloads: those it
// holds, those whose containers it stopped (in `recorded`), and those it
// selects that are at zero (emptied, or left at zero by their owner).
std::set<std::string> watched_services(const quiesce_run& run, const observed_state& observed,
                                       const journal& recorded) {
  std::set<std::string> out;
  for (const auto& e : recorded.entries) {
    if (!e.service_id.empty()) {
      out.insert(e.service_id);
    }
  }
  for (const auto& s : observed.services) {
    if (reconcilers::holder(s) == run.name ||
        (reconcilers::selects_service(run, s) && s.replicas.value_or(1) == 0)) {
      out.insert(s.id);
    }
  }
  return out;
}

hold_baseline baseline_of(const quiesce_run& run, const observed_state& observed,
                          journal recorded) {
  hold_baseline b;
  b.run = run.name;
  for (const auto& s : observed.services) {
    if (reconcilers::holder(s) == run.name) {
      const auto mark = s.service_labels.find(std::string(reconcilers::held_no_restart_label));
      b.services.push_back({s.id, s.name, reconcilers::recorded_prior(s).value_or(0),
                            mark != s.service_labels.end() && mark->second == "true"});
    }
  }
  b.watched_services = watched_services(run, observed, recorded);
  b.stopped = std::move(recorded);
  for (const auto& t : observed.tasks) {
    if (b.watched_services.contains(t.service_id)) {
      b.task_ids.insert(t.id);
    }
  }
  return b;
}

// Gives a service of the baseline that lost lifeboat's labels while at zero
// (removed by hand, or by a deploy that kept the count) its labels back, so
// that resuming brings back its prior count rather than leaving it at zero
// with no record of that count. Best effort: what fails is reported.
std::string reclaim_released(const engine::client& client, const quiesce_run& run,
                             const hold_baseline& baseline) {
  std::vector<std::string> problems;
  for (const auto& held : baseline.services) {
    auto s = client.inspect_service(held.id);
    if (!s) {
      if (!s.error().is(engine::errc::not_found)) {
        problems.push_back("service " + held.name + ": " + s.error().describe());
      }
      continue;
    }
    const auto left = s->service_labels.find(std::string(reconcilers::left_stopped_by_label));
    if (held.no_restart && left != s->service_labels.end() && left->second == run.name) {
      continue;  // released at zero on purpose, by an earlier resume of this run
    }
    const auto holder = s->service_labels.find(std::string(reconcilers::held_by_label));
    if (holder != s->service_labels.end() || s->mode != engine::service_mode::replicated ||
        s->replicas.value_or(1) != 0 || held.prior_replicas == 0) {
      continue;  // still labelled (ours or another run's), or running: not lost
    }
    auto relabelled = update_service(client, s->id, s->version, [&](json::object& spec) {
      auto& labels = child(spec, "Labels");
      labels[reconcilers::prior_replicas_label] = std::to_string(held.prior_replicas);
      labels[reconcilers::held_by_label] = run.name;
      if (held.no_restart) {
        labels[reconcilers::held_no_restart_label] = "true";
      }
    });
    if (!relabelled) {
      problems.push_back("service " + held.name + " lost its labels while held at zero; giving " +
                         "them back: " + relabelled.error().describe() + "; scale it to " +
                         std::to_string(held.prior_replicas) + " by hand");
    }
  }
  return join(problems);
}

}  // namespace

outcome reach(const engine::client& client, journal_store& journals, const quiesce_run& run,
              quiesce_goal goal, std::chrono::milliseconds timeout, const pacing& pace) {
  return reach_observed(client, journals, run, goal, timeout, pace, nullptr, nullptr);
}

engine::result<void> holds_still_hold(const engine::client& client, journal_store& journals,
                                      const quiesce_run& run, const hold_baseline& baseline) {
  auto recorded = journals.load(run.name);
  if (!recorded) {
    return recorded.error();
  }
  auto observed = observe(client, [&](const reconcilers::observed_service& s) {
    return baseline.watched_services.contains(s.id) || reconcilers::tasks_matter(run, s, *recorded);
  });
  if (!observed) {
    return observed.error();
  }
  // One line per workload, the first reason found.
  std::map<std::string, std::string> problems;
  const auto problem = [&](const std::string& workload, std::string what) {
    problems.try_emplace(workload, workload + " " + std::move(what));
  };
  std::map<std::string_view, const reconcilers::observed_service*> by_id;
  for (const auto& s : observed->services) {
    by_id.emplace(s.id, &s);
  }
  for (const auto& held : baseline.services) {
    const auto found = by_id.find(held.id);
    if (found == by_id.end()) {
      continue;  // removed, and its tasks with it: nothing of it writes
    }
    const auto& s = *found->second;
    const auto replicas = s.replicas.value_or(0);
    if (reconcilers::holder(s) != run.name) {
      problem("service " + s.name,
              "is no longer held by run " + run.name + ": its label " +
                  std::string(reconcilers::held_by_label) +
                  " was changed or removed (by docker stack deploy, docker service rollback or "
                  "by hand); it has " +
                  std::to_string(replicas) + " replica(s) now and had " +
                  std::to_string(held.prior_replicas) + " before the run" +
                  (replicas == 0 ? " (it gets them back when the run resumes)" : ""));
    } else if (replicas > 0) {
      problem("service " + s.name, "was scaled to " + std::to_string(replicas) +
                                       " replica(s) while held by run " + run.name +
                                       " (it gets its " + std::to_string(held.prior_replicas) +
                                       " back when the run resumes)");
    }
  }
  // A task that started since the baseline, even one that ended again, ran
  // while the volumes were read; one of a service watched only now (selected
  // and at zero since) counts while it runs.
  const auto watched_now = watched_services(run, *observed, *recorded);
  for (const auto& t : observed->tasks) {
    const bool started =
        baseline.watched_services.contains(t.service_id) && !baseline.task_ids.contains(t.id);
    const bool running = watched_now.contains(t.service_id) &&
                         reconcilers::is_active_task_state(t.state) &&
                         !baseline.task_ids.contains(t.id);
    if (!started && !running) {
      continue;
    }
    const auto found = by_id.find(t.service_id);
    const std::string name = found != by_id.end() ? found->second->name : t.service_id;
    problem("service " + name, "started task " + t.id + " (now " + t.state +
                                   ") while its workloads were held by run " + run.name);
  }
  for (const auto& e : baseline.stopped.entries) {
    for (const auto& c : observed->containers) {
      if (c.id == e.container_id && reconcilers::is_running_container_state(c.state)) {
        problem("container " + c.name, "runs again, stopped by run " + run.name);
      }
    }
  }
  // Anything else the run selects that would have to be quiesced again.
  const auto plan = reconcilers::plan_quiesce(run, quiesce_goal::quiesced, *observed, *recorded);
  for (const auto& error : plan.errors) {
    problems.try_emplace(error, error);
  }
  for (const auto& action : plan.actions) {
    std::visit(
        [&](const auto& a) {
          using T = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<T, reconcilers::scale_to_zero>) {
            problem("service " + a.service_name, "runs " + std::to_string(a.prior_replicas) +
                                                     " replica(s), selected by run " + run.name);
          } else if constexpr (std::is_same_v<T, reconcilers::stop_container>) {
            problem("container " + a.container_name, "runs, selected by run " + run.name);
          }
        },
        action);
  }
  if (problems.empty()) {
    return {};
  }
  std::vector<std::string> lines;
  for (auto& [workload, line] : problems) {
    lines.push_back(std::move(line));
  }
  return engine::make_error(engine::errc::conflict,
                            "run " + run.name + " no longer holds its workloads: " + join(lines));
}

held_outcome with_quiesced(const engine::client& client, journal_store& journals,
                           const quiesce_run& run, std::chrono::milliseconds scale_down_timeout,
                           std::chrono::milliseconds scale_up_timeout,
                           const std::function<void(const holding& held)>& body,
                           const pacing& pace) {
  held_outcome result;
  const auto& own = pace.ownership;
  // Before the first action: recovery elsewhere must find the record as soon
  // as it can observe anything this run holds.
  const reconcilers::run_owner record{run.name, own.owner, own.wall_now(), own.expiry};
  if (auto claimed = journals.claim_run(record); !claimed) {
    result.quiesce = {
        false,
        "cannot record that this process owns run " + run.name + ": " + claimed.error().describe(),
        0};
    result.resume = {true, "", 0};  // nothing was touched
    return result;
  }
  const auto start = pace.now();
  heartbeat beat(journals, record, own);
  holding held;
  const auto resume = [&] {
    const auto reclaimed = reclaim_released(client, run, held.baseline);
    result.resume = reach(client, journals, run, quiesce_goal::restored, scale_up_timeout, pace);
    if (!reclaimed.empty()) {
      result.resume.ok = false;
      result.resume.message += (result.resume.message.empty() ? "" : "; ") + reclaimed;
    }
    beat.stop();
    if (result.resume.ok) {
      // If this fails, the record expires and recovery forgets it.
      (void)journals.drop_run(run.name);
    }
  };
  observed_state converged_on;
  journal converged_journal;
  result.quiesce = reach_observed(client, journals, run, quiesce_goal::quiesced, scale_down_timeout,
                                  pace, &converged_on, &converged_journal);
  if (result.quiesce.ok) {
    held.workloads = result.quiesce.workloads;
    held.baseline = baseline_of(run, converged_on, std::move(converged_journal));
    try {
      result.body_ran = true;
      body(held);
    } catch (...) {
      resume();
      throw;
    }
    if (auto lost = beat.check(); !lost.empty()) {
      result.quiesce.ok = false;
      result.quiesce.message =
          lost + "; another process may have brought the workloads back while they were held";
    }
  }
  resume();
  result.held = std::chrono::duration_cast<std::chrono::milliseconds>(pace.now() - start);
  return result;
}

held_outcome with_quiesced(const engine::client& client, journal_store& journals,
                           const quiesce_run& run, std::chrono::milliseconds scale_down_timeout,
                           std::chrono::milliseconds scale_up_timeout,
                           const std::function<void(int workloads)>& body, const pacing& pace) {
  return with_quiesced(
      client, journals, run, scale_down_timeout, scale_up_timeout,
      [&](const holding& held) { body(held.workloads); }, pace);
}

// The volume containers of dead runs (never started: they hold only the
// volumes' mounts, which keeps `docker volume rm` from removing them). The
// next backup of a schedule removes its own; a restore's would stay forever.
void remove_leftover_helpers(const engine::client& client,
                             std::span<const reconcilers::run_owner> owners,
                             const std::set<std::string>& active_runs, const pacing& pace,
                             recovery_report& report) {
  engine::filters f;
  f["label"].push_back(std::string(reconcilers::helper_container_label) + "=true");
  auto listed = client.list_containers(f, /*all=*/true);
  if (!listed) {
    report.failures.push_back("listing helper containers: " + listed.error().describe());
    return;
  }
  std::vector<reconcilers::helper_container> helpers;
  std::map<std::string, std::string> name_of;
  for (const auto& c : *listed) {
    const std::string name = c.names.empty() ? c.id : c.names.front();
    helpers.push_back({c.id, reconcilers::helper_run_of(name),
                       std::chrono::system_clock::time_point{std::chrono::seconds{c.created}}});
    name_of[c.id] = name.starts_with('/') ? name.substr(1) : name;
  }
  const auto leftovers = reconcilers::leftover_helpers(
      helpers, owners, pace.ownership.owner, active_runs, pace.ownership.wall_now(),
      pace.ownership.expiry, gone_local_owners(owners));
  for (const auto& id : leftovers) {
    auto removed = client.remove_container(id, /*force=*/true);
    // 409 "removal ... already in progress": someone else (the dying run's
    // own clean-up, a parallel recovery) is removing it, which is the goal.
    if (!removed && !removed.error().is(engine::errc::not_found) &&
        !removed.error().is(engine::errc::conflict)) {
      report.failures.push_back(name_of[id] + ": removing it: " + removed.error().describe());
    } else {
      report.removed.push_back(name_of[id]);
    }
  }
}

// A run killed while dockerd was stopping one of its containers leaves the
// stop in flight: dockerd carries it out without its caller. Recovery then
// sees the container still running, finds nothing to start, and the stop
// lands a moment later (hack/chaos.sh found chaos_solo left exited this way).
// So each journaled container of a dead run that still runs is given the time
// its stop may take (the grace a run gives it, plus 2 s) to stop; if it does,
// restoring starts it like any stopped one. The wait is only this long when
// the run died between journaling a container and asking for its stop.
void await_stops_in_flight(const engine::client& client, journal_store& journals,
                           const std::string& run, const pacing& pace) {
  auto recorded = journals.load(run);
  if (!recorded) {
    return;  // restoring reports the unreadable journal
  }
  for (const auto& entry : recorded->entries) {
    auto c = client.inspect_container(entry.container_id);
    if (!c || !c->running) {
      continue;
    }
    const auto deadline =
        pace.now() + stop_grace(client, entry.container_id) + std::chrono::seconds{2};
    while (c && c->running && pace.now() < deadline) {
      if (pace.stop_by) {
        if (const auto by = pace.stop_by(); by && pace.now() >= *by) {
          return;
        }
      }
      wait(pace, pace.poll);
      c = client.inspect_container(entry.container_id);
    }
  }
}

recovery_report recover(const engine::client& client, journal_store& journals,
                        const std::set<std::string>& active_runs, std::chrono::milliseconds timeout,
                        const pacing& pace) {
  return recover_beside_live_runs(
      client, journals, [&active_runs] { return active_runs; }, timeout, pace);
}

recovery_report recover_beside_live_runs(const engine::client& client, journal_store& journals,
                                         const std::function<std::set<std::string>()>& live_runs,
                                         std::chrono::milliseconds timeout, const pacing& pace) {
  recovery_report report;
  auto observed = observe_holders(client);
  if (!observed) {
    report.failures.push_back("observing the engine: " + observed.error().describe());
    return report;
  }
  // One unreadable journal or record is reported and skipped: the others'
  // workloads still come back.
  auto all = journals.load_all(report.failures);
  if (!all) {
    report.failures.push_back("reading journals: " + all.error().describe());
    return report;
  }
  // After observing: a run claims its record before it holds anything.
  auto owners = journals.load_owners(report.failures);
  if (!owners) {
    report.failures.push_back("reading ownership records: " + owners.error().describe());
    return report;
  }
  const std::set<std::string> active_runs = live_runs();
  const auto plan =
      reconcilers::plan_recovery(*observed, *all, *owners, pace.ownership.owner, active_runs,
                                 pace.ownership.wall_now(), gone_local_owners(*owners));
  report.kept = plan.kept;
  remove_leftover_helpers(client, *owners, active_runs, pace, report);
  for (const auto& run : plan.forget) {
    if (auto dropped = journals.drop_run(run); !dropped) {
      report.failures.push_back(run +
                                ": removing its ownership record: " + dropped.error().describe());
    }
  }
  for (const auto& run : plan.release) {
    if (pace.stop_by) {
      if (const auto by = pace.stop_by(); by && pace.now() >= *by) {
        report.failures.push_back(run + ": left for the next controller's recovery: stopping");
        continue;
      }
    }
    // First, so that an owner alive after all learns it lost the run.
    if (auto dropped = journals.drop_run(run); !dropped) {
      report.failures.push_back(run +
                                ": removing its ownership record: " + dropped.error().describe());
      continue;
    }
    await_stops_in_flight(client, journals, run, pace);
    const auto result =
        reach(client, journals, quiesce_run{run, ""}, quiesce_goal::restored, timeout, pace);
    for (const auto& left : result.left_stopped) {
      report.left_stopped.push_back(run + ": " + left);
    }
    if (result.ok) {
      report.recovered.push_back(run);
    } else {
      report.failures.push_back(run + ": " + result.message);
    }
  }
  return report;
}

namespace {

// The volumes among `volumes` kept on other nodes, and the host names of the
// nodes involved (this one's under its own ID too).
struct placement_found {
  std::string self;
  std::vector<reconcilers::volume_elsewhere> elsewhere;
  std::map<std::string, std::string> names;

  const std::string& name_of(const std::string& id) const {
    const auto it = names.find(id);
    return it == names.end() || it->second.empty() ? id : it->second;
  }
};

engine::result<placement_found> find_placement_once(const engine::client& client,
                                                    const std::vector<std::string>& volumes) {
  placement_found found;
  auto info = client.info();
  if (!info) {
    return info.error();
  }
  found.self = info->swarm.node_id;
  if (info->swarm.local_node_state != "active" || found.self.empty() || volumes.empty()) {
    return found;
  }
  auto services = client.list_services({}, false);
  if (!services) {
    return services.error();
  }
  const std::set<std::string> wanted(volumes.begin(), volumes.end());
  std::vector<reconcilers::observed_service> mounting;
  engine::filters by_service;
  for (const auto& s : *services) {
    auto observed = quiesce::to_observed(s);
    if (std::any_of(observed.volumes.begin(), observed.volumes.end(),
                    [&](const std::string& v) { return wanted.contains(v); })) {
      by_service["service"].push_back(observed.id);
      mounting.push_back(std::move(observed));
    }
  }
  if (mounting.empty()) {
    return found;
  }
  auto tasks = client.list_tasks(by_service);
  if (!tasks) {
    return tasks.error();
  }
  std::vector<reconcilers::task_placement> placed;
  for (const auto& t : *tasks) {
    placed.push_back({t.service_id, t.node_id, t.desired_state, t.created_at});
  }
  found.elsewhere = reconcilers::volumes_elsewhere(volumes, mounting, placed, found.self);
  if (found.elsewhere.empty()) {
    return found;
  }
  // Host names read better than IDs; a node list that fails keeps the IDs.
  if (auto nodes = client.list_nodes()) {
    std::map<std::string, std::string> hostnames;
    for (const auto& n : *nodes) {
      hostnames[n.id] = n.hostname;
    }
    found.names = reconcilers::node_names(hostnames);
  }
  return found;
}

// Services mounting the volumes, then their tasks: as observe_scoped.
engine::result<placement_found> find_placement(const engine::client& client,
                                               const std::vector<std::string>& volumes) {
  return again_if_a_service_vanished([&] { return find_placement_once(client, volumes); });
}

}  // namespace

engine::result<std::string> volumes_on_other_nodes(const engine::client& client,
                                                   const std::vector<std::string>& volumes) {
  auto found = find_placement(client, volumes);
  if (!found) {
    return found.error();
  }
  if (found->elsewhere.empty()) {
    return std::string();
  }
  std::vector<std::string> parts;
  for (const auto& e : found->elsewhere) {
    std::vector<std::string> nodes;
    for (const auto& id : e.node_ids) {
      nodes.push_back(found->name_of(id));
    }
    parts.push_back(fmt::format("volume {} is on node {} (service {} runs there)", e.volume,
                                fmt::join(nodes, ", "), fmt::join(e.service_names, ", ")));
  }
  return fmt::format(
      "{}, not on this node ({}): lifeboat reads and restores only the volumes of the node it "
      "runs on, and a volume of the same name here is another, unrelated volume",
      fmt::join(parts, "; "), found->name_of(found->self));
}

engine::result<volume_locations> locate_volumes(const engine::client& client,
                                                const std::vector<std::string>& volumes) {
  auto found = find_placement(client, volumes);
  if (!found) {
    return found.error();
  }
  volume_locations where;
  std::map<std::string, node_volumes> by_node;
  for (const auto& e : found->elsewhere) {
    for (const auto& id : e.node_ids) {
      auto& node = by_node[id];
      node.node_id = id;
      node.node_name = found->name_of(id);
      node.volumes.push_back(e.volume);
    }
    if (!e.also_here) {
      where.only_elsewhere.insert(e.volume);
    }
  }
  for (auto& [id, node] : by_node) {
    where.elsewhere.push_back(std::move(node));
  }
  std::sort(where.elsewhere.begin(), where.elsewhere.end(),
            [](const node_volumes& a, const node_volumes& b) { return a.node_name < b.node_name; });
  return where;
}

engine::result<restore_node> place_restore(const engine::client& client,
                                           const std::vector<std::string>& targets) {
  auto found = find_placement(client, targets);
  if (!found) {
    return found.error();
  }
  auto placed = reconcilers::place_restore(targets, found->elsewhere, found->names);
  restore_node node;
  node.error = std::move(placed.error);
  if (!placed.node_id.empty()) {
    node.node_name = found->name_of(placed.node_id);
    node.node_id = std::move(placed.node_id);
  }
  return node;
}

}  // namespace lifeboat::quiesce
