#include "reconcilers/quiesce.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "reconcilers/observed.hpp"

namespace lifeboat::reconcilers {

// gtest finds these by argument-dependent lookup, so they live in the
// namespace of the types they print rather than in the anonymous one.
void PrintTo(const quiesce_action& action, std::ostream* os) { *os << describe(action); }
void PrintTo(const pending_workload& pending, std::ostream* os) { *os << describe(pending); }

namespace {

using testing::ElementsAre;

template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

using actions = std::vector<quiesce_action>;
using errors = std::vector<std::string>;

const quiesce_run nightly{"nightly-1"};

// ---------------------------------------------------------------------------
// Building observed states. Every service gets ID "id-<name>" and version 10;
// task N of service S is "<S>.<N>" and runs in container "c-<S>.<N>" named
// "<S>.<N>", which carries the service's container labels as Swarm does.

label_map stop_label(const std::string& group = "true") {
  return {{std::string(stop_during_backup_label), group}};
}

label_map no_restart_label(const std::string& group = "true") {
  return {{std::string(stop_during_backup_no_restart_label), group}};
}

label_map merged(label_map a, const label_map& b) {
  a.insert(b.begin(), b.end());
  return a;
}

label_map held(const std::string& run, const std::string& prior) {
  return {{std::string(held_by_label), run}, {std::string(prior_replicas_label), prior}};
}

observed_service service(const std::string& name, service_mode mode,
                         std::optional<std::uint64_t> replicas, label_map service_labels = {},
                         label_map container_labels = {}, std::string restart = "any") {
  observed_service s;
  s.id = "id-" + name;
  s.version = 10;
  s.name = name;
  s.service_labels = std::move(service_labels);
  s.container_labels = std::move(container_labels);
  s.mode = mode;
  s.replicas = replicas;
  s.restart_condition = std::move(restart);
  return s;
}

observed_service replicated(const std::string& name, std::uint64_t replicas,
                            label_map service_labels = {}, label_map container_labels = {},
                            std::string restart = "any") {
  return service(name, service_mode::replicated, replicas, std::move(service_labels),
                 std::move(container_labels), std::move(restart));
}

observed_container task_container(const observed_service& s, const std::string& task_id,
                                  const std::string& state) {
  observed_container c;
  c.id = "c-" + task_id;
  c.name = task_id;
  c.container_labels = merged(s.container_labels, {{std::string(swarm_service_id_label), s.id},
                                                   {std::string(swarm_service_name_label), s.name},
                                                   {std::string(swarm_task_id_label), task_id}});
  c.state = state;
  c.service_id = s.id;
  c.volumes = s.volumes;  // Swarm mounts the template's volumes into every task
  return c;
}

observed_service mounting(observed_service s, std::vector<std::string> volumes) {
  s.volumes = std::move(volumes);
  return s;
}

observed_container mounting(observed_container c, std::vector<std::string> volumes) {
  c.volumes = std::move(volumes);
  return c;
}

observed_container plain_container(const std::string& name, label_map labels,
                                   const std::string& state = "running",
                                   const std::string& restart_policy = "no") {
  return {"c-" + name, name, std::move(labels), state, restart_policy, ""};
}

/// Adds `s` with `tasks` tasks in `task_state`, whose containers are in
/// `container_state` ("running"/"running", or "complete"/"exited" for tasks
/// whose containers were stopped under restart condition on-failure or none).
void add_service(observed_state& state, const observed_service& s, int tasks,
                 const std::string& task_state = "running",
                 const std::string& container_state = "running") {
  state.services.push_back(s);
  for (int slot = 1; slot <= tasks; ++slot) {
    const std::string task_id = s.name + "." + std::to_string(slot);
    state.tasks.push_back({task_id, s.id, task_state, "running", "c-" + task_id});
    state.containers.push_back(task_container(s, task_id, container_state));
  }
}

observed_state with_services(const std::vector<std::pair<observed_service, int>>& services,
                             std::vector<observed_container> plain = {}) {
  observed_state state;
  for (const auto& [s, tasks] : services) {
    add_service(state, s, tasks);
  }
  for (auto& c : plain) {
    state.containers.push_back(std::move(c));
  }
  return state;
}

journal_entry task_entry(const std::string& service_name, int slot,
                         std::uint64_t force_update = 0) {
  return {"c-" + service_name + "." + std::to_string(slot), "id-" + service_name, force_update};
}

journal_entry plain_entry(const std::string& name) { return {"c-" + name, "", 0}; }

journal_entry no_restart_entry(journal_entry e) {
  e.no_restart = true;
  return e;
}

label_map held_no_restart(const std::string& run, const std::string& prior) {
  return merged(held(run, prior), {{std::string(held_no_restart_label), "true"}});
}

stop_container stop(const std::string& name) { return {"c-" + name, name}; }
start_container start(const std::string& name) { return {"c-" + name, name}; }

// ---------------------------------------------------------------------------
// A small simulator: what the executor's engine calls do to the observed
// state (apply), and what Swarm's orchestrator then does (settle). It checks
// version indexes as the engine does, so a plan that updates one service
// twice against the same version would fail here.

struct world {
  observed_state observed;
  journal recorded;
  int next_task = 100;
};

observed_service& find_service(world& w, const std::string& id) {
  const auto it = std::find_if(w.observed.services.begin(), w.observed.services.end(),
                               [&](const auto& s) { return s.id == id; });
  if (it == w.observed.services.end()) {
    ADD_FAILURE() << "no service " << id;
    static observed_service none;
    return none;
  }
  return *it;
}

observed_container* find_container(world& w, const std::string& id) {
  const auto it = std::find_if(w.observed.containers.begin(), w.observed.containers.end(),
                               [&](const auto& c) { return c.id == id; });
  return it == w.observed.containers.end() ? nullptr : &*it;
}

void versioned_update(observed_service& s, std::uint64_t version) {
  EXPECT_EQ(s.version, version) << "update out of sequence on service " << s.name;
  ++s.version;
}

void apply(world& w, const quiesce_action& action) {
  std::visit(overloaded{
                 [&](const scale_to_zero& a) {
                   auto& s = find_service(w, a.service_id);
                   versioned_update(s, a.version);
                   s.replicas = 0;
                   for (const auto& [key, value] : a.labels_to_set()) {
                     s.service_labels[key] = value;
                   }
                 },
                 [&](const restore_replicas& a) {
                   auto& s = find_service(w, a.service_id);
                   versioned_update(s, a.version);
                   s.replicas = a.replicas;
                   s.service_labels.erase(std::string(prior_replicas_label));
                   s.service_labels.erase(std::string(held_by_label));
                 },
                 [&](const leave_stopped& a) {
                   auto& s = find_service(w, a.service_id);
                   versioned_update(s, a.version);
                   s.service_labels.erase(std::string(prior_replicas_label));
                   s.service_labels.erase(std::string(held_by_label));
                   s.service_labels.erase(std::string(held_no_restart_label));
                   for (const auto& [key, value] : a.labels_to_set()) {
                     s.service_labels[key] = value;
                   }
                 },
                 [&](const record_journal& a) { w.recorded = a.content; },
                 [&](const stop_container& a) {
                   auto* c = find_container(w, a.container_id);
                   ASSERT_NE(c, nullptr) << a.container_id;
                   c->state = "exited";
                   // Under restart condition on-failure or none the task ends
                   // and keeps its slot: Swarm starts no replacement.
                   for (auto& t : w.observed.tasks) {
                     if (t.container_id == c->id) {
                       t.state = "complete";
                     }
                   }
                 },
                 [&](const start_container& a) {
                   auto* c = find_container(w, a.container_id);
                   ASSERT_NE(c, nullptr) << a.container_id;
                   EXPECT_TRUE(c->service_id.empty()) << "docker start on a Swarm task";
                   c->state = "running";
                 },
                 [&](const redeploy_service& a) {
                   auto& s = find_service(w, a.service_id);
                   versioned_update(s, a.version);
                   EXPECT_EQ(a.force_update, s.force_update + 1);
                   s.force_update = a.force_update;
                   for (auto& t : w.observed.tasks) {
                     if (t.service_id == s.id) {
                       t.desired_state = "shutdown";
                     }
                   }
                 },
                 [&](const clear_journal& a) {
                   EXPECT_EQ(a.run, w.recorded.run);
                   w.recorded.entries.clear();
                 },
             },
             action);
}

void shut_down(world& w, observed_task& t) {
  t.desired_state = "shutdown";
  if (is_active_task_state(t.state)) {
    t.state = "shutdown";
  }
  if (auto* c = find_container(w, t.container_id)) {
    c->state = "exited";
  }
}

void settle(world& w) {
  for (auto& t : w.observed.tasks) {
    if (t.desired_state != "running") {
      shut_down(w, t);
    }
  }
  for (const auto& s : w.observed.services) {
    if (s.mode != service_mode::replicated) {
      continue;
    }
    std::uint64_t occupied = 0;
    for (auto& t : w.observed.tasks) {
      if (t.service_id == s.id && t.desired_state == "running") {
        if (occupied < s.replicas.value_or(0)) {
          ++occupied;
        } else {
          shut_down(w, t);
        }
      }
    }
    for (; occupied < s.replicas.value_or(0); ++occupied) {
      const std::string task_id = s.name + "." + std::to_string(w.next_task++);
      w.observed.tasks.push_back({task_id, s.id, "running", "running", "c-" + task_id});
      w.observed.containers.push_back(task_container(s, task_id, "running"));
    }
  }
}

world apply_all(world w, const actions& planned) {
  for (const auto& a : planned) {
    apply(w, a);
  }
  return w;
}

// ---------------------------------------------------------------------------
// The table.

struct scenario {
  std::string name;
  quiesce_run run;
  quiesce_goal goal;
  observed_state observed;
  journal recorded;
  actions expected_actions;
  errors expected_errors;
};

// Scenarios of the no-restart label and of one-of matching, with what each
// plan says it leaves stopped. Part of scenarios() too, so that every test of
// the table runs on them.
struct label_scenario {
  scenario sc;
  std::vector<std::string> left_stopped;
};

std::vector<label_scenario> label_scenarios() {
  const quiesce_run group_b{"nightly-1", "b"};
  const quiesce_run group_b_one_of{"nightly-1", "b", {}, api::label_match::one_of};
  const quiesce_run recovery{"nightly-1", ""};  // what recovery plans with
  const auto no_restart = no_restart_label();
  const std::string both =
      " carries both docker-volume-backup.stop-during-backup and "
      "docker-volume-backup.stop-during-backup-no-restart in its ";
  const std::string keep_one =
      ": it cannot be both brought back and left stopped after the run; keep one of the two";
  std::vector<label_scenario> out;

  // --- One-of matching.
  out.push_back({{"exact: a value a,b is one group named \"a,b\", not b",
                  group_b,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_db", 2, stop_label("a,b")), 2}},
                                {plain_container("files", stop_label("a,b"))}),
                  {},
                  {},
                  {}},
                 {}});
  out.push_back({{"exact: the value b itself is selected",
                  group_b,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_db", 2, stop_label("b")), 2}}),
                  {},
                  {scale_to_zero{"id-app_db", "app_db", 10, 2, "nightly-1"}},
                  {}},
                 {}});
  out.push_back({{"one-of: a value a,b selects for group b, service and container",
                  group_b_one_of,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_db", 2, stop_label("a,b")), 2}},
                                {plain_container("files", stop_label("b,a"))}),
                  {},
                  {record_journal{{"nightly-1", {plain_entry("files")}}}, stop("files"),
                   scale_to_zero{"id-app_db", "app_db", 10, 2, "nightly-1"}},
                  {}},
                 {}});
  out.push_back({{"one-of: spaces and tabs around the commas are ignored",
                  group_b_one_of,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_db", 1, stop_label(" a ,  b ")), 1},
                                 {replicated("app_web", 3, stop_label("a,\tb\t")), 3}},
                                {plain_container("files", stop_label("b , c"))}),
                  {},
                  {record_journal{{"nightly-1", {plain_entry("files")}}}, stop("files"),
                   scale_to_zero{"id-app_db", "app_db", 10, 1, "nightly-1"},
                   scale_to_zero{"id-app_web", "app_web", 10, 3, "nightly-1"}},
                  {}},
                 {}});
  out.push_back({{"one-of: no part of an item, no empty item, no other group selects b",
                  group_b_one_of,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_db", 2, stop_label("ab,c")), 2},
                                 {replicated("app_web", 2, stop_label("a b")), 2},
                                 {replicated("app_api", 2, stop_label(",,")), 2}},
                                {plain_container("files", stop_label("a"))}),
                  {},
                  {},
                  {}},
                 {}});
  out.push_back({{"one-of: a single value still selects its group",
                  group_b_one_of,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_db", 2, no_restart_label("b")), 2}}),
                  {},
                  {scale_to_zero{"id-app_db", "app_db", 10, 2, "nightly-1", true}},
                  {}},
                 {}});

  // --- No-restart: quiescing.
  out.push_back({{"no-restart: a service is scaled to zero and marked not to restart",
                  nightly,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_db", 2, no_restart), 2},
                                 {replicated("app_web", 1, stop_label()), 1}}),
                  {},
                  {scale_to_zero{"id-app_db", "app_db", 10, 2, "nightly-1", true},
                   scale_to_zero{"id-app_web", "app_web", 10, 1, "nightly-1"}},
                  {}},
                 {}});
  out.push_back({{"no-restart: containers are journaled as not to restart, then stopped",
                  nightly,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_worker", 1, {}, no_restart, "on-failure"), 1}},
                                {plain_container("files", no_restart),
                                 plain_container("logs", stop_label())}),
                  {},
                  {record_journal{{"nightly-1",
                                   {no_restart_entry(task_entry("app_worker", 1)),
                                    no_restart_entry(plain_entry("files")), plain_entry("logs")}}},
                   stop("app_worker.1"), stop("files"), stop("logs")},
                  {}},
                 {}});
  out.push_back(
      {{"no-restart: a held service scaled up again is held again, still marked",
        nightly,
        quiesce_goal::quiesced,
        with_services(
            {{replicated("app_db", 1, merged(no_restart, held_no_restart("nightly-1", "2"))), 1}}),
        {},
        {scale_to_zero{"id-app_db", "app_db", 10, 2, "nightly-1", true}},
        {}},
       {}});
  out.push_back({{"no-restart: a service already at zero is left alone",
                  nightly,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_db", 0, no_restart), 0}}),
                  {},
                  {},
                  {}},
                 {}});

  // --- Both labels: refused before anything is touched.
  out.push_back(
      {{"both labels on a service, a container or a service's containers: nothing is touched",
        nightly,
        quiesce_goal::quiesced,
        with_services(
            {{replicated("app_db", 2, merged(stop_label(), no_restart)), 2},
             {replicated("app_web", 2, stop_label()), 2},
             {replicated("app_worker", 1, {}, merged(stop_label("x"), no_restart), "on-failure"),
              1}},
            {plain_container("files", merged(no_restart, stop_label("other")))}),
        {},
        {},
        {"service app_db" + both + "deploy.labels" + keep_one,
         "service app_worker" + both + "container labels" + keep_one,
         "container files" + both + "labels" + keep_one}},
       {}});
  out.push_back(
      {{"both labels, under one-of, where one of them selects the group",
        group_b_one_of,
        quiesce_goal::quiesced,
        with_services(
            {{replicated("app_db", 2, merged(stop_label("a"), no_restart_label("c, b"))), 2}}),
        {},
        {},
        {"service app_db" + both + "deploy.labels" + keep_one}},
       {}});
  out.push_back({{"both labels selecting other groups: not this run's concern",
                  group_b,
                  quiesce_goal::quiesced,
                  with_services({{replicated("app_db", 2, merged(stop_label("a"), no_restart)), 2}},
                                {plain_container("files", merged(stop_label("a"), no_restart))}),
                  {},
                  {},
                  {}},
                 {}});

  // --- No-restart: resuming and recovery.
  out.push_back(
      {{"no-restart: resuming releases the service at zero and brings back the rest",
        nightly,
        quiesce_goal::restored,
        with_services(
            {{replicated("app_db", 0, merged(no_restart, held_no_restart("nightly-1", "2"))), 0},
             {replicated("app_web", 0, merged(stop_label(), held("nightly-1", "1"))), 0}}),
        {},
        {leave_stopped{"id-app_db", "app_db", 10, 2, "nightly-1"},
         restore_replicas{"id-app_web", "app_web", 10, 1}},
        {}},
       {"service app_db (2 replicas)"}});
  {
    observed_state state;
    add_service(state, replicated("app_worker", 1, {}, no_restart, "on-failure"), 1, "complete",
                "exited");
    add_service(state, replicated("app_api", 1, {}, stop_label(), "on-failure"), 1, "complete",
                "exited");
    state.containers.push_back(plain_container("files", no_restart, "exited"));
    state.containers.push_back(plain_container("logs", stop_label(), "exited"));
    out.push_back({{"no-restart: journaled containers stay stopped, their services unredeployed",
                    nightly,
                    quiesce_goal::restored,
                    state,
                    {"nightly-1",
                     {task_entry("app_api", 1), no_restart_entry(task_entry("app_worker", 1)),
                      no_restart_entry(plain_entry("files")), plain_entry("logs")}},
                    {start("logs"), redeploy_service{"id-app_api", "app_api", 10, 1},
                     clear_journal{"nightly-1"}},
                    {}},
                   {"container app_worker.1", "container files"}});
  }
  out.push_back(
      {{"recovery: a dead run's no-restart service is released, not restored, without a group",
        recovery,
        quiesce_goal::restored,
        with_services({{replicated("app_db", 0, held_no_restart("nightly-1", "3")), 0}},
                      {plain_container("files", {}, "exited")}),
        {"nightly-1", {no_restart_entry(plain_entry("files"))}},
        {leave_stopped{"id-app_db", "app_db", 10, 3, "nightly-1"}, clear_journal{"nightly-1"}},
        {}},
       {"service app_db (3 replicas)", "container files"}});
  out.push_back(
      {{"no-restart: an unreadable count is not an error, it is not copied",
        recovery,
        quiesce_goal::restored,
        with_services({{replicated("app_db", 0, held_no_restart("nightly-1", "two")), 0}}),
        {},
        {leave_stopped{"id-app_db", "app_db", 10, std::nullopt, "nightly-1"}},
        {}},
       {"service app_db (replicas unknown)"}});
  out.push_back(
      {{"no-restart: a service left stopped earlier is not held by anyone",
        nightly,
        quiesce_goal::restored,
        with_services(
            {{replicated("app_db", 0,
                         merged(no_restart, {{std::string(left_stopped_by_label), "nightly-0"},
                                             {std::string(left_stopped_replicas_label), "2"}})),
              0}}),
        {},
        {},
        {}},
       {}});
  return out;
}

std::vector<scenario> scenarios() {
  const auto stop_true = stop_label("true");
  const std::string selector = "docker-volume-backup.stop-during-backup=true";
  std::vector<scenario> out;

  // --- quiesced ---------------------------------------------------------

  {
    const auto app_db = replicated("app_db", 2, stop_true);
    out.push_back({"docker-volume-backup example: service labelled in deploy is scaled to zero",
                   nightly,
                   quiesce_goal::quiesced,
                   with_services({{app_db, 2}}),
                   {},
                   {scale_to_zero{"id-app_db", "app_db", 10, 2, "nightly-1"}},
                   {}});
  }
  {
    const auto worker = replicated("app_worker", 2, {}, stop_true, "on-failure");
    out.push_back(
        {"docker-volume-backup example: labelled task containers are journaled, then stopped",
         nightly,
         quiesce_goal::quiesced,
         with_services({{worker, 2}}),
         {},
         {record_journal{{"nightly-1", {task_entry("app_worker", 1), task_entry("app_worker", 2)}}},
          stop("app_worker.1"), stop("app_worker.2")},
         {}});
  }
  {
    auto worker = replicated("app_worker", 1, {}, stop_true, "none");
    worker.force_update = 4;
    out.push_back(
        {"the journal records the service's force update counter",
         nightly,
         quiesce_goal::quiesced,
         with_services({{worker, 1}}),
         {},
         {record_journal{{"nightly-1", {task_entry("app_worker", 1, 4)}}}, stop("app_worker.1")},
         {}});
  }
  {
    // Issue 12, item 7: the stopped process ignored SIGTERM and was killed;
    // Swarm already runs a replacement, which must not be stopped in turn.
    const auto worker = replicated("app_worker", 1, {}, stop_true, "on-failure");
    auto state = with_services({{worker, 1}});
    state.tasks.front().state = "failed";
    state.tasks.front().exit_code = 137;
    state.containers.front().state = "exited";
    state.tasks.push_back(
        {"app_worker.2", "id-app_worker", "running", "running", "c-app_worker.2"});
    state.containers.push_back(task_container(worker, "app_worker.2", "running"));
    out.push_back(
        {"a stopped task container that failed under on-failure is refused, naming the fix",
         nightly,
         quiesce_goal::quiesced,
         state,
         {"nightly-1", {task_entry("app_worker", 1)}},
         {},
         {"container app_worker.1 of service app_worker exited with code 137 when stopped for run "
          "nightly-1, and under the service's restart condition \"on-failure\" Swarm starts a "
          "replacement at once, which would write during the run: make the container's process "
          "exit 0 on SIGTERM, or move " +
          selector +
          " from the container labels to the service's deploy.labels, so that the service is "
          "scaled to zero instead"}});
  }
  out.push_back({"only the workloads labelled with the run's group are selected",
                 {"db-1", "db"},
                 quiesce_goal::quiesced,
                 with_services({{replicated("app_db", 1, stop_label("db")), 1},
                                {replicated("app_web", 1, stop_true), 1},
                                {replicated("app_worker", 1, {}, stop_true, "on-failure"), 1}},
                               {plain_container("cache", stop_label("db")),
                                plain_container("proxy", stop_true)}),
                 {},
                 {record_journal{{"db-1", {plain_entry("cache")}}}, stop("cache"),
                  scale_to_zero{"id-app_db", "app_db", 10, 1, "db-1"}},
                 {}});
  out.push_back(
      {"restart condition any is refused, naming containers and service; nothing is touched",
       nightly,
       quiesce_goal::quiesced,
       with_services({{replicated("app_db", 1, stop_true), 1},
                      {replicated("app_worker", 2, {}, stop_true, "any"), 2}}),
       {},
       {},
       {"containers app_worker.1 and app_worker.2 of service app_worker carry " + selector +
        ", but the service's restart condition is \"any\": Swarm would restart them at once; "
        "set deploy.restart_policy.condition to on-failure or none"}});
  out.push_back({"an unset restart condition means any and is refused",
                 nightly,
                 quiesce_goal::quiesced,
                 with_services({{replicated("app_worker", 1, {}, stop_true, ""), 1}}),
                 {},
                 {},
                 {"container app_worker.1 of service app_worker carries " + selector +
                  ", but the service's restart condition is \"any\": Swarm would restart it at "
                  "once; set deploy.restart_policy.condition to on-failure or none"}});
  {
    // Its one task runs on another node: the task is listed, its container is not.
    auto state = with_services({{replicated("app_worker", 1, {}, stop_true, "any"), 0}});
    state.tasks.push_back({"app_worker.1", "id-app_worker", "running", "running", "c-remote"});
    out.push_back({"restart condition any is refused even with no container on this node",
                   nightly,
                   quiesce_goal::quiesced,
                   std::move(state),
                   {},
                   {},
                   {"the containers of service app_worker carry " + selector +
                    ", but the service's restart condition is \"any\": Swarm would restart them at "
                    "once; set deploy.restart_policy.condition to on-failure or none"}});
  }
  out.push_back({"a labelled global service is refused",
                 nightly,
                 quiesce_goal::quiesced,
                 with_services({{service("agent", service_mode::global, {}, stop_true), 1},
                                {replicated("app_db", 1, stop_true), 1}}),
                 {},
                 {},
                 {"service agent carries " + selector +
                  " but is a global service: only replicated services can be scaled to zero; "
                  "label its containers instead (with restart condition on-failure or none)"}});
  out.push_back(
      {"labelled job services are refused",
       nightly,
       quiesce_goal::quiesced,
       with_services({{service("migrate", service_mode::replicated_job, 1, stop_true), 0},
                      {service("sweep", service_mode::global_job, {}, stop_true), 0}}),
       {},
       {},
       {"service migrate carries " + selector +
            " but is a replicated-job service: only replicated services can be scaled to zero; "
            "label its containers instead (with restart condition on-failure or none)",
        "service sweep carries " + selector +
            " but is a global-job service: only replicated services can be scaled to zero; "
            "label its containers instead (with restart condition on-failure or none)"}});
  out.push_back(
      {"a job whose containers are labelled is refused",
       nightly,
       quiesce_goal::quiesced,
       with_services(
           {{service("migrate", service_mode::replicated_job, 1, {}, stop_true, "on-failure"), 1}}),
       {},
       {},
       {"container migrate.1 of replicated-job service migrate carries " + selector +
        ": stopping a job's task ends the job, and bringing it back would run it again"}});
  out.push_back({"a container labelled like its service is a conflict; nothing is touched",
                 nightly,
                 quiesce_goal::quiesced,
                 with_services({{replicated("app_db", 1, stop_true, stop_true, "on-failure"), 1},
                                {replicated("app_web", 1, stop_true), 1}}),
                 {},
                 {},
                 {"service app_db and container app_db.1 both carry " + selector +
                  ": the service would be scaled to zero and its containers stopped; keep the "
                  "label either in deploy.labels (scale the service) or in the container labels "
                  "(stop its containers)"}});
  out.push_back({"a service at zero that lifeboat does not hold is left alone",
                 nightly,
                 quiesce_goal::quiesced,
                 with_services({{replicated("app_db", 0, stop_true), 0}}),
                 {},
                 {},
                 {}});
  out.push_back(
      {"a service held by this run at zero is already quiesced",
       nightly,
       quiesce_goal::quiesced,
       with_services({{replicated("app_db", 0, merged(stop_true, held("nightly-1", "2"))), 0}}),
       {},
       {},
       {}});
  out.push_back(
      {"a service held by this run and scaled up since goes back to zero, keeping its prior",
       nightly,
       quiesce_goal::quiesced,
       with_services({{replicated("app_db", 1, merged(stop_true, held("nightly-1", "3"))), 1}}),
       {},
       {scale_to_zero{"id-app_db", "app_db", 10, 3, "nightly-1"}},
       {}});
  out.push_back(
      {"a service held by another run fails the run",
       nightly,
       quiesce_goal::quiesced,
       with_services({{replicated("app_db", 0, merged(stop_true, held("nightly-0", "2"))), 0},
                      {replicated("app_web", 1, stop_true), 1}}),
       {},
       {},
       {"service app_db is held by run nightly-0 (scaled to zero for it); wait for that run to "
        "finish, or recover it"}});
  out.push_back({"a plain container is stopped whatever its restart policy",
                 nightly,
                 quiesce_goal::quiesced,
                 with_services({}, {plain_container("files", stop_true, "running", "always")}),
                 {},
                 {record_journal{{"nightly-1", {plain_entry("files")}}}, stop("files")},
                 {}});
  {
    observed_state state;
    add_service(state, replicated("app_worker", 1, {}, stop_true, "on-failure"), 2, "complete",
                "exited");
    state.containers.push_back(plain_container("old", stop_true, "exited"));
    state.containers.push_back(plain_container("fresh", stop_true, "created"));
    out.push_back({"exited and created containers are left alone",
                   nightly,
                   quiesce_goal::quiesced,
                   std::move(state),
                   {},
                   {},
                   {}});
  }
  {
    const auto worker = replicated("app_worker", 2, {}, stop_true, "on-failure");
    out.push_back(
        {"after a partial pass the journal is completed before the stops",
         nightly,
         quiesce_goal::quiesced,
         with_services({{worker, 2}}),
         {"nightly-1", {task_entry("app_worker", 1)}},
         {record_journal{{"nightly-1", {task_entry("app_worker", 1), task_entry("app_worker", 2)}}},
          stop("app_worker.1"), stop("app_worker.2")},
         {}});
    out.push_back({"containers already journaled are stopped without writing the journal again",
                   nightly,
                   quiesce_goal::quiesced,
                   with_services({{worker, 2}}),
                   {"nightly-1", {task_entry("app_worker", 1), task_entry("app_worker", 2)}},
                   {stop("app_worker.1"), stop("app_worker.2")},
                   {}});
  }
  {
    auto orphan = task_container(replicated("gone", 1, {}, stop_true), "gone.1", "running");
    out.push_back({"a task container whose service is gone is still stopped",
                   nightly,
                   quiesce_goal::quiesced,
                   with_services({}, {orphan}),
                   {},
                   {record_journal{{"nightly-1", {task_entry("gone", 1)}}}, stop("gone.1")},
                   {}});
  }
  out.push_back({"unlabelled workloads are left alone",
                 nightly,
                 quiesce_goal::quiesced,
                 with_services({{replicated("app_web", 2, {{"other", "true"}}), 2}},
                               {plain_container("proxy", {})}),
                 {},
                 {},
                 {}});
  out.push_back({"a run without a name is refused",
                 {""},
                 quiesce_goal::quiesced,
                 with_services({{replicated("app_db", 1, stop_true), 1}}),
                 {},
                 {},
                 {"the run has no name, so it cannot hold anything"}});
  out.push_back({"another run's journal is refused",
                 nightly,
                 quiesce_goal::quiesced,
                 with_services({{replicated("app_db", 1, stop_true), 1}}),
                 {"nightly-0", {plain_entry("files")}},
                 {},
                 {"the journal given for run \"nightly-1\" belongs to run \"nightly-0\""}});

  // --- quiesced, selected by volume ----------------------------------------

  const quiesce_run restore{"restore-1", "", {"app_data"}};
  {
    const auto app_db = mounting(replicated("app_db", 2), {"app_cache", "app_data"});
    out.push_back(
        {"volumes: an unlabelled replicated service mounting one is scaled to zero, its "
         "task containers are left to the scale-down",
         restore,
         quiesce_goal::quiesced,
         with_services({{app_db, 2}, {mounting(replicated("app_web", 1), {"web"}), 1}}),
         {},
         {scale_to_zero{"id-app_db", "app_db", 10, 2, "restore-1"}},
         {}});
  }
  {
    auto reader = mounting(plain_container("lifeboat-read-nightly-1",
                                           {{"lifeboat.volume-container", "true"}}, "created"),
                           {"app_data"});
    out.push_back(
        {"volumes: a running plain container mounting one is journaled and stopped; created "
         "and exited ones, and other volumes, are left alone",
         restore,
         quiesce_goal::quiesced,
         with_services({}, {mounting(plain_container("files", {}), {"app_data"}), reader,
                            mounting(plain_container("old", {}, "exited"), {"app_data"}),
                            mounting(plain_container("proxy", {}), {"other"})}),
         {},
         {record_journal{{"restore-1", {plain_entry("files")}}}, stop("files")},
         {}});
  }
  out.push_back(
      {"volumes: add to the label group",
       {"restore-1", "true", {"app_data"}},
       quiesce_goal::quiesced,
       with_services({{mounting(replicated("app_db", 1), {"app_data"}), 1},
                      {replicated("app_web", 2, stop_true), 2}},
                     {mounting(plain_container("files", {}), {"app_data"}),
                      plain_container("proxy", stop_true)}),
       {},
       {record_journal{{"restore-1", {plain_entry("files"), plain_entry("proxy")}}}, stop("files"),
        stop("proxy"), scale_to_zero{"id-app_db", "app_db", 10, 1, "restore-1"},
        scale_to_zero{"id-app_web", "app_web", 10, 2, "restore-1"}},
       {}});
  out.push_back(
      {"volumes: a service scaled for its volume is not checked for its container labels",
       {"restore-1", "true", {"app_data"}},
       quiesce_goal::quiesced,
       with_services({{mounting(replicated("app_db", 1, {}, stop_true, "any"), {"app_data"}), 1}}),
       {},
       {scale_to_zero{"id-app_db", "app_db", 10, 1, "restore-1"}},
       {}});
  out.push_back({"volumes: a replicated service at zero is left alone, its draining task too",
                 restore,
                 quiesce_goal::quiesced,
                 with_services({{mounting(replicated("app_db", 0), {"app_data"}), 1}}),
                 {},
                 {},
                 {}});
  {
    auto orphan =
        task_container(mounting(replicated("gone", 1), {"app_data"}), "gone.1", "running");
    out.push_back({"volumes: a task container whose service is gone is stopped",
                   restore,
                   quiesce_goal::quiesced,
                   with_services({}, {orphan}),
                   {},
                   {record_journal{{"restore-1", {task_entry("gone", 1)}}}, stop("gone.1")},
                   {}});
  }
  out.push_back(
      {"volumes: a global service mounting one is refused once, not again for its containers",
       restore,
       quiesce_goal::quiesced,
       with_services({{mounting(service("agent", service_mode::global, {}), {"app_data"}), 1},
                      {mounting(replicated("app_db", 1), {"app_data"}), 1}},
                     {mounting(plain_container("files", {}), {"app_data"})}),
       {},
       {},
       {"service agent mounts volume app_data, which run restore-1 quiesces, but is a global "
        "service: only replicated services can be scaled to zero, and Swarm restarts stopped "
        "tasks; remove the service (or scale it down by hand) for the run"}});
  {
    observed_state state;
    add_service(state, mounting(service("migrate", service_mode::replicated_job, 1), {"app_data"}),
                1);
    add_service(state, mounting(service("seed", service_mode::replicated_job, 1), {"app_data"}), 1,
                "complete", "exited");
    out.push_back({"volumes: a job that still runs is refused, a finished one is left alone",
                   restore,
                   quiesce_goal::quiesced,
                   std::move(state),
                   {},
                   {},
                   {"service migrate mounts volume app_data, which run restore-1 quiesces, but is "
                    "a replicated-job service with 1 task still running: stopping a job's task "
                    "ends the job; wait for it to complete"}});
  }
  {
    // An update removed the mount; a task of the old spec still runs.
    observed_state state;
    const auto web = replicated("app_web", 1);
    add_service(state, web, 0);
    state.containers.push_back(mounting(task_container(web, "app_web.1", "running"), {"app_data"}));
    out.push_back({"volumes: a task container of a service that does not mount it is refused",
                   restore,
                   quiesce_goal::quiesced,
                   std::move(state),
                   {},
                   {},
                   {"container app_web.1, a task of replicated service app_web, mounts volume "
                    "app_data, which run restore-1 quiesces, but its service does not mount it "
                    "(is an update under way?) or cannot be scaled to zero, and Swarm restarts "
                    "stopped tasks"}});
  }
  out.push_back(
      {"volumes: a service held by another run fails the run",
       restore,
       quiesce_goal::quiesced,
       with_services(
           {{mounting(replicated("app_db", 0, held("nightly-1", "2")), {"app_data"}), 0}}),
       {},
       {},
       {"service app_db is held by run nightly-1 (scaled to zero for it); wait for that run to "
        "finish, or recover it"}});
  out.push_back({"an empty group selects nothing by label",
                 {"restore-1", ""},
                 quiesce_goal::quiesced,
                 with_services({{replicated("app_db", 1, stop_label("")), 1}},
                               {plain_container("files", stop_label(""))}),
                 {},
                 {},
                 {}});

  // --- restored ---------------------------------------------------------

  out.push_back(
      {"a held service gets its replicas back and loses the lifeboat labels",
       nightly,
       quiesce_goal::restored,
       with_services({{replicated("app_db", 0, merged(stop_true, held("nightly-1", "2"))), 0}}),
       {},
       {restore_replicas{"id-app_db", "app_db", 10, 2}},
       {}});
  {
    observed_state state;
    const auto worker = replicated("app_worker", 2, {}, stop_true, "on-failure");
    const auto queue = replicated("app_queue", 1, {}, stop_true, "none");
    add_service(state, worker, 2, "complete", "exited");
    add_service(state, queue, 1, "complete", "exited");
    state.containers.push_back(plain_container("files", stop_true, "exited"));
    out.push_back(
        {"from the journal: one redeploy per service, a start per plain container",
         nightly,
         quiesce_goal::restored,
         std::move(state),
         {"nightly-1",
          {task_entry("app_worker", 1), plain_entry("files"), task_entry("app_queue", 1),
           task_entry("app_worker", 2)}},
         {start("files"), redeploy_service{"id-app_queue", "app_queue", 10, 1},
          redeploy_service{"id-app_worker", "app_worker", 10, 1}, clear_journal{"nightly-1"}},
         {}});
  }
  out.push_back(
      {"recovery restores what an inactive run holds and nothing of another run",
       nightly,
       quiesce_goal::restored,
       with_services({{replicated("app_db", 0, merged(stop_true, held("nightly-1", "2"))), 0},
                      {replicated("app_web", 0, merged(stop_true, held("nightly-2", "1"))), 0}}),
       {},
       {restore_replicas{"id-app_db", "app_db", 10, 2}},
       {}});
  out.push_back(
      {"an unreadable prior count is an error for that service alone",
       nightly,
       quiesce_goal::restored,
       with_services({{replicated("app_db", 0, merged(stop_true, held("nightly-1", "two"))), 0},
                      {replicated("app_queue", 0,
                                  merged(stop_true, {{std::string(held_by_label), "nightly-1"}})),
                       0},
                      {replicated("app_web", 0, merged(stop_true, held("nightly-1", "1"))), 0}}),
       {},
       {restore_replicas{"id-app_web", "app_web", 10, 1}},
       {"cannot restore service app_db: its label lifeboat.prior-replicas is \"two\", not a "
        "replica count; set its replicas by hand and remove the labels lifeboat.prior-replicas "
        "and lifeboat.held-by",
        "cannot restore service app_queue: its label lifeboat.prior-replicas is missing; set its "
        "replicas by hand and remove the labels lifeboat.prior-replicas and lifeboat.held-by"}});
  {
    observed_state state;
    auto worker = replicated("app_worker", 1, {}, stop_true, "on-failure");
    worker.force_update = 1;
    add_service(state, worker, 1, "complete", "exited");
    out.push_back({"a service redeployed since the stop is not redeployed again",
                   nightly,
                   quiesce_goal::restored,
                   std::move(state),
                   {"nightly-1", {task_entry("app_worker", 1, 0)}},
                   {clear_journal{"nightly-1"}},
                   {}});
  }
  out.push_back({"journaled containers that were never stopped need no redeploy",
                 nightly,
                 quiesce_goal::restored,
                 with_services({{replicated("app_worker", 1, {}, stop_true, "on-failure"), 1}},
                               {plain_container("files", stop_true)}),
                 {"nightly-1", {task_entry("app_worker", 1), plain_entry("files")}},
                 {clear_journal{"nightly-1"}},
                 {}});
  out.push_back({"journaled containers and services that are gone are dropped",
                 nightly,
                 quiesce_goal::restored,
                 {},
                 {"nightly-1", {task_entry("gone", 1), plain_entry("files")}},
                 {clear_journal{"nightly-1"}},
                 {}});
  out.push_back({"nothing held: nothing to restore",
                 nightly,
                 quiesce_goal::restored,
                 with_services({{replicated("app_db", 2, stop_true), 2}},
                               {plain_container("files", stop_true)}),
                 {},
                 {},
                 {}});
  out.push_back(
      {"another run's journal is not acted on, held services still are",
       nightly,
       quiesce_goal::restored,
       with_services({{replicated("app_db", 0, merged(stop_true, held("nightly-1", "2"))), 0}},
                     {plain_container("files", stop_true, "exited")}),
       {"nightly-0", {plain_entry("files")}},
       {restore_replicas{"id-app_db", "app_db", 10, 2}},
       {"the journal given for run \"nightly-1\" belongs to run \"nightly-0\""}});
  for (auto& l : label_scenarios()) {
    out.push_back(std::move(l.sc));
  }
  return out;
}

TEST(plan_quiesce, table) {
  for (const auto& sc : scenarios()) {
    SCOPED_TRACE(sc.name);
    const auto plan = plan_quiesce(sc.run, sc.goal, sc.observed, sc.recorded);
    EXPECT_EQ(plan.actions, sc.expected_actions);
    EXPECT_EQ(plan.errors, sc.expected_errors);
  }
}

TEST(plan_quiesce, left_stopped_names_what_no_restart_leaves_stopped) {
  for (const auto& [sc, left] : label_scenarios()) {
    SCOPED_TRACE(sc.name);
    EXPECT_EQ(plan_quiesce(sc.run, sc.goal, sc.observed, sc.recorded).left_stopped, left);
  }
}

TEST(matches_group, exact_and_one_of) {
  using api::label_match;
  struct row {
    std::string_view value;
    std::string_view group;
    label_match match;
    bool expected;
  };
  const row rows[] = {
      {"true", "true", label_match::exact, true}, {"a,b", "b", label_match::exact, false},
      {"a,b", "a,b", label_match::exact, true},   {" b", "b", label_match::exact, false},
      {"a,b", "b", label_match::one_of, true},    {"a,b", "a", label_match::one_of, true},
      {"a , b", "b", label_match::one_of, true},  {"\tb\t,a", "b", label_match::one_of, true},
      {"b", "b", label_match::one_of, true},      {"ab,c", "b", label_match::one_of, false},
      {"a b", "b", label_match::one_of, false},   {"a,b", "a,b", label_match::one_of, false},
      {",", "b", label_match::one_of, false},     {"", "b", label_match::one_of, false},
      {"", "", label_match::exact, false},        {",", "", label_match::one_of, false},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(std::string(r.value) + " / " + std::string(r.group));
    EXPECT_EQ(matches_group(r.value, r.group, r.match), r.expected);
  }
}

// A no-restart service and container through a whole run: both stay stopped,
// the service with who left it so and its count, and nothing is held after.
TEST(plan_quiesce, no_restart_round_trip_leaves_them_stopped_and_released) {
  const auto no_restart = no_restart_label();
  world w{with_services({{replicated("app_db", 2, no_restart), 2},
                         {replicated("app_web", 1, stop_label()), 1}},
                        {plain_container("files", no_restart)}),
          {}};
  const auto down = plan_quiesce(nightly, quiesce_goal::quiesced, w.observed, w.recorded);
  ASSERT_THAT(down.errors, testing::IsEmpty());
  w = apply_all(w, down.actions);
  settle(w);
  ASSERT_TRUE(
      check_convergence(nightly, quiesce_goal::quiesced, w.observed, w.recorded).converged());

  const auto up = plan_quiesce(nightly, quiesce_goal::restored, w.observed, w.recorded);
  ASSERT_THAT(up.errors, testing::IsEmpty());
  EXPECT_EQ(up.left_stopped,
            (std::vector<std::string>{"service app_db (2 replicas)", "container files"}));
  w = apply_all(w, up.actions);
  settle(w);
  EXPECT_TRUE(check_convergence(nightly, quiesce_goal::restored, w.observed, w.recorded, up.actions)
                  .converged());
  EXPECT_THAT(held_runs(w.observed, std::span(&w.recorded, 1)), testing::IsEmpty());
  EXPECT_THAT(plan_quiesce(nightly, quiesce_goal::restored, w.observed, w.recorded).actions,
              testing::IsEmpty());

  const auto& db = find_service(w, "id-app_db");
  EXPECT_EQ(db.replicas, 0U);
  EXPECT_EQ(db.service_labels, merged(no_restart, {{"lifeboat.left-stopped-by", "nightly-1"},
                                                   {"lifeboat.left-stopped-replicas", "2"}}));
  EXPECT_EQ(find_service(w, "id-app_web").replicas, 1U);
  EXPECT_EQ(find_container(w, "c-files")->state, "exited");
}

// A run killed while it held a no-restart service and container: recovery
// releases the run, and restoring it (as recovery does, without a group)
// leaves both stopped and holds nothing afterwards.
TEST(plan_recovery, a_dead_run_holding_no_restart_workloads_is_released_and_left_stopped) {
  world w{with_services({{replicated("app_db", 0, held_no_restart("nightly-1", "2")), 0}},
                        {plain_container("files", no_restart_label(), "exited")}),
          {"nightly-1", {no_restart_entry(plain_entry("files"))}}};
  const auto now = std::chrono::system_clock::time_point{std::chrono::hours{1000}};
  const auto plan = plan_recovery(w.observed, std::span(&w.recorded, 1), {}, "me", {}, now);
  EXPECT_EQ(plan.release, (std::vector<std::string>{"nightly-1"}));

  const quiesce_run recovery{"nightly-1", ""};
  const auto up = plan_quiesce(recovery, quiesce_goal::restored, w.observed, w.recorded);
  ASSERT_THAT(up.errors, testing::IsEmpty());
  w = apply_all(w, up.actions);
  settle(w);
  EXPECT_TRUE(
      check_convergence(recovery, quiesce_goal::restored, w.observed, w.recorded, up.actions)
          .converged());
  EXPECT_THAT(held_runs(w.observed, std::span(&w.recorded, 1)), testing::IsEmpty());
  EXPECT_EQ(find_service(w, "id-app_db").replicas, 0U);
  EXPECT_EQ(find_service(w, "id-app_db").service_labels.at("lifeboat.left-stopped-replicas"), "2");
  EXPECT_EQ(find_container(w, "c-files")->state, "exited");
}

// Planning, applying the actions and planning again gives nothing to do, and
// so does planning once Swarm has reacted; the goal is then converged. A plan
// with errors for the quiesced goal touches nothing, so there is nothing to
// apply; the errors of the restored goal concern workloads it leaves alone, so
// they stay.
TEST(plan_quiesce, idempotent_in_every_scenario) {
  for (const auto& sc : scenarios()) {
    SCOPED_TRACE(sc.name);
    const auto plan = plan_quiesce(sc.run, sc.goal, sc.observed, sc.recorded);
    if (!plan.actions.empty()) {
      EXPECT_FALSE(check_convergence(sc.run, sc.goal, sc.observed, sc.recorded).converged());
    }
    auto w = apply_all({sc.observed, sc.recorded}, plan.actions);
    auto again = plan_quiesce(sc.run, sc.goal, w.observed, w.recorded);
    EXPECT_THAT(again.actions, testing::IsEmpty());
    EXPECT_EQ(again.errors, plan.errors);

    settle(w);
    again = plan_quiesce(sc.run, sc.goal, w.observed, w.recorded);
    EXPECT_THAT(again.actions, testing::IsEmpty());
    EXPECT_EQ(again.errors, plan.errors);
    if (plan.errors.empty()) {
      const auto c = check_convergence(sc.run, sc.goal, w.observed, w.recorded, plan.actions);
      EXPECT_TRUE(c.converged()) << describe(c);
    }
  }
}

// The listing's order must not show in the plan.
TEST(plan_quiesce, output_order_does_not_depend_on_input_order) {
  const auto stop_true = stop_label();
  observed_state state =
      with_services({{replicated("b_db", 1, stop_true), 1},
                     {replicated("a_db", 2, stop_true), 2},
                     {replicated("c_worker", 2, {}, stop_true, "on-failure"), 2},
                     {replicated("a_worker", 1, {}, stop_true, "on-failure"), 1}},
                    {plain_container("zeta", stop_true), plain_container("alpha", stop_true)});
  const actions expected{
      record_journal{{"nightly-1",
                      {task_entry("a_worker", 1), plain_entry("alpha"), task_entry("c_worker", 1),
                       task_entry("c_worker", 2), plain_entry("zeta")}}},
      stop("a_worker.1"),
      stop("alpha"),
      stop("c_worker.1"),
      stop("c_worker.2"),
      stop("zeta"),
      scale_to_zero{"id-a_db", "a_db", 10, 2, "nightly-1"},
      scale_to_zero{"id-b_db", "b_db", 10, 1, "nightly-1"},
  };
  for (int rotation = 0; rotation < 4; ++rotation) {
    SCOPED_TRACE(rotation);
    EXPECT_EQ(plan_quiesce(nightly, quiesce_goal::quiesced, state, {}).actions, expected);
    std::rotate(state.services.begin(), state.services.begin() + 1, state.services.end());
    std::reverse(state.containers.begin(), state.containers.end());
    std::rotate(state.tasks.begin(), state.tasks.begin() + 1, state.tasks.end());
  }
}

// Both docker-volume-backup examples through a whole run: quiesce, Swarm
// settles, restore, Swarm settles. Everything runs again as before.
TEST(plan_quiesce, round_trip_brings_everything_back) {
  const auto stop_true = stop_label();
  const auto app_db = replicated("app_db", 2, stop_true);
  const auto worker = replicated("app_worker", 2, {}, stop_true, "on-failure");
  world w{with_services({{app_db, 2}, {worker, 2}}, {plain_container("files", stop_true)}), {}};

  const auto down = plan_quiesce(nightly, quiesce_goal::quiesced, w.observed, w.recorded);
  ASSERT_THAT(down.errors, testing::IsEmpty());
  w = apply_all(w, down.actions);
  EXPECT_EQ(describe(check_convergence(nightly, quiesce_goal::quiesced, w.observed, w.recorded)),
            "waiting for service app_db: 2 tasks still running");
  settle(w);
  EXPECT_TRUE(
      check_convergence(nightly, quiesce_goal::quiesced, w.observed, w.recorded).converged());
  EXPECT_EQ(held_runs(w.observed, std::span(&w.recorded, 1)),
            (std::vector<std::string>{"nightly-1"}));

  const auto up = plan_quiesce(nightly, quiesce_goal::restored, w.observed, w.recorded);
  ASSERT_THAT(up.errors, testing::IsEmpty());
  EXPECT_EQ(up.actions, (actions{restore_replicas{"id-app_db", "app_db", 11, 2}, start("files"),
                                 redeploy_service{"id-app_worker", "app_worker", 10, 1},
                                 clear_journal{"nightly-1"}}));
  w = apply_all(w, up.actions);
  EXPECT_FALSE(
      check_convergence(nightly, quiesce_goal::restored, w.observed, w.recorded, up.actions)
          .converged());
  settle(w);
  EXPECT_TRUE(check_convergence(nightly, quiesce_goal::restored, w.observed, w.recorded, up.actions)
                  .converged());
  EXPECT_THAT(held_runs(w.observed, std::span(&w.recorded, 1)), testing::IsEmpty());

  for (const auto& s : w.observed.services) {
    SCOPED_TRACE(s.name);
    EXPECT_EQ(s.replicas, 2U);
    EXPECT_EQ(s.service_labels, s.name == "app_db" ? stop_true : label_map{});
    std::uint64_t running = 0;
    for (const auto& t : w.observed.tasks) {
      running += t.service_id == s.id && t.state == "running" ? 1 : 0;
    }
    EXPECT_EQ(running, 2U);
  }
  EXPECT_EQ(find_container(w, "c-files")->state, "running");
}

// A restore's run: an unlabelled service and a plain container that mount the
// volume go down and come back as they were.
TEST(plan_quiesce, volume_round_trip_brings_everything_back) {
  const quiesce_run restore{"restore-1", "", {"app_data"}};
  const auto app_db = mounting(replicated("app_db", 3), {"app_data"});
  world w{with_services({{app_db, 3}}, {mounting(plain_container("files", {}), {"app_data"})}), {}};

  const auto down = plan_quiesce(restore, quiesce_goal::quiesced, w.observed, w.recorded);
  ASSERT_THAT(down.errors, testing::IsEmpty());
  w = apply_all(w, down.actions);
  EXPECT_EQ(describe(check_convergence(restore, quiesce_goal::quiesced, w.observed, w.recorded)),
            "waiting for service app_db: 3 tasks still running; waiting for container app_db.1: "
            "still running; waiting for container app_db.2: still running; waiting for "
            "container app_db.3: still running");
  settle(w);
  EXPECT_TRUE(
      check_convergence(restore, quiesce_goal::quiesced, w.observed, w.recorded).converged());

  const auto up = plan_quiesce(restore, quiesce_goal::restored, w.observed, w.recorded);
  ASSERT_THAT(up.errors, testing::IsEmpty());
  EXPECT_EQ(up.actions, (actions{restore_replicas{"id-app_db", "app_db", 11, 3}, start("files"),
                                 clear_journal{"restore-1"}}));
  w = apply_all(w, up.actions);
  settle(w);
  EXPECT_TRUE(check_convergence(restore, quiesce_goal::restored, w.observed, w.recorded, up.actions)
                  .converged());
  EXPECT_EQ(w.observed.services.front().replicas, 3U);
  EXPECT_EQ(w.observed.services.front().service_labels, label_map{});
  EXPECT_EQ(find_container(w, "c-files")->state, "running");
}

// "update out of sequence" after the first redeploy: the re-plan redeploys
// only the service that has not been, since the first one's counter moved.
TEST(plan_quiesce, restore_resumes_after_a_partial_apply) {
  observed_state state;
  add_service(state, replicated("a_worker", 1, {}, stop_label(), "on-failure"), 1, "complete",
              "exited");
  add_service(state, replicated("b_worker", 1, {}, stop_label(), "on-failure"), 1, "complete",
              "exited");
  world w{state, {"nightly-1", {task_entry("a_worker", 1), task_entry("b_worker", 1)}}};
  const auto plan = plan_quiesce(nightly, quiesce_goal::restored, w.observed, w.recorded);
  ASSERT_EQ(plan.actions.size(), 3U);
  apply(w, plan.actions[0]);
  find_service(w, "id-b_worker").version = 11;  // someone else wrote first
  settle(w);
  EXPECT_EQ(
      plan_quiesce(nightly, quiesce_goal::restored, w.observed, w.recorded).actions,
      (actions{redeploy_service{"id-b_worker", "b_worker", 11, 1}, clear_journal{"nightly-1"}}));
}

// ---------------------------------------------------------------------------
// Convergence.

observed_state held_with_task(const std::string& task_state, const std::string& desired) {
  observed_state state;
  state.services.push_back(replicated("app_db", 0, merged(stop_label(), held("nightly-1", "1"))));
  state.tasks.push_back({"app_db.1", "id-app_db", task_state, desired, "c-app_db.1"});
  return state;
}

TEST(check_convergence, any_task_from_new_to_running_keeps_a_scale_down_pending) {
  for (const std::string state : {"new", "allocated", "pending", "assigned", "accepted",
                                  "preparing", "ready", "starting", "running"}) {
    SCOPED_TRACE(state);
    // The desired state does not matter: a task on its way down still writes.
    for (const std::string desired : {"running", "shutdown"}) {
      const auto c =
          check_convergence(nightly, quiesce_goal::quiesced, held_with_task(state, desired), {});
      EXPECT_THAT(c.pending, ElementsAre(pending_workload{workload_kind::service, "id-app_db",
                                                          "app_db", "1 task still " + state}));
    }
  }
}

TEST(check_convergence, ended_tasks_do_not_keep_a_scale_down_pending) {
  for (const std::string state :
       {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}) {
    SCOPED_TRACE(state);
    EXPECT_TRUE(
        check_convergence(nightly, quiesce_goal::quiesced, held_with_task(state, "shutdown"), {})
            .converged());
  }
}

TEST(check_convergence, counts_tasks_by_state_in_lifecycle_order) {
  observed_state state = held_with_task("running", "shutdown");
  state.tasks.push_back({"app_db.2", "id-app_db", "preparing", "running", ""});
  state.tasks.push_back({"app_db.3", "id-app_db", "running", "shutdown", ""});
  state.tasks.push_back({"app_db.4", "id-app_db", "complete", "shutdown", ""});
  state.tasks.push_back({"other.1", "id-other", "running", "running", ""});
  const auto c = check_convergence(nightly, quiesce_goal::quiesced, state, {});
  EXPECT_EQ(describe(c), "waiting for service app_db: 3 tasks still preparing or running");
}

// A service the user had at zero before the run is not ours, but it must be
// quiet all the same before the backup reads its volumes.
TEST(check_convergence, waits_for_selected_services_already_at_zero) {
  observed_state state;
  state.services.push_back(replicated("app_db", 0, stop_label()));
  state.tasks.push_back({"app_db.1", "id-app_db", "running", "shutdown", ""});
  EXPECT_EQ(describe(check_convergence(nightly, quiesce_goal::quiesced, state, {})),
            "waiting for service app_db: 1 task still running");
  state.tasks.front().state = "shutdown";
  EXPECT_TRUE(check_convergence(nightly, quiesce_goal::quiesced, state, {}).converged());
}

TEST(check_convergence, quiesce_waits_for_planned_actions_and_running_containers) {
  auto state = with_services({{replicated("app_db", 2, stop_label()), 2}},
                             {plain_container("files", stop_label(), "paused")});
  const journal recorded{"nightly-1", {plain_entry("files")}};
  EXPECT_EQ(describe(check_convergence(nightly, quiesce_goal::quiesced, state, recorded)),
            "waiting for service app_db: not scaled to zero yet; waiting for container files: "
            "still running");
  state.containers.back().state = "exited";
  state.services.front().replicas = 0;  // the user's own doing: no longer ours to scale
  EXPECT_EQ(describe(check_convergence(nightly, quiesce_goal::quiesced, state, recorded)),
            "waiting for service app_db: 2 tasks still running");
}

// Issue 12, item 7: until Swarm has recorded how a stopped task ended, the
// run cannot tell whether a replacement is coming.
TEST(check_convergence, a_stopped_task_container_waits_for_its_task_to_end) {
  auto state = with_services({{replicated("app_worker", 1, {}, stop_label(), "on-failure"), 1}});
  state.containers.front().state = "exited";
  const journal recorded{"nightly-1", {task_entry("app_worker", 1)}};
  EXPECT_EQ(describe(check_convergence(nightly, quiesce_goal::quiesced, state, recorded)),
            "waiting for container app_worker.1: stopped, but its task is still running in Swarm");
  state.tasks.front().state = "complete";
  state.tasks.front().exit_code = 0;
  EXPECT_TRUE(check_convergence(nightly, quiesce_goal::quiesced, state, recorded).converged());
}

TEST(check_convergence, scale_up_counts_running_tasks) {
  observed_state state;
  state.services.push_back(replicated("app_db", 3));
  const actions applied{restore_replicas{"id-app_db", "app_db", 10, 3}};
  const auto check = [&] {
    return describe(check_convergence(nightly, quiesce_goal::restored, state, {}, applied));
  };
  EXPECT_EQ(check(), "waiting for service app_db: 0 of 3 tasks running");
  state.tasks.push_back({"app_db.1", "id-app_db", "running", "running", ""});
  state.tasks.push_back({"app_db.2", "id-app_db", "starting", "running", ""});
  state.tasks.push_back({"app_db.3", "id-app_db", "running", "shutdown", ""});  // going away
  EXPECT_EQ(check(), "waiting for service app_db: 1 of 3 tasks running");
  state.tasks[1].state = "running";
  state.tasks.push_back({"app_db.4", "id-app_db", "running", "running", ""});
  EXPECT_EQ(check(), "converged");
}

TEST(check_convergence, restore_waits_for_held_services_journal_and_applied_actions) {
  observed_state state;
  state.services.push_back(replicated("app_db", 0, merged(stop_label(), held("nightly-1", "2"))));
  auto worker = replicated("app_worker", 2, {}, stop_label(), "on-failure");
  worker.force_update = 1;
  state.services.push_back(worker);
  state.tasks.push_back({"app_worker.7", "id-app_worker", "running", "running", ""});
  state.tasks.push_back({"app_worker.8", "id-app_worker", "preparing", "running", ""});
  state.containers.push_back(plain_container("files", stop_label(), "exited"));
  const journal recorded{"nightly-1", {task_entry("app_worker", 1, 0), plain_entry("files")}};
  const actions applied{redeploy_service{"id-app_worker", "app_worker", 10, 1}};
  EXPECT_EQ(describe(check_convergence(nightly, quiesce_goal::restored, state, recorded, applied)),
            "waiting for service app_db: not scaled back to 2 replicas yet; waiting for service "
            "app_worker: 1 task still preparing; waiting for container files: not started yet; "
            "waiting for the journal of run nightly-1: not cleared yet");

  // A held service that cannot be restored (see the errors) stays pending.
  state.services.front().service_labels[std::string(prior_replicas_label)] = "x";
  state.tasks[1].state = "running";
  state.containers.front().state = "running";
  EXPECT_EQ(describe(check_convergence(nightly, quiesce_goal::restored, state, {}, applied)),
            "waiting for service app_db: still held at zero replicas");
}

TEST(check_convergence, restore_forgets_workloads_that_are_gone) {
  const actions applied{restore_replicas{"id-app_db", "app_db", 10, 2}, start("files"),
                        redeploy_service{"id-app_worker", "app_worker", 10, 1}};
  EXPECT_TRUE(check_convergence(nightly, quiesce_goal::restored, {}, {}, applied).converged());
}

// ---------------------------------------------------------------------------
// The rest of the interface.

TEST(held_runs, lists_holders_of_services_and_journals_once_sorted) {
  const auto state = with_services({{replicated("a", 0, held("nightly-2", "1")), 0},
                                    {replicated("b", 0, held("nightly-1", "1")), 0},
                                    {replicated("c", 0, held("nightly-2", "3")), 0},
                                    {replicated("d", 0, {{std::string(held_by_label), ""}}), 0},
                                    {replicated("e", 1), 1}});
  const std::vector<journal> journals{
      {"restore-1", {plain_entry("files")}}, {"nightly-3", {}}, {"nightly-1", {plain_entry("x")}}};
  EXPECT_EQ(held_runs(state, journals),
            (std::vector<std::string>{"nightly-1", "nightly-2", "restore-1"}));
  EXPECT_THAT(held_runs({}), testing::IsEmpty());
}

// ---------------------------------------------------------------------------
// Recovery: which runs another process may release.

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

const system_clock::time_point noon =
    system_clock::time_point{} + std::chrono::hours{24 * 19844 + 12};
const std::string self = "host-a/1/aa";

run_owner owned(const std::string& run, const std::string& owner, system_clock::duration age,
                milliseconds expiry = seconds{60}) {
  return {run, owner, noon - age, expiry};
}

TEST(plan_recovery, table) {
  struct recovery_case {
    std::string name;
    bool held = false;  // by a service's labels
    std::optional<run_owner> record;
    bool active = false;
    recovery_plan expected;
  };
  const recovery_case cases[] = {
      {"no record (an older lifeboat, or a lost record): released",
       true,
       std::nullopt,
       false,
       {{"r"}, {}, {}}},
      {"another owner's live record: kept",
       true,
       owned("r", "host-b/7/bb", seconds{3}),
       false,
       {{}, {}, {{"r", "owned by host-b/7/bb, alive (renewed 3s ago, expires in 57s)"}}}},
      {"another owner's expired record: released",
       true,
       owned("r", "host-b/7/bb", seconds{61}),
       false,
       {{"r"}, {}, {}}},
      {"expired at exactly heartbeat + expiry",
       true,
       owned("r", "host-b/7/bb", seconds{60}),
       false,
       {{"r"}, {}, {}}},
      {"alive a millisecond before",
       true,
       owned("r", "host-b/7/bb", seconds{60} - milliseconds{1}),
       false,
       {{}, {}, {{"r", "owned by host-b/7/bb, alive (renewed 59s ago, expires in 0s)"}}}},
      {"the owner's own expiry counts, not a default",
       true,
       owned("r", "host-b/7/bb", seconds{100}, seconds{300}),
       false,
       {{}, {}, {{"r", "owned by host-b/7/bb, alive (renewed 100s ago, expires in 200s)"}}}},
      {"an unreadable record (zero heartbeat) counts as expired",
       true,
       run_owner{"r", "host-b/7/bb", {}, seconds{60}},
       false,
       {{"r"}, {}, {}}},
      {"this process's record, run not active: released at once",
       true,
       owned("r", self, seconds{1}),
       false,
       {{"r"}, {}, {}}},
      {"this process's record, run active: kept",
       true,
       owned("r", self, seconds{1}),
       true,
       {{}, {}, {{"r", "active in this process"}}}},
      {"active without a record (a run of this process before ownership): kept",
       true,
       std::nullopt,
       true,
       {{}, {}, {{"r", "active in this process"}}}},
      {"a live run that holds nothing yet (claimed, not acted): kept",
       false,
       owned("r", "host-b/7/bb", seconds{0}),
       false,
       {{}, {}, {{"r", "owned by host-b/7/bb, alive (renewed 0s ago, expires in 60s)"}}}},
      {"an expired record of a run that holds nothing: forgotten",
       false,
       owned("r", "host-b/7/bb", std::chrono::hours{2}),
       false,
       {{}, {"r"}, {}}},
      {"this process's record of an inactive run that holds nothing: forgotten",
       false,
       owned("r", self, seconds{1}),
       false,
       {{}, {"r"}, {}}},
      {"nothing held, no record: nothing to do", false, std::nullopt, false, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto state =
        c.held ? with_services({{replicated("app_db", 0, held("r", "2")), 0}}) : observed_state{};
    std::vector<run_owner> owners;
    if (c.record) {
      owners.push_back(*c.record);
    }
    const std::set<std::string> active =
        c.active ? std::set<std::string>{"r"} : std::set<std::string>{};
    EXPECT_EQ(plan_recovery(state, {}, owners, self, active, noon), c.expected);
  }
}

TEST(plan_recovery, a_live_record_of_a_process_known_gone_is_released_at_once) {
  const auto state = with_services({{replicated("app_db", 0, held("r", "2")), 0}});
  const std::vector<run_owner> owners{{"r", "host-a/42/aa", noon, std::chrono::seconds{60}}};
  EXPECT_EQ(plan_recovery(state, {}, owners, "host-a/7/bb", {}, noon, {"host-a/42/aa"}),
            (recovery_plan{{"r"}, {}, {}}));
  // Any other owner still alive is kept.
  EXPECT_EQ(plan_recovery(state, {}, owners, "host-a/7/bb", {}, noon, {"host-a/43/cc"}).kept.size(),
            1U);
}

TEST(helper_run_of, strips_the_prefix_of_each_kind_of_helper) {
  EXPECT_EQ(helper_run_of("/lifeboat-read-nightly-1"), "nightly-1");
  EXPECT_EQ(helper_run_of("lifeboat-restore-restore-r1"), "restore-r1");
  EXPECT_EQ(helper_run_of("/lifeboat-wipe-x"), "x");
  EXPECT_EQ(helper_run_of("/lifeboat-measure-x"), "x");
  EXPECT_EQ(helper_run_of("/lifeboat-read-"), "");
  EXPECT_EQ(helper_run_of("/app_db.1.abc"), "");
}

TEST(leftover_helpers, removes_only_what_belongs_to_dead_runs) {
  const auto made = [](std::string id, std::string run, system_clock::duration age) {
    return helper_container{std::move(id), std::move(run), noon - age};
  };
  const std::vector<helper_container> helpers{
      made("a", "dead-1", seconds{300}),     // no record, old: a killed run
      made("b", "young-1", seconds{10}),     // no record yet: perhaps starting
      made("c", "alive-1", seconds{300}),    // another owner's live record
      made("d", "expired-1", seconds{300}),  // another owner's expired record
      made("e", "mine-1", seconds{300}),     // active in this process
      made("f", "", seconds{300}),           // not a name of ours
      made("g", "gone-1", seconds{10}),      // its owner's process is gone
      made("h", "released-1", seconds{10}),  // this process's record, not active
  };
  const std::vector<run_owner> owners{
      owned("alive-1", "host-b/7/bb", seconds{3}),
      owned("expired-1", "host-b/7/bb", seconds{61}),
      owned("gone-1", "host-a/42/aa", seconds{1}),
      owned("released-1", self, seconds{1}),
  };
  EXPECT_EQ(
      leftover_helpers(helpers, owners, self, {"mine-1"}, noon, seconds{60}, {"host-a/42/aa"}),
      (std::vector<std::string>{"a", "d", "g", "h"}));
}

TEST(plan_recovery, journals_count_as_holdings_and_lists_are_sorted) {
  const auto state = with_services({{replicated("a", 0, held("nightly-3", "1")), 0},
                                    {replicated("b", 0, held("nightly-1", "1")), 0},
                                    {replicated("c", 0, held("backup-9", "1")), 0}});
  const std::vector<journal> journals{{"restore-1", {plain_entry("files")}},
                                      {"restore-2", {plain_entry("cache")}}};
  const std::vector<run_owner> owners{
      owned("restore-2", "host-b/7/bb", seconds{5}),    // alive: kept
      owned("nightly-3", "host-b/7/bb", seconds{500}),  // expired: released
      owned("old-1", "host-c/9/cc", seconds{500}),      // expired, holds nothing
      owned("nightly-1", self, seconds{5}),             // ours, active
  };
  const auto plan = plan_recovery(state, journals, owners, self, {"nightly-1"}, noon);
  EXPECT_EQ(plan.release, (std::vector<std::string>{"backup-9", "nightly-3", "restore-1"}));
  EXPECT_EQ(plan.forget, (std::vector<std::string>{"old-1"}));
  EXPECT_EQ(plan.kept,
            (std::map<std::string, std::string>{
                {"nightly-1", "active in this process"},
                {"restore-2", "owned by host-b/7/bb, alive (renewed 5s ago, expires in 55s)"}}));
}

TEST(scale_to_zero, labels_to_set_marks_a_no_restart_hold) {
  const scale_to_zero a{"id-app_db", "app_db", 7, 2, "nightly-1", true};
  EXPECT_EQ(a.labels_to_set(), (label_map{{"lifeboat.held-by", "nightly-1"},
                                          {"lifeboat.held-no-restart", "true"},
                                          {"lifeboat.prior-replicas", "2"}}));
}

TEST(leave_stopped, labels_to_set_records_who_and_the_count_when_known) {
  EXPECT_EQ((leave_stopped{"s1", "app_db", 7, 2, "nightly-1"}.labels_to_set()),
            (label_map{{"lifeboat.left-stopped-by", "nightly-1"},
                       {"lifeboat.left-stopped-replicas", "2"}}));
  EXPECT_EQ((leave_stopped{"s1", "app_db", 7, std::nullopt, "nightly-1"}.labels_to_set()),
            (label_map{{"lifeboat.left-stopped-by", "nightly-1"}}));
}

TEST(scale_to_zero, labels_to_set_records_prior_and_holder) {
  const scale_to_zero a{"id-app_db", "app_db", 7, 2, "nightly-1"};
  EXPECT_EQ(a.labels_to_set(),
            (label_map{{"lifeboat.held-by", "nightly-1"}, {"lifeboat.prior-replicas", "2"}}));
}

TEST(describe, names_target_and_change) {
  const std::pair<quiesce_action, std::string> cases[] = {
      {scale_to_zero{"s1", "app_db", 7, 2, "nightly-1"},
       "scale service app_db (id s1, version 7) from 2 replicas to 0, held by nightly-1"},
      {restore_replicas{"s1", "app_db", 8, 1},
       "scale service app_db (id s1, version 8) back to 1 replica and release it"},
      {record_journal{{"nightly-1", {{"c1", "s1", 3}, {"c2", "", 0}}}},
       "record in the journal of run nightly-1: c1 (service s1, force update 3) c2"},
      {stop_container{"c1", "app_db.1"}, "stop container app_db.1 (id c1)"},
      {start_container{"c2", "files"}, "start container files (id c2)"},
      {redeploy_service{"s1", "app_worker", 9, 4},
       "redeploy service app_worker (id s1, version 9) with force update 4 to bring back its "
       "stopped tasks"},
      {clear_journal{"nightly-1"}, "clear the journal of run nightly-1"},
      {scale_to_zero{"s1", "app_db", 7, 2, "nightly-1", true},
       "scale service app_db (id s1, version 7) from 2 replicas to 0, held by nightly-1, not to "
       "be restarted"},
      {leave_stopped{"s1", "app_db", 8, 2, "nightly-1"},
       "release service app_db (id s1, version 8) and leave it at 0 replicas (it had 2), left "
       "stopped by nightly-1"},
  };
  for (const auto& [action, text] : cases) {
    EXPECT_EQ(describe(action), text);
  }
  EXPECT_EQ(to_string(quiesce_goal::quiesced), "quiesced");
  EXPECT_EQ(to_string(quiesce_goal::restored), "restored");
  EXPECT_EQ(to_string(service_mode::replicated_job), "replicated-job");
}

// Issue 12 item 10: the polling loops list only the tasks a plan can need.
TEST(tasks_matter, labelled_mounting_or_journaled_services_only) {
  const quiesce_run run{"r1", "true", {"db_data"}};
  const journal none{"r1", {}};
  EXPECT_FALSE(tasks_matter(run, replicated("plain", 3), none));
  EXPECT_TRUE(tasks_matter(run, replicated("labelled", 1, stop_label("other")), none));
  EXPECT_TRUE(tasks_matter(run, replicated("tasks-labelled", 1, {}, stop_label()), none));
  EXPECT_TRUE(tasks_matter(run, replicated("held", 0, held("r0", "2")), none));
  EXPECT_TRUE(tasks_matter(run, mounting(replicated("writer", 1), {"db_data"}), none));
  EXPECT_FALSE(tasks_matter(run, mounting(replicated("other-writer", 1), {"logs"}), none));
  const journal stopped{"r1", {{"c-x", "id-unlabelled-now", 4}}};
  EXPECT_TRUE(tasks_matter(run, replicated("unlabelled-now", 1), stopped));
}

}  // namespace
}  // namespace lifeboat::reconcilers
