// Unit tests of restoring restic snapshots: lifeboat's own backups restored to
// the exact tree, verification that refuses a tampered pack before writing, and
// trees holding names that would escape the target. No restic binary needed
// (restic_restore_interop_test.cpp restores what restic itself backed up).
#include "controller/restic/backup.hpp"
#include "controller/restic/primitives.hpp"
#include "controller/restic/repository.hpp"
#include "controller/restic/restore.hpp"
#include "controller/restic/store.hpp"
#include "controller/restic/tree.hpp"
#include "tests/controller/restic/restic_tree_fixture.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace lifeboat::restic {
namespace {

using testing::allocated;
using testing::describe_tree;
using ::testing::HasSubstr;
using testing::make_tree;
using testing::temp_dir;

namespace fs = std::filesystem;

const scrypt_params cheap{1024, 8, 1};

struct backed_up {
  repository repo;
  object_id snapshot{};
};

/// A repository holding one lifeboat backup of `src` as /vol.
backed_up backup(const fs::path& repo_path, const fs::path& src) {
  auto repo = repository::init(repo_path, "pw", cheap);
  EXPECT_TRUE(repo) << repo.error().describe();
  backup_options options;
  options.source = src;
  options.name = "vol";
  options.pack_size = std::size_t{4} * 1024 * 1024;
  auto done = backup_directory(*repo, options);
  EXPECT_TRUE(done) << done.error().describe();
  return {*repo, done->snapshot_id};
}

bool is_empty_dir(const fs::path& p) { return fs::is_directory(p) && fs::is_empty(p); }

TEST(Restore, LifeboatsBackupComesBackAsTheExactTree) {
  const temp_dir dir;
  const fs::path src = dir.path() / "src";
  fs::create_directory(src);
  ::chmod(src.c_str(), 0750);
  make_tree(src);
  struct stat before {};
  ASSERT_EQ(::lstat((src / "small.txt").c_str(), &before), 0);  // atime before anything reads it
  auto [repo, snap] = backup(dir.path() / "repo", src);         // reads without touching atimes
  const std::vector<std::string> expected = describe_tree(src);

  auto verified = verify_snapshot(repo, snap, {.subtree = "/vol"});
  ASSERT_TRUE(verified) << verified.error().describe();
  EXPECT_GT(verified->blobs_read, 10U);

  const fs::path out = dir.path() / "out";
  fs::create_directory(out);
  auto done = restore_snapshot(repo, snap, out, {.subtree = "/vol"});
  ASSERT_TRUE(done) << done.error().describe();
  EXPECT_EQ(done->files, 11U);  // hard-a once, its two other names linked
  EXPECT_EQ(done->hard_links, 2U);
  EXPECT_EQ(done->symlinks, 3U);
  EXPECT_EQ(done->special, 1U);
  EXPECT_EQ(done->dirs, 5U);
  EXPECT_GE(done->hole_bytes, testing::sparse_size - std::uint64_t{2} * 1024 * 1024);

  struct stat after {};
  ASSERT_EQ(::lstat((out / "small.txt").c_str(), &after), 0);
  EXPECT_EQ(after.st_atim.tv_sec, before.st_atim.tv_sec);
  EXPECT_EQ(after.st_atim.tv_nsec, before.st_atim.tv_nsec);
  EXPECT_EQ(describe_tree(out), expected);
  // The zero runs stay holes: a few chunks around the data at most are allocated.
  EXPECT_EQ(fs::file_size(out / "sparse"), testing::sparse_size);
  EXPECT_LE(allocated(out / "sparse"), std::uint64_t{2} * 1024 * 1024);
  EXPECT_LT(allocated(out / "sparse") * 8, testing::sparse_size);

  // Verifying counts what the restore wrote (a hard link as a file: links are
  // only known while writing), so that a run can check the space first.
  EXPECT_EQ(verified->files, done->files + done->hard_links);
  EXPECT_EQ(verified->symlinks, done->symlinks);
  EXPECT_EQ(verified->special, done->special);
  EXPECT_EQ(verified->dirs, done->dirs);
  // ... and its bytes again (10 bytes, "same inode", behind two more names).
  EXPECT_EQ(verified->bytes, done->bytes + 2 * fs::file_size(src / "hard-a"));

  // Verified already: the restore does not read every blob first, and writes
  // the same tree.
  const fs::path again = dir.path() / "again";
  fs::create_directory(again);
  auto second = restore_snapshot(repo, snap, again, {.subtree = "/vol", .verified = true});
  ASSERT_TRUE(second) << second.error().describe();
  EXPECT_LT(second->blobs_read, verified->blobs_read);
  EXPECT_EQ(describe_tree(again), expected);
}

TEST(Restore, ADeviceNodeIsRefusedUnlessDevicesAreAllowed) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "making a device node needs root";
  }
  const temp_dir dir;
  const fs::path src = dir.path() / "src";
  fs::create_directories(src / "dev");
  ASSERT_EQ(::mknod((src / "dev" / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  testing::write_bytes(src / "f", "x");
  auto [repo, snap] = backup(dir.path() / "repo", src);

  auto refused = verify_snapshot(repo, snap, {.subtree = "/vol"});
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(errc::refused));
  EXPECT_THAT(refused.error().message, HasSubstr("/vol/dev/null is a device node"));
  const fs::path out = dir.path() / "out";
  fs::create_directory(out);
  for (const bool verified : {false, true}) {
    auto written = restore_snapshot(repo, snap, out, {.subtree = "/vol", .verified = verified});
    ASSERT_FALSE(written);
    EXPECT_TRUE(written.error().is(errc::refused)) << written.error().describe();
    EXPECT_FALSE(fs::exists(fs::symlink_status(out / "dev" / "null")));
    fs::remove_all(out);
    fs::create_directory(out);
  }

  auto allowed = restore_snapshot(repo, snap, out, {.subtree = "/vol", .allow_devices = true});
  ASSERT_TRUE(allowed) << allowed.error().describe();
  struct stat made {};
  ASSERT_EQ(::lstat((out / "dev" / "null").c_str(), &made), 0);
  EXPECT_TRUE(S_ISCHR(made.st_mode));
  EXPECT_EQ(made.st_rdev, makedev(1, 3));
}

TEST(Restore, TheWholeSnapshotGoesUnderItsPaths) {
  const temp_dir dir;
  const fs::path src = dir.path() / "src";
  fs::create_directories(src / "a");
  testing::write_bytes(src / "a" / "f", "x");
  auto [repo, snap] = backup(dir.path() / "repo", src);
  const fs::path out = dir.path() / "out";
  fs::create_directory(out);
  for (const std::string subtree : {"", "/"}) {
    fs::remove_all(out);
    fs::create_directory(out);
    auto done = restore_snapshot(repo, snap, out, {.subtree = subtree});
    ASSERT_TRUE(done) << done.error().describe();
    EXPECT_EQ(testing::read_bytes(out / "vol" / "a" / "f"), "x");
  }
  fs::remove_all(out);
  fs::create_directory(out);
  auto deeper = restore_snapshot(repo, snap, out, {.subtree = "/vol/a/"});
  ASSERT_TRUE(deeper) << deeper.error().describe();
  EXPECT_EQ(testing::read_bytes(out / "f"), "x");
}

TEST(Restore, RefusesABadTargetOrSubtreeNamingIt) {
  const temp_dir dir;
  const fs::path src = dir.path() / "src";
  fs::create_directories(src);
  testing::write_bytes(src / "f", "x");
  auto [repo, snap] = backup(dir.path() / "repo", src);

  const fs::path full = dir.path() / "full";
  fs::create_directory(full);
  testing::write_bytes(full / "already", "here");
  auto not_empty = restore_snapshot(repo, snap, full, {.subtree = "/vol"});
  ASSERT_FALSE(not_empty);
  EXPECT_THAT(not_empty.error().message, HasSubstr(full.string() + ": the folder is not empty"));

  const fs::path empty = dir.path() / "empty";
  fs::create_directory(empty);
  fs::create_directory_symlink(empty, dir.path() / "via-link");
  EXPECT_FALSE(restore_snapshot(repo, snap, dir.path() / "via-link", {.subtree = "/vol"}));
  EXPECT_FALSE(restore_snapshot(repo, snap, dir.path() / "absent", {.subtree = "/vol"}));

  auto missing = restore_snapshot(repo, snap, empty, {.subtree = "/other"});
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("/other is not in the snapshot"));
  auto file = restore_snapshot(repo, snap, empty, {.subtree = "/vol/f"});
  ASSERT_FALSE(file);
  EXPECT_THAT(file.error().message, HasSubstr("/vol/f is not a folder"));
  auto dots = restore_snapshot(repo, snap, empty, {.subtree = "/vol/../vol"});
  ASSERT_FALSE(dots);
  EXPECT_THAT(dots.error().message, HasSubstr("\"..\" is not allowed"));
  EXPECT_TRUE(is_empty_dir(empty));
}

/// The content IDs of the file at `parts` in the snapshot.
std::vector<object_id> content_of(const repository& repo, const blob_index& index,
                                  const object_id& snap, const std::vector<std::string>& parts) {
  auto text = read_unpacked(repo, "snapshots", snap);
  EXPECT_TRUE(text);
  auto s = parse_snapshot(*text, "snapshot");
  EXPECT_TRUE(s);
  object_id tree = s->tree;
  for (const std::string& part : parts) {
    auto blob = read_blob(repo, index, tree);
    EXPECT_TRUE(blob);
    auto nodes = parse_tree({reinterpret_cast<const char*>(blob->data()), blob->size()}, "tree");
    EXPECT_TRUE(nodes);
    for (const node& n : *nodes) {
      if (n.name == part && n.type == "file") {
        return n.content;
      }
      if (n.name == part) {
        tree = *n.subtree;
      }
    }
  }
  return {};
}

TEST(Restore, ATamperedPackFailsVerificationNamingThePathAndBlobAndWritesNothing) {
  const temp_dir dir;
  const fs::path src = dir.path() / "src";
  fs::create_directories(src / "sub");
  testing::write_bytes(src / "a-first", "restored before the bad file, were it not verified");
  testing::write_bytes(src / "sub" / "big.bin",
                       testing::random_bytes(std::size_t{12} * 1024 * 1024, 9));
  auto [repo, snap] = backup(dir.path() / "repo", src);
  ASSERT_TRUE(verify_snapshot(repo, snap));

  auto index = blob_index::load(repo);
  ASSERT_TRUE(index);
  const std::vector<object_id> big = content_of(repo, *index, snap, {"vol", "sub", "big.bin"});
  ASSERT_GE(big.size(), 2U);  // 12 MiB: chunks are 8 MiB at most
  const object_id victim = big[1];
  const blob_location* at = index->find(victim);
  ASSERT_NE(at, nullptr);
  const std::string pack = to_hex(index->pack_id(at->pack));
  const fs::path file = dir.path() / "repo" / "data" / pack.substr(0, 2) / pack;
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at->offset + 1000);
    const char c = static_cast<char>(f.get());
    f.seekp(at->offset + 1000);
    f.put(static_cast<char>(c ^ 0x01));
  }

  auto verified = verify_snapshot(repo, snap, {.subtree = "/vol"});
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().code, errc::corrupt);
  EXPECT_THAT(verified.error().message, HasSubstr("/vol/sub/big.bin"));
  EXPECT_THAT(verified.error().message, HasSubstr("blob " + to_hex(victim)));

  const fs::path out = dir.path() / "out";
  fs::create_directory(out);
  auto restored = restore_snapshot(repo, snap, out, {.subtree = "/vol"});
  ASSERT_FALSE(restored);
  EXPECT_THAT(restored.error().message, HasSubstr("blob " + to_hex(victim)));
  EXPECT_TRUE(is_empty_dir(out));

  // A blob that is in no index file is named the same way.
  fs::remove_all(dir.path() / "repo" / "index");
  fs::create_directory(dir.path() / "repo" / "index");
  auto unindexed = verify_snapshot(repo, snap);
  ASSERT_FALSE(unindexed);
  EXPECT_THAT(unindexed.error().message, HasSubstr("is in no index file"));
}

/// A snapshot of /vol holding `nodes` (and one good file first), made by hand.
object_id hand_made(const repository& repo, std::vector<node> nodes) {
  auto writer = pack_writer::create(repo, compression::off);
  EXPECT_TRUE(writer);
  const std::string data = "good data";
  const object_id data_id = detail::sha256(detail::as_bytes(data));
  EXPECT_TRUE((*writer)->add(blob_type::data, data_id, detail::as_bytes(data)));
  node good;
  good.name = "!good";  // sorts first
  good.type = "file";
  good.mode = 0644;
  good.size = data.size();
  good.content = {data_id};
  nodes.insert(nodes.begin(), good);
  const std::string inner = serialize_tree(nodes);
  const object_id inner_id = detail::sha256(detail::as_bytes(inner));
  EXPECT_TRUE((*writer)->add(blob_type::tree, inner_id, detail::as_bytes(inner)));
  node vol;
  vol.name = "vol";
  vol.type = "dir";
  vol.mode = go_mode::dir | 0755;
  vol.subtree = inner_id;
  const std::string root = serialize_tree({vol});
  const object_id root_id = detail::sha256(detail::as_bytes(root));
  EXPECT_TRUE((*writer)->add(blob_type::tree, root_id, detail::as_bytes(root)));
  auto pack = (*writer)->finish();
  EXPECT_TRUE(pack);
  EXPECT_TRUE(write_unpacked(repo, "index", serialize_index(std::span(&*pack, 1)), false));
  snapshot s;
  s.time = "2026-12-05T10:00:00Z";
  s.tree = root_id;
  s.paths = {"/vol"};
  auto id = write_unpacked(repo, "snapshots", serialize_snapshot(s), false);
  EXPECT_TRUE(id);
  return *id;
}

node named(std::string name, std::string type) {
  node n;
  n.name = std::move(name);
  n.type = std::move(type);
  n.mode = 0644;
  if (n.type == "symlink") {
    n.mode = go_mode::symlink | 0777;
    n.linktarget = "/";
  }
  return n;
}

TEST(Restore, RefusesNamesThatLeaveTheFolderAndWritesNothing) {
  struct bad_case {
    std::string label;
    std::vector<node> nodes;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {"empty", {named("", "file")}, "entry name \"\" is not a single path element"},
      {"dot", {named(".", "file")}, "entry name \".\""},
      {"dotdot", {named("..", "symlink")}, "entry name \"..\""},
      {"slash", {named("../../etc/passwd", "file")}, "entry name \"../../etc/passwd\""},
      {"inner slash", {named("a/b", "file")}, "entry name \"a/b\""},
      {"nul", {named(std::string("a\0b", 3), "file")}, "entry name \"a\\0b\""},
      {"twice", {named("dup", "symlink"), named("dup", "file")}, "\"dup\" appears twice"},
      {"unknown type", {named("x", "door")}, "/vol/x: type \"door\" is unknown"},
      {"bad time",
       {[] {
         node n = named("t", "file");
         n.mtime = "yesterday";
         return n;
       }()},
       "/vol/t: \"yesterday\" is not an RFC 3339 time"},
      {"size",
       {[] {
         node n = named("s", "file");
         n.size = 5;
         return n;
       }()},
       "/vol/s: its blobs hold 0 bytes, the node says 5"},
  };
  for (const bad_case& c : cases) {
    SCOPED_TRACE(c.label);
    const temp_dir dir;
    auto repo = repository::init(dir.path() / "repo", "pw", cheap);
    ASSERT_TRUE(repo);
    const object_id snap = hand_made(*repo, c.nodes);
    auto verified = verify_snapshot(*repo, snap, {.subtree = "/vol"});
    ASSERT_FALSE(verified);
    EXPECT_THAT(verified.error().message, HasSubstr("/vol"));
    EXPECT_THAT(verified.error().message, HasSubstr(c.message));
    const fs::path out = dir.path() / "out";
    fs::create_directory(out);
    auto restored = restore_snapshot(*repo, snap, out, {.subtree = "/vol"});
    ASSERT_FALSE(restored);
    EXPECT_THAT(restored.error().message, HasSubstr(c.message));
    EXPECT_TRUE(is_empty_dir(out));
  }
  // The same snapshot without a bad node restores (the hand-made tree is sound).
  const temp_dir dir;
  auto repo = repository::init(dir.path() / "repo", "pw", cheap);
  ASSERT_TRUE(repo);
  const object_id snap = hand_made(*repo, {named("ok", "symlink")});
  const fs::path out = dir.path() / "out";
  fs::create_directory(out);
  auto restored = restore_snapshot(*repo, snap, out, {.subtree = "/vol"});
  ASSERT_TRUE(restored) << restored.error().describe();
  EXPECT_EQ(testing::read_bytes(out / "!good"), "good data");
  EXPECT_EQ(fs::read_symlink(out / "ok"), "/");
}

TEST(Rfc3339, ParsesGoTimesWithOffsetsAndRefusesOthers) {
  struct good_case {
    const char* text;
    std::int64_t seconds;
    std::int64_t nanos;
  };
  for (const good_case& c : std::vector<good_case>{
           {"1970-01-01T00:00:00Z", 0, 0},
           {"2020-09-13T12:26:40Z", 1600000000, 0},
           {"2020-09-13T12:26:40.123456789Z", 1600000000, 123456789},
           {"2020-09-13T14:26:40.5+02:00", 1600000000, 500000000},
           {"2020-09-13T07:56:40.000000001-04:30", 1600000000, 1},
           {"2000-02-29T00:00:00Z", 951782400, 0},
           {"1969-12-31T23:59:59Z", -1, 0},
       }) {
    SCOPED_TRACE(c.text);
    auto t = parse_rfc3339(c.text, "f");
    ASSERT_TRUE(t) << t.error().describe();
    EXPECT_EQ(t->seconds, c.seconds);
    EXPECT_EQ(t->nanoseconds, c.nanos);
    EXPECT_EQ(parse_rfc3339(rfc3339_nano(c.seconds, c.nanos), "f")->seconds, c.seconds);
  }
  for (const char* bad :
       {"", "2020-09-13", "2020-09-13T12:26:40", "2020-13-13T12:26:40Z", "2020-09-13T12:26:40.Z",
        "2020-09-13T12:26:40+0200", "2020-09-13T12:26:40Zjunk"}) {
    auto t = parse_rfc3339(bad, "nodes[3].mtime");
    ASSERT_FALSE(t) << bad;
    EXPECT_THAT(t.error().message, HasSubstr("nodes[3].mtime"));
  }
}

}  // namespace
}  // namespace lifeboat::restic
