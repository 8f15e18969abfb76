#include "controller/restore/unpack.hpp"

#include "controller/archive/local_destination.hpp"
#include "tests/controller/archive/test_support.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace lifeboat::restore {
namespace {

namespace fs = std::filesystem;
using archive::test::compare;
using archive::test::run;
using archive::test::scratch_dir;
using archive::test::shell_quote;
using archive::test::take_manifest;

// Archives as lifeboat's writer makes them: each volume under its name, and
// a .sha256 beside the archive.
fs::path write_lifeboat_archive(const fs::path& dir, const std::string& name,
                                std::vector<archive::volume_source> sources,
                                api::compression_kind kind) {
  archive::write_options options;
  options.compression.kind = kind;
  archive::local_target target{dir, name, std::nullopt};
  auto written = archive::write_local_archive(sources, options, target);
  EXPECT_TRUE(written) << written.error().describe();
  return dir / name;
}

// One entry of a hand-made (hostile) archive.
struct raw_entry {
  raw_entry(std::string p, unsigned t = AE_IFREG, std::string d = {}, std::string s = {},
            std::string h = {})
      : path(std::move(p)),
        type(t),
        data(std::move(d)),
        symlink(std::move(s)),
        hardlink(std::move(h)) {}

  std::string path;
  unsigned type = AE_IFREG;
  std::string data;
  std::string symlink;
  std::string hardlink;
};

void write_raw_tar(const fs::path& file, const std::vector<raw_entry>& entries) {
  ::archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  ASSERT_EQ(archive_write_open_filename(a, file.c_str()), ARCHIVE_OK);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, e.type == AE_IFDIR ? 0755 : 0644);
    if (!e.symlink.empty()) {
      archive_entry_set_symlink(entry, e.symlink.c_str());
    }
    if (!e.hardlink.empty()) {
      archive_entry_set_hardlink(entry, e.hardlink.c_str());
    }
    if (e.type == AE_IFCHR) {
      archive_entry_set_rdevmajor(entry, 1);
      archive_entry_set_rdevminor(entry, 3);
    }
    archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
    ASSERT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << archive_error_string(a);
    if (!e.data.empty()) {
      archive_write_data(a, e.data.data(), e.data.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
}

read_options with_abs_symlinks() {
  read_options o;
  o.allow_absolute_symlinks = true;  // make_tree has /etc/hostname as a link target
  return o;
}

result<unpack_report> verify_and_extract(const fs::path& file, const std::vector<mapping>& m,
                                         const std::vector<fs::path>& roots,
                                         const read_options& options = with_abs_symlinks()) {
  auto a = archive_file::open(file);
  if (!a) {
    return a.error();
  }
  auto v = verify(*a, m, options);
  if (!v) {
    return v.error();
  }
  return extract_to_directories(*a, m, roots, options);
}

TEST(archive_file, adopt_reads_the_checksum_as_sha256sum_writes_it) {
  const std::string hex = "5d54a37312cd0a3edab0de910ccc45ab631ae9888cac84b35b27dc354d81fc9d";
  const auto adopted = [](const std::optional<std::string>& checksum) {
    scratch_dir dir;
    const auto path = dir.path() / "a.tar";
    std::ofstream(path) << "x";
    return archive_file::adopt(::open(path.c_str(), O_RDONLY | O_CLOEXEC), "remote a.tar",
                               checksum);
  };
  // Any isspace() byte ends the word (a form feed was once taken as part of
  // it, found by checksum_file_fuzz); upper case is read as lower.
  for (const auto& text : {hex + "  a.tar\n", hex + "\f", "\v" + hex, hex}) {
    auto a = adopted(text);
    ASSERT_TRUE(a) << a.error().describe();
    EXPECT_EQ(a->expected_sha256(), hex);
  }
  std::string upper = hex;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  EXPECT_EQ(adopted(upper)->expected_sha256(), hex);
  EXPECT_FALSE(adopted(std::nullopt)->expected_sha256());
  const auto bad = adopted(hex.substr(1) + "g");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "remote a.tar.sha256 does not start with a SHA-256 in hex");
}

class round_trip : public ::testing::TestWithParam<api::compression_kind> {};

TEST_P(round_trip, writer_then_direct_extraction_gives_the_same_tree) {
  scratch_dir src, out, dst;
  archive::test::make_tree(src.path(), /*sparse_mib=*/16, /*small_files=*/200);
  const auto file = write_lifeboat_archive(
      out.path(), "a.tar", {archive::directory_source{"app_db", src.path()}}, GetParam());
  auto a = archive_file::open(file);
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->expected_sha256());
  auto v = verify(*a, {{"app_db", "new"}}, with_abs_symlinks());
  ASSERT_TRUE(v) << v.error().describe();
  EXPECT_TRUE(v->checksum_verified);
  EXPECT_EQ(v->sha256, *a->expected_sha256());
  EXPECT_GT(v->entries.at(0), 200u);
  auto x = extract_to_directories(*a, {{"app_db", "new"}}, {dst.path()}, with_abs_symlinks());
  ASSERT_TRUE(x) << x.error().describe();
  EXPECT_EQ(compare(take_manifest(src.path()), take_manifest(dst.path())),
            std::vector<std::string>{});
}

TEST_P(round_trip, restream_unpacked_by_gnu_tar_gives_the_same_tree) {
  scratch_dir src, out, dst;
  archive::test::make_tree(src.path(), 16, 200);
  const auto file = write_lifeboat_archive(
      out.path(), "a.tar", {archive::directory_source{"app_db", src.path()}}, GetParam());
  auto a = archive_file::open(file);
  ASSERT_TRUE(a);
  auto stream = tar_restream::open(*a, {{"app_db", "vol"}}, with_abs_symlinks());
  ASSERT_TRUE(stream);
  {
    std::ofstream tar(out / "restream.tar", std::ios::binary);
    std::vector<char> buf(100'000);  // not a multiple of any block size
    for (;;) {
      auto n = stream->pull(buf);
      ASSERT_TRUE(n) << n.error().describe();
      if (*n == 0) {
        break;
      }
      tar.write(buf.data(), static_cast<std::streamsize>(*n));
    }
  }
  // What the engine's PUT does with it, as near as a host tool gets.
  const auto untar =
      run("tar --numeric-owner -xpf " + shell_quote((out / "restream.tar").string()) + " -C " +
          shell_quote(dst.path().string()));
  ASSERT_EQ(untar.status, 0) << untar.output;
  auto expected = take_manifest(src.path());
  auto actual = take_manifest(dst / "vol");
  EXPECT_EQ(compare(expected, actual), std::vector<std::string>{});
  EXPECT_GT(stream->report().entries, 200u);
}

INSTANTIATE_TEST_SUITE_P(compressions, round_trip,
                         ::testing::Values(api::compression_kind::gzip, api::compression_kind::zstd,
                                           api::compression_kind::none));

TEST(restore, several_volumes_each_into_its_own_folder) {
  scratch_dir a_src, b_src, out, a_dst, b_dst;
  archive::test::make_tree(a_src.path(), 1, 10);
  std::ofstream(b_src / "only-b") << "b";
  const auto file = write_lifeboat_archive(
      out.path(), "two.tar.gz",
      {archive::directory_source{"a", a_src.path()}, archive::directory_source{"b", b_src.path()}},
      api::compression_kind::gzip);
  auto x = verify_and_extract(file, {{"b", "b2"}, {"a", "a2"}}, {b_dst.path(), a_dst.path()});
  ASSERT_TRUE(x) << x.error().describe();
  EXPECT_EQ(compare(take_manifest(a_src.path()), take_manifest(a_dst.path())),
            std::vector<std::string>{});
  EXPECT_EQ(compare(take_manifest(b_src.path()), take_manifest(b_dst.path())),
            std::vector<std::string>{});
}

// A symlink already in the folder (not in the archive) is never written
// through: libarchive's secure-symlink check still sees the folders inside
// the volume now that it is given paths relative to the folder above it. The
// process's working folder stays where it was.
TEST(restore, never_writes_through_a_symlink_already_in_the_folder) {
  scratch_dir out, dst, outside;
  write_raw_tar(out / "a.tar.gz", {{"app_db/", AE_IFDIR}, {"app_db/sub/f", AE_IFREG, "x"}});
  fs::create_directory_symlink(outside.path(), dst / "sub");
  const auto cwd = fs::current_path();
  auto x = verify_and_extract(out / "a.tar.gz", {{"app_db", "v"}}, {dst.path()}, {});
  EXPECT_FALSE(fs::exists(outside / "f")) << "written through the symlink";
  ASSERT_FALSE(x) << "extraction accepted";
  EXPECT_EQ(x.error().code, errc::io_error);
  EXPECT_NE(x.error().message.find("entry app_db/sub/f"), std::string::npos) << x.error().message;
  EXPECT_EQ(fs::current_path(), cwd);
}

// Archives made by other tools: GNU tar and bsdtar, each compression, with the
// archive's root (".") or a folder in it as the source.
TEST(restore, accepts_archives_of_gnu_tar_and_bsdtar) {
  scratch_dir parent, out;
  const fs::path src = parent / "data";
  fs::create_directories(src);
  archive::test::make_tree(src, 4, 50);
  const std::string p = shell_quote(parent.path().string());
  const std::string s = shell_quote(src.string());
  struct made {
    std::string command;
    std::string name;
    mapping map;
  };
  const std::vector<made> archives = {
      {"tar -C " + s + " -czf {} .", "gnu-root.tar.gz", {".", "v"}},
      {"tar -C " + p + " --zstd -cf {} data", "gnu-data.tar.zst", {"data", "v"}},
      {"tar -C " + p + " --format=gnu -cf {} data", "gnu-format.tar", {"data", "v"}},
      {"tar -C " + p + " --format=posix -cf {} data", "gnu-posix.tar", {"data", "v"}},
      {"bsdtar -C " + s + " -czf {} .", "bsd-root.tar.gz", {".", "v"}},
      {"bsdtar -C " + p + " --zstd -cf {} data", "bsd-data.tar.zst", {"data", "v"}},
      {"bsdtar -C " + p + " --format=ustar -cf {} data/a", "bsd-ustar.tar", {"data/a", "v"}},
  };
  for (const auto& m : archives) {
    SCOPED_TRACE(m.name);
    const fs::path file = out / m.name;
    std::string cmd = m.command;
    cmd.replace(cmd.find("{}"), 2, shell_quote(file.string()));
    const auto made = run(cmd);
    ASSERT_EQ(made.status, 0) << made.output;
    scratch_dir dst;
    auto x = verify_and_extract(file, {m.map}, {dst.path()});
    ASSERT_TRUE(x) << x.error().describe();
    const fs::path expected_root = m.map.from == "." ? src : parent / m.map.from;
    auto expected = take_manifest(expected_root);
    auto actual = take_manifest(dst.path());
    if (m.map.from.find('/') != std::string::npos) {
      // A subfolder's files may be linked with files outside it.
      for (auto* mf : {&expected, &actual}) {
        for (auto& [path, e] : *mf) {
          e.link_group.clear();
        }
      }
    }
    EXPECT_EQ(compare(expected, actual), std::vector<std::string>{});
  }
}

struct hostile_case {
  hostile_case(std::string n, std::vector<raw_entry> e, std::string en)
      : name(std::move(n)), entries(std::move(e)), entry(std::move(en)) {}

  std::string name;
  std::vector<raw_entry> entries;
  std::string entry;  ///< the entry the message must name
  errc code = errc::refused;
};

TEST(restore, refuses_hostile_archives_before_writing_anything) {
  const raw_entry root{"app_db/", AE_IFDIR};
  const raw_entry file{"app_db/file", AE_IFREG, "data"};
  const std::vector<hostile_case> cases = {
      {"absolute path", {root, file, {"/tmp/evil", AE_IFREG, "x"}}, "/tmp/evil"},
      {"dot dot", {root, file, {"app_db/../../evil", AE_IFREG, "x"}}, "app_db/../../evil"},
      {"escaping symlink", {root, file, {"app_db/up", AE_IFLNK, "", "../../../etc"}}, "app_db/up"},
      {"absolute symlink", {root, file, {"app_db/etc", AE_IFLNK, "", "/etc"}}, "app_db/etc"},
      {"write through a symlink",
       {root, {"app_db/d", AE_IFLNK, "", "file"}, {"app_db/d/x", AE_IFREG, "x"}},
       "app_db/d/x"},
      {"escaping hard link",
       {root, file, {"app_db/h", AE_IFREG, "", "", "etc/passwd"}},
       "app_db/h"},
      {"hard link with dot dot",
       {root, file, {"app_db/h", AE_IFREG, "", "", "app_db/../x"}},
       "app_db/h"},
      {"device node", {root, file, {"app_db/null", AE_IFCHR}}, "app_db/null"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    scratch_dir out, dst;
    std::ofstream(dst / "existing") << "keep me";
    const auto before = take_manifest(dst.path());
    write_raw_tar(out / "evil.tar.gz", c.entries);
    auto a = archive_file::open(out / "evil.tar.gz");
    ASSERT_TRUE(a);
    auto v = verify(*a, {{"app_db", "v"}}, {});
    ASSERT_FALSE(v) << "accepted";
    EXPECT_EQ(v.error().code, c.code) << v.error().describe();
    EXPECT_NE(v.error().message.find("entry " + c.entry + ":"), std::string::npos)
        << v.error().message;
    EXPECT_EQ(compare(before, take_manifest(dst.path())), std::vector<std::string>{});
    // Pass 2 on its own (an archive swapped after verification) refuses too,
    // at the same entry, having written only the entries before it.
    auto x = extract_to_directories(*a, {{"app_db", "v"}}, {dst.path()}, {});
    ASSERT_FALSE(x);
    EXPECT_EQ(x.error().code, c.code) << x.error().describe();
    EXPECT_FALSE(fs::exists("/tmp/evil"));
    EXPECT_FALSE(fs::exists(dst.path().parent_path() / "evil"));
  }
}

TEST(restore, devices_are_accepted_when_allowed) {
  scratch_dir out;
  write_raw_tar(out / "dev.tar.gz", {{"app_db/", AE_IFDIR}, {"app_db/null", AE_IFCHR}});
  auto a = archive_file::open(out / "dev.tar.gz");
  ASSERT_TRUE(a);
  read_options o;
  o.allow_devices = true;
  EXPECT_TRUE(verify(*a, {{"app_db", "v"}}, o));
}

// A lifeboat archive cut in the middle of a file, with and without its checksum.
TEST(restore, truncated_archive_fails_naming_the_entry_or_the_checksum) {
  for (const auto kind :
       {api::compression_kind::gzip, api::compression_kind::zstd, api::compression_kind::none}) {
    SCOPED_TRACE(std::string(api::to_string(kind)));
    scratch_dir src, out, dst;
    std::string big(4 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) {
      big[i] = static_cast<char>((i * 2654435761u) >> 13);
    }
    std::ofstream(src / "big.bin", std::ios::binary) << big;
    std::ofstream(src / "after") << "after";
    const auto file = write_lifeboat_archive(
        out.path(), "t.tar", {archive::directory_source{"app_db", src.path()}}, kind);
    fs::resize_file(file, fs::file_size(file) / 2);

    auto a = archive_file::open(file);
    ASSERT_TRUE(a);
    auto v = verify(*a, {{"app_db", "v"}}, {});
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code, errc::checksum_mismatch) << v.error().describe();
    EXPECT_NE(v.error().message.find("app_db/big.bin"), std::string::npos) << v.error().message;

    fs::remove(file.string() + ".sha256");
    auto without = archive_file::open(file);
    ASSERT_TRUE(without);
    v = verify(*without, {{"app_db", "v"}}, {});
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code, errc::corrupt) << v.error().describe();
    EXPECT_NE(v.error().message.find("entry app_db/big.bin"), std::string::npos)
        << v.error().message;
    EXPECT_TRUE(fs::is_empty(dst.path()));
  }
}

TEST(restore, bad_checksum_file) {
  scratch_dir src, out;
  std::ofstream(src / "f") << "content";
  const auto file = write_lifeboat_archive(out.path(), "c.tar.gz",
                                           {archive::directory_source{"app_db", src.path()}},
                                           api::compression_kind::gzip);
  std::ofstream(file.string() + ".sha256") << std::string(64, 'a') << "  c.tar.gz\n";
  auto a = archive_file::open(file);
  ASSERT_TRUE(a);
  auto v = verify(*a, {{"app_db", "v"}}, {});
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::checksum_mismatch);

  std::ofstream(file.string() + ".sha256") << "not a checksum\n";
  auto malformed = archive_file::open(file);
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().code, errc::invalid_argument);
}

TEST(restore, missing_volume_and_not_an_archive) {
  scratch_dir src, out;
  std::ofstream(src / "f") << "content";
  const auto file = write_lifeboat_archive(out.path(), "m.tar.gz",
                                           {archive::directory_source{"app_db", src.path()}},
                                           api::compression_kind::gzip);
  auto a = archive_file::open(file);
  ASSERT_TRUE(a);
  auto v = verify(*a, {{"app_uploads", "v"}}, {});
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::missing_volume);
  EXPECT_NE(v.error().message.find("app_uploads"), std::string::npos);

  std::ofstream(out / "junk.tar") << std::string(2000, 'x');
  auto junk = archive_file::open(out / "junk.tar");
  ASSERT_TRUE(junk);
  v = verify(*junk, {{"app_db", "v"}}, {});
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::corrupt) << v.error().describe();
}

TEST(restore, cancel_stops_the_read) {
  scratch_dir src, out;
  std::ofstream(src / "f") << "content";
  const auto file = write_lifeboat_archive(out.path(), "x.tar.gz",
                                           {archive::directory_source{"app_db", src.path()}},
                                           api::compression_kind::gzip);
  auto a = archive_file::open(file);
  ASSERT_TRUE(a);
  std::atomic<bool> cancel{true};
  read_options o;
  o.cancel = &cancel;
  auto v = verify(*a, {{"app_db", "v"}}, o);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, errc::cancelled);
}

TEST(restore, wipe_empties_the_folder_without_following_symlinks) {
  scratch_dir dir, outside;
  std::ofstream(outside / "precious") << "x";
  fs::create_directories(dir / "a/b");
  std::ofstream(dir / "a/b/f") << "x";
  std::ofstream(dir / ".hidden") << "x";
  fs::create_directory_symlink(outside.path(), dir / "link");
  ASSERT_TRUE(wipe_directory(dir.path()));
  EXPECT_TRUE(fs::is_empty(dir.path()));
  EXPECT_TRUE(fs::exists(outside / "precious"));
}

// Issue 12, item 14 (Restore paths) --------------------------------------------

// Pulls a restream to its end; the error that stopped it, or nullopt when it
// reached its end.
std::optional<error> restream_failure(const archive_file& a, const std::vector<mapping>& m,
                                      const fs::path& into) {
  auto stream = tar_restream::open(a, m, {});
  if (!stream) {
    return stream.error();
  }
  std::ofstream tar(into, std::ios::binary);
  std::vector<char> buf(64 * 1024);
  for (;;) {
    auto n = stream->pull(buf);
    if (!n) {
      return n.error();
    }
    if (*n == 0) {
      return std::nullopt;
    }
    tar.write(buf.data(), static_cast<std::streamsize>(*n));
  }
}

TEST(Issue12Item14RestorePaths, NonCanonicalPathsThroughAnArchiveSymlinkAreRefusedByEveryPass) {
  for (const std::string path : {"app_db//d/x", "app_db/./d/x", "./app_db/d//x"}) {
    SCOPED_TRACE(path);
    scratch_dir out, dst;
    write_raw_tar(out / "evil.tar.gz", {{"app_db/", AE_IFDIR},
                                        {"app_db/sub/", AE_IFDIR},
                                        {"app_db/d", AE_IFLNK, "", "sub"},
                                        {path, AE_IFREG, "x"}});
    auto a = archive_file::open(out / "evil.tar.gz");
    ASSERT_TRUE(a);
    auto v = verify(*a, {{"app_db", "v"}}, {});
    ASSERT_FALSE(v) << "verify accepted";
    EXPECT_NE(v.error().message.find("entry " + path + ": goes through the symlink d -> sub"),
              std::string::npos)
        << v.error().message;
    auto x = extract_to_directories(*a, {{"app_db", "v"}}, {dst.path()}, {});
    ASSERT_FALSE(x) << "extraction accepted";
    EXPECT_EQ(x.error().code, errc::refused) << x.error().describe();
    EXPECT_FALSE(fs::exists(dst / "sub/x"));
    const auto r = restream_failure(*a, {{"app_db", "v"}}, out / "restream.tar");
    ASSERT_TRUE(r) << "restream accepted";
    EXPECT_EQ(r->code, errc::refused) << r->describe();
  }
}

TEST(Issue12Item14RestorePaths, HardLinkToADotSlashPathIsRestoredAsAHardLink) {
  scratch_dir out, dst, untarred;
  write_raw_tar(out / "h.tar.gz", {{"app_db/", AE_IFDIR},
                                   {"app_db/./a", AE_IFREG, "content"},
                                   {"app_db/h", AE_IFREG, "", "", "app_db/./a"},
                                   {"app_db//h2", AE_IFREG, "", "", "./app_db//a"}});
  auto a = archive_file::open(out / "h.tar.gz");
  ASSERT_TRUE(a);
  auto v = verify(*a, {{"app_db", "v"}}, {});
  ASSERT_TRUE(v) << v.error().describe();
  auto x = extract_to_directories(*a, {{"app_db", "v"}}, {dst.path()}, {});
  ASSERT_TRUE(x) << x.error().describe();
  struct stat file {
  }, link{}, link2{};
  ASSERT_EQ(::stat((dst / "a").c_str(), &file), 0);
  ASSERT_EQ(::stat((dst / "h").c_str(), &link), 0);
  ASSERT_EQ(::stat((dst / "h2").c_str(), &link2), 0);
  EXPECT_EQ(file.st_ino, link.st_ino);
  EXPECT_EQ(file.st_ino, link2.st_ino);

  ASSERT_EQ(restream_failure(*a, {{"app_db", "v"}}, out / "restream.tar"), std::nullopt);
  const auto untar = run("tar -xpf " + shell_quote((out / "restream.tar").string()) + " -C " +
                         shell_quote(untarred.path().string()));
  ASSERT_EQ(untar.status, 0) << untar.output;
  ASSERT_EQ(::stat((untarred / "v/a").c_str(), &file), 0);
  ASSERT_EQ(::stat((untarred / "v/h").c_str(), &link), 0);
  EXPECT_EQ(file.st_ino, link.st_ino);
}

// An archive that changed after verification (the second pass reads the same
// descriptor, but the file can be rewritten in place): the rules that need
// the whole archive hold in the second pass too.
TEST(Issue12Item14RestorePaths, SecondPassAppliesTheWholeArchiveRules) {
  scratch_dir out;
  // x -> . and b -> x/x look harmless one by one; a -> b/.. is the volume's parent.
  write_raw_tar(out / "chain.tar.gz", {{"app_db/", AE_IFDIR},
                                       {"app_db/x", AE_IFLNK, "", "."},
                                       {"app_db/b", AE_IFLNK, "", "x/x"},
                                       {"app_db/a", AE_IFLNK, "", "b/.."}});
  auto chain = archive_file::open(out / "chain.tar.gz");
  ASSERT_TRUE(chain);
  {
    scratch_dir dst;
    auto x = extract_to_directories(*chain, {{"app_db", "v"}}, {dst.path()}, {});
    ASSERT_FALSE(x) << "extraction accepted";
    EXPECT_EQ(x.error().code, errc::refused);
    EXPECT_NE(x.error().message.find("entry app_db/a: symlink to b/.. escapes"), std::string::npos)
        << x.error().message;
  }
  const auto r = restream_failure(*chain, {{"app_db", "v"}}, out / "restream.tar");
  ASSERT_TRUE(r) << "restream accepted";
  EXPECT_NE(r->message.find("entry app_db/a: symlink to b/.. escapes"), std::string::npos)
      << r->message;

  // A mapping with no entry at all: a wipe followed by nothing restored.
  write_raw_tar(out / "other.tar.gz", {{"other/", AE_IFDIR}, {"other/f", AE_IFREG, "x"}});
  auto other = archive_file::open(out / "other.tar.gz");
  ASSERT_TRUE(other);
  {
    scratch_dir dst;
    auto x = extract_to_directories(*other, {{"app_db", "v"}}, {dst.path()}, {});
    ASSERT_FALSE(x) << "extraction accepted";
    EXPECT_EQ(x.error().code, errc::missing_volume) << x.error().describe();
  }
  const auto missing = restream_failure(*other, {{"app_db", "v"}}, out / "restream.tar");
  ASSERT_TRUE(missing) << "restream accepted";
  EXPECT_EQ(missing->code, errc::missing_volume) << missing->describe();
}

}  // namespace
}  // namespace lifeboat::restore
