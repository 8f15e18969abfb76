// Issue 12 item 2: whether an archive fits in the target volumes, checked
// while verifying. The pure rule (check_space), the measurements' parser,
// the direct measurement, and the needs verify() reports for sparse files.
#include "controller/restore/space.hpp"

#include "controller/archive/local_destination.hpp"
#include "controller/restore/unpack.hpp"
#include "tests/controller/archive/test_support.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace lifeboat::restore {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr std::uint64_t mib = 1024 * 1024;

TEST(item2_space, a_target_whose_file_system_lacks_room_is_refused_naming_bytes) {
  const std::vector<volume_space> spaces = {{"db", 7, 4 * mib, 3 * mib}};
  auto r = check_space(spaces, {6 * mib}, /*wipe=*/false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::no_space);
  EXPECT_THAT(r.error().message, HasSubstr("volume db needs 6291456 bytes (6.0 MiB)"));
  EXPECT_THAT(r.error().message, HasSubstr("4194304 bytes (4.0 MiB) free"));
  EXPECT_THAT(r.error().message, HasSubstr("nothing was held or written"));
  EXPECT_TRUE(check_space(spaces, {4 * mib}, false));
}

TEST(item2_space, without_wipe_the_existing_content_is_not_credited) {
  const std::vector<volume_space> spaces = {{"db", 7, 1 * mib, 3 * mib}};
  auto plain = check_space(spaces, {3 * mib}, /*wipe=*/false);
  ASSERT_FALSE(plain);
  EXPECT_THAT(plain.error().message, HasSubstr("with wipe the volume's current content"));
  // With wipe, the 3 MiB the volume holds now are removed first.
  EXPECT_TRUE(check_space(spaces, {3 * mib}, /*wipe=*/true));
  auto over = check_space(spaces, {4 * mib + 1}, /*wipe=*/true);
  ASSERT_FALSE(over);
  EXPECT_THAT(over.error().message,
              HasSubstr("plus 3145728 bytes (3.0 MiB) that its content takes, which wipe removes"));
}

TEST(item2_space, targets_on_one_file_system_share_its_room) {
  const std::vector<volume_space> spaces = {
      {"a", 1, 10 * mib, 0}, {"b", 2, 1 * mib, 0}, {"c", 1, 10 * mib, 0}};
  EXPECT_TRUE(check_space(spaces, {5 * mib, 1 * mib, 5 * mib}, false));
  auto r = check_space(spaces, {6 * mib, 1 * mib, 5 * mib}, false);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("volumes a, c (one file system) need 11534336 bytes"));
  EXPECT_THAT(r.error().message, HasSubstr("it has 10485760 bytes (10.0 MiB) free"));
  // The other file system alone.
  auto b = check_space(spaces, {0, 2 * mib, 0}, false);
  ASSERT_FALSE(b);
  EXPECT_THAT(b.error().message, HasSubstr("volume b needs 2097152 bytes"));
}

TEST(item2_space, measurements_are_parsed_one_line_per_volume) {
  auto m = parse_measurements("64768 1000 4096 12\n39 1024 4096 0\n", {"a", "b"});
  ASSERT_TRUE(m) << m.error().describe();
  ASSERT_EQ(m->size(), 2U);
  EXPECT_EQ((*m)[0].volume, "a");
  EXPECT_EQ((*m)[0].device, 64768U);
  EXPECT_EQ((*m)[0].available, 1000U * 4096);
  EXPECT_EQ((*m)[0].content, 12U * 1024);
  EXPECT_EQ((*m)[1].device, 39U);
  for (const char* bad :
       {"", "1 2 3 4\n", "1 2 3\n4 5 6 7\n", "1 2 3 4 5\n1 2 3 4\n", "stat: can't stat\n1 2 3 4\n",
        "1 2 3 4\n1 2 3 4\nextra\n", "1 2 3 -4\n1 2 3 4\n"}) {
    auto r = parse_measurements(bad, {"a", "b"});
    EXPECT_FALSE(r) << "accepted: " << bad;
    if (!r) {
      EXPECT_THAT(r.error().message, HasSubstr("measuring the free space"));
    }
  }
}

TEST(item2_space, a_folder_is_measured_with_hard_links_once) {
  archive::test::scratch_dir dir;
  { std::ofstream(dir.path() / "a") << std::string(100000, 'x'); }
  fs::create_directory(dir.path() / "sub");
  fs::create_hard_link(dir.path() / "a", dir.path() / "sub" / "a-again");
  auto without = measure_directory("v", dir.path(), false);
  ASSERT_TRUE(without) << without.error().describe();
  EXPECT_EQ(without->volume, "v");
  EXPECT_GT(without->available, 0U);
  EXPECT_EQ(without->content, 0U);
  auto with = measure_directory("v", dir.path(), true);
  ASSERT_TRUE(with) << with.error().describe();
  EXPECT_EQ(with->device, without->device);
  // 100 000 bytes take at least 25 blocks of 4 KiB, counted once.
  EXPECT_GE(with->content, 100000U);
  EXPECT_LT(with->content, 2 * 100000U);
  EXPECT_FALSE(measure_directory("v", dir.path() / "missing", false));
}

TEST(item2_space, verify_reports_sparse_files_at_logical_and_stored_size) {
  archive::test::scratch_dir src, out;
  {
    // 16 MiB with 4 KiB of data at each end; a 5000-byte file; a link.
    const int fd = ::open((src.path() / "sparse").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    const std::string block(4096, 'd');
    ASSERT_EQ(::pwrite(fd, block.data(), block.size(), 0), 4096);
    ASSERT_EQ(::pwrite(fd, block.data(), block.size(), 16 * mib - 4096), 4096);
    ::close(fd);
    std::ofstream(src.path() / "dense") << std::string(5000, 'x');
    fs::create_hard_link(src.path() / "dense", src.path() / "dense-link");
  }
  archive::write_options options;
  archive::local_target target{out.path(), "a.tar", std::nullopt};
  const std::vector<archive::volume_source> sources{archive::directory_source{"v", src.path()}};
  ASSERT_TRUE(archive::write_local_archive(sources, options, target));
  auto a = archive_file::open(out.path() / "a.tar");
  ASSERT_TRUE(a);
  auto v = verify(*a, {{"v", "v"}}, {});
  ASSERT_TRUE(v) << v.error().describe();
  ASSERT_EQ(v->space.size(), 1U);
  EXPECT_EQ(v->space[0].dense, 16 * mib + 8192);
  EXPECT_EQ(v->space[0].sparse, 8192U + 8192U);
}

}  // namespace
}  // namespace lifeboat::restore
