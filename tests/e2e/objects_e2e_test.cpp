// Objects from Swarm configs, through the `lifeboat` binary and the docker CLI,
// against the real local swarm.
#include "tests/e2e/engine_fixture.hpp"

#include <boost/json/parse.hpp>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <fstream>

namespace lifeboat::e2e {
namespace {

std::string lifeboat(const std::string& args) { return std::string(LIFEBOAT_BINARY) + " " + args; }

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

std::string schedule_yaml(const std::string& name, const std::string& cron) {
  return "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: " + name +
         "}\nspec:\n  schedule: \"" + cron +
         "\"\n  volumes: [app_db]\n  destinations: [{local: {path: /archive}}]\n";
}

// `lifeboat get schedules -o json`, by name; where versions share a name, the
// one in force (listed first).
std::map<std::string, boost::json::object> get_schedules() {
  const auto r = run_command(lifeboat("get schedules -o json"));
  EXPECT_EQ(r.status, 0) << r.out;
  std::map<std::string, boost::json::object> out;
  boost::system::error_code ec;
  const auto v = boost::json::parse(r.out, ec);
  EXPECT_FALSE(ec) << r.out;
  if (ec || !v.is_array()) {
    return out;
  }
  for (const auto& item : v.as_array()) {
    const auto& o = item.as_object();
    out.emplace(std::string(o.at("name").as_string()), o);  // the first is the one in force
  }
  return out;
}

class objects_e2e : public engine_test {
 protected:
  void remove_config_later(const std::string& name) {
    on_teardown([this, name] { (void)engine().remove_config(name); });
  }
};

TEST_F(objects_e2e, stack_and_config_create_make_schedules_visible) {
  // An object created with the plain docker CLI, as a user would.
  const auto name = unique("sched");
  const auto file = write_temp(name + ".yaml", schedule_yaml(name, "0 3 * * *"));
  ASSERT_EQ(
      run_command("docker config create --label lifeboat.object=true " + name + " " + file).status,
      0);
  remove_config_later(name);

  // The example stack declares its schedule in its configs section.
  const auto stack = unique("stack");
  const auto deployed = run_command("cd " LIFEBOAT_SOURCE_DIR
                                    "/manifests/examples && "
                                    "docker stack deploy --resolve-image never -c stack.yml " +
                                    stack);
  ASSERT_EQ(deployed.status, 0) << deployed.out;
  on_teardown([stack] { run_command("docker stack rm " + stack + " >/dev/null 2>&1"); });

  const auto schedules = get_schedules();
  ASSERT_TRUE(schedules.contains(name));
  EXPECT_EQ(schedules.at(name).at("phase").as_string(), "Ready");
  EXPECT_EQ(schedules.at(name).at("schedule").as_string(), "0 3 * * *");
  EXPECT_TRUE(schedules.at(name).contains("nextRun"));
  ASSERT_TRUE(schedules.contains("app-db")) << "the stack's schedule is missing";
  EXPECT_EQ(schedules.at("app-db").at("source").as_string(), stack + "_nightly-db");
  EXPECT_TRUE(std::string(schedules.at("app-db").at("nextRun").as_string()).ends_with("02:30:00Z"));

  // The table shows the same.
  const auto table = run_command(lifeboat("get schedules"));
  EXPECT_NE(table.out.find(name), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("NEXT RUN"), std::string::npos) << table.out;
}

TEST_F(objects_e2e, invalid_object_shows_located_error_in_get_and_labels) {
  const auto name = unique("bad");
  const auto file = write_temp(name + ".yaml", schedule_yaml(name, "0 25 * * *"));
  ASSERT_EQ(
      run_command("docker config create --label lifeboat.object=true " + name + " " + file).status,
      0);
  remove_config_later(name);

  const auto schedules = get_schedules();
  ASSERT_TRUE(schedules.contains(name));
  EXPECT_EQ(schedules.at(name).at("phase").as_string(), "Invalid");
  const auto& errors = schedules.at(name).at("errors").as_array();
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].at("path").as_string(), "spec.schedule");
  EXPECT_EQ(errors[0].at("line").as_int64(), 5);
  EXPECT_EQ(errors[0].at("column").as_int64(), 13);

  ASSERT_EQ(run_command(lifeboat("sync-status")).status, 0);
  auto config = engine().inspect_config(name);
  ASSERT_TRUE(config) << config.error().describe();
  EXPECT_EQ(config->config_labels["lifeboat.status.phase"], "Invalid");
  EXPECT_NE(config->config_labels["lifeboat.status.message"].find(
                "5:13: spec.schedule: invalid schedule \"0 25 * * *\": hour: 25 is out of range"),
            std::string::npos)
      << config->config_labels["lifeboat.status.message"];

  // Nothing changed: a second pass writes nothing (the version index stays).
  const auto version = config->version;
  ASSERT_EQ(run_command(lifeboat("sync-status")).status, 0);
  auto again = engine().inspect_config(name);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->version, version) << "a resync with nothing changed wrote to the config";
}

TEST_F(objects_e2e, apply_is_content_addressed_and_newest_wins) {
  const auto name = unique("applied");
  const auto v1 = write_temp(name + "-v1.yaml", schedule_yaml(name, "0 3 * * *"));
  const auto first = run_command(lifeboat("apply -f " + v1));
  ASSERT_EQ(first.status, 0) << first.out;
  EXPECT_NE(first.out.find("created"), std::string::npos) << first.out;
  const auto again = run_command(lifeboat("apply -f " + v1));
  ASSERT_EQ(again.status, 0);
  EXPECT_NE(again.out.find("unchanged"), std::string::npos) << again.out;

  const auto v2 = write_temp(name + "-v2.yaml", schedule_yaml(name, "15 4 * * *"));
  const auto second = run_command(lifeboat("apply -f " + v2));
  ASSERT_EQ(second.status, 0) << second.out;

  auto configs = engine().list_configs({{"label", {"lifeboat.name=" + name}}});
  ASSERT_TRUE(configs) << configs.error().describe();
  ASSERT_EQ(configs->size(), 2U);
  for (const auto& c : *configs) {
    remove_config_later(c.id);
  }

  const auto schedules = get_schedules();
  ASSERT_TRUE(schedules.contains(name));
  // get lists the version in force first, then the superseded one.
  EXPECT_EQ(schedules.at(name).at("schedule").as_string(), "15 4 * * *");

  const auto json = run_command(lifeboat("get schedules -o json")).out;
  EXPECT_NE(json.find("\"phase\":\"Superseded\""), std::string::npos) << json;

  // An invalid file is refused whole, before anything is created.
  const auto bad = write_temp(name + "-bad.yaml", schedule_yaml(name, "0 3 * *"));
  const auto refused = run_command(lifeboat("apply -f " + bad) + " 2>&1");
  EXPECT_EQ(refused.status, 1);
  EXPECT_NE(refused.out.find(bad + ":5:13: spec.schedule"), std::string::npos) << refused.out;
  auto after = engine().list_configs({{"label", {"lifeboat.name=" + name}}});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->size(), 2U);
}

// Issue 12, item 4 (Names): names given on the command line that would make
// configs Swarm refuses are refused first, with the limit in the message.
TEST_F(objects_e2e, Issue12Item4NamesCliRefusesNamesThatDoNotFit) {
  const auto now = run_command(lifeboat("backup now " + std::string(49, 's')) + " 2>&1");
  EXPECT_EQ(now.status, 2) << now.out;
  EXPECT_NE(now.out.find("at most 48 characters, got 49"), std::string::npos) << now.out;
  const auto lease = run_command(
      lifeboat("controller --metrics-addr 127.0.0.1:0 --lease-name " + std::string(65, 'l')) +
      " 2>&1");
  EXPECT_EQ(lease.status, 2) << lease.out;
  EXPECT_NE(lease.out.find("--lease-name: must be at most 64 characters, got 65"),
            std::string::npos)
      << lease.out;
}

}  // namespace
}  // namespace lifeboat::e2e
