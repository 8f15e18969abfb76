// The per-node agent's own part, without Swarm: its report lines, and a run
// over folders standing in for the volumes its job mounts.

#include "controller/backup/agent.hpp"
#include "api/decode.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace lifeboat::backup {
namespace {

namespace fs = std::filesystem;

TEST(agent_event, round_trips_and_ignores_other_lines) {
  agent_event finished;
  finished.ok = true;
  finished.archive = "/archive/db-2026.tar.gz";
  finished.bytes = 1234;
  finished.peak_rss = 20U << 20;
  finished.message = "line \"one\"\nline two";
  const auto decoded = decode_agent_event(encode_agent_event(finished));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->what, agent_event::kind::finished);
  EXPECT_TRUE(decoded->ok);
  EXPECT_EQ(decoded->archive, finished.archive);
  EXPECT_EQ(decoded->bytes, 1234U);
  EXPECT_EQ(decoded->peak_rss, 20U << 20);
  EXPECT_EQ(decoded->message, finished.message);
  EXPECT_EQ(encode_agent_event(finished).find('\n'), std::string::npos)
      << "a report must stay on one line";

  agent_event volumes_read;
  volumes_read.what = agent_event::kind::volumes_read;
  const auto read = decode_agent_event(encode_agent_event(volumes_read));
  ASSERT_TRUE(read);
  EXPECT_EQ(read->what, agent_event::kind::volumes_read);

  for (const std::string_view other :
       {"", "volumes-read", "{\"event\":\"finished\"}", "{\"lifeboat-agent\":\"other\"}",
        "{\"lifeboat-agent\":\"finis", "[1,2]", "{\"lifeboat-agent\":7}"}) {
    EXPECT_FALSE(decode_agent_event(other)) << other;
  }
}

class agent_run : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("lifeboat-agent-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(root_ / "volumes" / "db" / "sub");
    fs::create_directories(root_ / "archives");
    std::ofstream(root_ / "volumes" / "db" / "sub" / "table") << "rows";
  }
  void TearDown() override { fs::remove_all(root_); }

  api::backup_schedule schedule(const fs::path& destination) const {
    const auto decoded = api::decode(
        "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n  name: db\nspec:\n"
        "  schedule: '@every 1h'\n  volumes: [db]\n  destinations:\n    - local: {path: " +
        destination.string() + "}\n");
    EXPECT_TRUE(decoded.ok());
    return std::get<api::backup_schedule>(decoded.objects().at(0));
  }

  /// Runs the agent; its exit code and report lines.
  std::pair<int, std::vector<std::string>> run(const agent_request& request) {
    char* buffer = nullptr;
    std::size_t size = 0;
    std::FILE* out = ::open_memstream(&buffer, &size);
    const std::atomic<bool> cancel{false};
    const int code = run_agent(request, out, cancel);
    std::fclose(out);
    std::vector<std::string> lines;
    std::istringstream in(std::string(buffer, size));
    std::free(buffer);
    for (std::string line; std::getline(in, line);) {
      lines.push_back(line);
    }
    return {code, lines};
  }

  fs::path root_;
};

// Every regular file in a .tar.gz, by path, with its content.
std::map<std::string, std::string> files_in(const std::string& path) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 65536), ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    if (archive_entry_filetype(e) != AE_IFREG) {
      continue;
    }
    std::string content(static_cast<std::size_t>(archive_entry_size(e)), '\0');
    archive_read_data(a, content.data(), content.size());
    out[archive_entry_pathname(e)] = content;
  }
  archive_read_free(a);
  return out;
}

TEST_F(agent_run, reports_volumes_read_then_the_published_archive) {
  agent_request request{schedule(root_ / "archives"), "db-run-1", "db-n3.tar.gz", {"db"}};
  request.volumes_root = (root_ / "volumes").string();
  const auto [code, lines] = run(request);

  EXPECT_EQ(code, 0);
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(decode_agent_event(lines[0])->what, agent_event::kind::volumes_read);
  const auto finished = decode_agent_event(lines[1]);
  ASSERT_TRUE(finished);
  EXPECT_TRUE(finished->ok) << finished->message;
  EXPECT_EQ(finished->archive, (root_ / "archives" / "db-n3.tar.gz").string());
  EXPECT_GT(finished->bytes, 0U);
  EXPECT_GT(finished->peak_rss, 0U);
  EXPECT_EQ(files_in(finished->archive),
            (std::map<std::string, std::string>{{"db/sub/table", "rows"}}));
}

// The folder may be one every node writes into: the agent clears what its own
// node's interrupted runs left, and nothing another node may be writing now.
TEST_F(agent_run, clears_its_own_nodes_leftovers_and_no_other) {
  const fs::path archives = root_ / "archives";
  const std::string own_leftover = "db-2026-12-02T10-00-00.n3.tar.gz.partial";
  const std::string other_node_writing = "db-2026-12-03T10-00-00.n2.tar.gz.partial";
  const std::string managers_writing = "db-2026-12-03T10-00-00.tar.gz.partial";
  for (const auto& name : {own_leftover, other_node_writing, managers_writing}) {
    std::ofstream(archives / name) << "half";
  }
  agent_request request{schedule(archives), "db-run-1", "db-2026-12-03T10-00-00.n3.tar.gz", {"db"}};
  request.volumes_root = (root_ / "volumes").string();
  const auto [code, lines] = run(request);

  ASSERT_EQ(code, 0) << (lines.empty() ? "" : lines.back());
  EXPECT_FALSE(fs::exists(archives / own_leftover));
  EXPECT_TRUE(fs::exists(archives / other_node_writing));
  EXPECT_TRUE(fs::exists(archives / managers_writing));
  EXPECT_TRUE(fs::exists(archives / "db-2026-12-03T10-00-00.n3.tar.gz"));
}

TEST_F(agent_run, a_destination_it_cannot_use_is_a_failed_report_and_exit_1) {
  // Neither the folder nor its parent exists (one level would be made).
  agent_request request{schedule(root_ / "missing" / "deeper"), "db-run-1", "db-n3.tar.gz", {"db"}};
  request.volumes_root = (root_ / "volumes").string();
  const auto [code, lines] = run(request);

  EXPECT_EQ(code, 1);
  ASSERT_EQ(lines.size(), 1U);
  const auto finished = decode_agent_event(lines[0]);
  ASSERT_TRUE(finished);
  EXPECT_FALSE(finished->ok);
  EXPECT_NE(finished->message.find((root_ / "missing" / "deeper").string()), std::string::npos)
      << finished->message;
  EXPECT_TRUE(fs::is_empty(root_ / "archives"));
}

TEST_F(agent_run, a_volume_that_is_not_mounted_fails_without_publishing) {
  agent_request request{schedule(root_ / "archives"), "db-run-1", "db-n3.tar.gz", {"absent"}};
  request.volumes_root = (root_ / "volumes").string();
  const auto [code, lines] = run(request);

  EXPECT_EQ(code, 1);
  ASSERT_FALSE(lines.empty());
  const auto finished = decode_agent_event(lines.back());
  ASSERT_TRUE(finished);
  EXPECT_FALSE(finished->ok);
  EXPECT_TRUE(finished->archive.empty());
  for (const auto& e : fs::directory_iterator(root_ / "archives")) {
    ADD_FAILURE() << "left in the destination: " << e.path();
  }
}

}  // namespace
}  // namespace lifeboat::backup
