// The backup runner's hook points (issue 11), against the real swarm: where
// each point sits relative to the hold and to the archive becoming visible,
// and what a failing pre or post point does to the run and the workloads.

#include "tests/e2e/backup_runner_fixture.hpp"

namespace lifeboat::e2e {
namespace {

using phase_hooks_e2e = backup_runner_test;
using backup::hook_phase;
using backup::hook_point;
using backup::hook_when;

/// What a hook saw when it ran.
struct visit {
  std::string point;
  std::uint64_t replicas = 0;  ///< the writer's replica count at that moment
  std::string location;        ///< the context's archive location
  bool location_exists = false;
};

class recording_hooks {
 public:
  recording_hooks(const engine::client& engine, std::string service_id)
      : engine_(engine), service_id_(std::move(service_id)) {}

  /// Makes `point` fail with `message` (a pre point ends the run there).
  void fail_at(hook_point point, std::string message) {
    failing_ = point;
    message_ = std::move(message);
  }
  void skip_at(hook_point point, std::string what) {
    skipping_ = point;
    skipped_ = std::move(what);
  }

  backup::phase_hooks hooks() {
    return [this](hook_point point, const backup::hook_context& context) {
      visit v;
      v.point = std::string(backup::to_string(point));
      auto service = engine_.inspect_service(service_id_);
      v.replicas = service ? service->replicas.value_or(99) : 99;
      v.location = context.archive_location;
      v.location_exists = !v.location.empty() && fs::exists(v.location);
      visits.push_back(std::move(v));
      backup::hook_result r;
      if (failing_ && *failing_ == point) {
        r.ok = false;
        r.message = message_;
      }
      if (skipping_ && *skipping_ == point) {
        r.skipped.push_back(skipped_);
      }
      return r;
    };
  }

  std::vector<std::string> points() const {
    std::vector<std::string> out;
    for (const auto& v : visits) {
      out.push_back(v.point);
    }
    return out;
  }

  std::vector<visit> visits;

 private:
  const engine::client& engine_;
  std::string service_id_;
  std::optional<hook_point> failing_;
  std::string message_;
  std::optional<hook_point> skipping_;
  std::string skipped_;
};

std::vector<std::string> every_point() {
  std::vector<std::string> out;
  for (const auto& p : backup::hook_points) {
    out.emplace_back(backup::to_string(p));
  }
  return out;
}

TEST_F(phase_hooks_e2e,
       every_point_runs_in_order_outside_the_hold_and_post_process_sees_the_archive) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto id = writer(unique("writer"), volume, group);
  recording_hooks hooks(engine(), id);
  backup::runner_options options;
  options.hooks = hooks.hooks();
  std::uint64_t replicas_while_read = 99;
  const auto result = backup(
      schedule(unique("sched"), volume, group),
      [&] { replicas_while_read = engine().inspect_service(id)->replicas.value_or(99); }, options);
  ASSERT_TRUE(result.ok) << result.message;

  EXPECT_EQ(replicas_while_read, 0U) << "the writer was not held while its volume was read";
  ASSERT_EQ(hooks.points(), every_point());
  for (const auto& v : hooks.visits) {
    EXPECT_EQ(v.replicas, 1U) << v.point << " ran while the writer was held";
  }
  // Nothing is visible until the archive is made final; from process-post on,
  // every point is told where it is, and it is there.
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(hooks.visits[i].location.empty()) << hooks.visits[i].point;
  }
  for (std::size_t i = 3; i < hooks.visits.size(); ++i) {
    EXPECT_EQ(hooks.visits[i].location, result.archive) << hooks.visits[i].point;
    EXPECT_TRUE(hooks.visits[i].location_exists) << hooks.visits[i].point;
  }
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(phase_hooks_e2e, a_failing_archive_pre_hook_fails_the_run_before_anything_is_held) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto id = writer(unique("writer"), volume, group);
  const auto version_before = engine().inspect_service(id)->version;
  recording_hooks hooks(engine(), id);
  hooks.fail_at({hook_phase::archive, hook_when::pre}, "db-1: exit 3: pg_dump: connection refused");
  backup::runner_options options;
  options.hooks = hooks.hooks();
  bool read = false;
  const auto result = backup(
      schedule(unique("sched"), volume, group), [&] { read = true; }, options);

  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, "hook failed");
  EXPECT_NE(result.message.find("archive-pre hook failed: db-1: exit 3: pg_dump"),
            std::string::npos)
      << result.message;
  EXPECT_FALSE(read) << "the volumes were read after a failed archive-pre";
  EXPECT_EQ(hooks.points(), std::vector<std::string>{"archive-pre"})
      << "a phase's post point ran although its pre point failed";
  EXPECT_TRUE(archives().empty());
  EXPECT_EQ(engine().inspect_service(id)->version, version_before)
      << "the writer was touched although nothing was to be held";
}

TEST_F(phase_hooks_e2e, archive_post_runs_when_the_archive_phase_failed) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto name = unique("writer");
  const auto id = writer(name, volume, group);
  recording_hooks hooks(engine(), id);
  backup::runner_options options;
  options.hooks = hooks.hooks();
  // The writer comes back during the read: the archive phase fails.
  const auto result = backup(
      schedule(unique("sched"), volume, group),
      [&] {
        scale(id, 1);
        ASSERT_TRUE(eventually([&] { return running_tasks(id) == 1; }));
      },
      options);

  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find("not published"), std::string::npos) << result.message;
  EXPECT_EQ(hooks.points(), (std::vector<std::string>{"archive-pre", "archive-post"}));
  EXPECT_TRUE(archives().empty());
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(phase_hooks_e2e, a_failing_process_pre_hook_publishes_nothing_and_leaves_no_partial_file) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto id = writer(unique("writer"), volume, group);
  recording_hooks hooks(engine(), id);
  hooks.fail_at({hook_phase::process, hook_when::pre}, "exit 1");
  backup::runner_options options;
  options.hooks = hooks.hooks();
  const auto result = backup(
      schedule(unique("sched"), volume, group), [] {}, options);

  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, "hook failed");
  EXPECT_NE(result.message.find("process-pre hook failed: exit 1"), std::string::npos)
      << result.message;
  EXPECT_EQ(hooks.points(),
            (std::vector<std::string>{"archive-pre", "archive-post", "process-pre"}));
  EXPECT_TRUE(archives().empty());
  for (const auto& e : fs::directory_iterator(dir_)) {
    ADD_FAILURE() << "left in the destination: " << e.path();
  }
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(phase_hooks_e2e, a_failing_post_hook_fails_the_run_and_keeps_the_published_archive) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto id = writer(unique("writer"), volume, group);
  recording_hooks hooks(engine(), id);
  hooks.fail_at({hook_phase::copy, hook_when::post}, "exit 2: rsync failed");
  backup::runner_options options;
  options.hooks = hooks.hooks();
  const auto result = backup(
      schedule(unique("sched"), volume, group), [] {}, options);

  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failure, "hook failed");
  EXPECT_NE(result.message.find("copy-post hook failed: exit 2: rsync failed"), std::string::npos)
      << result.message;
  // The phases after it still ran: the archive is consistent and kept.
  EXPECT_EQ(hooks.points(), every_point());
  ASSERT_EQ(archives().size(), 1U);
  EXPECT_EQ(result.archive, (dir_ / archives().front()).string());
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(phase_hooks_e2e, actions_a_point_skipped_are_warnings_of_a_successful_run) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto id = writer(unique("writer"), volume, group);
  recording_hooks hooks(engine(), id);
  hooks.skip_at({hook_phase::archive, hook_when::pre}, "container db.1 on node worker-2");
  backup::runner_options options;
  options.hooks = hooks.hooks();
  const auto result = backup(
      schedule(unique("sched"), volume, group), [] {}, options);

  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_NE(result.message.find("archive-pre skipped container db.1 on node worker-2"),
            std::string::npos)
      << result.message;
  EXPECT_EQ(archives().size(), 1U);
}

}  // namespace
}  // namespace lifeboat::e2e
