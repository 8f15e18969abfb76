// The mapping from the engine client's types to what the quiesce planner sees.
#include "controller/quiesce/quiesce.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace lifeboat::quiesce {
namespace {

using testing::ElementsAre;
using testing::IsEmpty;

engine::service service_with_spec(std::string_view spec) {
  engine::service s;
  s.id = "s1";
  s.version = 7;
  s.name = "app_db";
  s.mode = engine::service_mode::replicated;
  s.replicas = 2;
  s.restart_condition = "on-failure";
  s.spec = boost::json::parse(spec).as_object();
  return s;
}

TEST(to_observed, service_volume_mounts_and_force_update_come_from_the_spec) {
  // As `docker stack deploy` writes it: stack volumes carry the stack's prefix.
  const auto s = to_observed(service_with_spec(R"({
    "Name": "app_db",
    "TaskTemplate": {
      "ForceUpdate": 3,
      "ContainerSpec": {
        "Image": "busybox",
        "Mounts": [
          {"Type": "volume", "Source": "app_data", "Target": "/data"},
          {"Type": "bind", "Source": "/etc/hosts", "Target": "/etc/hosts"},
          {"Type": "volume", "Target": "/anonymous"},
          {"Type": "volume", "Source": "app_cache", "Target": "/cache", "ReadOnly": true},
          {"Type": "tmpfs", "Target": "/tmp"},
          "not an object"
        ]
      }
    }
  })"));
  EXPECT_EQ(s.id, "s1");
  EXPECT_EQ(s.version, 7U);
  EXPECT_EQ(s.mode, reconcilers::service_mode::replicated);
  EXPECT_EQ(s.replicas, 2U);
  EXPECT_EQ(s.force_update, 3U);
  EXPECT_THAT(s.volumes, ElementsAre("app_data", "app_cache"));
}

TEST(to_observed, a_spec_without_mounts_mounts_nothing) {
  for (const char* spec :
       {R"({})", R"({"TaskTemplate": {}})", R"({"TaskTemplate": {"ContainerSpec": {}}})",
        R"({"TaskTemplate": {"ContainerSpec": {"Mounts": {}}}})",
        R"({"TaskTemplate": {"ContainerSpec": {"Mounts": [{"Type": "volume",
            "Source": 5}]}}})"}) {
    SCOPED_TRACE(spec);
    EXPECT_THAT(to_observed(service_with_spec(spec)).volumes, IsEmpty());
  }
}

TEST(to_observed, container_name_service_and_volume_mounts) {
  engine::container_summary c;
  c.id = "c1";
  c.names = {"/app_db.1.xyz"};
  c.state = "running";
  c.container_labels = {{"com.docker.swarm.service.id", "s1"}};
  c.mounts = {{"volume", "app_data", "/var/lib/docker/volumes/app_data/_data", "/data", true},
              {"bind", "", "/etc/hosts", "/etc/hosts", false},
              {"volume", "app_cache", "/var/lib/docker/volumes/app_cache/_data", "/cache", false}};
  const auto o = to_observed(c);
  EXPECT_EQ(o.id, "c1");
  EXPECT_EQ(o.name, "app_db.1.xyz");
  EXPECT_EQ(o.state, "running");
  EXPECT_EQ(o.service_id, "s1");
  EXPECT_THAT(o.volumes, ElementsAre("app_data", "app_cache"));

  engine::container_summary plain;
  plain.id = "c2";
  EXPECT_EQ(to_observed(plain).name, "c2");
  EXPECT_EQ(to_observed(plain).service_id, "");
  EXPECT_THAT(to_observed(plain).volumes, IsEmpty());
}

}  // namespace
}  // namespace lifeboat::quiesce
