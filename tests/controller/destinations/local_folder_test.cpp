#include "controller/destinations/local_folder.hpp"

#include "tests/controller/archive/test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace lifeboat::destinations {
namespace {

namespace fs = std::filesystem;
using archive::test::scratch_dir;
using testing::HasSubstr;

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

published_archive write_archive(destination& to, const std::string& name,
                                const std::string& bytes) {
  auto up = to.begin(name);
  EXPECT_TRUE(up.has_value()) << (up ? "" : up.error().message);
  EXPECT_TRUE((*up)->write(std::span<const char>(bytes.data(), bytes.size())).has_value());
  auto done = (*up)->commit();
  EXPECT_TRUE(done.has_value()) << (done ? "" : done.error().message);
  return *done;
}

TEST(local_folder, a_missing_folder_whose_parent_is_missing_is_refused_naming_it) {
  scratch_dir dir;
  const fs::path wanted = dir.path() / "not" / "there";
  local_folder folder(wanted, std::nullopt);
  auto checked = folder.check();
  ASSERT_FALSE(checked.has_value());
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(checked.error().message, HasSubstr(wanted.string()));
  EXPECT_FALSE(fs::exists(dir.path() / "not")) << "no chain of folders is made";
}

TEST(local_folder, one_missing_level_below_a_good_folder_is_made) {
  scratch_dir dir;
  local_folder folder(dir.path() / "db", std::nullopt);
  ASSERT_TRUE(folder.check().has_value());
  EXPECT_TRUE(fs::is_directory(dir.path() / "db"));
}

TEST(local_folder, a_file_where_the_folder_should_be_is_refused) {
  scratch_dir dir;
  std::ofstream(dir.path() / "file") << "x";
  local_folder folder(dir.path() / "file", std::nullopt);
  auto checked = folder.check();
  ASSERT_FALSE(checked.has_value());
  EXPECT_THAT(checked.error().message, HasSubstr("not a directory"));
}

TEST(local_folder, a_folder_on_the_containers_own_root_is_refused) {
  scratch_dir dir;
  // The scratch folder's own file system plays the container's root.
  local_folder folder(dir.path(), dir.path());
  auto checked = folder.check();
  ASSERT_FALSE(checked.has_value());
  EXPECT_EQ(checked.error().code, archive::errc::refused);
  EXPECT_THAT(checked.error().message, HasSubstr(dir.path().string()));
  EXPECT_THAT(checked.error().message, HasSubstr("own file system"));
  // And the one-level mkdir does not get around it.
  local_folder below(dir.path() / "sub", dir.path());
  EXPECT_FALSE(below.check().has_value());
  EXPECT_FALSE(fs::exists(dir.path() / "sub"));
}

TEST(local_folder, a_planted_symlink_at_the_partial_name_is_not_followed) {
  scratch_dir dir;
  const fs::path victim = dir.path() / "victim";
  std::ofstream(victim) << "precious";
  fs::create_directory(dir.path() / "out");
  fs::create_symlink(victim, dir.path() / "out" / "a.tar.gz.partial");
  local_folder folder(dir.path() / "out", std::nullopt);
  const auto published = write_archive(folder, "a.tar.gz", "archive bytes");
  EXPECT_EQ(read_file(victim), "precious");
  EXPECT_EQ(read_file(dir.path() / "out" / "a.tar.gz"), "archive bytes");
  EXPECT_EQ(published.size, 13U);
  struct stat st {};
  ASSERT_EQ(::lstat((dir.path() / "out" / "a.tar.gz").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST(local_folder, a_latest_that_is_not_a_symlink_is_a_warning) {
  scratch_dir dir;
  std::ofstream(dir.path() / "latest") << "someone's file";
  local_folder folder(dir.path(), std::nullopt);
  write_archive(folder, "a.tar.gz", "x");
  const auto warning = folder.point_latest("a.tar.gz");
  EXPECT_THAT(warning, HasSubstr("not a symlink"));
  EXPECT_EQ(read_file(dir.path() / "latest"), "someone's file");
}

TEST(local_folder, list_open_and_remove_go_through_the_folder) {
  scratch_dir dir;
  local_folder folder(dir.path(), std::nullopt);
  write_archive(folder, "a.tar.gz", "first");
  write_archive(folder, "b.tar.gz", "second");
  auto listed = folder.list();
  ASSERT_TRUE(listed.has_value());
  std::vector<std::string> names;
  for (const auto& f : *listed) {
    names.push_back(f.name);
  }
  EXPECT_THAT(names, testing::IsSupersetOf({"a.tar.gz", "b.tar.gz"}));
  auto in = folder.open("b.tar.gz");
  ASSERT_TRUE(in.has_value());
  std::array<char, 64> buf{};
  auto n = (*in)->read(buf);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(std::string(buf.data(), *n), "second");
  ASSERT_TRUE(folder.remove("a.tar.gz").has_value());
  EXPECT_FALSE(fs::exists(dir.path() / "a.tar.gz"));
  EXPECT_FALSE(fs::exists(dir.path() / "a.tar.gz.sha256"));
  EXPECT_TRUE(folder.remove("a.tar.gz").has_value()) << "gone already is fine";
}

TEST(copy_archive, copies_bytes_and_checksum_and_refuses_a_corrupt_source) {
  scratch_dir dir;
  fs::create_directory(dir.path() / "from");
  fs::create_directory(dir.path() / "to");
  local_folder from(dir.path() / "from", std::nullopt);
  local_folder to(dir.path() / "to", std::nullopt);
  const auto original = write_archive(from, "a.tar.gz", "payload");
  auto copied = copy_archive(from, to, "a.tar.gz");
  ASSERT_TRUE(copied.has_value()) << copied.error().message;
  EXPECT_EQ(copied->sha256, original.sha256);
  EXPECT_EQ(read_file(dir.path() / "to" / "a.tar.gz"), "payload");
  EXPECT_EQ(read_file(dir.path() / "to" / "a.tar.gz.sha256"),
            read_file(dir.path() / "from" / "a.tar.gz.sha256"));

  // The source rotted after its checksum was written: the copy is not kept.
  std::ofstream(dir.path() / "from" / "a.tar.gz", std::ios::trunc) << "rotted!";
  auto bad = copy_archive(from, to, "a.tar.gz");
  ASSERT_FALSE(bad.has_value());
  EXPECT_THAT(bad.error().message, HasSubstr("checksum"));
  EXPECT_FALSE(fs::exists(dir.path() / "to" / "a.tar.gz"));
}

}  // namespace
}  // namespace lifeboat::destinations
