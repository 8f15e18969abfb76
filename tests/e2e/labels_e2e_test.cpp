// docker-volume-backup's newest labels against the real swarm (issue 15):
// stop-during-backup-no-restart leaves a service at zero and a container
// stopped after a backup, and says so; labelMatch one-of selects a service
// labelled "a,b" for group b, exact does not.

#include "controller/quiesce/quiesce.hpp"
#include "tests/e2e/backup_runner_fixture.hpp"

namespace lifeboat::e2e {
namespace {

using namespace std::chrono_literals;

constexpr const char* no_restart_label = "docker-volume-backup.stop-during-backup-no-restart";

class labels_e2e : public backup_runner_test {
 protected:
  /// A service writing to `volume` with `labels` in deploy.labels, running.
  std::string labelled_writer(const std::string& name, const std::string& volume,
                              const json::object& labels) {
    const auto id = create_service(name, volume, polite_loop, 1);
    EXPECT_FALSE(id.empty());
    update(id, [&](json::object& spec) {
      for (const auto& kv : labels) {
        spec["Labels"].as_object()[kv.key()] = kv.value();
      }
    });
    EXPECT_TRUE(eventually([&] { return running_tasks(id) == 1; }));
    return id;
  }

  api::backup_schedule schedule_matching(const std::string& volume, const std::string& group,
                                         std::string_view match) {
    const auto decoded = api::decode(schedule_yaml(unique("sched"), volume, group) +
                                     "  labelMatch: " + std::string(match) + "\n");
    EXPECT_TRUE(decoded.ok());
    return std::get<api::backup_schedule>(decoded.objects().at(0));
  }

  std::optional<std::uint64_t> replicas(const std::string& id) {
    auto s = engine().inspect_service(id);
    return s ? s->replicas : std::nullopt;
  }
};

TEST_F(labels_e2e, a_no_restart_service_stays_at_zero_and_the_run_says_so) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto name = unique("migrated");
  const auto id = labelled_writer(name, volume, {{no_restart_label, group}});

  bool held = false;
  const auto result =
      backup(schedule(unique("sched"), volume, group), [&] { held = replicas(id) == 0U; });
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_TRUE(held) << "the service was not scaled to zero for the read";
  EXPECT_NE(result.message.find("left stopped"), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("service " + name + " (1 replica)"), std::string::npos)
      << result.message;

  // Left at zero, released, with who left it so and the count to go back to.
  auto s = engine().inspect_service(id);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->replicas, 0U);
  EXPECT_EQ(running_tasks(id), 0U);
  EXPECT_FALSE(s->service_labels.contains("lifeboat.held-by"));
  EXPECT_FALSE(s->service_labels.contains("lifeboat.prior-replicas"));
  EXPECT_FALSE(s->service_labels.contains("lifeboat.held-no-restart"));
  EXPECT_EQ(s->service_labels["lifeboat.left-stopped-replicas"], "1");
  EXPECT_TRUE(s->service_labels["lifeboat.left-stopped-by"].starts_with(unique("run")))
      << s->service_labels["lifeboat.left-stopped-by"];
  EXPECT_EQ(archives().size(), 1U);
}

TEST_F(labels_e2e, a_no_restart_container_stays_stopped) {
  const auto group = unique("g");
  const auto volume = create_volume(unique("data"));
  const json::object body{{"Image", test_image()},
                          {"Cmd", json::array{"sh", "-c", polite_loop}},
                          {"Labels", json::object{{no_restart_label, group}}},
                          {"HostConfig", json::object{{"NetworkMode", "none"}}}};
  const auto name = unique("plain");
  auto id = engine().create_container(body, name);
  ASSERT_TRUE(id) << id.error().describe();
  on_teardown([this, id = *id] { (void)engine().remove_container(id, true); });
  ASSERT_TRUE(engine().start_container(*id));

  bool stopped = false;
  const auto result = backup(schedule(unique("sched"), volume, group), [&] {
    auto c = engine().inspect_container(*id);
    stopped = c && !c->running;
  });
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_TRUE(stopped) << "the container ran during the read";
  EXPECT_NE(result.message.find("container " + name), std::string::npos) << result.message;
  auto c = engine().inspect_container(*id);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->running) << "the no-restart container was started again";
}

TEST_F(labels_e2e, one_of_selects_a_service_labelled_a_b_for_group_b_and_exact_does_not) {
  const auto volume = create_volume(unique("data"));
  const auto a = unique("a");
  const auto b = unique("b");
  const auto id = labelled_writer(unique("writer"), volume, {{stop_label, a + "," + b}});

  bool held_exact = true;
  const auto exact = backup(schedule_matching(volume, b, "exact"),
                            [&] { held_exact = replicas(id) == 0U || running_tasks(id) == 0; });
  ASSERT_TRUE(exact.ok) << exact.message;
  EXPECT_FALSE(held_exact) << "exact matching held a service labelled " << a << "," << b;

  bool held_one_of = false;
  const auto one_of = backup(schedule_matching(volume, b, "one-of"),
                             [&] { held_one_of = replicas(id) == 0U && running_tasks(id) == 0; });
  ASSERT_TRUE(one_of.ok) << one_of.message;
  EXPECT_TRUE(held_one_of) << "one-of matching did not hold the service for group " << b;
  EXPECT_TRUE(back_as_before(id));
}

// A run that dies while it holds a no-restart service: recovery releases it
// at zero, with its count recorded, and does not bring it back.
TEST_F(labels_e2e, recovery_of_a_dead_run_leaves_a_no_restart_service_stopped) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto id = labelled_writer(unique("migrated"), volume, {{no_restart_label, group}});
  const reconcilers::quiesce_run run{unique("dead-run"), group};
  // Held without an ownership record, as a run of a process that is gone.
  const auto quiesced =
      quiesce::reach(engine(), *journals_, run, reconcilers::quiesce_goal::quiesced, 60s);
  ASSERT_TRUE(quiesced.ok) << quiesced.message;
  {
    auto s = engine().inspect_service(id);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->service_labels["lifeboat.held-by"], run.name);
    EXPECT_EQ(s->service_labels["lifeboat.held-no-restart"], "true");
  }

  const auto report = quiesce::recover(engine(), *journals_, {}, 60s);
  EXPECT_NE(std::find(report.recovered.begin(), report.recovered.end(), run.name),
            report.recovered.end());
  EXPECT_NE(std::find(report.left_stopped.begin(), report.left_stopped.end(),
                      run.name + ": service " + unique("migrated") + " (1 replica)"),
            report.left_stopped.end());
  auto s = engine().inspect_service(id);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->replicas, 0U);
  EXPECT_FALSE(s->service_labels.contains("lifeboat.held-by"));
  EXPECT_FALSE(s->service_labels.contains("lifeboat.held-no-restart"));
  EXPECT_EQ(s->service_labels["lifeboat.left-stopped-by"], run.name);
  EXPECT_EQ(s->service_labels["lifeboat.left-stopped-replicas"], "1");
}

}  // namespace
}  // namespace lifeboat::e2e
