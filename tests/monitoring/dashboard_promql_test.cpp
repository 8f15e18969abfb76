// Every query of the Grafana dashboard (manifests/monitoring/dashboard.json)
// is PromQL that Prometheus accepts: each, with Grafana's variables replaced
// by values they take, becomes a recording rule that `promtool check rules`
// parses. Needs promtool (Debian's `prometheus` package, from hack/setup.sh):
// without it the test fails rather than skips.
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_to.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const fs::path dashboard_path =
    fs::path(LIFEBOAT_SOURCE_DIR) / "manifests" / "monitoring" / "dashboard.json";

// Grafana's variables as a query may use them, each with a value it takes.
const std::map<std::string, std::string, std::less<>> variable_values{
    {"schedule", ".*"},        {"window", "1d"},     {"__range", "1d"},
    {"__rate_interval", "1m"}, {"__interval", "1m"},
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// `expr` with each $name or ${name} replaced by its value; an unknown
// variable is a failure naming it.
std::string substitute(const std::string& expr) {
  const std::regex variable(R"(\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?)");
  std::string out;
  auto last = expr.cbegin();
  for (std::sregex_iterator it(expr.begin(), expr.end(), variable), end; it != end; ++it) {
    const auto& m = *it;
    out.append(last, m[0].first);
    const auto value = variable_values.find(m[1].str());
    if (value == variable_values.end()) {
      ADD_FAILURE() << "unknown variable $" << m[1] << " in " << expr;
      out.append(m[0].first, m[0].second);
    } else {
      out += value->second;
    }
    last = m[0].second;
  }
  out.append(last, expr.cend());
  return out;
}

void collect_exprs(const json::array& panels, std::vector<std::string>& out) {
  for (const auto& p : panels) {
    const auto& panel = p.as_object();
    if (const auto* targets = panel.if_contains("targets")) {
      for (const auto& t : targets->as_array()) {
        out.push_back(json::value_to<std::string>(t.as_object().at("expr")));
      }
    }
    if (const auto* nested = panel.if_contains("panels")) {
      collect_exprs(nested->as_array(), out);
    }
  }
}

struct command_result {
  int status = -1;
  std::string output;
};

command_result run(const std::string& command) {
  command_result r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return r;
  }
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) {
    r.output.append(buffer, n);
  }
  r.status = ::pclose(pipe);
  return r;
}

TEST(monitoring, dashboard_queries_are_valid_promql) {
  std::vector<std::string> exprs;
  collect_exprs(json::parse(read_file(dashboard_path)).as_object().at("panels").as_array(), exprs);
  ASSERT_FALSE(exprs.empty()) << dashboard_path;

  // JSON strings are valid YAML scalars: each query is written as one.
  std::ostringstream rules;
  rules << "groups:\n  - name: dashboard\n    rules:\n";
  for (std::size_t i = 0; i < exprs.size(); ++i) {
    rules << "      - record: dashboard:query_" << i
          << "\n        expr: " << json::serialize(json::value(substitute(exprs[i]))) << "\n";
  }
  const auto dir = fs::temp_directory_path() / ("lifeboat-dashboard-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto file = dir / "queries.yml";
  std::ofstream(file) << rules.str();

  const auto result = run("promtool check rules " + file.string());
  EXPECT_EQ(result.status, 0) << result.output << "\nqueries (dashboard:query_N is the N-th):\n"
                              << rules.str();
  EXPECT_NE(result.output.find("SUCCESS: " + std::to_string(exprs.size()) + " rules found"),
            std::string::npos)
      << result.output;
  fs::remove_all(dir);
}

}  // namespace
