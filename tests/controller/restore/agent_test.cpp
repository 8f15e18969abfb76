// A restore agent's own part, without Swarm: the job the controller starts
// (arguments, labels, mounts), and runs over folders standing in for the
// volumes the job mounts.

#include "controller/restore/agent.hpp"

#include "api/decode.hpp"
#include "api/labels.hpp"
#include "controller/restore/runner.hpp"
#include "tests/controller/archive/test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace lifeboat::restore {
namespace {

namespace fs = std::filesystem;
using archive::test::run;
using archive::test::scratch_dir;
using archive::test::shell_quote;

api::restore restore_of(const std::string& spec) {
  const auto decoded =
      api::decode("apiVersion: lifeboat/v1\nkind: Restore\nmetadata:\n  name: r1\nspec:\n" + spec);
  EXPECT_TRUE(decoded.ok());
  return std::get<api::restore>(decoded.objects().at(0));
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(restore_job, verifies_with_the_volumes_read_only_and_writes_with_them_writable) {
  const auto r = restore_of(
      "  archive: /backups/db.n3.tar.gz\n  wipe: true\n  volumes:\n    - from: db\n"
      "      to: db-new\n");
  restore_job_spec spec{"restore-r1", "node-3", "lifeboat:test", r, false, false, true};
  const auto verify = restore_job(spec);
  EXPECT_EQ(verify.run_name, "restore-r1");
  EXPECT_EQ(verify.node_id, "node-3");
  EXPECT_EQ(verify.image, "lifeboat:test");
  EXPECT_EQ(verify.labels.at(std::string(restore_label)), "r1");
  EXPECT_EQ(verify.args, (std::vector<std::string>{"restore-agent", "--run", "restore-r1",
                                                   "--allow-absolute-symlinks"}));
  EXPECT_EQ(verify.mounts,
            (std::vector<backup::job_mount>{{"volume", "db-new", "/lifeboat/db-new", true},
                                            {"bind", "/backups", "/backups", true}}));
  ASSERT_EQ(verify.env.size(), 1U);
  ASSERT_TRUE(verify.env[0].starts_with("LIFEBOAT_RESTORE="));
  const auto decoded = api::decode(verify.env[0].substr(std::string("LIFEBOAT_RESTORE=").size()));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(std::get<api::restore>(decoded.objects().at(0)), r);

  spec.write = true;
  const auto write = restore_job(spec);
  EXPECT_EQ(write.args, (std::vector<std::string>{"restore-agent", "--run", "restore-r1", "--write",
                                                  "--allow-absolute-symlinks"}));
  EXPECT_FALSE(write.mounts.at(0).read_only) << "the write job must be able to write";
}

TEST(backup_job, mounts_the_volumes_read_only_and_labels_the_schedule) {
  const auto decoded = api::decode(
      "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n  name: db\nspec:\n"
      "  schedule: '@every 1h'\n  volumes: [vol]\n  destinations:\n    - local: {path: /b}\n");
  ASSERT_TRUE(decoded.ok()) << api::format_error(decoded.errors().at(0));
  const backup::agent_job_spec spec{
      "run-1",        "node-2", "img", std::get<api::backup_schedule>(decoded.objects().at(0)),
      "db.n2.tar.gz", {"vol"},  {"/b"}};
  const auto job = backup::backup_job(spec);
  EXPECT_EQ(job.args, (std::vector<std::string>{"agent", "--run", "run-1", "--file-name",
                                                "db.n2.tar.gz", "--volume", "vol"}));
  EXPECT_EQ(job.labels.at(std::string(api::label::schedule)), "db");
  ASSERT_EQ(job.mounts.size(), 2U);
  EXPECT_TRUE(job.mounts[0].read_only);
  EXPECT_EQ(job.mounts[1], (backup::job_mount{"bind", "/b", "/b", false}));
}

class restore_agent_run : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "src" / "db" / "sub");
    std::ofstream(dir_ / "src" / "db" / "sub" / "table") << "rows";
    fs::create_directories(dir_ / "volumes" / "db-new");
    std::ofstream(dir_ / "volumes" / "db-new" / "old") << "old";
    const auto made = run("tar -czf " + shell_quote((dir_ / "db.tar.gz").string()) + " -C " +
                          shell_quote((dir_ / "src").string()) + " db");
    ASSERT_EQ(made.status, 0) << made.output;
  }

  std::pair<int, backup::agent_event> agent(const fs::path& archive, bool write) {
    restore_agent_request request;
    request.restore = restore_of("  archive: " + archive.string() +
                                 "\n  wipe: true\n  volumes:\n    - from: db\n      to: db-new\n");
    request.write = write;
    request.volumes_root = (dir_ / "volumes").string();
    char* buffer = nullptr;
    std::size_t size = 0;
    std::FILE* out = ::open_memstream(&buffer, &size);
    const std::atomic<bool> cancel{false};
    const int code = run_restore_agent(request, out, cancel);
    std::fclose(out);
    std::string text(buffer, size);
    std::free(buffer);
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    auto event = backup::decode_agent_event(text.substr(0, text.find('\n')));
    EXPECT_TRUE(event) << text;
    return {code, event.value_or(backup::agent_event{})};
  }

  scratch_dir dir_;
};

TEST_F(restore_agent_run, verifying_reads_the_archive_and_writes_nothing) {
  const auto [code, event] = agent(dir_ / "db.tar.gz", false);
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(event.ok) << event.message;
  EXPECT_EQ(event.outcome, outcome::verified);
  EXPECT_NE(event.message.find("fits"), std::string::npos) << event.message;
  EXPECT_EQ(read_file(dir_ / "volumes" / "db-new" / "old"), "old");
  EXPECT_FALSE(fs::exists(dir_ / "volumes" / "db-new" / "sub"));
}

TEST_F(restore_agent_run, writing_wipes_then_unpacks_the_mapped_volume) {
  const auto [code, event] = agent(dir_ / "db.tar.gz", true);
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(event.ok) << event.message;
  EXPECT_EQ(event.outcome, outcome::succeeded);
  EXPECT_EQ(event.bytes, 4U);
  EXPECT_FALSE(fs::exists(dir_ / "volumes" / "db-new" / "old")) << "not wiped";
  EXPECT_EQ(read_file(dir_ / "volumes" / "db-new" / "sub" / "table"), "rows");
}

TEST_F(restore_agent_run, a_truncated_archive_fails_verifying_and_touches_nothing) {
  const auto whole = fs::file_size(dir_ / "db.tar.gz");
  fs::copy_file(dir_ / "db.tar.gz", dir_ / "cut.tar.gz");
  fs::resize_file(dir_ / "cut.tar.gz", whole / 2);
  const auto [code, event] = agent(dir_ / "cut.tar.gz", true);
  EXPECT_EQ(code, 1);
  EXPECT_FALSE(event.ok);
  EXPECT_EQ(event.outcome, outcome::corrupt) << event.message;
  EXPECT_EQ(read_file(dir_ / "volumes" / "db-new" / "old"), "old");
}

TEST_F(restore_agent_run, a_missing_archive_is_invalid) {
  const auto [code, event] = agent(dir_ / "nothing.tar.gz", true);
  EXPECT_EQ(code, 1);
  EXPECT_EQ(event.outcome, outcome::invalid) << event.message;
}

}  // namespace
}  // namespace lifeboat::restore
