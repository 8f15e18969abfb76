// What travels between the controller and an agent-exec job on another node:
// the commands in LIFEBOAT_HOOKS, the report lines back, and the job itself.

#include "controller/backup/hook_agent.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace lifeboat::backup {
namespace {

using namespace std::chrono_literals;

hook_request two_commands() {
  hook_request request;
  request.point = "archive-pre";
  request.timeout = 90s;
  request.env = {"COMMAND_RUNTIME_ARCHIVE_FILEPATH=/archive/a \"b\".tar.gz"};
  request.execs.push_back(
      {{}, "t1", "db", "docker-volume-backup.archive-pre", {"sh", "-c", "pg_dump > 'x y'\n"}, ""});
  request.execs.push_back(
      {{}, "t2", "web", "docker-volume-backup.exec-pre", {"true"}, "www-data:www-data"});
  return request;
}

TEST(hook_request, round_trips_through_its_variable) {
  const auto request = two_commands();
  const auto text = encode_hook_request(request);
  EXPECT_EQ(text.find('\n'), std::string::npos) << "an environment value on one line";
  const auto decoded = decode_hook_request(text);
  ASSERT_TRUE(decoded) << decoded.error().describe();
  EXPECT_EQ(decoded->point, "archive-pre");
  EXPECT_EQ(decoded->timeout, 90s);
  EXPECT_EQ(decoded->env, request.env);
  ASSERT_EQ(decoded->execs.size(), 2U);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& want = request.execs[i];
    const auto& got = decoded->execs[i];
    EXPECT_EQ(got.container_id, "") << "found on the node, never sent";
    EXPECT_EQ(got.task_id, want.task_id);
    EXPECT_EQ(got.container_name, want.container_name);
    EXPECT_EQ(got.label, want.label);
    EXPECT_EQ(got.cmd, want.cmd);
    EXPECT_EQ(got.user, want.user);
  }
}

TEST(hook_request, a_malformed_one_is_an_error_saying_what_is_wrong) {
  const struct {
    std::string text;
    std::string says;
  } cases[] = {
      {"", "not JSON"},
      {"{\"point\":", "not JSON"},
      {"[]", "not a JSON object"},
      {R"({"timeout_ms":1,"env":[],"execs":[]})", "no string \"point\""},
      {R"({"point":"archive-pre","env":[],"execs":[]})", "no number \"timeout_ms\""},
      {R"({"point":"archive-pre","timeout_ms":0,"env":[],"execs":[]})", "positive"},
      {R"({"point":"archive-pre","timeout_ms":5,"env":[1],"execs":[]})", "\"env\" holds"},
      {R"({"point":"archive-pre","timeout_ms":5,"env":[]})", "no array \"execs\""},
      {R"({"point":"p","timeout_ms":5,"env":[],"execs":[7]})", "execs[0] is not an object"},
      {R"({"point":"p","timeout_ms":5,"env":[],"execs":[{"service":"s","label":"l","user":"","cmd":["a"]}]})",
       "execs[0] has no string \"task\""},
      {R"({"point":"p","timeout_ms":5,"env":[],"execs":[{"task":"t","service":"s","label":"l","user":"","cmd":[]}]})",
       "execs[0] has no non-empty array \"cmd\""},
      {R"({"point":"p","timeout_ms":5,"env":[],"execs":[{"task":"t","service":"s","label":"l","user":"","cmd":[true]}]})",
       "execs[0].cmd holds"},
  };
  for (const auto& c : cases) {
    const auto decoded = decode_hook_request(c.text);
    ASSERT_FALSE(decoded) << c.text;
    EXPECT_NE(decoded.error().describe().find("LIFEBOAT_HOOKS is malformed"), std::string::npos)
        << decoded.error().describe();
    EXPECT_NE(decoded.error().describe().find(c.says), std::string::npos)
        << c.text << " -> " << decoded.error().describe();
  }
}

TEST(hook_report_line, exec_and_finished_lines_round_trip_on_one_line) {
  const hook_report_line exec{hook_report_line::kind::exec, "t1", false, "exit 3",
                              "line \"one\"\nline two\t\x01"};
  const auto text = encode_hook_report_line(exec);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  const auto decoded = decode_hook_report_line(text + "\n");
  ASSERT_TRUE(decoded) << decoded.error().describe();
  ASSERT_TRUE(*decoded);
  EXPECT_EQ((*decoded)->what, hook_report_line::kind::exec);
  EXPECT_EQ((*decoded)->task_id, "t1");
  EXPECT_FALSE((*decoded)->ok);
  EXPECT_EQ((*decoded)->outcome, "exit 3");
  EXPECT_EQ((*decoded)->output, exec.output);

  hook_report_line finished;
  finished.ok = false;
  finished.outcome = "1 of 2 command(s) failed";
  const auto end = decode_hook_report_line(encode_hook_report_line(finished));
  ASSERT_TRUE(end && *end);
  EXPECT_EQ((*end)->what, hook_report_line::kind::finished);
  EXPECT_FALSE((*end)->ok);
  EXPECT_EQ((*end)->outcome, finished.outcome);
}

TEST(hook_report_line, a_long_output_keeps_its_end_within_the_line_limit) {
  // Quotes and control bytes take more room escaped than raw; a multi-byte
  // character must not be cut in half.
  std::string output;
  while (output.size() < 3 * hook_line_limit) {
    output += "\"\x02 \xC3\xA9 ";
  }
  output += "THE END";
  const hook_report_line exec{hook_report_line::kind::exec, "t1", false, "exit 1", output};
  const auto text = encode_hook_report_line(exec);
  EXPECT_LT(text.size(), hook_line_limit) << "with its newline, at most the limit";
  EXPECT_GT(text.size(), hook_line_limit - 64) << "cut no more than needed";
  const auto decoded = decode_hook_report_line(text);
  ASSERT_TRUE(decoded) << decoded.error().describe();
  ASSERT_TRUE(*decoded);
  EXPECT_TRUE((*decoded)->output.ends_with("THE END"));
  EXPECT_TRUE(output.ends_with((*decoded)->output));
  EXPECT_NE(static_cast<unsigned char>((*decoded)->output.front()) & 0xC0U, 0x80U)
      << "starts inside a character";
  EXPECT_EQ((*decoded)->outcome, "exit 1");

  // A huge outcome (an engine's message quoted at length) is cut too.
  const hook_report_line wordy{hook_report_line::kind::exec, "t1", false,
                               std::string(2 * hook_line_limit, 'x'), "out"};
  EXPECT_LT(encode_hook_report_line(wordy).size(), hook_line_limit);
}

TEST(hook_report_line, other_output_is_no_report_and_a_broken_report_is_an_error) {
  for (const std::string_view other :
       {"", "hello", "{\"lifeboat-agent\":\"finished\",\"ok\":true}", "[1,2]", "{}"}) {
    const auto decoded = decode_hook_report_line(other);
    ASSERT_TRUE(decoded) << other << ": " << decoded.error().describe();
    EXPECT_FALSE(*decoded) << other;
  }
  const auto whole =
      encode_hook_report_line({hook_report_line::kind::exec, "t1", true, "exit 0", "ok"});
  const struct {
    std::string line;
    std::string says;
  } broken[] = {
      {whole.substr(0, whole.size() / 2), "it does not parse (cut short?)"},
      {R"({"lifeboat-hook":"other","ok":true})", "unknown report \"other\""},
      {R"({"lifeboat-hook":7})", "unknown report 7"},
      {R"({"lifeboat-hook":"exec","task":"t1","outcome":"exit 0","output":""})",
       "no boolean \"ok\""},
      {R"({"lifeboat-hook":"exec","ok":true,"outcome":"exit 0","output":""})",
       "no string \"task\""},
  };
  for (const auto& b : broken) {
    const auto decoded = decode_hook_report_line(b.line);
    ASSERT_FALSE(decoded) << b.line;
    EXPECT_NE(decoded.error().describe().find("a hook report line is malformed: " + b.says),
              std::string::npos)
        << b.line << " -> " << decoded.error().describe();
  }
}

TEST(hook_job, runs_agent_exec_on_its_node_with_the_nodes_socket_and_the_run_label) {
  const auto request = two_commands();
  const auto job = hook_job("nightly-20261206030000", "nightly", "node-3", "sha256:abc",
                            "/tmp/lbc/{{.Node.Hostname}}/docker.sock", request);
  EXPECT_EQ(job.run_name, "nightly-20261206030000");
  EXPECT_EQ(job.labels.at("lifeboat.schedule"), "nightly");
  EXPECT_EQ(job.node_id, "node-3");
  EXPECT_EQ(job.image, "sha256:abc");
  EXPECT_EQ(job.args, (std::vector<std::string>{"agent-exec"}));
  ASSERT_EQ(job.mounts.size(), 1U);
  EXPECT_EQ(job.mounts[0], (job_mount{"bind", "/tmp/lbc/{{.Node.Hostname}}/docker.sock",
                                      "/var/run/docker.sock", false}));
  ASSERT_EQ(job.env.size(), 1U);
  ASSERT_TRUE(job.env[0].starts_with("LIFEBOAT_HOOKS="));
  const auto decoded = decode_hook_request(job.env[0].substr(job.env[0].find('=') + 1));
  ASSERT_TRUE(decoded) << decoded.error().describe();
  EXPECT_EQ(decoded->execs.size(), 2U);
}

}  // namespace
}  // namespace lifeboat::backup
