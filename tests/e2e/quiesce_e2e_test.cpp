// Quiesce and resume against the real swarm: the two service shapes of
// docker-volume-backup's Swarm mode, the refusals, and recovery after kill -9.
#include "controller/quiesce/quiesce.hpp"
#include "tests/e2e/engine_fixture.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>

namespace lifeboat::e2e {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using reconcilers::quiesce_goal;
using reconcilers::quiesce_run;

constexpr const char* label = "docker-volume-backup.stop-during-backup";
// Exits 0 on SIGTERM, as a well-behaved server does: under restart policy
// on-failure Swarm then leaves the stopped task alone.
constexpr const char* polite_loop = "trap 'exit 0' TERM; while true; do sleep 1; done";

class quiesce_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    journals_ = quiesce::make_config_journal_store(engine());
  }

  // A replicated service from `spec_changes` applied to a basic spec.
  std::string service(const std::string& name, std::uint64_t replicas,
                      const std::function<void(json::object&)>& change = {}) {
    json::object spec{{"Name", name},
                      {"TaskTemplate",
                       json::object{{"ContainerSpec",
                                     json::object{{"Image", test_image()},
                                                  {"Command", json::array{"sh", "-c", polite_loop}},
                                                  {"StopGracePeriod", 5'000'000'000}}},
                                    {"RestartPolicy", json::object{{"Condition", "any"}}}}},
                      {"Mode", json::object{{"Replicated", json::object{{"Replicas", replicas}}}}}};
    if (change) {
      change(spec);
    }
    auto id = engine().create_service(spec);
    EXPECT_TRUE(id) << id.error().describe();
    if (!id) {
      return {};
    }
    on_teardown([this, id = *id] { (void)engine().remove_service(id); });
    return *id;
  }

  std::uint64_t version_of(const std::string& id) {
    auto s = engine().inspect_service(id);
    return s ? s->version : 0;
  }

  std::size_t active_tasks(const std::string& service_id) {
    auto tasks = engine().list_tasks({{"service", {service_id}}});
    std::size_t n = 0;
    for (const auto& t : tasks ? *tasks : std::vector<engine::task>{}) {
      n += reconcilers::is_active_task_state(t.state) ? 1 : 0;
    }
    return n;
  }

  bool has_lifeboat_label(const std::string& id) {
    auto s = engine().inspect_service(id);
    return s && (s->service_labels.contains("lifeboat.prior-replicas") ||
                 s->service_labels.contains("lifeboat.held-by"));
  }

  std::unique_ptr<quiesce::journal_store> journals_;
};

TEST_F(quiesce_e2e, docker_volume_backup_swarm_examples) {
  // docker-volume-backup's examples use the group "true"; a group of this
  // test's own keeps other workloads on the shared engine out of the run.
  const auto group = unique("group");
  // 1. Labelled in `deploy`: scaled to zero and back.
  const auto scaled = service(unique("scaled"), 2, [&](json::object& spec) {
    spec["Labels"] = json::object{{label, group}};
  });
  // 2. Its containers carry the label, restart policy on-failure: stopped and back.
  const auto stopped = service(unique("stopped"), 2, [&](json::object& spec) {
    auto& tt = spec["TaskTemplate"].as_object();
    tt["ContainerSpec"].as_object()["Labels"] = json::object{{label, group}};
    tt["RestartPolicy"] = json::object{{"Condition", "on-failure"}};
  });
  ASSERT_TRUE(
      eventually([&] { return running_tasks(scaled) == 2 && running_tasks(stopped) == 2; }));

  const quiesce_run run{unique("run"), group};
  bool checked = false;
  const auto result = quiesce::with_quiesced(engine(), *journals_, run, 60s, 60s, [&](int) {
    checked = true;
    auto s = engine().inspect_service(scaled);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->replicas, 0U);
    EXPECT_EQ(s->service_labels["lifeboat.prior-replicas"], "2");
    EXPECT_EQ(s->service_labels["lifeboat.held-by"], run.name);
    EXPECT_EQ(active_tasks(scaled), 0U) << "a task of the scaled service still runs";
    EXPECT_EQ(running_tasks(stopped), 0U) << "a labelled container still runs";
    auto journal = journals_->load(run.name);
    ASSERT_TRUE(journal);
    EXPECT_EQ(journal->entries.size(), 2U) << "the stopped containers are journaled";
  });
  EXPECT_TRUE(checked);
  EXPECT_TRUE(result.quiesce.ok) << result.quiesce.message;
  EXPECT_TRUE(result.resume.ok) << result.resume.message;
  EXPECT_EQ(result.quiesce.workloads, 3) << "one service scaled, two containers stopped";

  EXPECT_TRUE(eventually([&] { return running_tasks(scaled) == 2; }));
  EXPECT_TRUE(eventually([&] { return running_tasks(stopped) == 2; }));
  EXPECT_FALSE(has_lifeboat_label(scaled));
  EXPECT_FALSE(has_lifeboat_label(stopped));
  auto journal = journals_->load(run.name);
  ASSERT_TRUE(journal);
  EXPECT_TRUE(journal->entries.empty()) << "the journal is cleared after the restart";
}

TEST_F(quiesce_e2e, plain_containers_are_stopped_and_started) {
  // Outside Swarm's tasks (a `docker run` container), stop and start suffice.
  const json::object body{{"Image", test_image()},
                          {"Cmd", json::array{"sh", "-c", polite_loop}},
                          {"Labels", json::object{{label, "g-plain"}}},
                          {"HostConfig", json::object{{"NetworkMode", "none"}}}};
  auto id = engine().create_container(body, unique("plain"));
  ASSERT_TRUE(id) << id.error().describe();
  on_teardown([this, id = *id] { (void)engine().remove_container(id, true); });
  ASSERT_TRUE(engine().start_container(*id));

  const quiesce_run run{unique("plain-run"), "g-plain"};
  const auto result = quiesce::with_quiesced(engine(), *journals_, run, 60s, 60s, [&](int) {
    auto c = engine().inspect_container(*id);
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->running);
  });
  EXPECT_TRUE(result.quiesce.ok) << result.quiesce.message;
  EXPECT_TRUE(result.resume.ok) << result.resume.message;
  auto c = engine().inspect_container(*id);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->running);
}

TEST_F(quiesce_e2e, refusals_touch_nothing) {
  // Restart policy `any` under a container label: Swarm would restart it.
  const auto any = service(unique("any"), 1, [](json::object& spec) {
    spec["TaskTemplate"].as_object()["ContainerSpec"].as_object()["Labels"] =
        json::object{{label, "g-any"}};
  });
  // A global service cannot be scaled.
  const auto global = service(unique("global"), 1, [](json::object& spec) {
    spec["Labels"] = json::object{{label, "g-global"}};
    spec["Mode"] = json::object{{"Global", json::object{}}};
  });
  // Labelled twice: the service and its containers.
  const auto both = service(unique("both"), 1, [](json::object& spec) {
    spec["Labels"] = json::object{{label, "g-both"}};
    auto& tt = spec["TaskTemplate"].as_object();
    tt["ContainerSpec"].as_object()["Labels"] = json::object{{label, "g-both"}};
    tt["RestartPolicy"] = json::object{{"Condition", "on-failure"}};
  });
  ASSERT_TRUE(eventually([&] {
    return running_tasks(any) == 1 && running_tasks(global) >= 1 && running_tasks(both) == 1;
  }));

  struct refusal {
    std::string group;
    std::string service_id;
    std::string expected;  // in the message
  };
  const refusal cases[] = {
      {"g-any", any, "restart"},
      {"g-global", global, "global"},
      {"g-both", both, "both"},
  };
  for (const auto& c : cases) {
    const auto version = version_of(c.service_id);
    const quiesce_run run{unique("refused-" + c.group), c.group};
    bool body_ran = false;
    const auto result =
        quiesce::with_quiesced(engine(), *journals_, run, 30s, 30s, [&](int) { body_ran = true; });
    EXPECT_FALSE(result.quiesce.ok) << c.group;
    EXPECT_FALSE(body_ran) << c.group;
    EXPECT_NE(result.quiesce.message.find(c.expected), std::string::npos)
        << c.group << ": " << result.quiesce.message;
    EXPECT_EQ(result.quiesce.workloads, 0) << c.group;
    EXPECT_EQ(version_of(c.service_id), version) << c.group << ": the service was written";
  }
  EXPECT_EQ(running_tasks(any), 1U);
  EXPECT_EQ(running_tasks(both), 1U);
}

TEST_F(quiesce_e2e, kill_9_while_held_then_recover) {
  const auto scaled = service(unique("held"), 2, [](json::object& spec) {
    spec["Labels"] = json::object{{label, "g-kill"}};
  });
  const auto stopped = service(unique("stopped"), 1, [](json::object& spec) {
    auto& tt = spec["TaskTemplate"].as_object();
    tt["ContainerSpec"].as_object()["Labels"] = json::object{{label, "g-kill"}};
    tt["RestartPolicy"] = json::object{{"Condition", "on-failure"}};
  });
  ASSERT_TRUE(
      eventually([&] { return running_tasks(scaled) == 2 && running_tasks(stopped) == 1; }));

  const quiesce_run run{unique("killed"), "g-kill"};
  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The "controller": quiesce, then hang as if archiving, until killed.
    auto client = engine::client::connect();
    if (!client) {
      ::_exit(3);
    }
    auto store = quiesce::make_config_journal_store(*client);
    const auto r = quiesce::reach(*client, *store, run, quiesce_goal::quiesced, 60s);
    if (!r.ok) {
      ::_exit(4);
    }
    ::pause();
    ::_exit(0);
  }
  const bool held = eventually([&] {
    return has_lifeboat_label(scaled) && active_tasks(scaled) == 0 && running_tasks(stopped) == 0;
  });
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(held) << "the child never quiesced";
  EXPECT_TRUE(WIFSIGNALED(status)) << "the child exited early with " << WEXITSTATUS(status);

  // Nothing comes back by itself...
  EXPECT_TRUE(has_lifeboat_label(scaled));
  // ...until recovery, as `lifeboat recover` or a restarted controller runs it.
  const auto report = quiesce::recover(engine(), *journals_, {}, 60s);
  EXPECT_TRUE(report.failures.empty()) << report.failures.front();
  EXPECT_NE(std::find(report.recovered.begin(), report.recovered.end(), run.name),
            report.recovered.end());
  EXPECT_TRUE(eventually([&] { return running_tasks(scaled) == 2; }));
  EXPECT_TRUE(eventually([&] { return running_tasks(stopped) == 1; }));
  EXPECT_FALSE(has_lifeboat_label(scaled));
  auto journal = journals_->load(run.name);
  ASSERT_TRUE(journal);
  EXPECT_TRUE(journal->entries.empty());
}

}  // namespace
}  // namespace lifeboat::e2e
