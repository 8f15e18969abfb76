// The monitoring kit (manifests/monitoring) against the metrics the controller
// registers: the Grafana dashboard queries every one of them, and neither the
// dashboard nor the alert rules and their tests name a metric that does not
// exist (a misspelt name in a query is no error to Prometheus: the panel or
// the alert just stays empty). And the stack file, Prometheus's
// configuration and the controller's stack agree on names, files and ports,
// which no tool checks before a deployment.
#include "controller/metrics/metrics.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <boost/json/parse.hpp>
#include <boost/json/value_to.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace lifeboat::metrics {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

const fs::path source_dir{LIFEBOAT_SOURCE_DIR};
const fs::path kit = source_dir / "manifests" / "monitoring";

// Metrics the dashboard may query before the controller registers them, each
// for a feature that is not built yet. A name leaves this list when it is
// registered (the test says so), and is then checked like every other.
const std::set<std::string> not_yet_registered{};

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Family name -> type ("counter", "gauge", "histogram"), as /metrics serves
// them from a registry whose every member was called once: a family is served
// only once it has a series.
std::map<std::string, std::string> served_families() {
  registry r;
  const std::chrono::system_clock::time_point at{std::chrono::seconds{1'800'000'000}};
  r.add_schedule("nightly");
  r.set_next_run("nightly", at);
  r.backup_finished("nightly", backup_result::success, 12s, 2s, 1024, at);
  r.backup_failed("nightly", "no space");
  r.upload_finished("nightly", "local /archive", true, 1024, 3s);
  r.restore_finished("succeeded");
  r.set_workloads_held(1);
  r.add_recovery();
  r.add_run_exception();
  r.set_invalid_objects(1);
  r.reconciled("schedule", true, 1ms);
  r.set_workqueue_depth(1);
  r.engine_request(true);
  r.add_watch_restart();
  r.set_leader(true);

  std::map<std::string, std::string> families;
  std::istringstream text(r.serialize());
  const std::regex type_line(R"(^# TYPE (\S+) (\S+)$)");
  std::smatch m;
  for (std::string line; std::getline(text, line);) {
    if (std::regex_match(line, m, type_line)) {
      families.emplace(m[1], m[2]);
    }
  }
  return families;
}

// The names metrics.cpp registers, read from its source.
std::set<std::string> names_in_metrics_source() {
  const auto text = read_file(source_dir / "controller" / "metrics" / "metrics.cpp");
  const std::regex name(R"rx(\.Name\("(lifeboat_[a-z0-9_]+)"\))rx");
  std::set<std::string> names;
  for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it) {
    names.insert((*it)[1]);
  }
  return names;
}

// The metric names a PromQL text uses. Recording rules (lifeboat:...) are
// Prometheus's own series, not the controller's.
std::set<std::string> metric_names_in(const std::string& promql) {
  const std::regex name(R"((?:^|[^A-Za-z0-9_:])(lifeboat_[A-Za-z0-9_]+))");
  std::set<std::string> names;
  for (std::sregex_iterator it(promql.begin(), promql.end(), name), end; it != end; ++it) {
    names.insert((*it)[1]);
  }
  return names;
}

// The family a series name belongs to: a histogram's series carry _bucket,
// _sum and _count. Empty when no served family has it.
std::string family_of(const std::string& series,
                      const std::map<std::string, std::string>& families) {
  if (families.contains(series)) {
    return series;
  }
  for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (series.size() > suffix.size() && series.ends_with(suffix)) {
      auto stem = series.substr(0, series.size() - suffix.size());
      const auto it = families.find(stem);
      if (it != families.end() && it->second == "histogram") {
        return stem;
      }
    }
  }
  return {};
}

struct dashboard_query {
  std::string panel;
  std::string expr;
};

void collect_queries(const json::array& panels, std::vector<dashboard_query>& out) {
  for (const auto& p : panels) {
    const auto& panel = p.as_object();
    const auto title = json::value_to<std::string>(panel.at("title"));
    if (const auto* targets = panel.if_contains("targets")) {
      for (const auto& t : targets->as_array()) {
        out.push_back({title, json::value_to<std::string>(t.as_object().at("expr"))});
      }
    }
    if (const auto* nested = panel.if_contains("panels")) {  // a collapsed row's
      collect_queries(nested->as_array(), out);
    }
  }
}

json::object dashboard() { return json::parse(read_file(kit / "dashboard.json")).as_object(); }

std::vector<dashboard_query> dashboard_queries() {
  std::vector<dashboard_query> queries;
  collect_queries(dashboard().at("panels").as_array(), queries);
  return queries;
}

TEST(monitoring, every_metric_in_metrics_cpp_is_served_by_this_test_registry) {
  // Otherwise a family added to metrics.cpp whose member this test does not
  // call would escape the checks below.
  std::set<std::string> served;
  for (const auto& [name, type] : served_families()) {
    served.insert(name);
  }
  EXPECT_EQ(served, names_in_metrics_source())
      << "call the new metric's member in served_families() (tests/monitoring/monitoring_test.cpp)";
  EXPECT_GE(served.size(), 21U);
}

TEST(monitoring, dashboard_queries_every_registered_metric) {
  const auto families = served_families();
  std::set<std::string> queried;
  for (const auto& q : dashboard_queries()) {
    for (const auto& name : metric_names_in(q.expr)) {
      if (auto family = family_of(name, families); !family.empty()) {
        queried.insert(family);
      }
    }
  }
  for (const auto& [name, type] : families) {
    EXPECT_TRUE(queried.contains(name))
        << name << " (" << type
        << ") is registered, but no panel of manifests/monitoring/dashboard.json queries it";
  }
}

TEST(monitoring, dashboard_queries_only_registered_metrics) {
  const auto families = served_families();
  for (const auto& name : not_yet_registered) {
    EXPECT_FALSE(families.contains(name))
        << name << " is registered now: remove it from not_yet_registered in "
        << "tests/monitoring/monitoring_test.cpp";
  }
  for (const auto& q : dashboard_queries()) {
    for (const auto& name : metric_names_in(q.expr)) {
      EXPECT_TRUE(!family_of(name, families).empty() || not_yet_registered.contains(name))
          << "panel \"" << q.panel << "\" of manifests/monitoring/dashboard.json queries " << name
          << ", which the controller does not register: " << q.expr;
    }
  }
}

TEST(monitoring, dashboard_reads_its_data_source_from_a_variable) {
  const auto d = dashboard();
  bool variable = false;
  for (const auto& v : d.at("templating").at("list").as_array()) {
    const auto& o = v.as_object();
    variable |= o.at("name").as_string() == "datasource" &&
                o.at("type").as_string() == "datasource" &&
                o.at("query").as_string() == "prometheus";
  }
  EXPECT_TRUE(variable) << "no template variable `datasource` of type datasource (prometheus)";

  std::set<std::int64_t> ids;
  std::size_t queried_panels = 0;
  for (const auto& p : d.at("panels").as_array()) {
    const auto& panel = p.as_object();
    const auto title = json::value_to<std::string>(panel.at("title"));
    EXPECT_TRUE(ids.insert(panel.at("id").to_number<std::int64_t>()).second)
        << "panel \"" << title << "\": its id is not unique";
    if (!panel.contains("targets")) {
      continue;
    }
    ++queried_panels;
    EXPECT_EQ(panel.at("datasource").at("uid").as_string(), "${datasource}")
        << "panel \"" << title << "\"";
    for (const auto& t : panel.at("targets").as_array()) {
      EXPECT_EQ(t.at("datasource").at("uid").as_string(), "${datasource}")
          << "panel \"" << title << "\": a query with another data source";
    }
  }
  EXPECT_GT(queried_panels, 0U);
}

TEST(monitoring, alert_rules_and_their_tests_name_only_registered_metrics) {
  const auto families = served_families();
  auto check = [&](const std::string& where, const std::string& promql) {
    for (const auto& name : metric_names_in(promql)) {
      EXPECT_FALSE(family_of(name, families).empty())
          << where << " names " << name << ", which the controller does not register: " << promql;
    }
  };
  std::size_t rules = 0;
  for (const auto& group : YAML::LoadFile((kit / "alerts.yml").string())["groups"]) {
    for (const auto& rule : group["rules"]) {
      ++rules;
      check("alerts.yml", rule["expr"].as<std::string>());
    }
  }
  EXPECT_GT(rules, 0U);
  std::size_t series = 0;
  for (const auto& test : YAML::LoadFile((kit / "alerts_test.yml").string())["tests"]) {
    for (const auto& input : test["input_series"]) {
      ++series;
      check("alerts_test.yml", input["series"].as<std::string>());
    }
    for (const auto& expr_test : test["promql_expr_test"]) {
      check("alerts_test.yml", expr_test["expr"].as<std::string>());
    }
  }
  EXPECT_GT(series, 0U);
}

// A duration as Prometheus writes it, in one unit ("30s", "1m", "2h").
std::chrono::seconds prometheus_duration(const std::string& text) {
  const std::map<char, std::chrono::seconds> units{{'s', 1s}, {'m', 1min}, {'h', 1h}};
  const auto unit = units.find(text.empty() ? ' ' : text.back());
  if (unit == units.end()) {
    ADD_FAILURE() << "unexpected duration " << text;
    return {};
  }
  return std::stoi(text.substr(0, text.size() - 1)) * unit->second;
}

TEST(monitoring, prometheus_scrapes_the_controller_stack_and_loads_the_rules_it_is_given) {
  const auto controller = YAML::LoadFile((source_dir / "manifests" / "stack.yml").string());
  const auto prometheus = YAML::LoadFile((kit / "prometheus.yml").string());
  const auto stack = YAML::LoadFile((kit / "stack.yml").string());

  // The controller serves /metrics on 9090 (manifests/stack.yml): Prometheus
  // asks Swarm's DNS for the tasks of lifeboat_controller (stack lifeboat,
  // service controller) on that port.
  const auto command =
      controller["services"]["controller"]["command"].as<std::vector<std::string>>();
  const auto addr = std::find(command.begin(), command.end(), "--metrics-addr");
  ASSERT_NE(addr, command.end());
  ASSERT_NE(addr + 1, command.end());
  EXPECT_EQ(*(addr + 1), ":9090");
  bool scraped = false;
  for (const auto& job : prometheus["scrape_configs"]) {
    for (const auto& sd : job["dns_sd_configs"]) {
      scraped |= sd["names"][0].as<std::string>() == "tasks.lifeboat_controller" &&
                 sd["port"].as<int>() == 9090 && sd["type"].as<std::string>() == "A";
    }
  }
  EXPECT_TRUE(scraped) << "prometheus.yml scrapes no dns_sd tasks.lifeboat_controller:9090";
  // The rules read the next-run gauge one minute apart.
  EXPECT_LT(prometheus_duration(prometheus["global"]["scrape_interval"].as<std::string>()), 1min);

  // Prometheus reads /etc/prometheus/prometheus.yml, and the rule files it
  // names relative to it; each is a Swarm config made from the file of that
  // name beside stack.yml.
  const auto service = stack["services"]["prometheus"];
  const auto args = service["command"].as<std::vector<std::string>>();
  EXPECT_NE(std::find(args.begin(), args.end(), "--config.file=/etc/prometheus/prometheus.yml"),
            args.end());
  std::map<std::string, std::string> mounted;  // target -> file
  for (const auto& c : service["configs"]) {
    const auto source = c["source"].as<std::string>();
    ASSERT_TRUE(stack["configs"][source]) << "stack.yml: no top-level config " << source;
    mounted[c["target"].as<std::string>()] = stack["configs"][source]["file"].as<std::string>();
  }
  std::vector<std::string> files{"prometheus.yml"};
  for (const auto& rule_file : prometheus["rule_files"]) {
    files.push_back(rule_file.as<std::string>());
  }
  for (const auto& file : files) {
    const auto it = mounted.find("/etc/prometheus/" + file);
    ASSERT_NE(it, mounted.end()) << "stack.yml does not mount " << file << " in /etc/prometheus";
    EXPECT_EQ(fs::path(it->second).lexically_normal(), fs::path(file)) << it->second;
    EXPECT_TRUE(fs::exists(kit / file)) << file;
  }

  // It joins the controller stack's default network, made by that stack.
  const auto network = service["networks"][0].as<std::string>();
  EXPECT_TRUE(stack["networks"][network]["external"].as<bool>());
  EXPECT_NE(stack["networks"][network]["name"].as<std::string>().find("lifeboat_default"),
            std::string::npos);
  EXPECT_FALSE(controller["networks"]) << "manifests/stack.yml has networks of its own now: "
                                          "join the controller's in manifests/monitoring/stack.yml";
}

}  // namespace
}  // namespace lifeboat::metrics
