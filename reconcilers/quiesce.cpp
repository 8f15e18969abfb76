#include "reconcilers/quiesce.hpp"
#include "api/overloaded.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <optional>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

namespace lifeboat::reconcilers {

namespace {

using api::overloaded;

// Swarm's task states before a task's end, in lifecycle order.
constexpr std::array<std::string_view, 9> active_task_states{"new",      "allocated", "pending",
                                                             "assigned", "accepted",  "preparing",
                                                             "ready",    "starting",  "running"};

std::optional<std::string_view> label_value(const label_map& labels, std::string_view key) {
  const auto it = labels.find(std::string(key));
  if (it == labels.end()) {
    return std::nullopt;
  }
  return std::string_view(it->second);
}

bool selects_by(const label_map& labels, std::string_view key, const quiesce_run& run) {
  const auto value = label_value(labels, key);
  return value && matches_group(*value, run.group, run.label_match);
}

bool selects_no_restart(const label_map& labels, const quiesce_run& run) {
  return selects_by(labels, stop_during_backup_no_restart_label, run);
}

// By either label: both quiesce for the run, and differ only afterwards.
bool selects(const label_map& labels, const quiesce_run& run) {
  return selects_by(labels, stop_during_backup_label, run) || selects_no_restart(labels, run);
}

// Both labels, one selecting the run: whether to bring the workload back
// would depend on which label is read, so nothing is guessed.
bool both_labels(const label_map& labels, const quiesce_run& run) {
  return selects(labels, run) && label_value(labels, stop_during_backup_label) &&
         label_value(labels, stop_during_backup_no_restart_label);
}

// The first of `mounted` that the run selects workloads by, if any.
std::optional<std::string_view> targeted_volume(const quiesce_run& run,
                                                const std::vector<std::string>& mounted) {
  for (const auto& v : mounted) {
    if (!v.empty() && std::find(run.volumes.begin(), run.volumes.end(), v) != run.volumes.end()) {
      return std::string_view(v);
    }
  }
  return std::nullopt;
}

// A replica count as lifeboat writes it: decimal digits only.
std::optional<std::uint64_t> parse_count(std::string_view text) {
  std::uint64_t value = 0;
  const char* const end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    return std::nullopt;
  }
  return value;
}

bool is_job(service_mode mode) {
  return mode == service_mode::replicated_job || mode == service_mode::global_job;
}

bool has_workload_label(const label_map& labels) {
  return std::any_of(labels.begin(), labels.end(), [](const auto& entry) {
    return entry.first.starts_with("lifeboat.") || entry.first.starts_with("docker-volume-backup.");
  });
}

}  // namespace

bool matches_group(std::string_view value, std::string_view group, api::label_match match) {
  if (group.empty()) {
    return false;
  }
  if (match == api::label_match::exact) {
    return value == group;
  }
  constexpr std::string_view blanks = " \t";
  while (true) {
    const auto comma = value.find(',');
    auto item = value.substr(0, comma);
    const auto first = item.find_first_not_of(blanks);
    item = first == std::string_view::npos
               ? std::string_view{}
               : item.substr(first, item.find_last_not_of(blanks) - first + 1);
    if (item == group) {
      return true;
    }
    if (comma == std::string_view::npos) {
      return false;
    }
    value.remove_prefix(comma + 1);
  }
}

std::string_view holder(const observed_service& s) {
  return label_value(s.service_labels, held_by_label).value_or(std::string_view{});
}

std::optional<std::uint64_t> recorded_prior(const observed_service& s) {
  const auto text = label_value(s.service_labels, prior_replicas_label);
  return text ? parse_count(*text) : std::nullopt;
}

bool selects_service(const quiesce_run& run, const observed_service& s) {
  return selects(s.service_labels, run) || targeted_volume(run, s.volumes).has_value();
}

namespace {

std::string quoted(std::string_view text) {
  std::string out = "\"";
  out += text;
  out += '"';
  return out;
}

std::string plural(std::uint64_t count, std::string_view noun) {
  std::string out = std::to_string(count);
  out += ' ';
  out += noun;
  if (count != 1) {
    out += 's';
  }
  return out;
}

// "a", "a and b", "a, b and c".
std::string join_names(const std::vector<std::string_view>& names, std::string_view last_sep) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) {
      out += i + 1 == names.size() ? last_sep : std::string_view(", ");
    }
    out += names[i];
  }
  return out;
}

std::string selector_text(const quiesce_run& run) {
  std::string out(stop_during_backup_label);
  out += '=';
  out += run.group;
  return out;
}

template <class T>
bool by_name_then_id(const T* a, const T* b) {
  return std::tie(a->name, a->id) < std::tie(b->name, b->id);
}

// The observed state sorted by name, so that every output is in a stable
// order whatever the order of the listing, and looked up by ID.
class observed_index {
 public:
  explicit observed_index(const observed_state& observed) {
    for (const auto& s : observed.services) {
      services_.push_back(&s);
      service_by_id_.emplace(s.id, &s);
    }
    for (const auto& c : observed.containers) {
      containers_.push_back(&c);
      container_by_id_.emplace(c.id, &c);
    }
    for (const auto& t : observed.tasks) {
      tasks_by_service_.emplace(t.service_id, &t);
    }
    std::sort(services_.begin(), services_.end(), by_name_then_id<observed_service>);
    std::sort(containers_.begin(), containers_.end(), by_name_then_id<observed_container>);
  }

  const std::vector<const observed_service*>& services() const { return services_; }
  const std::vector<const observed_container*>& containers() const { return containers_; }

  const observed_service* service(std::string_view id) const {
    const auto it = service_by_id_.find(id);
    return it == service_by_id_.end() ? nullptr : it->second;
  }

  const observed_container* container(std::string_view id) const {
    const auto it = container_by_id_.find(id);
    return it == container_by_id_.end() ? nullptr : it->second;
  }

  std::vector<const observed_task*> tasks_of(std::string_view service_id) const {
    std::vector<const observed_task*> out;
    const auto [first, last] = tasks_by_service_.equal_range(service_id);
    for (auto it = first; it != last; ++it) {
      out.push_back(it->second);
    }
    return out;
  }

 private:
  std::vector<const observed_service*> services_;
  std::vector<const observed_container*> containers_;
  std::map<std::string_view, const observed_service*, std::less<>> service_by_id_;
  std::map<std::string_view, const observed_container*, std::less<>> container_by_id_;
  std::multimap<std::string_view, const observed_task*, std::less<>> tasks_by_service_;
};

// Errors about the arguments themselves, common to both goals.
std::vector<std::string> check_arguments(const quiesce_run& run, const journal& recorded) {
  std::vector<std::string> errors;
  if (run.name.empty()) {
    errors.emplace_back("the run has no name, so it cannot hold anything");
  }
  if (!recorded.entries.empty() && recorded.run != run.name) {
    errors.push_back("the journal given for run " + quoted(run.name) + " belongs to run " +
                     quoted(recorded.run));
  }
  return errors;
}

// The errors that refuse to stop the task containers of `s`, given the
// running ones the run selects (which may be none, on another node).
void check_container_quiesce(const quiesce_run& run, const observed_service& s,
                             const std::vector<const observed_container*>& selected,
                             std::vector<std::string>& errors) {
  std::vector<std::string_view> names;
  for (const auto* c : selected) {
    names.emplace_back(c->name);
  }
  const bool one = names.size() == 1;
  const std::string subject =
      names.empty() ? std::string("the containers")
                    : (one ? "container " : "containers ") + join_names(names, " and ");
  const std::string carry = one ? " carries " : " carry ";
  if (selects(s.service_labels, run)) {
    errors.push_back("service " + s.name + " and " + (names.empty() ? "its containers" : subject) +
                     " both carry " + selector_text(run) +
                     ": the service would be scaled to zero and its containers stopped; keep the "
                     "label either in deploy.labels (scale the service) or in the container "
                     "labels (stop its containers)");
  }
  if (is_job(s.mode)) {
    errors.push_back(subject + " of " + std::string(to_string(s.mode)) + " service " + s.name +
                     carry + selector_text(run) +
                     ": stopping a job's task ends the job, and bringing it back would run it "
                     "again");
  } else if (s.restart_condition.empty() || s.restart_condition == "any") {
    errors.push_back(subject + " of service " + s.name + carry + selector_text(run) +
                     ", but the service's restart condition is \"any\": Swarm would restart " +
                     (one ? "it" : "them") +
                     " at once; set deploy.restart_policy.condition to on-failure or none");
  }
}

// `subject` ("service app_db") carries both labels in `where`.
std::string both_labels_error(const std::string& subject, std::string_view where) {
  return subject + " carries both " + std::string(stop_during_backup_label) + " and " +
         std::string(stop_during_backup_no_restart_label) + " in its " + std::string(where) +
         ": it cannot be both brought back and left stopped after the run; keep one of the two";
}

// Whether `s` was held for its no-restart label: the mark written with the
// hold, not the label now, decides (a label changed since does not count).
bool held_for_no_restart(const observed_service& s) {
  return label_value(s.service_labels, held_no_restart_label) == std::string_view("true");
}

// "1 task still running", "3 tasks still preparing, starting or running".
std::string active_tasks_reason(const std::vector<const observed_task*>& tasks) {
  std::uint64_t count = 0;
  std::vector<std::string_view> states;
  for (const auto state : active_task_states) {
    bool seen = false;
    for (const auto* t : tasks) {
      if (t->state == state) {
        ++count;
        seen = true;
      }
    }
    if (seen) {
      states.push_back(state);
    }
  }
  if (count == 0) {
    return {};
  }
  return plural(count, "task") + " still " + join_names(states, " or ");
}

// Whether the run scales `s` to zero, or finds it at zero and leaves it so:
// its tasks go down with the service, never one by one.
bool emptied_by_run(const quiesce_run& run, const observed_service& s) {
  const std::string_view held = holder(s);
  return s.mode == service_mode::replicated &&
         (held == run.name || (held.empty() && selects_service(run, s)));
}

// The error for a service selected by a volume it mounts that cannot be
// quiesced, if any. Label errors of the same service are reported apart.
std::optional<std::string> check_volume_service(const quiesce_run& run, const observed_service& s,
                                                std::string_view volume,
                                                const observed_index& index) {
  const std::string mounts = "service " + s.name + " mounts volume " + std::string(volume);
  if (is_job(s.mode)) {
    std::vector<const observed_task*> active;
    for (const auto* t : index.tasks_of(s.id)) {
      if (is_active_task_state(t->state)) {
        active.push_back(t);
      }
    }
    if (active.empty()) {
      return std::nullopt;  // a finished job writes nothing
    }
    return mounts + ", which run " + run.name + " quiesces, but is a " +
           std::string(to_string(s.mode)) + " service with " + active_tasks_reason(active) +
           ": stopping a job's task ends the job; wait for it to complete";
  }
  if (s.mode != service_mode::replicated) {
    return mounts + ", which run " + run.name + " quiesces, but is a " +
           std::string(to_string(s.mode)) +
           " service: only replicated services can be scaled to zero, and Swarm restarts "
           "stopped tasks; remove the service (or scale it down by hand) for the run";
  }
  return std::nullopt;
}

// The error for task containers of `s` that this run stopped (its journal
// says so) and whose tasks then failed: a process that does not exit 0 on
// SIGTERM is killed, exits non-zero, and under restart condition on-failure
// Swarm starts a replacement at once, which would write during the backup.
// Stopping each replacement in turn only repeats this until the timeout.
std::optional<std::string> check_restarted_tasks(const quiesce_run& run, const observed_service& s,
                                                 const journal& recorded,
                                                 const observed_index& index) {
  if (s.restart_condition != "on-failure") {
    return std::nullopt;
  }
  std::vector<std::string> containers;
  std::set<int> exit_codes;
  for (const auto& e : recorded.entries) {
    if (e.service_id != s.id) {
      continue;
    }
    for (const auto* t : index.tasks_of(s.id)) {
      if (t->container_id != e.container_id || t->state != "failed") {
        continue;
      }
      const auto* c = index.container(e.container_id);
      containers.push_back(c != nullptr ? c->name : e.container_id);
      if (t->exit_code) {
        exit_codes.insert(*t->exit_code);
      }
    }
  }
  if (containers.empty()) {
    return std::nullopt;
  }
  std::sort(containers.begin(), containers.end());
  std::vector<std::string> codes;
  for (const int code : exit_codes) {
    codes.push_back(std::to_string(code));
  }
  const bool one = containers.size() == 1;
  return std::string(one ? "container " : "containers ") +
         join_names({containers.begin(), containers.end()}, " and ") + " of service " + s.name +
         " exited" +
         (codes.empty() ? std::string(" with a non-zero code")
                        : " with code " + join_names({codes.begin(), codes.end()}, " and ")) +
         " when stopped for run " + run.name +
         ", and under the service's restart condition \"on-failure\" Swarm starts a "
         "replacement at once, which would write during the run: make the container's process "
         "exit 0 on SIGTERM, or move " +
         selector_text(run) +
         " from the container labels to the service's deploy.labels, so that the service is "
         "scaled to zero instead";
}

quiesce_plan plan_quiesced(const quiesce_run& run, const observed_index& index,
                           const journal& recorded, std::vector<std::string> errors) {
  // Running task containers the run selects by label, per service, in name
  // order.
  std::map<std::string_view, std::vector<const observed_container*>> selected_tasks;
  for (const auto* c : index.containers()) {
    if (!c->service_id.empty() && is_running_container_state(c->state) &&
        selects(c->container_labels, run)) {
      selected_tasks[c->service_id].push_back(c);
    }
  }

  // Services already refused: their containers add no error of their own.
  std::set<std::string_view> refused;
  std::vector<quiesce_action> scales;
  for (const auto* s : index.services()) {
    const std::string_view held = holder(*s);
    const bool labelled = selects(s->service_labels, run);
    const auto volume = targeted_volume(run, s->volumes);
    const auto errors_before = errors.size();
    if (both_labels(s->service_labels, run)) {
      errors.push_back(both_labels_error("service " + s->name, "deploy.labels"));
    }
    if (both_labels(s->container_labels, run)) {
      errors.push_back(both_labels_error("service " + s->name, "container labels"));
    }
    if (errors.size() > errors_before) {
      refused.insert(s->id);
      continue;  // which label wins cannot be told: nothing else to check
    }
    if (held == run.name) {
      // Ours: keep it at zero. The recorded count is what it had before the
      // run; a count someone set since is not. Without a readable record, the
      // current count is the best there is.
      if (s->replicas.value_or(0) > 0) {
        scales.emplace_back(scale_to_zero{s->id, s->name, s->version,
                                          recorded_prior(*s).value_or(*s->replicas), run.name,
                                          held_for_no_restart(*s)});
      }
    } else if (labelled || volume) {
      if (s->mode != service_mode::replicated) {
        if (labelled) {
          errors.push_back("service " + s->name + " carries " + selector_text(run) + " but is a " +
                           std::string(to_string(s->mode)) +
                           " service: only replicated services can be scaled to zero; label its "
                           "containers instead (with restart condition on-failure or none)");
        }
        if (volume) {
          if (auto error = check_volume_service(run, *s, *volume, index)) {
            errors.push_back(std::move(*error));
          }
        }
      } else if (!held.empty()) {
        errors.push_back("service " + s->name + " is held by run " + std::string(held) +
                         " (scaled to zero for it); wait for that run to finish, or recover it");
      } else if (!s->replicas) {
        errors.push_back("service " + s->name +
                         " is replicated but the engine reported no replica count");
      } else if (*s->replicas > 0) {
        scales.emplace_back(scale_to_zero{s->id, s->name, s->version, *s->replicas, run.name,
                                          selects_no_restart(s->service_labels, run)});
      }
      // At zero and not held: the user's choice; untouched, and never
      // recorded as "prior 0", which would not be a count to restore.
    }

    // A service scaled only for its volumes keeps its containers running
    // until Swarm stops them: their labels ask for nothing here.
    if (!(volume && !labelled && emptied_by_run(run, *s))) {
      const auto found = selected_tasks.find(s->id);
      if (found != selected_tasks.end()) {
        check_container_quiesce(run, *s, found->second, errors);
      } else if (selects(s->container_labels, run)) {
        check_container_quiesce(run, *s, {}, errors);
      }
    }
    if (auto error = check_restarted_tasks(run, *s, recorded, index)) {
      errors.push_back(std::move(*error));
    }
    if (errors.size() > errors_before) {
      refused.insert(s->id);
    }
  }

  std::set<std::string_view> journaled;
  for (const auto& e : recorded.entries) {
    journaled.insert(e.container_id);
  }
  std::vector<journal_entry> added;
  std::vector<quiesce_action> stops;
  std::vector<std::string> container_errors;
  for (const auto* c : index.containers()) {
    if (!is_running_container_state(c->state)) {
      continue;
    }
    const bool in_journal = journaled.contains(c->id);
    const bool labelled = selects(c->container_labels, run);
    const auto volume = targeted_volume(run, c->volumes);
    if (!in_journal && !labelled && !volume) {
      continue;
    }
    // A task of a service that is gone has no service to stop it: it is
    // stopped all the same (it may still write); its entry is dropped on
    // restore.
    const auto* s = c->service_id.empty() ? nullptr : index.service(c->service_id);
    if (!in_journal && both_labels(c->container_labels, run)) {
      if (s == nullptr || !refused.contains(s->id)) {
        container_errors.push_back(both_labels_error("container " + c->name, "labels"));
      }
      continue;
    }
    if (!in_journal && s != nullptr && volume) {
      if (emptied_by_run(run, *s)) {
        continue;  // the scale-down stops it
      }
      if (!labelled) {
        if (!refused.contains(s->id)) {
          container_errors.push_back(
              "container " + c->name + ", a task of " + std::string(to_string(s->mode)) +
              " service " + s->name + ", mounts volume " + std::string(*volume) + ", which run " +
              run.name +
              " quiesces, but its service does not mount it (is an update under "
              "way?) or cannot be scaled to zero, and Swarm restarts stopped tasks");
        }
        continue;
      }
      // Labelled too: stopped as a labelled task container (the checks of
      // its service above apply).
    }
    if (!in_journal) {
      added.push_back({c->id, c->service_id, s != nullptr ? s->force_update : 0,
                       selects_no_restart(c->container_labels, run)});
    }
    stops.emplace_back(stop_container{c->id, c->name});
  }
  errors.insert(errors.end(), container_errors.begin(), container_errors.end());

  if (!errors.empty()) {
    return {{}, std::move(errors)};
  }
  quiesce_plan plan;
  if (!added.empty()) {
    journal content{run.name, recorded.entries};
    content.entries.insert(content.entries.end(), added.begin(), added.end());
    plan.actions.emplace_back(record_journal{std::move(content)});
  }
  plan.actions.insert(plan.actions.end(), stops.begin(), stops.end());
  plan.actions.insert(plan.actions.end(), scales.begin(), scales.end());
  return plan;
}

quiesce_plan plan_restored(const quiesce_run& run, const observed_index& index,
                           const journal& recorded, std::vector<std::string> errors) {
  quiesce_plan plan;
  for (const auto* s : index.services()) {
    if (holder(*s) != run.name) {
      continue;
    }
    if (held_for_no_restart(*s)) {
      // Released, not restored; an unreadable count is simply not copied.
      const auto prior = recorded_prior(*s);
      plan.actions.emplace_back(leave_stopped{s->id, s->name, s->version, prior, run.name});
      plan.left_stopped.push_back(
          "service " + s->name +
          (prior ? " (" + plural(*prior, "replica") + ")" : std::string(" (replicas unknown)")));
      continue;
    }
    if (const auto prior = recorded_prior(*s)) {
      plan.actions.emplace_back(restore_replicas{s->id, s->name, s->version, *prior});
    } else {
      const auto text = label_value(s->service_labels, prior_replicas_label);
      errors.push_back("cannot restore service " + s->name + ": its label " +
                       std::string(prior_replicas_label) +
                       (text ? " is " + quoted(*text) + ", not a replica count" : " is missing") +
                       "; set its replicas by hand and remove the labels " +
                       std::string(prior_replicas_label) + " and " + std::string(held_by_label));
    }
  }

  // Another run's journal is not ours to act on (check_arguments said so).
  if (recorded.run != run.name || recorded.entries.empty()) {
    plan.errors = std::move(errors);
    return plan;
  }
  std::vector<const observed_container*> to_start;
  std::vector<const observed_service*> to_redeploy;
  std::vector<std::string> left_containers;
  for (const auto& e : recorded.entries) {
    const auto* c = index.container(e.container_id);
    if (e.no_restart) {
      // Left stopped on purpose; a task container's entry does not count as
      // one to bring back either, so its service is not redeployed for it.
      if (c != nullptr) {
        left_containers.push_back("container " + c->name);
      }
      continue;
    }
    const bool running = c != nullptr && is_running_container_state(c->state);
    if (e.service_id.empty()) {
      // A container that was removed since has nothing to bring back.
      if (c != nullptr && !running) {
        to_start.push_back(c);
      }
      continue;
    }
    const auto* s = index.service(e.service_id);
    if (s == nullptr) {
      continue;  // the service was removed, and its tasks with it
    }
    // A redeploy since the entry was written replaced the stopped task.
    const bool back = running || s->force_update > e.force_update;
    if (!back) {
      to_redeploy.push_back(s);
    }
  }
  const auto sort_unique = [](auto& items) {
    std::sort(items.begin(), items.end(),
              [](const auto* a, const auto* b) { return by_name_then_id(a, b); });
    items.erase(std::unique(items.begin(), items.end()), items.end());
  };
  sort_unique(to_start);
  sort_unique(to_redeploy);
  for (const auto* c : to_start) {
    plan.actions.emplace_back(start_container{c->id, c->name});
  }
  for (const auto* s : to_redeploy) {
    plan.actions.emplace_back(redeploy_service{s->id, s->name, s->version, s->force_update + 1});
  }
  plan.actions.emplace_back(clear_journal{run.name});
  std::sort(left_containers.begin(), left_containers.end());
  left_containers.erase(std::unique(left_containers.begin(), left_containers.end()),
                        left_containers.end());
  plan.left_stopped.insert(plan.left_stopped.end(), left_containers.begin(), left_containers.end());
  plan.errors = std::move(errors);
  return plan;
}

// Pending workloads keyed so that each is reported once, with the first
// reason given, and listed in the documented order.
class pending_set {
 public:
  void add(workload_kind kind, std::string_view id, std::string_view name,
           const std::string& reason) {
    items_.try_emplace(key{kind, std::string(name), std::string(id)}, reason);
  }

  convergence result() && {
    convergence out;
    for (auto& [k, reason] : items_) {
      out.pending.push_back({std::get<0>(k), std::get<2>(k), std::get<1>(k), std::move(reason)});
    }
    return out;
  }

 private:
  using key = std::tuple<workload_kind, std::string, std::string>;  // kind, name, id
  std::map<key, std::string> items_;
};

void add_planned(pending_set& pending, const quiesce_action& action) {
  std::visit(overloaded{
                 [&](const scale_to_zero& a) {
                   pending.add(workload_kind::service, a.service_id, a.service_name,
                               "not scaled to zero yet");
                 },
                 [&](const restore_replicas& a) {
                   pending.add(workload_kind::service, a.service_id, a.service_name,
                               "not scaled back to " + plural(a.replicas, "replica") + " yet");
                 },
                 [&](const leave_stopped& a) {
                   pending.add(workload_kind::service, a.service_id, a.service_name,
                               "not released yet");
                 },
                 [](const record_journal&) {},  // the stops it covers are listed
                 [&](const stop_container& a) {
                   pending.add(workload_kind::container, a.container_id, a.container_name,
                               "still running");
                 },
                 [&](const start_container& a) {
                   pending.add(workload_kind::container, a.container_id, a.container_name,
                               "not started yet");
                 },
                 [&](const redeploy_service& a) {
                   pending.add(workload_kind::service, a.service_id, a.service_name,
                               "stopped tasks not redeployed yet");
                 },
                 [&](const clear_journal& a) {
                   pending.add(workload_kind::journal, a.run, a.run, "not cleared yet");
                 },
             },
             action);
}

bool meant_to_run(const observed_task& t) { return t.desired_state == "running"; }

std::uint64_t count_running(const std::vector<const observed_task*>& tasks) {
  return static_cast<std::uint64_t>(std::count_if(tasks.begin(), tasks.end(), [](const auto* t) {
    return meant_to_run(*t) && t->state == "running";
  }));
}

void add_quiesced_observations(pending_set& pending, const quiesce_run& run,
                               const observed_index& index, const journal& recorded) {
  for (const auto* s : index.services()) {
    const std::string_view held = holder(*s);
    const bool emptied =
        held == run.name || (held.empty() && s->mode == service_mode::replicated &&
                             selects_service(run, *s) && s->replicas.value_or(1) == 0);
    if (!emptied) {
      continue;
    }
    auto reason = active_tasks_reason(index.tasks_of(s->id));
    if (!reason.empty()) {
      pending.add(workload_kind::service, s->id, s->name, reason);
    }
  }
  std::set<std::string_view> journaled;
  for (const auto& e : recorded.entries) {
    journaled.insert(e.container_id);
  }
  for (const auto* c : index.containers()) {
    if (is_running_container_state(c->state) &&
        (journaled.contains(c->id) || selects(c->container_labels, run) ||
         targeted_volume(run, c->volumes))) {
      pending.add(workload_kind::container, c->id, c->name, "still " + c->state);
    }
  }
  // A stopped task container counts once Swarm has recorded how its task
  // ended: a task that failed may be replaced (see check_restarted_tasks).
  for (const auto& e : recorded.entries) {
    if (e.service_id.empty()) {
      continue;
    }
    const auto* c = index.container(e.container_id);
    if (c == nullptr || is_running_container_state(c->state)) {
      continue;  // not on this node, or pending above
    }
    for (const auto* t : index.tasks_of(e.service_id)) {
      if (t->container_id == e.container_id && is_active_task_state(t->state)) {
        pending.add(workload_kind::container, c->id, c->name,
                    "stopped, but its task is still " + t->state + " in Swarm");
      }
    }
  }
}

void add_restored_observations(pending_set& pending, const quiesce_run& run,
                               const observed_index& index,
                               std::span<const quiesce_action> applied) {
  for (const auto* s : index.services()) {
    if (holder(*s) == run.name) {
      pending.add(workload_kind::service, s->id, s->name, "still held at zero replicas");
    }
  }
  const auto running_reason = [](std::uint64_t running, std::uint64_t expected) {
    return std::to_string(running) + " of " + plural(expected, "task") + " running";
  };
  const auto on_restore = [&](const restore_replicas& a) {
    const auto* s = index.service(a.service_id);
    if (s == nullptr) {
      return;
    }
    const auto running = count_running(index.tasks_of(s->id));
    if (running < a.replicas) {
      pending.add(workload_kind::service, s->id, s->name, running_reason(running, a.replicas));
    }
  };
  const auto on_start = [&](const start_container& a) {
    const auto* c = index.container(a.container_id);
    if (c != nullptr && c->state != "running") {
      pending.add(workload_kind::container, c->id, c->name, "not running (" + c->state + ")");
    }
  };
  const auto on_redeploy = [&](const redeploy_service& a) {
    const auto* s = index.service(a.service_id);
    if (s == nullptr) {
      return;
    }
    const auto tasks = index.tasks_of(s->id);
    std::vector<const observed_task*> starting;
    for (const auto* t : tasks) {
      if (meant_to_run(*t) && is_active_task_state(t->state) && t->state != "running") {
        starting.push_back(t);
      }
    }
    const auto running = count_running(tasks);
    if (!starting.empty()) {
      pending.add(workload_kind::service, s->id, s->name, active_tasks_reason(starting));
    } else if (s->mode == service_mode::replicated && running < s->replicas.value_or(0)) {
      pending.add(workload_kind::service, s->id, s->name, running_reason(running, *s->replicas));
    }
  };
  for (const auto& action : applied) {
    // Actions of the quiesced goal leave nothing to wait for here.
    std::visit(overloaded{on_restore, on_start, on_redeploy, [](const auto&) {}}, action);
  }
}

}  // namespace

std::string_view to_string(quiesce_goal goal) {
  switch (goal) {
    case quiesce_goal::quiesced:
      return "quiesced";
    case quiesce_goal::restored:
      return "restored";
  }
  return "quiesced";  // unreachable: every enumerator is handled above
}

std::string_view to_string(workload_kind kind) {
  switch (kind) {
    case workload_kind::service:
      return "service";
    case workload_kind::container:
      return "container";
    case workload_kind::journal:
      return "journal";
  }
  return "service";  // unreachable: every enumerator is handled above
}

label_map scale_to_zero::labels_to_set() const {
  label_map out{{std::string(prior_replicas_label), std::to_string(prior_replicas)},
                {std::string(held_by_label), held_by}};
  if (no_restart) {
    out.emplace(held_no_restart_label, "true");
  }
  return out;
}

label_map leave_stopped::labels_to_set() const {
  label_map out{{std::string(left_stopped_by_label), run}};
  if (prior_replicas) {
    out.emplace(left_stopped_replicas_label, std::to_string(*prior_replicas));
  }
  return out;
}

std::string describe(const quiesce_action& action) {
  const auto service = [](const std::string& name, const std::string& id, std::uint64_t version) {
    return "service " + name + " (id " + id + ", version " + std::to_string(version) + ")";
  };
  const auto container = [](const std::string& name, const std::string& id) {
    return "container " + name + " (id " + id + ")";
  };
  return std::visit(overloaded{
                        [&](const scale_to_zero& a) {
                          return "scale " + service(a.service_name, a.service_id, a.version) +
                                 " from " + plural(a.prior_replicas, "replica") +
                                 " to 0, held by " + a.held_by +
                                 (a.no_restart ? std::string(", not to be restarted") : "");
                        },
                        [&](const leave_stopped& a) {
                          return "release " + service(a.service_name, a.service_id, a.version) +
                                 " and leave it at 0 replicas (it had " +
                                 (a.prior_replicas ? std::to_string(*a.prior_replicas)
                                                   : std::string("an unknown count")) +
                                 "), left stopped by " + a.run;
                        },
                        [&](const restore_replicas& a) {
                          return "scale " + service(a.service_name, a.service_id, a.version) +
                                 " back to " + plural(a.replicas, "replica") + " and release it";
                        },
                        [](const record_journal& a) {
                          std::string out = "record in the journal of run " + a.content.run + ":";
                          for (const auto& e : a.content.entries) {
                            out += " " + e.container_id;
                            if (!e.service_id.empty()) {
                              out += " (service " + e.service_id + ", force update " +
                                     std::to_string(e.force_update) + ")";
                            }
                          }
                          return out;
                        },
                        [&](const stop_container& a) {
                          return "stop " + container(a.container_name, a.container_id);
                        },
                        [&](const start_container& a) {
                          return "start " + container(a.container_name, a.container_id);
                        },
                        [&](const redeploy_service& a) {
                          return "redeploy " + service(a.service_name, a.service_id, a.version) +
                                 " with force update " + std::to_string(a.force_update) +
                                 " to bring back its stopped tasks";
                        },
                        [](const clear_journal& a) { return "clear the journal of run " + a.run; },
                    },
                    action);
}

quiesce_plan plan_quiesce(const quiesce_run& run, quiesce_goal goal, const observed_state& observed,
                          const journal& recorded) {
  const observed_index index(observed);
  auto errors = check_arguments(run, recorded);
  if (goal == quiesce_goal::quiesced) {
    return plan_quiesced(run, index, recorded, std::move(errors));
  }
  if (run.name.empty()) {
    // held-by is never empty, so an unnamed run holds nothing to restore.
    return {{}, std::move(errors)};
  }
  return plan_restored(run, index, recorded, std::move(errors));
}

std::string describe(const pending_workload& pending) {
  if (pending.kind == workload_kind::journal) {
    return "waiting for the journal of run " + pending.name + ": " + pending.reason;
  }
  return "waiting for " + std::string(to_string(pending.kind)) + " " + pending.name + ": " +
         pending.reason;
}

std::string describe(const convergence& c) {
  if (c.converged()) {
    return "converged";
  }
  std::string out;
  for (const auto& p : c.pending) {
    if (!out.empty()) {
      out += "; ";
    }
    out += describe(p);
  }
  return out;
}

convergence check_convergence(const quiesce_run& run, quiesce_goal goal,
                              const observed_state& observed, const journal& recorded,
                              std::span<const quiesce_action> applied) {
  const observed_index index(observed);
  pending_set pending;
  for (const auto& action : plan_quiesce(run, goal, observed, recorded).actions) {
    add_planned(pending, action);
  }
  if (goal == quiesce_goal::quiesced) {
    add_quiesced_observations(pending, run, index, recorded);
  } else {
    add_restored_observations(pending, run, index, applied);
  }
  return std::move(pending).result();
}

std::vector<std::string> held_runs(const observed_state& observed,
                                   std::span<const journal> journals) {
  std::set<std::string> runs;
  for (const auto& s : observed.services) {
    if (const auto held = holder(s); !held.empty()) {
      runs.emplace(held);
    }
  }
  for (const auto& j : journals) {
    if (!j.entries.empty()) {
      runs.insert(j.run);
    }
  }
  return {runs.begin(), runs.end()};
}

recovery_plan plan_recovery(const observed_state& observed, std::span<const journal> journals,
                            std::span<const run_owner> owners, std::string_view self,
                            const std::set<std::string>& active,
                            std::chrono::system_clock::time_point now,
                            const std::set<std::string>& gone_owners) {
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  const auto held = held_runs(observed, journals);
  std::map<std::string_view, const run_owner*> record_of;
  for (const auto& o : owners) {
    record_of.try_emplace(o.run, &o);
  }
  std::set<std::string_view> runs(held.begin(), held.end());
  for (const auto& [run, o] : record_of) {
    runs.insert(run);
  }
  const auto ago = [](auto d) { return std::to_string(duration_cast<seconds>(d).count()) + "s"; };

  recovery_plan plan;
  for (const auto run : runs) {
    const std::string name(run);
    if (active.contains(name)) {
      plan.kept.emplace(name, "active in this process");
      continue;
    }
    const auto found = record_of.find(run);
    if (found != record_of.end() && found->second->owner != self &&
        !gone_owners.contains(found->second->owner)) {
      const auto& o = *found->second;
      const auto expires = o.heartbeat + o.expiry;
      if (now < expires) {
        plan.kept.emplace(name, "owned by " + o.owner + ", alive (renewed " +
                                    ago(now - o.heartbeat) + " ago, expires in " +
                                    ago(expires - now) + ")");
        continue;
      }
    }
    // Expired, this process's own, its owner gone, or without a record.
    if (std::binary_search(held.begin(), held.end(), name)) {
      plan.release.push_back(name);
    } else {
      plan.forget.push_back(name);
    }
  }
  return plan;
}

bool tasks_matter(const quiesce_run& run, const observed_service& s, const journal& recorded) {
  return has_workload_label(s.service_labels) || has_workload_label(s.container_labels) ||
         targeted_volume(run, s.volumes).has_value() ||
         std::any_of(recorded.entries.begin(), recorded.entries.end(),
                     [&](const journal_entry& e) { return e.service_id == s.id; });
}

std::string helper_run_of(std::string_view name) {
  if (name.starts_with('/')) {
    name.remove_prefix(1);
  }
  for (const auto prefix : helper_container_prefixes) {
    if (name.starts_with(prefix) && name.size() > prefix.size()) {
      return std::string(name.substr(prefix.size()));
    }
  }
  return {};
}

std::vector<std::string> leftover_helpers(std::span<const helper_container> helpers,
                                          std::span<const run_owner> owners, std::string_view self,
                                          const std::set<std::string>& active,
                                          std::chrono::system_clock::time_point now,
                                          std::chrono::milliseconds grace,
                                          const std::set<std::string>& gone_owners) {
  std::map<std::string_view, const run_owner*> record_of;
  for (const auto& o : owners) {
    record_of.try_emplace(o.run, &o);
  }
  std::vector<std::string> out;
  for (const auto& h : helpers) {
    if (h.run.empty() || active.contains(h.run)) {
      continue;
    }
    const auto found = record_of.find(h.run);
    if (found != record_of.end() && found->second->owner != self &&
        !gone_owners.contains(found->second->owner) &&
        now < found->second->heartbeat + found->second->expiry) {
      continue;  // a live owner
    }
    if (found == record_of.end() && now - h.created < grace) {
      continue;  // perhaps a run that has not recorded its ownership yet
    }
    out.push_back(h.id);
  }
  return out;
}

}  // namespace lifeboat::reconcilers
