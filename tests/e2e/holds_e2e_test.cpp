// The runners re-check their holds before they use what they read (issue 12,
// item 8): a backup whose held service came back while its volumes were read
// fails, and nothing is published; a restore whose held service came back
// while it wrote fails.

#include "controller/restore/engine_runner.hpp"
#include "tests/e2e/backup_runner_fixture.hpp"

namespace lifeboat::e2e {
namespace {

using holds_e2e = backup_runner_test;

TEST_F(holds_e2e, a_backup_whose_held_service_came_back_during_the_read_is_not_published) {
  const auto volume = create_volume(unique("data"));
  const auto group = unique("g");
  const auto name = unique("writer");
  const auto id = writer(name, volume, group);

  // Undisturbed, the archive is published.
  const auto s = schedule(unique("sched"), volume, group);
  const auto undisturbed = backup(s, [] {});
  ASSERT_TRUE(undisturbed.ok) << undisturbed.message;
  ASSERT_EQ(archives().size(), 1U);
  ASSERT_TRUE(back_as_before(id));

  // `docker service scale` while held: the writer runs during the read.
  const auto disturbed = backup(s, [&] {
    scale(id, 1);
    ASSERT_TRUE(eventually([&] { return running_tasks(id) == 1; }));
  });
  EXPECT_FALSE(disturbed.ok) << "published an archive read while the writer ran";
  EXPECT_NE(disturbed.message.find("service " + name), std::string::npos) << disturbed.message;
  EXPECT_NE(disturbed.message.find("not published"), std::string::npos) << disturbed.message;
  EXPECT_EQ(archives().size(), 1U) << "a second archive was published";
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_FALSE(e.path().filename().string().ends_with(".partial")) << e.path();
  }
  EXPECT_TRUE(back_as_before(id));
}

TEST_F(holds_e2e, a_restore_whose_held_service_came_back_while_writing_fails) {
  const auto volume = create_volume(unique("data"));
  const auto name = unique("writer");
  const auto id = writer(name, volume, unique("g"));
  const auto made = backup(schedule(unique("sched"), volume, unique("g-none")), [] {});
  ASSERT_TRUE(made.ok) << made.message;

  const std::string yaml =
      "apiVersion: lifeboat/v1\nkind: Restore\nmetadata:\n  name: " + unique("restore") +
      "\nspec:\n  archive: " + made.archive + "\n  volumes:\n    - from: " + volume + "\n";
  const auto decoded = api::decode(yaml);
  ASSERT_TRUE(decoded.ok());
  const auto restore = std::get<api::restore>(decoded.objects().at(0));

  // The restore holds every writer of its volume; one comes back mid-write.
  bool disturbed = false;
  restore::runner_options options;
  options.helper_image = test_image();
  options.on_progress = [&](std::string_view phase, const restore::progress&) {
    if (phase == restore::phase::restoring && !disturbed) {
      disturbed = true;
      scale(id, 1);
      ASSERT_TRUE(eventually([&] { return running_tasks(id) == 1; }));
    }
  };
  restore::engine_runner runner(engine(), *journals_, options);
  const std::atomic<bool> cancel{false};
  const auto result = runner.run(
      restore, unique("restore-run"), [](std::string_view, const std::string&) {}, [](int) {},
      cancel);
  ASSERT_TRUE(disturbed) << "the restore reported no progress while writing: " << result.message;
  EXPECT_FALSE(result.ok) << "a restore written while its writer ran succeeded";
  EXPECT_EQ(result.outcome, restore::outcome::quiesce_failed) << result.message;
  EXPECT_NE(result.message.find("service " + name), std::string::npos) << result.message;
  EXPECT_TRUE(back_as_before(id));
}

}  // namespace
}  // namespace lifeboat::e2e
