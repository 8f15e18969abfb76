// Runs on a three-node swarm (hack/cluster-up.sh, started by CTest as the
// `cluster` fixture): the controller's engine is the manager n1, and a
// database's volume lives on the worker n3. Until per-node agents read such
// volumes (issue 16), a run must refuse them before holding anything, naming
// the node, rather than archive (or restore into) an empty namesake on n1.

#include "controller/backup/agent_job.hpp"
#include "controller/restore/engine_runner.hpp"
#include "tests/e2e/backup_runner_fixture.hpp"

#include <cstdlib>
#include <fstream>
#include <map>

namespace lifeboat::e2e {
namespace {

// The lines `export K=V` that hack/cluster-up.sh writes.
std::map<std::string, std::string> cluster_env() {
  const char* dir = std::getenv("LIFEBOAT_CLUSTER_DIR");
  std::ifstream in(std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp/lbc") + "/env");
  std::map<std::string, std::string> env;
  for (std::string line; std::getline(in, line);) {
    constexpr std::string_view prefix = "export ";
    const auto eq = line.find('=');
    if (line.starts_with(prefix) && eq != std::string::npos) {
      env[line.substr(prefix.size(), eq - prefix.size())] = line.substr(eq + 1);
    }
  }
  return env;
}

class multinode_e2e : public backup_runner_test {
 protected:
  void SetUp() override {
    env_ = cluster_env();
    ASSERT_TRUE(env_.contains("LIFEBOAT_NODE3_HOST"))
        << "no three-node cluster: run hack/cluster-up.sh (ctest starts it as fixture `cluster`)";
    // The fixture's engine is the manager; the image is named by its ID,
    // the same on every node (there is no registry to resolve a name).
    ::setenv("DOCKER_HOST", env_["DOCKER_HOST"].c_str(), 1);
    ::setenv("LIFEBOAT_TEST_IMAGE", env_["LIFEBOAT_TEST_IMAGE_ID"].c_str(), 1);
    backup_runner_test::SetUp();
    auto n3 = engine::client::connect({.host = env_["LIFEBOAT_NODE3_HOST"]});
    ASSERT_TRUE(n3) << n3.error().describe();
    node3_.emplace(std::move(*n3));
  }

  /// A volume on n3 holding one file, `marker`.
  std::string volume_on_node3(const std::string& name, const std::string& marker) {
    auto v = node3_->create_volume(name);
    EXPECT_TRUE(v) << v.error().describe();
    on_teardown([this, name] {
      // Exited agent containers on n3 keep the volume in use long after
      // their job is gone (see agent_job.cpp).
      if (auto left =
              node3_->list_containers({{"label", {std::string(backup::agent_of_label)}}}, true)) {
        for (const auto& c : *left) {
          (void)node3_->remove_container(c.id, true);
        }
      }
      eventually([&] {
        auto r = node3_->remove_volume(name, true);
        return r || r.error().is(engine::errc::not_found);
      });
    });
    const auto wrote = run_command(
        "DOCKER_HOST=" + env_["LIFEBOAT_NODE3_HOST"] + " docker run --rm --network none -v " +
        name + ":/data " + test_image() + " sh -c 'echo " + marker + " > /data/marker' >&2");
    EXPECT_EQ(wrote.status, 0);
    return name;
  }

  /// A service labelled for `group`, its one task pinned to n3 with `volume`.
  std::string writer_on_node3(const std::string& name, const std::string& volume,
                              const std::string& group) {
    const json::object spec{
        {"Name", name},
        {"Labels", json::object{{"lifeboat.test", "true"}, {stop_label, group}}},
        {"TaskTemplate",
         json::object{
             {"ContainerSpec",
              json::object{
                  {"Image", test_image()},
                  {"Command", json::array{"sh", "-c", polite_loop}},
                  {"StopGracePeriod", 1'000'000'000},
                  {"Mounts", json::array{json::object{
                                 {"Type", "volume"}, {"Source", volume}, {"Target", "/data"}}}}}},
             {"Placement",
              json::object{{"Constraints", json::array{"node.id==" + env_["LIFEBOAT_NODE3_ID"]}}}},
             {"RestartPolicy", json::object{{"Condition", "any"}}}}},
        {"Mode", json::object{{"Replicated", json::object{{"Replicas", 1}}}}}};
    auto id = engine().create_service(spec);
    EXPECT_TRUE(id) << id.error().describe();
    if (!id) {
      return {};
    }
    on_teardown([this, id = *id] { (void)engine().remove_service(id); });
    EXPECT_TRUE(eventually([&] { return running_tasks(*id) == 1; }));
    return *id;
  }

  /// lifeboat's image (hack/image.sh), which cluster-up copies to every node.
  std::string lifeboat_image() {
    const auto id = run_command("DOCKER_HOST=" + env_["DOCKER_HOST"] +
                                " docker image inspect -f '{{.Id}}' lifeboat:dev");
    EXPECT_EQ(id.status, 0) << "no lifeboat:dev in the cluster: run hack/image.sh, then "
                               "LIFEBOAT_CLUSTER_IMAGES=lifeboat:dev hack/cluster-up.sh";
    return id.out.substr(0, id.out.find('\n'));
  }

  std::size_t agent_jobs_of(const std::string& run) {
    auto jobs = engine().list_services(
        {{"label", {std::string(backup::agent_of_label) + "=" + run}}}, false);
    EXPECT_TRUE(jobs) << jobs.error().describe();
    return jobs ? jobs->size() : 99;
  }

  std::map<std::string, std::string> env_;
  std::optional<engine::client> node3_;
};

TEST_F(multinode_e2e, a_backup_of_a_volume_on_a_worker_fails_naming_the_node_before_holding) {
  const auto volume = volume_on_node3(unique("db-data"), "from-n3");
  create_volume(volume);  // the empty namesake on the manager
  const auto group = unique("g");
  const auto name = unique("db");
  const auto id = writer_on_node3(name, volume, group);
  const auto version_before = engine().inspect_service(id)->version;

  bool read = false;
  const auto result = backup(schedule(unique("sched"), volume, group), [&] { read = true; });

  EXPECT_FALSE(result.ok) << "archived the manager's empty namesake: " << result.message;
  EXPECT_EQ(result.failure, "volume on another node");
  EXPECT_NE(result.message.find("volume " + volume + " is on node n3 (service " + name),
            std::string::npos)
      << result.message;
  EXPECT_NE(result.message.find("not on this node (n1)"), std::string::npos) << result.message;
  EXPECT_FALSE(read);
  EXPECT_TRUE(archives().empty());
  EXPECT_EQ(engine().inspect_service(id)->version, version_before)
      << "the writer was touched although the run could not read its volume";
  EXPECT_EQ(running_tasks(id), 1U);
}

TEST_F(multinode_e2e, a_restore_into_a_volume_on_a_worker_is_refused_before_holding) {
  // An archive of a volume on the manager, restored into the worker's volume.
  const auto source = create_volume(unique("src"));
  const auto made = backup(schedule(unique("sched"), source, unique("none")), [] {});
  ASSERT_TRUE(made.ok) << made.message;

  const auto target = volume_on_node3(unique("db-data"), "keep-me");
  const auto group = unique("g");
  const auto name = unique("db");
  const auto id = writer_on_node3(name, target, group);
  const auto version_before = engine().inspect_service(id)->version;

  const std::string yaml =
      "apiVersion: lifeboat/v1\nkind: Restore\nmetadata:\n  name: " + unique("restore") +
      "\nspec:\n  archive: " + made.archive +
      "\n  createVolume: true\n  volumes:\n    - from: " + source + "\n      to: " + target + "\n";
  const auto decoded = api::decode(yaml);
  ASSERT_TRUE(decoded.ok());
  restore::runner_options options;
  options.helper_image = test_image();
  restore::engine_runner runner(engine(), *journals_, options);
  const std::atomic<bool> cancel{false};
  const auto result = runner.run(
      std::get<api::restore>(decoded.objects().at(0)), unique("restore-run"),
      [](std::string_view, const std::string&) {}, [](int) {}, cancel);

  EXPECT_FALSE(result.ok) << "restored into a namesake on the manager: " << result.message;
  EXPECT_EQ(result.outcome, restore::outcome::invalid);
  EXPECT_NE(result.message.find("volume " + target + " is on node n3 (service " + name),
            std::string::npos)
      << result.message;
  EXPECT_EQ(engine().inspect_service(id)->version, version_before);
  // Not created on the manager either, although createVolume allowed it.
  EXPECT_TRUE(engine().inspect_volume(target).error().is(engine::errc::not_found));
  const auto kept = run_command("DOCKER_HOST=" + env_["LIFEBOAT_NODE3_HOST"] +
                                " docker run --rm --network none -v " + target + ":/data " +
                                test_image() + " cat /data/marker");
  EXPECT_EQ(kept.out, "keep-me\n");
}

TEST_F(multinode_e2e, a_volume_whose_service_runs_on_the_manager_is_backed_up_in_a_cluster) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto id = writer(unique("writer"), volume, group);
  // The writer must be on the manager for this run; pin it there.
  update(id, [&](json::object& spec) {
    spec["TaskTemplate"].as_object()["Placement"] =
        json::object{{"Constraints", json::array{"node.id==" + env_["LIFEBOAT_NODE1_ID"]}}};
  });
  ASSERT_TRUE(eventually([&] {
    auto tasks = engine().list_tasks({{"service", {id}}, {"desired-state", {"running"}}});
    return tasks && tasks->size() == 1 && tasks->front().node_id == env_["LIFEBOAT_NODE1_ID"] &&
           tasks->front().state == "running";
  }));

  std::uint64_t replicas_while_read = 99;
  const auto result = backup(schedule(unique("sched"), volume, group), [&] {
    replicas_while_read = engine().inspect_service(id)->replicas.value_or(99);
  });
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_EQ(replicas_while_read, 0U);
  EXPECT_EQ(archives().size(), 1U);
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(multinode_e2e, an_agent_job_on_a_worker_archives_its_volume_into_a_folder_of_that_node) {
  const auto volume = volume_on_node3(unique("db-data"), "from-n3");
  const auto run = unique("run");
  backup::agent_job_spec spec{run,
                              env_["LIFEBOAT_NODE3_ID"],
                              lifeboat_image(),
                              schedule(unique("sched"), volume, unique("g")),
                              "agent-n3.tar.gz",
                              {volume},
                              {dir_.string()}};
  std::optional<engine::result<backup::agent_event>> finished;
  bool read_reported = false;
  {
    auto job = backup::agent_job::start(engine(), spec);
    ASSERT_TRUE(job) << job.error().describe();
    EXPECT_EQ(agent_jobs_of(run), 1U);
    const std::atomic<bool> cancel{false};
    finished = job->wait([&] { read_reported = true; }, cancel, std::chrono::minutes{2});
  }
  EXPECT_EQ(agent_jobs_of(run), 0U) << "the job outlived its handle";
  ASSERT_TRUE(*finished) << finished->error().describe();
  const auto& report = **finished;
  ASSERT_TRUE(report.ok) << report.message;
  EXPECT_TRUE(read_reported) << "the agent never said the volumes were read";
  // The nodes share this machine's file system: n3's folder is the test's.
  EXPECT_EQ(report.archive, (dir_ / "agent-n3.tar.gz").string());
  const auto marker = run_command("tar -xzOf " + report.archive + " " + volume + "/marker");
  EXPECT_EQ(marker.status, 0);
  EXPECT_EQ(marker.out, "from-n3\n") << "the archive does not hold n3's volume";
  EXPECT_GT(report.bytes, 0U);
}

TEST_F(multinode_e2e, an_agent_job_that_cannot_start_fails_the_wait_naming_why) {
  const auto volume = volume_on_node3(unique("db-data"), "x");
  const auto run = unique("run");
  // A folder that does not exist: Swarm rejects the task's bind mount.
  const auto missing = (dir_ / "absent").string();
  backup::agent_job_spec spec{run,
                              env_["LIFEBOAT_NODE3_ID"],
                              lifeboat_image(),
                              schedule(unique("sched"), volume, unique("g")),
                              "x.tar.gz",
                              {volume},
                              {missing}};
  auto job = backup::agent_job::start(engine(), spec);
  ASSERT_TRUE(job) << job.error().describe();
  const std::atomic<bool> cancel{false};
  const auto finished = job->wait([] {}, cancel, std::chrono::minutes{2});
  ASSERT_FALSE(finished) << "a job whose task never ran reported " << finished->message;
  EXPECT_NE(finished.error().describe().find("without a report"), std::string::npos)
      << finished.error().describe();
  EXPECT_NE(finished.error().describe().find("absent"), std::string::npos)
      << finished.error().describe();
}

TEST_F(multinode_e2e, recovery_removes_the_agent_jobs_of_dead_runs_only) {
  const auto volume = volume_on_node3(unique("db-data"), "x");
  const auto dead = unique("dead-run");
  const auto live = unique("live-run");
  for (const auto& run : {dead, live}) {
    backup::agent_job_spec spec{run,
                                env_["LIFEBOAT_NODE3_ID"],
                                lifeboat_image(),
                                schedule(unique("sched"), volume, unique("g")),
                                run + ".tar.gz",
                                {volume},
                                {dir_.string()}};
    auto job = backup::agent_job::start(engine(), spec);
    ASSERT_TRUE(job) << job.error().describe();
    // What a controller killed mid-run leaves: the job, and no handle.
    on_teardown([this, id = std::move(*job).release()] { (void)engine().remove_service(id); });
  }
  ASSERT_EQ(agent_jobs_of(dead), 1U);
  ASSERT_EQ(agent_jobs_of(live), 1U);

  const auto removed = backup::remove_leftover_agent_jobs(
      engine(), [&](const std::string& run) { return run != dead; });
  ASSERT_TRUE(removed) << removed.error().describe();
  EXPECT_GE(*removed, 1U);
  EXPECT_EQ(agent_jobs_of(dead), 0U);
  EXPECT_EQ(agent_jobs_of(live), 1U) << "the job of a live run was removed";
}

}  // namespace
}  // namespace lifeboat::e2e
