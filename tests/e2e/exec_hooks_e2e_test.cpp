// docker-volume-backup's exec hooks (issue 15) against the real swarm: the
// commands of containers' `docker-volume-backup.<point>` labels run in them
// through the engine's exec API, at the runner's hook points.

#include "controller/backup/exec_hooks.hpp"
#include "tests/e2e/backup_runner_fixture.hpp"

#include <mutex>

namespace lifeboat::e2e {
namespace {

constexpr const char* hook = "docker-volume-backup.";
constexpr const char* exec_label_key = "docker-volume-backup.exec-label";

class exec_hooks_e2e : public backup_runner_test {
 protected:
  /// A service like writer(): writes to `volume`, held with `group` through
  /// its deploy labels, and whose containers carry `container_labels` (the
  /// `labels:` of a stack's service, not `deploy.labels`).
  std::string hooked_writer(const std::string& name, const std::string& volume,
                            const std::string& group, const json::object& container_labels) {
    const json::object spec{
        {"Name", name},
        {"Labels", json::object{{"lifeboat.test", "true"}, {stop_label, group}}},
        {"TaskTemplate",
         json::object{{"ContainerSpec",
                       json::object{{"Image", test_image()},
                                    {"Command", json::array{"sh", "-c", polite_loop}},
                                    {"Labels", container_labels},
                                    {"StopGracePeriod", 1'000'000'000},
                                    {"Mounts", json::array{json::object{{"Type", "volume"},
                                                                        {"Source", volume},
                                                                        {"Target", "/data"}}}}}},
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

  /// Runs the real runner with exec hooks, recording every exec's report.
  backup::run_result backup_with_hooks(
      const api::backup_schedule& s, const std::function<void()>& before_read = [] {},
      std::optional<std::chrono::milliseconds> timeout = {}) {
    backup::exec_hook_options hook_options;
    hook_options.on_exec = [this](const backup::exec_hook_report& r) {
      const std::lock_guard lock(mutex_);
      reports_.push_back(r);
    };
    hook_options.timeout = timeout;
    backup::runner_options options;
    options.hooks = backup::make_exec_hooks(engine(), std::move(hook_options));
    return backup(s, before_read, options);
  }

  /// The schedule of backup_runner_test with `execLabel` (and more spec).
  api::backup_schedule hooked_schedule(const std::string& volume, const std::string& group,
                                       const std::string& exec_label,
                                       const std::string& more = {}) {
    std::string yaml = schedule_yaml(unique("sched"), volume, group);
    if (!exec_label.empty()) {
      yaml += "  execLabel: " + exec_label + "\n";
    }
    yaml += more;
    const auto decoded = api::decode(yaml);
    EXPECT_TRUE(decoded.ok()) << yaml;
    return std::get<api::backup_schedule>(decoded.objects().at(0));
  }

  /// The reports of `point` from containers of service `service`.
  std::vector<backup::exec_hook_report> reports_of(const std::string& point,
                                                   const std::string& service) {
    std::vector<backup::exec_hook_report> out;
    const std::lock_guard lock(mutex_);
    for (const auto& r : reports_) {
      if (r.point == point && r.container.starts_with(service + ".")) {
        out.push_back(r);
      }
    }
    return out;
  }

  /// A file of the archive `path`, through the system's tar.
  static std::string file_in_archive(const std::string& path, const std::string& file) {
    return run_command("tar -xzOf '" + path + "' '" + file + "' 2>/dev/null").out;
  }

  std::mutex mutex_;
  std::vector<backup::exec_hook_report> reports_;
};

// archive-pre runs before anything is held (the container is up, as pg_dump
// needs its database), so what it writes is in the archive; archive-post runs
// once the workloads are back (a container of the service exists again)
// and after the volumes were read, so its marker is not.
TEST_F(exec_hooks_e2e, archive_pre_writes_into_the_volume_before_the_hold_and_post_runs_after) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto label = unique("x");
  const auto name = unique("db");
  const auto id = hooked_writer(
      name, volume, group,
      {{exec_label_key, label},
       {std::string(hook) + "archive-pre", "/bin/sh -c 'echo dumped-while-live > /data/marker'"},
       {std::string(hook) + "archive-post", "sh -c \"echo after > /data/post-marker\""}});
  std::uint64_t replicas_while_read = 99;
  const auto result = backup_with_hooks(hooked_schedule(volume, group, label), [&] {
    replicas_while_read = engine().inspect_service(id)->replicas.value_or(99);
  });
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_EQ(replicas_while_read, 0U) << "the service was not held while its volume was read";

  const auto pre = reports_of("archive-pre", name);
  ASSERT_EQ(pre.size(), 1U);
  EXPECT_TRUE(pre[0].ok) << pre[0].outcome;
  EXPECT_EQ(pre[0].outcome, "exit 0");
  EXPECT_EQ(file_in_archive(result.archive, volume + "/marker"), "dumped-while-live\n");

  const auto post = reports_of("archive-post", name);
  ASSERT_EQ(post.size(), 1U) << "archive-post did not run in the service's container once back";
  EXPECT_TRUE(post[0].ok) << post[0].outcome;
  EXPECT_EQ(file_in_archive(result.archive, volume + "/post-marker"), "")
      << "archive-post ran before the volume was read";
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(exec_hooks_e2e, a_failing_pre_hook_fails_the_run_with_its_output_and_leaves_no_archive) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto label = unique("x");
  const auto name = unique("db");
  const auto id = hooked_writer(
      name, volume, group,
      {{exec_label_key, label},
       {std::string(hook) + "archive-pre", "sh -c 'echo pg_dump: connection refused >&2; exit 3'"},
       {std::string(hook) + "archive-post", "true"}});
  const auto version_before = engine().inspect_service(id)->version;
  bool read = false;
  const auto result =
      backup_with_hooks(hooked_schedule(volume, group, label), [&] { read = true; });

  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, "hook failed");
  EXPECT_NE(result.message.find("archive-pre hook failed: container " + name), std::string::npos)
      << result.message;
  EXPECT_NE(result.message.find("(docker-volume-backup.archive-pre): exit 3: pg_dump: connection "
                                "refused"),
            std::string::npos)
      << result.message;
  EXPECT_FALSE(read);
  EXPECT_TRUE(reports_of("archive-post", name).empty())
      << "archive-post ran although archive-pre failed";
  EXPECT_TRUE(archives().empty());
  EXPECT_EQ(engine().inspect_service(id)->version, version_before)
      << "the service was touched although nothing was to be held";
  EXPECT_TRUE(back_as_before(id));
}

// A pre hook failing after the hold (process-pre): the workloads are already
// back, nothing is published, no partial file stays.
TEST_F(exec_hooks_e2e, a_failing_process_pre_hook_publishes_nothing_and_workloads_are_back) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto label = unique("x");
  const auto name = unique("db");
  const auto id = hooked_writer(name, volume, group,
                                {{exec_label_key, label},
                                 {std::string(hook) + "process-pre", "false"},
                                 {std::string(hook) + "process-post", "true"}});
  const auto result = backup_with_hooks(hooked_schedule(volume, group, label));

  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, "hook failed");
  EXPECT_NE(result.message.find("process-pre hook failed: container " + name), std::string::npos)
      << result.message;
  EXPECT_TRUE(reports_of("process-post", name).empty());
  EXPECT_TRUE(archives().empty());
  for (const auto& e : fs::directory_iterator(dir_)) {
    ADD_FAILURE() << "left in the destination: " << e.path();
  }
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(exec_hooks_e2e, the_user_label_is_honoured) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto label = unique("x");
  const auto name = unique("db");
  hooked_writer(name, volume, group,
                {{exec_label_key, label},
                 {std::string(hook) + "archive-pre", "id -u"},
                 {std::string(hook) + "archive-pre.user", "4321"},
                 {std::string(hook) + "archive-post", "id -u"}});
  const auto result = backup_with_hooks(hooked_schedule(volume, group, label));
  ASSERT_TRUE(result.ok) << result.message;
  const auto pre = reports_of("archive-pre", name);
  ASSERT_EQ(pre.size(), 1U);
  EXPECT_EQ(pre[0].output, "4321\n");
  const auto post = reports_of("archive-post", name);
  ASSERT_EQ(post.size(), 1U);
  EXPECT_EQ(post[0].output, "0\n") << "without .user, the container's user (root here)";
}

TEST_F(exec_hooks_e2e, exec_label_restricts_the_hooks_to_containers_labelled_with_it) {
  const auto volume = create_volume(unique("data"));
  const auto other_volume = create_volume(unique("other"));
  const auto group = unique("g");
  const auto label = unique("x");
  const auto chosen = unique("db");
  const auto other = unique("web");
  const std::string command = "sh -c 'echo ran > /data/marker'";
  hooked_writer(chosen, volume, group,
                {{exec_label_key, label}, {std::string(hook) + "archive-pre", command}});
  // Same hook, another exec-label value; and one with the hook but no
  // exec-label at all (the deprecated spelling).
  hooked_writer(other, other_volume, unique("g2"),
                {{exec_label_key, unique("y")}, {std::string(hook) + "archive-pre", command}});
  const auto unscoped = unique("plain");
  hooked_writer(unscoped, other_volume, unique("g3"),
                {{std::string(hook) + "exec-pre", "echo deprecated"}});

  const auto scoped = backup_with_hooks(hooked_schedule(volume, group, label));
  ASSERT_TRUE(scoped.ok) << scoped.message;
  EXPECT_EQ(reports_of("archive-pre", chosen).size(), 1U);
  EXPECT_TRUE(reports_of("archive-pre", other).empty()) << "another exec-label's hook ran";
  EXPECT_TRUE(reports_of("archive-pre", unscoped).empty()) << "a hook without exec-label ran";
  EXPECT_EQ(file_in_archive(scoped.archive, volume + "/marker"), "ran\n");

  // Without execLabel, every labelled container runs its hook, the
  // deprecated exec-pre as archive-pre.
  reports_.clear();
  const auto all = backup_with_hooks(hooked_schedule(volume, group, ""));
  ASSERT_TRUE(all.ok) << all.message;
  EXPECT_EQ(reports_of("archive-pre", chosen).size(), 1U);
  EXPECT_EQ(reports_of("archive-pre", other).size(), 1U);
  const auto deprecated = reports_of("archive-pre", unscoped);
  ASSERT_EQ(deprecated.size(), 1U);
  EXPECT_EQ(deprecated[0].label, "docker-volume-backup.exec-pre");
  EXPECT_EQ(deprecated[0].output, "deprecated\n");
}

TEST_F(exec_hooks_e2e, post_hooks_see_where_the_archive_is_and_pre_archive_hooks_do_not) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto label = unique("x");
  const auto name = unique("db");
  const std::string show = "sh -c 'echo \"[${COMMAND_RUNTIME_ARCHIVE_FILEPATH-unset}]\"'";
  hooked_writer(name, volume, group,
                {{exec_label_key, label},
                 {std::string(hook) + "archive-pre", show},
                 {std::string(hook) + "process-post", show},
                 {std::string(hook) + "prune-post", show}});
  const auto result = backup_with_hooks(hooked_schedule(volume, group, label));
  ASSERT_TRUE(result.ok) << result.message;
  ASSERT_FALSE(result.archive.empty());
  const auto pre = reports_of("archive-pre", name);
  ASSERT_EQ(pre.size(), 1U);
  EXPECT_EQ(pre[0].output, "[unset]\n");
  for (const auto* point : {"process-post", "prune-post"}) {
    const auto post = reports_of(point, name);
    ASSERT_EQ(post.size(), 1U) << point;
    EXPECT_EQ(post[0].output, "[" + result.archive + "]\n") << point;
  }
}

// A hook that outlives timeouts.hooks fails its point; the run does not wait
// for it (it cannot be killed, and goes on in its container).
TEST_F(exec_hooks_e2e, a_pre_hook_past_its_timeout_fails_the_run) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto label = unique("x");
  const auto name = unique("db");
  const auto id =
      hooked_writer(name, volume, group,
                    {{exec_label_key, label},
                     {std::string(hook) + "archive-pre", "sh -c 'echo started; sleep 60'"}});
  const auto result =
      backup_with_hooks(hooked_schedule(volume, group, label, "  timeouts: {hooks: 2s}\n"));
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find("timed out after 2s"), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("it may still be running"), std::string::npos) << result.message;
  EXPECT_LT(result.duration, std::chrono::seconds{40}) << "the run waited for the hook";
  EXPECT_TRUE(archives().empty());
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(exec_hooks_e2e, a_command_that_does_not_split_fails_the_run_naming_container_and_label) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto label = unique("x");
  const auto name = unique("db");
  hooked_writer(name, volume, group,
                {{exec_label_key, label}, {std::string(hook) + "archive-pre", "sh -c 'echo"}});
  const auto result = backup_with_hooks(hooked_schedule(volume, group, label));
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find("container " + name), std::string::npos) << result.message;
  EXPECT_NE(result.message.find("label docker-volume-backup.archive-pre: a single quote is not "
                                "closed"),
            std::string::npos)
      << result.message;
  EXPECT_TRUE(reports_of("archive-pre", name).empty());
  EXPECT_TRUE(archives().empty());
}

// The commands of one point run at once: each of two containers waits for
// the other's file in a volume they share, which only works when neither
// waits for the other to finish first.
TEST_F(exec_hooks_e2e, the_commands_of_one_point_run_at_the_same_time) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto label = unique("x");
  const auto meet = [](const std::string& mine, const std::string& theirs) {
    return "sh -c 'touch /data/" + mine + "; for i in $(seq 100); do [ -f /data/" + theirs +
           " ] && exit 0; sleep 0.1; done; exit 7'";
  };
  const auto a = unique("a");
  const auto b = unique("b");
  hooked_writer(a, volume, group,
                {{exec_label_key, label}, {std::string(hook) + "archive-pre", meet("a", "b")}});
  hooked_writer(b, volume, group,
                {{exec_label_key, label}, {std::string(hook) + "archive-pre", meet("b", "a")}});
  const auto result = backup_with_hooks(hooked_schedule(volume, group, label));
  ASSERT_TRUE(result.ok) << result.message;
  ASSERT_EQ(reports_of("archive-pre", a).size(), 1U);
  ASSERT_EQ(reports_of("archive-pre", b).size(), 1U);
  EXPECT_EQ(reports_of("archive-pre", a)[0].outcome, "exit 0");
  EXPECT_EQ(reports_of("archive-pre", b)[0].outcome, "exit 0");
}

}  // namespace
}  // namespace lifeboat::e2e
