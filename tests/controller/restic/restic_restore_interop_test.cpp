// lifeboat restores what Debian's restic (0.14) backed up: `restic backup /abs/dir`
// stores the full path as nested trees, and restoring that path's subtree gives
// the exact tree back (modes, owners, times, symlinks, hard links, holes). Runs
// restic as a child process on folders in a private temporary directory.
#include "controller/restic/repository.hpp"
#include "controller/restic/restore.hpp"
#include "controller/restic/store.hpp"
#include "tests/controller/restic/restic_tree_fixture.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <sys/wait.h>

namespace lifeboat::restic {
namespace {

namespace fs = std::filesystem;

constexpr const char* password = "correct horse battery staple";

struct output {
  int status = -1;
  std::string text;  // stdout, then stderr
};

output restic(const fs::path& repo, const std::string& args) {
  const std::string cmd = "RESTIC_PASSWORD='" + std::string(password) +
                          "' restic --no-cache -q -r '" + repo.string() + "' " + args + " 2>&1";
  output out;
  FILE* pipe = popen(cmd.c_str(), "r");  // NOLINT(cert-env33-c): test-only, fixed commands
  if (pipe == nullptr) {
    return out;
  }
  std::array<char, 4096> buf{};
  for (std::size_t n = 0; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) {
    out.text.append(buf.data(), n);
  }
  const int status = pclose(pipe);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(ResticRestoreInterop, LifeboatRestoresWhatResticBackedUp) {
  if (std::system("command -v restic >/dev/null 2>&1") != 0) {  // NOLINT(cert-env33-c)
    GTEST_SKIP() << "restic is not installed (hack/setup.sh installs it)";
  }
  const testing::temp_dir dir;
  const fs::path src = dir.path() / "data" / "vol";
  fs::create_directories(src);
  ::chmod(src.c_str(), 0751);
  testing::make_tree(src);
  const auto expected = testing::describe_tree(src);
  const fs::path repo_path = dir.path() / "repo";
  const output init = restic(repo_path, "init --repository-version 2");
  ASSERT_EQ(init.status, 0) << init.text;
  const output backup = restic(repo_path, "backup '" + src.string() + "'");
  ASSERT_EQ(backup.status, 0) << backup.text;
  const output list = restic(repo_path, "snapshots --json latest");
  ASSERT_EQ(list.status, 0) << list.text;
  const std::string key = "\"id\":\"";
  const std::size_t at = list.text.find(key);
  ASSERT_NE(at, std::string::npos) << list.text;
  auto snap = parse_object_id(list.text.substr(at + key.size(), 64), "id");
  ASSERT_TRUE(snap) << snap.error().describe();

  auto repo = repository::open(repo_path, password);
  ASSERT_TRUE(repo) << repo.error().describe();
  const restore_options options{.subtree = src.string()};
  auto verified = verify_snapshot(*repo, *snap, options);
  ASSERT_TRUE(verified) << verified.error().describe();

  const fs::path out = dir.path() / "out";
  fs::create_directory(out);
  auto done = restore_snapshot(*repo, *snap, out, options);
  ASSERT_TRUE(done) << done.error().describe();
  EXPECT_EQ(done->hard_links, 2U);
  EXPECT_EQ(testing::describe_tree(out), expected);
  EXPECT_EQ(fs::file_size(out / "sparse"), testing::sparse_size);
  EXPECT_LE(testing::allocated(out / "sparse"), std::uint64_t{2} * 1024 * 1024);

  // And restic's own restore of the same snapshot agrees with ours.
  const output theirs = restic(
      repo_path, "restore " + to_hex(*snap) + " --target '" + (dir.path() / "r").string() + "'");
  ASSERT_EQ(theirs.status, 0) << theirs.text;
  EXPECT_EQ(testing::describe_tree(dir.path() / "r" / src.lexically_relative("/")), expected);
}

}  // namespace
}  // namespace lifeboat::restic
