#include "controller/archive/local_destination.hpp"

#include "tests/controller/archive/test_support.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace lifeboat::archive {
namespace {

namespace fs = std::filesystem;
using test::run;
using test::scratch_dir;
using test::shell_quote;

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(local_archive_file, partial_until_commit_then_final_with_checksum) {
  scratch_dir dir;
  auto file = local_archive_file::create(dir.path(), "a.tar.gz");
  ASSERT_TRUE(file) << file.error().describe();
  ASSERT_TRUE(file->write(std::string_view("hello ")));
  auto sink = file->sink();
  ASSERT_TRUE(sink(std::string_view("world\n")));
  EXPECT_EQ(file->bytes_written(), 12U);
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"a.tar.gz.partial"});
  struct stat st {};
  ASSERT_EQ(::stat((dir / "a.tar.gz.partial").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);

  auto committed = file->commit();
  ASSERT_TRUE(committed) << committed.error().describe();
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"a.tar.gz", "a.tar.gz.sha256"}));
  EXPECT_EQ(committed->path, dir / "a.tar.gz");
  EXPECT_EQ(committed->checksum_path, dir / "a.tar.gz.sha256");
  EXPECT_EQ(committed->size, 12U);
  // sha256("hello world\n")
  EXPECT_EQ(committed->sha256, "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");
  EXPECT_EQ(test::read_file(dir / "a.tar.gz.sha256"), committed->sha256 + "  a.tar.gz\n");
  auto sum = run("cd " + shell_quote(dir.path().string()) + " && sha256sum -c a.tar.gz.sha256");
  EXPECT_EQ(sum.status, 0) << sum.output;
}

TEST(local_archive_file, destruction_or_discard_removes_the_partial) {
  scratch_dir dir;
  {
    auto file = local_archive_file::create(dir.path(), "a.tar");
    ASSERT_TRUE(file);
    ASSERT_TRUE(file->write(std::string_view("x")));
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
  auto file = local_archive_file::create(dir.path(), "b.tar");
  ASSERT_TRUE(file);
  file->discard();
  EXPECT_TRUE(fs::is_empty(dir.path()));
  EXPECT_FALSE(file->write(std::string_view("x")));
  EXPECT_FALSE(file->commit());
}

TEST(local_archive_file, a_retried_run_replaces_the_archive_atomically) {
  scratch_dir dir;
  for (const char* content : {"first", "second"}) {
    auto file = local_archive_file::create(dir.path(), "a.tar");
    ASSERT_TRUE(file);
    ASSERT_TRUE(file->write(std::string_view(content)));
    ASSERT_TRUE(file->commit());
  }
  EXPECT_EQ(test::read_file(dir / "a.tar"), "second");
  auto sum = run("cd " + shell_quote(dir.path().string()) + " && sha256sum -c a.tar.sha256");
  EXPECT_EQ(sum.status, 0) << sum.output;
}

TEST(local_archive_file, bad_names_and_missing_folders_are_refused) {
  scratch_dir dir;
  for (const char* name : {"", ".", "..", "a/b"}) {
    auto file = local_archive_file::create(dir.path(), name);
    ASSERT_FALSE(file) << name;
    EXPECT_TRUE(file.error().is(errc::invalid_argument));
  }
  auto missing = local_archive_file::create(dir / "not-mounted", "a.tar");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(errc::io_error));
  EXPECT_FALSE(fs::exists(dir / "not-mounted"));
}

TEST(update_latest_link, relative_and_replaced_atomically) {
  scratch_dir dir;
  std::ofstream(dir / "a.tar") << "a";
  std::ofstream(dir / "b.tar") << "b";
  ASSERT_TRUE(update_latest_link(dir.path(), "latest", "a.tar"));
  EXPECT_EQ(fs::read_symlink(dir / "latest"), "a.tar");
  // A leftover temporary link of an interrupted update is no obstacle.
  fs::create_symlink("junk", dir / "latest.partial");
  ASSERT_TRUE(update_latest_link(dir.path(), "latest", "b.tar"));
  EXPECT_EQ(fs::read_symlink(dir / "latest"), "b.tar");
  EXPECT_EQ(test::read_file(dir / "latest"), "b");
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"a.tar", "b.tar", "latest"}));

  std::ofstream(dir / "precious") << "not a link";
  auto r = update_latest_link(dir.path(), "precious", "a.tar");
  ASSERT_FALSE(r);
  EXPECT_EQ(test::read_file(dir / "precious"), "not a link");
  EXPECT_FALSE(update_latest_link(dir.path(), "../up", "a.tar"));
}

TEST(list_archive_files, regular_files_only_with_mtime_and_size) {
  scratch_dir dir;
  std::ofstream(dir / "a.tar") << "12345";
  fs::create_directory(dir / "folder.tar");
  fs::create_symlink("a.tar", dir / "link.tar");
  const auto when = std::chrono::system_clock::time_point{std::chrono::seconds{1'700'000'000}};
  fs::last_write_time(dir / "a.tar", std::chrono::file_clock::from_sys(when));
  auto files = list_archive_files(dir.path());
  ASSERT_TRUE(files) << files.error().describe();
  ASSERT_EQ(files->size(), 1U);
  EXPECT_EQ((*files)[0], (archive_file{"a.tar", when, 5}));
  EXPECT_FALSE(list_archive_files(dir / "missing"));
}

TEST(remove_archives, removes_the_archive_and_its_checksum) {
  scratch_dir dir;
  for (const char* name : {"a.tar", "a.tar.sha256", "b.tar", "c.tar", "c.tar.sha256"}) {
    std::ofstream(dir / name) << name;
  }
  const std::vector<std::string> doomed = {"a.tar", "b.tar", "gone.tar"};
  auto removed = remove_archives(dir.path(), doomed);
  ASSERT_TRUE(removed) << removed.error().describe();
  EXPECT_EQ(removed->size(), 3U);
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"c.tar", "c.tar.sha256"}));
  const std::vector<std::string> bad = {"../c.tar"};
  EXPECT_FALSE(remove_archives(dir.path(), bad));
}

TEST(remove_leftovers, only_this_schedules_partials_and_orphan_checksums) {
  scratch_dir dir;
  const std::string ours = "nightly-db-2024-06-01T03-00-00.tar.gz";
  const std::string ours_done = "nightly-db-2024-06-02T03-00-00.tar.gz";
  const std::string theirs = "nightly-db-extra-2024-06-01T03-00-00.tar.gz";
  for (const std::string& name :
       {ours + ".partial", ours + ".sha256.partial", ours + ".sha256",  // interrupted
        ours_done, ours_done + ".sha256",                               // complete
        theirs + ".partial", theirs + ".sha256",                        // not ours
        std::string("notes.partial"), std::string("other.tar.gz.partial")}) {
    std::ofstream(dir / name) << name;
  }
  const archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly-db", ".tar.gz");
  auto removed = remove_leftovers(dir.path(), pattern);
  ASSERT_TRUE(removed) << removed.error().describe();
  std::sort(removed->begin(), removed->end());
  EXPECT_EQ(*removed, (std::vector<std::string>{ours + ".partial", ours + ".sha256",
                                                ours + ".sha256.partial"}));
  EXPECT_EQ(
      names_in(dir.path()),
      (std::vector<std::string>{ours_done, ours_done + ".sha256", theirs + ".partial",
                                theirs + ".sha256", "notes.partial", "other.tar.gz.partial"}));
}

// A run killed while writing leaves a partial; the next run's cleanup takes
// it away and its own archive is published.
TEST(remove_leftovers, the_next_run_cleans_up_an_interrupted_one) {
  scratch_dir dir;
  const std::string first = "nightly-db-2024-06-01T03-00-00.tar.gz";
  // The writing process dies mid-archive: no destructor runs.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto file = local_archive_file::create(dir.path(), first);
    const bool ok = file && file->write(std::string_view("half an archive"));
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{first + ".partial"});
  const archive_name_pattern pattern("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly-db", ".tar.gz");
  auto removed = remove_leftovers(dir.path(), pattern);
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, std::vector<std::string>{first + ".partial"});
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

}  // namespace
}  // namespace lifeboat::archive
