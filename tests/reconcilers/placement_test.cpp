#include "reconcilers/placement.hpp"

#include <gtest/gtest.h>

namespace lifeboat::reconcilers {
namespace {

observed_service service(std::string id, std::string name, std::vector<std::string> volumes) {
  observed_service s;
  s.id = std::move(id);
  s.name = std::move(name);
  s.volumes = std::move(volumes);
  return s;
}

task_placement task(std::string service, std::string node, std::string desired,
                    std::string created = "2026-12-01T10:00:00Z") {
  return {std::move(service), std::move(node), std::move(desired), std::move(created)};
}

TEST(volumes_elsewhere, a_volume_whose_service_runs_on_this_node_is_here) {
  const auto out = volumes_elsewhere({"db-data"}, {service("s1", "db", {"db-data"})},
                                     {task("s1", "self", "running")}, "self");
  EXPECT_TRUE(out.empty());
}

TEST(volumes_elsewhere, a_volume_whose_service_runs_on_a_worker_is_reported_with_both_names) {
  const auto out = volumes_elsewhere(
      {"db-data", "uploads"}, {service("s1", "db", {"db-data"}), service("s2", "web", {"uploads"})},
      {task("s1", "worker-2", "running"), task("s2", "self", "running")}, "self");
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].volume, "db-data");
  EXPECT_EQ(out[0].node_ids, std::vector<std::string>{"worker-2"});
  EXPECT_EQ(out[0].service_names, std::vector<std::string>{"db"});
  EXPECT_FALSE(out[0].also_here);
}

TEST(volumes_elsewhere, a_volume_also_mounted_by_a_service_here_is_both_here_and_elsewhere) {
  const auto out = volumes_elsewhere(
      {"shared"}, {service("s1", "db", {"shared"}), service("s2", "web", {"shared"})},
      {task("s1", "worker-2", "running"), task("s2", "self", "running")}, "self");
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].node_ids, std::vector<std::string>{"worker-2"});
  EXPECT_EQ(out[0].service_names, std::vector<std::string>{"db"});
  EXPECT_TRUE(out[0].also_here);
}

TEST(volumes_elsewhere, history_on_another_node_does_not_count_while_the_service_runs_here) {
  // The service moved here; its old task on worker-2 left a stale namesake.
  const auto out = volumes_elsewhere(
      {"db-data"}, {service("s1", "db", {"db-data"})},
      {task("s1", "worker-2", "shutdown", "2026-11-01T10:00:00Z"), task("s1", "self", "running")},
      "self");
  EXPECT_TRUE(out.empty());
}

// The engine trims a time's fraction, and writes none on a whole second:
// "…:00Z" is before "…:00.25Z", though it sorts after it as text.
TEST(volumes_elsewhere, the_newest_task_is_found_by_time_not_by_text) {
  const std::vector<observed_service> services{service("s1", "db", {"db-data"})};
  const auto out = volumes_elsewhere({"db-data"}, services,
                                     {task("s1", "worker-2", "shutdown", "2026-11-01T10:00:00.25Z"),
                                      task("s1", "self", "shutdown", "2026-11-01T10:00:00Z"),
                                      task("s1", "self", "shutdown", "2026-11-01T10:00:00.125Z")},
                                     "self");
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].node_ids, std::vector<std::string>{"worker-2"});
  const auto here = volumes_elsewhere({"db-data"}, services,
                                      {task("s1", "worker-2", "shutdown", "2026-11-01T10:00:00Z"),
                                       task("s1", "self", "shutdown", "2026-11-01T10:00:00.3Z")},
                                      "self");
  EXPECT_TRUE(here.empty());
}

TEST(volumes_elsewhere, a_service_at_zero_counts_where_its_newest_task_ran) {
  const std::vector<observed_service> services{service("s1", "db", {"db-data"})};
  const auto there = volumes_elsewhere({"db-data"}, services,
                                       {task("s1", "self", "shutdown", "2026-11-01T10:00:00Z"),
                                        task("s1", "worker-3", "shutdown", "2026-11-02T10:00:00Z")},
                                       "self");
  ASSERT_EQ(there.size(), 1U);
  EXPECT_EQ(there[0].node_ids, std::vector<std::string>{"worker-3"});

  const auto here = volumes_elsewhere({"db-data"}, services,
                                      {task("s1", "worker-3", "shutdown", "2026-11-01T10:00:00Z"),
                                       task("s1", "self", "shutdown", "2026-11-02T10:00:00Z")},
                                      "self");
  EXPECT_TRUE(here.empty());
}

TEST(volumes_elsewhere, a_global_service_reports_every_other_node_its_tasks_run_on) {
  const auto out = volumes_elsewhere(
      {"cache"}, {service("g", "agent", {"cache"}), service("s", "reader", {"cache"})},
      {task("g", "self", "running"), task("g", "worker-3", "running"),
       task("g", "worker-2", "running"), task("s", "worker-2", "running")},
      "self");
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].node_ids, (std::vector<std::string>{"worker-2", "worker-3"}));
  EXPECT_EQ(out[0].service_names, (std::vector<std::string>{"agent", "reader"}));
}

TEST(volumes_elsewhere, unplaced_tasks_services_without_tasks_and_other_volumes_are_ignored) {
  const auto out =
      volumes_elsewhere({"db-data"},
                        {service("s1", "db", {"db-data"}), service("s2", "new", {"db-data"}),
                         service("s3", "other", {"logs"})},
                        {task("s1", "", "running"), task("s3", "worker-2", "running")}, "self");
  EXPECT_TRUE(out.empty());
}

TEST(node_names, are_host_names_unless_two_nodes_share_one) {
  const auto names = node_names({{"id1", "db-host"}, {"id2", "web"}, {"id3", "web"}, {"id4", ""}});
  EXPECT_EQ(names, (std::map<std::string, std::string>{
                       {"id1", "db-host"}, {"id2", "id2"}, {"id3", "id3"}, {"id4", "id4"}}));
}

volume_elsewhere elsewhere(std::string volume, std::vector<std::string> nodes,
                           std::vector<std::string> services, bool also_here = false) {
  return {std::move(volume), std::move(nodes), std::move(services), also_here};
}

const std::map<std::string, std::string> names{{"id-2", "n2"}, {"id-3", "n3"}};

TEST(place_restore, targets_no_service_keeps_elsewhere_are_restored_on_the_controllers_node) {
  const auto out = place_restore({"db-data", "unused"}, {}, names);
  EXPECT_TRUE(out.node_id.empty());
  EXPECT_TRUE(out.error.empty()) << out.error;
}

TEST(place_restore, a_target_kept_on_one_worker_is_restored_there) {
  const auto out = place_restore({"db-data"}, {elsewhere("db-data", {"id-3"}, {"db"})}, names);
  EXPECT_EQ(out.node_id, "id-3");
  EXPECT_TRUE(out.error.empty()) << out.error;
}

TEST(place_restore, two_targets_kept_on_the_same_worker_are_restored_there_together) {
  const auto out = place_restore(
      {"a", "b"}, {elsewhere("a", {"id-3"}, {"db"}), elsewhere("b", {"id-3"}, {"web"})}, names);
  EXPECT_EQ(out.node_id, "id-3");
  EXPECT_TRUE(out.error.empty()) << out.error;
}

TEST(place_restore, a_target_kept_on_two_nodes_is_refused_naming_them_and_the_services) {
  const auto out =
      place_restore({"shared"}, {elsewhere("shared", {"id-2", "id-3"}, {"a", "b"})}, names);
  EXPECT_TRUE(out.node_id.empty());
  EXPECT_EQ(out.error,
            "volume shared is kept on 2 nodes (n2, n3; services a, b): each has its own volume "
            "of that name, and a restore writes one; run the services mounting it on one node, "
            "then restore");
}

TEST(place_restore, a_target_kept_here_and_on_a_worker_is_refused) {
  const auto out =
      place_restore({"shared"}, {elsewhere("shared", {"id-3"}, {"db"}, /*also_here=*/true)}, names);
  EXPECT_TRUE(out.node_id.empty());
  EXPECT_NE(out.error.find("kept on 2 nodes (the controller's node, n3; services db)"),
            std::string::npos)
      << out.error;
}

TEST(place_restore, targets_on_different_workers_are_refused_asking_for_separate_restores) {
  const auto out = place_restore(
      {"a", "b"}, {elsewhere("a", {"id-2"}, {"x"}), elsewhere("b", {"id-3"}, {"y"})}, names);
  EXPECT_TRUE(out.node_id.empty());
  EXPECT_EQ(out.error,
            "volume a is on node n2 and volume b on node n3: a restore writes on one node; "
            "restore them in separate Restores");
}

TEST(place_restore, a_target_here_beside_one_on_a_worker_is_refused) {
  const auto out = place_restore({"a", "here"}, {elsewhere("a", {"id-3"}, {"x"})}, names);
  EXPECT_TRUE(out.node_id.empty());
  EXPECT_NE(out.error.find("volume a is on node n3, and no service keeps here there"),
            std::string::npos)
      << out.error;
}

TEST(place_restore, a_node_without_a_name_is_shown_by_its_id) {
  const auto out = place_restore(
      {"a", "b"}, {elsewhere("a", {"id-9"}, {"x"}), elsewhere("b", {"id-3"}, {"y"})}, names);
  EXPECT_NE(out.error.find("volume a is on node id-9"), std::string::npos) << out.error;
}

}  // namespace
}  // namespace lifeboat::reconcilers
