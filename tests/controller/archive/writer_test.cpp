#include "controller/archive/writer.hpp"

#include "controller/archive/local_destination.hpp"
#include "controller/archive/transforms.hpp"
#include "tests/controller/archive/test_support.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

// The writer end to end: generated trees, read as a tar stream (GNU tar, as
// the engine would send it) or directly, written with every compression, and
// checked by reading the archive back with libarchive, GNU tar, bsdtar, gzip,
// zstd and sha256sum, and by comparing the extracted tree with the original.
namespace lifeboat::archive {
namespace {

namespace fs = std::filesystem;
using api::compression_kind;
using test::run;
using test::scratch_dir;
using test::shell_quote;

// A GNU tar stream of `dir`'s content whose entries start with "<name>/", as
// GET /containers/{id}/archive?path=/<name> gives them.
pull_source engine_like_stream(const fs::path& dir) {
  return test::pull_command("tar --sparse --format=pax -C " +
                            shell_quote(dir.parent_path().string()) + " -cf - " +
                            shell_quote(dir.filename().string()));
}

std::string tar_flag(compression_kind kind) {
  switch (kind) {
    case compression_kind::gzip:
      return "-z";
    case compression_kind::zstd:
      return "--zstd";
    case compression_kind::none:
      return "";
  }
  return "";
}

std::string file_name_for(compression_kind kind) {
  api::archive_spec spec;
  spec.compression = kind;
  return archive_file_name("app-2024-05-01T03-00-00", spec);
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l + "\n";
  }
  return out;
}

// Checks an archive with every reader we have; returns the extracted folder.
fs::path verify_with_tools(const fs::path& archive, compression_kind kind, const fs::path& work) {
  switch (kind) {
    case compression_kind::gzip: {
      auto t = run("gzip -t " + shell_quote(archive.string()));
      EXPECT_EQ(t.status, 0) << t.output;
      break;
    }
    case compression_kind::zstd: {
      auto t = run("zstd -q -t " + shell_quote(archive.string()));
      EXPECT_EQ(t.status, 0) << t.output;
      break;
    }
    case compression_kind::none:
      break;
  }
  auto listing = run("tar " + tar_flag(kind) + " -tvf " + shell_quote(archive.string()));
  EXPECT_EQ(listing.status, 0) << listing.output;
  auto bsd = run("bsdtar -tf " + shell_quote(archive.string()));
  EXPECT_EQ(bsd.status, 0) << bsd.output;
  EXPECT_EQ(static_cast<std::size_t>(std::count(bsd.output.begin(), bsd.output.end(), '\n')),
            test::list_archive(archive).size());

  const fs::path out = work / "extracted";
  fs::create_directories(out);
  auto x = run("tar " + tar_flag(kind) + " --numeric-owner -xpf " + shell_quote(archive.string()) +
               " -C " + shell_quote(out.string()));
  EXPECT_EQ(x.status, 0) << x.output;
  auto bsd_out = work / "bsd-extracted";
  fs::create_directories(bsd_out);
  auto bx = run("bsdtar --numeric-owner -xpf " + shell_quote(archive.string()) + " -C " +
                shell_quote(bsd_out.string()));
  EXPECT_EQ(bx.status, 0) << bx.output;
  return out;
}

struct round_trip_case {
  std::string name;
  compression_kind kind;
  std::optional<int> level;
  unsigned threads;
  bool direct;
};

class round_trip : public testing::TestWithParam<round_trip_case> {};

TEST_P(round_trip, tree_survives_every_reader) {
  const round_trip_case& c = GetParam();
  scratch_dir dir;
  const fs::path tree = dir / "data";
  fs::create_directories(tree);
  const auto facts = test::make_tree(tree);
  const auto expected = test::take_manifest(tree);
  const fs::path dest = dir / "dest";
  fs::create_directories(dest);

  std::vector<volume_source> sources;
  if (c.direct) {
    sources.emplace_back(directory_source{"app_db", tree});
  } else {
    sources.emplace_back(tar_stream_source{"app_db", engine_like_stream(tree)});
  }
  write_options options;
  options.compression = {c.kind, c.level, c.threads};
  int sources_read = 0;
  options.on_sources_read = [&] { ++sources_read; };
  const std::string name = file_name_for(c.kind);
  auto written = write_local_archive(sources, options, local_target{dest, name, "latest"});
  ASSERT_TRUE(written) << written.error().describe();
  const write_report& report = written->report;
  EXPECT_EQ(sources_read, 1);
  EXPECT_EQ(report.warning_count, 0U) << joined(report.warnings);
  ASSERT_EQ(report.sources.size(), 1U);
  EXPECT_EQ(report.sources[0].path, c.direct ? read_path::direct : read_path::tar_stream);
  EXPECT_EQ(report.output_bytes, written->archive.size);
  EXPECT_EQ(fs::file_size(dest / name), written->archive.size);
  EXPECT_GT(report.tar_bytes, report.content_bytes);

  // What libarchive reads back: every entry under the prefix, owner names
  // kept, hard links pointing under the prefix, the sparse file sparse.
  const auto entries = test::list_archive(dest / name);
  EXPECT_EQ(entries.size(), report.entries);
  EXPECT_EQ(entries.size(), expected.size());
  bool saw_sparse = false;
  for (const auto& e : entries) {
    EXPECT_TRUE(e.path == "app_db" || e.path == "app_db/" || e.path.starts_with("app_db/"))
        << e.path;
    if (!e.hardlink.empty()) {
      EXPECT_TRUE(e.hardlink.starts_with("app_db/")) << e.hardlink;
    }
    if (e.path == "app_db/a/file1") {
      EXPECT_EQ(e.uname, "root");
    }
    if (e.path == "app_db/" + facts.sparse_file) {
      saw_sparse = true;
      EXPECT_GT(e.sparse_runs, 0);
    }
  }
  EXPECT_TRUE(saw_sparse);

  const fs::path out = verify_with_tools(dest / name, c.kind, dir.path());
  const auto extracted = test::take_manifest(out / "app_db");
  EXPECT_EQ(test::compare(expected, extracted), std::vector<std::string>{});
  const auto bsd_extracted = test::take_manifest(dir / "bsd-extracted" / "app_db");
  EXPECT_EQ(test::compare(expected, bsd_extracted), std::vector<std::string>{});
  struct stat st {};
  ASSERT_EQ(::stat((out / "app_db" / facts.sparse_file).c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 8 * 1024 * 1024) << "the sparse file was extracted dense";

  auto sum =
      run("cd " + shell_quote(dest.string()) + " && sha256sum -c " + shell_quote(name + ".sha256"));
  EXPECT_EQ(sum.status, 0) << sum.output;
  EXPECT_EQ(fs::read_symlink(dest / "latest"), fs::path(name));
  // Nothing else in the destination: no partials left.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dest)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{name, name + ".sha256", "latest"}));
}

INSTANTIATE_TEST_SUITE_P(
    archive, round_trip,
    testing::Values(
        round_trip_case{"stream_gzip", compression_kind::gzip, {}, 0, false},
        round_trip_case{"stream_gzip_single_thread", compression_kind::gzip, {}, 1, false},
        round_trip_case{"stream_gzip_level1", compression_kind::gzip, 1, 0, false},
        round_trip_case{"stream_gzip_level9", compression_kind::gzip, 9, 3, false},
        round_trip_case{"stream_zstd", compression_kind::zstd, {}, 0, false},
        round_trip_case{"stream_zstd_single_thread", compression_kind::zstd, 7, 1, false},
        round_trip_case{"stream_none", compression_kind::none, {}, 0, false},
        round_trip_case{"direct_gzip", compression_kind::gzip, {}, 0, true},
        round_trip_case{"direct_gzip_single_thread", compression_kind::gzip, 4, 1, true},
        round_trip_case{"direct_zstd", compression_kind::zstd, {}, 0, true},
        round_trip_case{"direct_none", compression_kind::none, {}, 0, true}),
    [](const testing::TestParamInfo<round_trip_case>& p) { return p.param.name; });

// The archive's extension comes from the transform chain.
TEST(archive_file_name, extension_per_compression) {
  EXPECT_EQ(file_name_for(compression_kind::gzip), "app-2024-05-01T03-00-00.tar.gz");
  EXPECT_EQ(file_name_for(compression_kind::zstd), "app-2024-05-01T03-00-00.tar.zst");
  EXPECT_EQ(file_name_for(compression_kind::none), "app-2024-05-01T03-00-00.tar");
}

// Encryption is the chain's last link: ".age" or ".gpg" after the compressor's.
TEST(archive_file_name, extension_per_encryption) {
  api::archive_spec spec;
  spec.compression = compression_kind::zstd;
  spec.encryption = api::age_encryption{{}, std::nullopt, "/p"};
  EXPECT_EQ(archive_file_name("a", spec), "a.tar.zst.age");
  spec.encryption = api::gpg_encryption{"/k.asc", "", std::nullopt};
  EXPECT_EQ(archive_file_name("a", spec), "a.tar.zst.gpg");
  spec.compression = compression_kind::none;
  EXPECT_EQ(archive_file_name("a", spec), "a.tar.gpg");
}

TEST(write_archive, several_volumes_each_under_its_own_name) {
  scratch_dir dir;
  const fs::path a = dir / "data";
  const fs::path b = dir / "other" / "data";
  fs::create_directories(a);
  fs::create_directories(b);
  test::make_tree(a, 4, 50);
  test::make_tree(b, 4, 10);
  std::ofstream(b / "only-in-b") << "b\n";
  const auto expected_a = test::take_manifest(a);
  const auto expected_b = test::take_manifest(b);
  const fs::path dest = dir / "dest";
  fs::create_directories(dest);
  std::vector<volume_source> sources;
  sources.emplace_back(directory_source{"vol_a", a});
  sources.emplace_back(tar_stream_source{"vol_b", engine_like_stream(b)});
  auto written = write_local_archive(sources, {}, local_target{dest, "two.tar.gz", {}});
  ASSERT_TRUE(written) << written.error().describe();
  ASSERT_EQ(written->report.sources.size(), 2U);
  EXPECT_EQ(written->report.sources[0].path, read_path::direct);
  EXPECT_EQ(written->report.sources[1].path, read_path::tar_stream);
  EXPECT_EQ(written->report.sources[0].entries, expected_a.size());
  EXPECT_EQ(written->report.sources[1].entries, expected_b.size());
  const fs::path out = verify_with_tools(dest / "two.tar.gz", compression_kind::gzip, dir.path());
  EXPECT_EQ(test::compare(expected_a, test::take_manifest(out / "vol_a")),
            std::vector<std::string>{});
  EXPECT_EQ(test::compare(expected_b, test::take_manifest(out / "vol_b")),
            std::vector<std::string>{});
  EXPECT_FALSE(fs::exists(dest / "latest"));
}

std::vector<std::string> paths_in(const fs::path& archive) {
  std::vector<std::string> out;
  for (const auto& e : test::list_archive(archive)) {
    std::string p = e.path;
    if (p.ends_with('/')) {
      p.pop_back();
    }
    out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class exclude : public testing::TestWithParam<bool> {};

TEST_P(exclude, drops_matching_paths_and_everything_under_a_matching_folder) {
  const bool direct = GetParam();
  scratch_dir dir;
  const fs::path tree = dir / "data";
  fs::create_directories(tree / ".cache" / "sub");
  fs::create_directories(tree / "keep" / "cache");  // "cache/" without the dot stays
  std::ofstream(tree / ".cache" / "x") << "x";
  std::ofstream(tree / ".cache" / "sub" / "y") << "y";
  std::ofstream(tree / "keep" / "cache" / "z") << "z";
  std::ofstream(tree / "app.log") << "log";
  std::ofstream(tree / "app.tmp") << "tmp";
  // A hard link whose other name is excluded: whichever comes first in the
  // stream, the archive must still extract.
  std::ofstream(tree / "linked.tmp") << "linked";
  ASSERT_EQ(::link((tree / "linked.tmp").c_str(), (tree / "keep" / "linked").c_str()), 0);

  std::vector<volume_source> sources;
  if (direct) {
    sources.emplace_back(directory_source{"app_db", tree});
  } else {
    sources.emplace_back(tar_stream_source{"app_db", engine_like_stream(tree)});
  }
  write_options options;
  options.exclude = R"(\.cache/|\.tmp$)";
  options.compression.kind = compression_kind::none;
  const fs::path dest = dir / "dest";
  fs::create_directories(dest);
  auto written = write_local_archive(sources, options, local_target{dest, "x.tar", {}});
  ASSERT_TRUE(written) << written.error().describe();
  auto paths = paths_in(dest / "x.tar");
  EXPECT_TRUE(std::find(paths.begin(), paths.end(), "app_db/app.log") != paths.end());
  EXPECT_TRUE(std::find(paths.begin(), paths.end(), "app_db/keep/cache/z") != paths.end());
  for (const auto& p : paths) {
    EXPECT_EQ(p.find(".cache"), std::string::npos) << p;
    EXPECT_FALSE(p.ends_with(".tmp")) << p;
  }
  EXPECT_GE(written->report.excluded, 3U);
  const fs::path out = dir / "out";
  fs::create_directories(out);
  auto x =
      run("tar -xf " + shell_quote((dest / "x.tar").string()) + " -C " + shell_quote(out.string()));
  EXPECT_EQ(x.status, 0) << x.output;
}

INSTANTIATE_TEST_SUITE_P(archive, exclude, testing::Values(false, true),
                         [](const testing::TestParamInfo<bool>& p) {
                           return p.param ? "direct" : "stream";
                         });

TEST(write_archive, bad_exclude_pattern_and_prefixes_are_refused) {
  std::vector<volume_source> none;
  write_options options;
  options.exclude = "(";
  auto r = write_archive(none, options, [](std::span<const char>) -> result<void> { return {}; });
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::invalid_argument)) << r.error().describe();

  for (const auto& prefixes : std::vector<std::vector<std::string>>{
           {""}, {"/abs"}, {"a/../b"}, {"a//b"}, {"."}, {"trailing/"}, {"same", "same"}}) {
    std::vector<volume_source> sources;
    for (const auto& p : prefixes) {
      sources.emplace_back(tar_stream_source{p, test::pull_bytes("")});
    }
    auto w = write_archive(sources, {}, [](std::span<const char>) -> result<void> { return {}; });
    ASSERT_FALSE(w) << prefixes.front();
    EXPECT_TRUE(w.error().is(errc::invalid_argument)) << w.error().describe();
  }
}

TEST(write_archive, no_sources_is_an_empty_valid_archive) {
  scratch_dir dir;
  for (auto kind : {compression_kind::gzip, compression_kind::zstd, compression_kind::none}) {
    write_options options;
    options.compression.kind = kind;
    const std::string name = file_name_for(kind);
    auto written = write_local_archive({}, options, local_target{dir.path(), name, {}});
    ASSERT_TRUE(written) << written.error().describe();
    EXPECT_TRUE(test::list_archive(dir / name).empty());
    auto t = run("tar " + tar_flag(kind) + " -tf " + shell_quote((dir / name).string()));
    EXPECT_EQ(t.status, 0) << t.output;
  }
}

// A source that gives `limit` bytes of a real tar stream, then fails.
pull_source failing_after(std::string tar, std::size_t limit) {
  auto inner = test::pull_bytes(std::move(tar), 64 * 1024);
  auto given = std::make_shared<std::size_t>(0);
  return [inner, given, limit](std::span<char> into) -> result<std::size_t> {
    if (*given >= limit) {
      return make_error(errc::source_failed, "the engine went away");
    }
    auto n = inner(into.first(std::min(into.size(), limit - *given)));
    if (n) {
      *given += *n;
    }
    return n;
  };
}

std::string tar_of(const fs::path& tree) {
  auto r = run("tar --format=pax -C " + shell_quote(tree.parent_path().string()) + " -cf " +
               shell_quote((tree.parent_path() / "stream.tar").string()) + " " +
               shell_quote(tree.filename().string()));
  EXPECT_EQ(r.status, 0) << r.output;
  return test::read_file(tree.parent_path() / "stream.tar");
}

TEST(write_local_archive, failing_source_leaves_nothing_behind) {
  scratch_dir dir;
  const fs::path tree = dir / "data";
  fs::create_directories(tree);
  test::make_tree(tree, 1, 500);
  const std::string tar = tar_of(tree);
  const fs::path dest = dir / "dest";
  for (auto kind : {compression_kind::gzip, compression_kind::zstd, compression_kind::none}) {
    fs::create_directories(dest);
    std::vector<volume_source> sources;
    sources.emplace_back(tar_stream_source{"app_db", failing_after(tar, tar.size() / 2)});
    write_options options;
    options.compression.kind = kind;
    bool resumed = false;
    options.on_sources_read = [&] { resumed = true; };
    auto written =
        write_local_archive(sources, options, local_target{dest, file_name_for(kind), "latest"});
    ASSERT_FALSE(written);
    EXPECT_TRUE(written.error().is(errc::source_failed)) << written.error().describe();
    EXPECT_NE(written.error().message.find("the engine went away"), std::string::npos);
    EXPECT_FALSE(resumed);
    EXPECT_TRUE(fs::is_empty(dest)) << "left " << fs::directory_iterator(dest)->path();
    fs::remove_all(dest);
  }
}

TEST(write_archive, malformed_stream_is_a_bad_source) {
  std::vector<volume_source> sources;
  sources.emplace_back(tar_stream_source{"v", test::pull_bytes(std::string(100000, 'g'))});
  auto r = write_archive(sources, {}, [](std::span<const char>) -> result<void> { return {}; });
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(errc::bad_source)) << r.error().describe();
}

TEST(write_archive, sink_failure_is_returned_for_every_compression) {
  scratch_dir dir;
  const fs::path tree = dir / "data";
  fs::create_directories(tree);
  test::make_tree(tree, 1, 300);
  for (auto kind : {compression_kind::gzip, compression_kind::zstd, compression_kind::none}) {
    for (unsigned threads : {1U, 4U}) {
      std::vector<volume_source> sources;
      sources.emplace_back(directory_source{"v", tree});
      write_options options;
      options.compression = {kind, {}, threads, 64 * 1024, 0};
      std::size_t taken = 0;
      auto r = write_archive(sources, options, [&](std::span<const char> bytes) -> result<void> {
        taken += bytes.size();
        if (taken > 20000) {
          return make_error(errc::io_error, "disk full");
        }
        return {};
      });
      ASSERT_FALSE(r) << describe(options.compression);
      EXPECT_EQ(r.error().describe(), "io error: disk full");
    }
  }
}

TEST(write_archive, cancelled_by_the_stop_token) {
  scratch_dir dir;
  const fs::path tree = dir / "data";
  fs::create_directories(tree);
  test::make_tree(tree, 1, 300);
  for (bool direct : {false, true}) {
    std::stop_source stop;
    std::vector<volume_source> sources;
    if (direct) {
      sources.emplace_back(directory_source{"v", tree});
    } else {
      sources.emplace_back(tar_stream_source{"v", engine_like_stream(tree)});
    }
    write_options options;
    options.stop = stop.get_token();
    int calls = 0;
    options.on_progress = [&](const progress&) {
      if (++calls == 10) {
        stop.request_stop();
      }
    };
    auto r =
        write_archive(sources, options, [](std::span<const char>) -> result<void> { return {}; });
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::cancelled)) << r.error().describe();
  }
}

TEST(write_archive, directory_source_that_is_missing_or_not_a_folder_fails) {
  scratch_dir dir;
  std::ofstream(dir / "file") << "x";
  for (const auto& root : {dir / "missing", dir / "file"}) {
    std::vector<volume_source> sources;
    sources.emplace_back(directory_source{"v", root});
    auto r = write_archive(sources, {}, [](std::span<const char>) -> result<void> { return {}; });
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::bad_source)) << r.error().describe();
  }
}

std::string warning_about(const write_report& report, std::string_view path) {
  for (const auto& w : report.warnings) {
    if (w.starts_with(path)) {
      return w;
    }
  }
  return {};
}

// Files changing under a direct read: a warning each, and an archive that
// still extracts, with every file at the size its header promised.
TEST(write_archive, files_changing_while_read_directly_become_warnings) {
  scratch_dir dir;
  const fs::path tree = dir / "data";
  fs::create_directories(tree);
  const std::string big(1024 * 1024, 'b');
  const std::string small(64 * 1024, 's');
  std::ofstream(tree / "shrinks") << big;
  std::ofstream(tree / "grows") << small;
  std::ofstream(tree / "vanishes") << small;
  std::ofstream(tree / "rewritten") << small;
  std::ofstream(tree / "steady") << small;
  {
    const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(s, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = (tree / "sock").string();
    ASSERT_LT(path.size(), sizeof addr.sun_path);
    std::strcpy(addr.sun_path, path.c_str());
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(s);
  }

  write_options options;
  options.compression.kind = compression_kind::none;
  options.before_file_data = [&](std::string_view disk_path) {
    const fs::path p(disk_path);
    const std::string name = p.filename().string();
    if (name == "shrinks") {
      ASSERT_EQ(::truncate(p.c_str(), 1000), 0);
    } else if (name == "grows") {
      std::ofstream(p, std::ios::app) << "more";
    } else if (name == "vanishes") {
      fs::remove(p);
    } else if (name == "rewritten") {
      std::ofstream(p, std::ios::trunc) << std::string(64 * 1024, 'r');
      const std::array<timespec, 2> times{timespec{0, UTIME_OMIT}, timespec{1'600'000'000, 0}};
      ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times.data(), 0), 0);
    }
  };
  std::vector<volume_source> sources;
  sources.emplace_back(directory_source{"v", tree});
  const fs::path dest = dir / "dest";
  fs::create_directories(dest);
  auto written = write_local_archive(sources, options, local_target{dest, "x.tar", {}});
  ASSERT_TRUE(written) << written.error().describe();
  const auto& report = written->report;
  EXPECT_NE(warning_about(report, "v/shrinks").find("shrank"), std::string::npos)
      << joined(report.warnings);
  EXPECT_NE(warning_about(report, "v/grows").find("changed size"), std::string::npos)
      << joined(report.warnings);
  EXPECT_NE(warning_about(report, "v/vanishes"), "") << joined(report.warnings);
  EXPECT_NE(warning_about(report, "v/rewritten").find("changed while being read"),
            std::string::npos)
      << joined(report.warnings);
  EXPECT_NE(warning_about(report, "v/sock").find("left out"), std::string::npos)
      << joined(report.warnings);
  EXPECT_EQ(warning_about(report, "v/steady"), "");
  EXPECT_EQ(report.warning_count, 5U) << joined(report.warnings);

  const fs::path out = dir / "out";
  fs::create_directories(out);
  auto x =
      run("tar -xf " + shell_quote((dest / "x.tar").string()) + " -C " + shell_quote(out.string()));
  ASSERT_EQ(x.status, 0) << x.output;
  const std::string shrunk = test::read_file(out / "v" / "shrinks");
  ASSERT_EQ(shrunk.size(), big.size());
  EXPECT_EQ(shrunk.substr(0, 1000), big.substr(0, 1000));
  EXPECT_EQ(shrunk.substr(1000), std::string(big.size() - 1000, '\0'));
  EXPECT_EQ(test::read_file(out / "v" / "grows"), small);
  EXPECT_EQ(fs::file_size(out / "v" / "vanishes"), small.size());
  EXPECT_EQ(fs::file_size(out / "v" / "rewritten"), small.size());
  EXPECT_EQ(test::read_file(out / "v" / "steady"), small);
  EXPECT_FALSE(fs::exists(out / "v" / "sock"));
}

TEST(write_archive, progress_and_counts) {
  scratch_dir dir;
  const fs::path tree = dir / "data";
  fs::create_directories(tree);
  std::ofstream(tree / "a") << std::string(20 * 1024 * 1024, 'a');
  std::ofstream(tree / "b") << "b";
  std::vector<volume_source> sources;
  sources.emplace_back(directory_source{"v", tree});
  write_options options;
  std::vector<progress> seen;
  options.on_progress = [&](const progress& p) { seen.push_back(p); };
  std::uint64_t sunk = 0;
  auto r = write_archive(sources, options, [&](std::span<const char> bytes) -> result<void> {
    sunk += bytes.size();
    return {};
  });
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->entries, 3U);
  EXPECT_EQ(r->content_bytes, 20U * 1024 * 1024 + 1);
  EXPECT_EQ(r->output_bytes, sunk);
  EXPECT_LT(r->output_bytes, 1024U * 1024);
  ASSERT_GE(seen.size(), 5U);  // every entry, and every 8 MiB of data
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end(), [](const progress& a, const progress& b) {
    return a.content_bytes < b.content_bytes;
  }));
  EXPECT_EQ(seen.back().output_bytes, sunk);
}

}  // namespace
}  // namespace lifeboat::archive
