// Interop with Debian's restic (0.14) both ways: repositories `restic init`
// makes open with lifeboat, repositories lifeboat makes pass `restic check`,
// lifeboat's chunker cuts a file where restic does, and restic checks and
// restores exactly the trees lifeboat backs up. Runs restic as a child process
// on folders in a private temporary directory (no network, no cache).
#include "controller/restic/backup.hpp"
#include "controller/restic/chunker.hpp"
#include "controller/restic/forget.hpp"
#include "controller/restic/primitives.hpp"
#include "controller/restic/prune.hpp"
#include "controller/restic/repository.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace lifeboat::restic {
namespace {

namespace fs = std::filesystem;

constexpr const char* password = "correct horse battery staple";

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

struct output {
  int status = -1;
  std::string text;  // stdout, then stderr
};

/// Runs restic with the test password, no cache and no lock wait, on `repo`.
output restic(const fs::path& repo, const std::string& args) {
  const std::string cmd = "RESTIC_PASSWORD='" + std::string(password) +
                          "' restic --no-cache -q -r " + quote(repo) + " " + args + " 2>&1";
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

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

class ResticInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v restic >/dev/null 2>&1") != 0) {  // NOLINT(cert-env33-c)
      GTEST_SKIP() << "restic is not installed (hack/setup.sh installs it)";
    }
    std::string pattern = (fs::temp_directory_path() / "lifeboat-restic-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read once per test, no threads
    if (std::getenv("LIFEBOAT_KEEP_TEST_DIR") != nullptr) {
      std::cerr << "kept " << dir_ << "\n";
      return;
    }
    if (!dir_.empty()) {
      std::error_code ec;
      // restic and lifeboat make repository files read-only; remove_all copes as owner.
      fs::remove_all(dir_, ec);
    }
  }

  fs::path dir_;
};

// scrypt's cheapest parameters keep the test fast; restic reads them from the key file.
const scrypt_params cheap{1024, 8, 1};

TEST_F(ResticInterop, LifeboatOpensARepositoryResticInitialised) {
  const fs::path repo = dir_ / "repo";
  const output init = restic(repo, "init --repository-version 2");
  ASSERT_EQ(init.status, 0) << init.text;

  auto opened = repository::open(repo, password);
  ASSERT_TRUE(opened) << opened.error().describe();
  EXPECT_EQ(opened->config().version, 2U);
  EXPECT_EQ(opened->config().id.size(), 64U);
  const output config = restic(repo, "cat config");
  ASSERT_EQ(config.status, 0) << config.text;
  EXPECT_THAT(config.text, ::testing::HasSubstr(opened->config().id));

  auto wrong = repository::open(repo, "not the password");
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(wrong.error().is(errc::wrong_password)) << wrong.error().describe();
}

TEST_F(ResticInterop, ResticAcceptsARepositoryLifeboatInitialised) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();

  const output config = restic(repo, "cat config");
  ASSERT_EQ(config.status, 0) << config.text;
  EXPECT_THAT(config.text, ::testing::HasSubstr("\"version\": 2"));
  EXPECT_THAT(config.text, ::testing::HasSubstr(made->config().id));
  const output check = restic(repo, "check");
  EXPECT_EQ(check.status, 0) << check.text;
  const output wrong = restic(repo, "cat config --password-file /dev/null");
  EXPECT_NE(wrong.status, 0);
  // restic can write into it too: a backup of a small folder.
  fs::create_directories(dir_ / "src");
  std::ofstream(dir_ / "src" / "a.txt") << "hello";
  const output backup = restic(repo, "backup " + quote(dir_ / "src"));
  EXPECT_EQ(backup.status, 0) << backup.text;
}

TEST_F(ResticInterop, ChunkBoundariesAndIdsEqualRestics) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();
  // 12 MiB of random bytes: about eight chunks, at least one cut by content.
  const fs::path file = dir_ / "random.bin";
  std::string data(std::size_t{12} * 1024 * 1024, '\0');
  std::mt19937_64 gen(17);
  for (std::size_t i = 0; i < data.size(); i += 8) {
    const std::uint64_t v = gen();
    std::memcpy(&data[i], &v, 8);
  }
  std::ofstream(file, std::ios::binary) << data;

  std::set<std::string> ours;
  std::size_t offset = 0;
  chunker c(made->config().chunker_polynomial,
            [&](std::span<unsigned char> out) -> result<std::size_t> {
              const std::size_t n = std::min(out.size(), data.size() - offset);
              std::memcpy(out.data(), data.data() + offset, n);
              offset += n;
              return n;
            });
  std::size_t chunks = 0;
  for (;;) {
    auto next = c.next();
    ASSERT_TRUE(next) << next.error().describe();
    if (!*next) {
      break;
    }
    ++chunks;
    ours.insert(detail::hex(detail::sha256((*next)->data)));
  }
  ASSERT_GE(chunks, 3U);

  const output backup = restic(repo, "backup " + quote(file));
  ASSERT_EQ(backup.status, 0) << backup.text;
  const output list = restic(repo, "list blobs");
  ASSERT_EQ(list.status, 0) << list.text;
  std::set<std::string> theirs;
  for (const std::string& line : lines(list.text)) {
    if (line.starts_with("data ")) {
      theirs.insert(line.substr(5));
    }
  }
  EXPECT_EQ(ours, theirs);
  // And each blob restic stored holds exactly the bytes of our chunk with that ID.
  const std::string first = *ours.begin();
  const output blob = restic(repo, "cat blob " + first);
  ASSERT_EQ(blob.status, 0);
  EXPECT_EQ(detail::hex(detail::sha256(detail::as_bytes(blob.text))), first);
}

std::string random_bytes(std::size_t size, std::uint64_t seed) {
  std::string data(size, '\0');
  std::mt19937_64 gen(seed);
  for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
    const std::uint64_t v = gen();
    std::memcpy(&data[i], &v, 8);
  }
  return data;
}

void write_bytes(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A tree with every kind of entry restic keeps: files of several sizes (one of
/// several chunks), empty files and folders, symlinks (one dangling), hard links,
/// modes, and a sparse file.
void make_tree(const fs::path& root) {
  fs::create_directories(root / "empty-dir");
  fs::create_directories(root / "nested" / "deeper");
  write_bytes(root / "small.txt", "hello, restic\n");
  write_bytes(root / "medium.bin", random_bytes(std::size_t{700} * 1024, 1));
  write_bytes(root / "big.bin", random_bytes(std::size_t{10} * 1024 * 1024, 2));
  write_bytes(root / "empty", "");
  write_bytes(root / "nested" / "deeper" / "leaf.txt", "leaf");
  write_bytes(root / "private.key", "secret");
  fs::permissions(root / "private.key", fs::perms::owner_read | fs::perms::owner_write);
  write_bytes(root / "run.sh", "#!/bin/sh\n");
  fs::permissions(root / "run.sh", fs::perms(0755));
  fs::permissions(root / "nested", fs::perms(0700));
  fs::create_symlink("small.txt", root / "link");
  fs::create_symlink("../nowhere", root / "nested" / "dangling");
  write_bytes(root / "hard-a", "same inode");
  fs::create_hard_link(root / "hard-a", root / "nested" / "hard-b");
  {
    std::ofstream sparse(root / "sparse", std::ios::binary);
    sparse.seekp(std::streamoff{5} * 1024 * 1024);
    sparse << "in the middle";
  }
  ::truncate((root / "sparse").c_str(), std::int64_t{20} * 1024 * 1024);
}

/// Every entry under `root` as "path type mode uid gid [size content-hash | target]",
/// plus which paths share an inode: equal lists mean equal trees.
std::vector<std::string> describe_tree(const fs::path& root) {
  std::vector<std::string> out;
  std::map<std::pair<dev_t, ino_t>, std::string> first_path;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path p = it->path();
    const std::string rel = fs::relative(p, root).string();
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    std::ostringstream line;
    line << rel << " mode=" << std::oct << st.st_mode << std::dec << " uid=" << st.st_uid
         << " gid=" << st.st_gid;
    if (S_ISREG(st.st_mode)) {
      const std::string data = read_bytes(p);
      line << " size=" << data.size()
           << " sha256=" << detail::hex(detail::sha256(detail::as_bytes(data)))
           << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
      if (st.st_nlink > 1) {
        auto [at, fresh] = first_path.try_emplace({st.st_dev, st.st_ino}, rel);
        line << " same-inode-as=" << at->second;
      }
    } else if (S_ISLNK(st.st_mode)) {
      line << " target=" << fs::read_symlink(p).string();
    }
    out.push_back(line.str());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(ResticInterop, ResticChecksAndRestoresWhatLifeboatBackedUp) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();
  const fs::path src = dir_ / "vol";
  make_tree(src);

  backup_options options;
  options.source = src;
  options.name = "db-data";
  options.tags = {"lifeboat", "schedule=nightly"};
  options.hostname = "node-1";
  options.pack_size = std::size_t{4} * 1024 * 1024;  // several packs
  auto done = backup_directory(*made, options);
  ASSERT_TRUE(done) << done.error().describe();
  EXPECT_EQ(done->stats.files, 10U);
  EXPECT_EQ(done->stats.files_read, 10U);
  EXPECT_GE(done->stats.packs_written, 3U);
  EXPECT_TRUE(fs::is_empty(repo / "locks"));

  const output check = restic(repo, "check --read-data");
  ASSERT_EQ(check.status, 0) << check.text;
  const output snapshots = restic(repo, "snapshots --json");
  ASSERT_EQ(snapshots.status, 0) << snapshots.text;
  EXPECT_THAT(snapshots.text, ::testing::HasSubstr("\"paths\":[\"/db-data\"]"));
  EXPECT_THAT(snapshots.text, ::testing::HasSubstr("\"hostname\":\"node-1\""));
  EXPECT_THAT(snapshots.text, ::testing::HasSubstr("schedule=nightly"));

  const fs::path out = dir_ / "restored";
  const output restore = restic(repo, "restore latest --target " + quote(out));
  ASSERT_EQ(restore.status, 0) << restore.text;
  EXPECT_EQ(describe_tree(out / "db-data"), describe_tree(src));
}

TEST_F(ResticInterop, ASecondBackupReadsOnlyTheChangedFile) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();
  const fs::path src = dir_ / "vol";
  make_tree(src);
  backup_options options;
  options.source = src;
  options.name = "vol";
  auto first = backup_directory(*made, options);
  ASSERT_TRUE(first) << first.error().describe();

  // Edit big.bin in the middle: one or two of its chunks change, the rest stay.
  const fs::path big = src / "big.bin";
  std::string data = read_bytes(big);
  data.replace(std::size_t{5} * 1024 * 1024, 4, "EDIT");
  write_bytes(big, data);

  auto latest = latest_snapshot(*made, {"/vol"}, "");
  ASSERT_TRUE(latest) << latest.error().describe();
  ASSERT_TRUE(latest->has_value());
  EXPECT_EQ(**latest, first->snapshot_id);
  options.parent = **latest;
  auto second = backup_directory(*made, options);
  ASSERT_TRUE(second) << second.error().describe();
  EXPECT_EQ(second->stats.files_read, 1U);
  EXPECT_EQ(second->stats.files_unchanged, 9U);
  EXPECT_EQ(second->stats.bytes_read, data.size());
  EXPECT_GE(second->stats.data_blobs_added, 1U);
  EXPECT_LE(second->stats.data_blobs_added, 2U);
  EXPECT_LE(second->stats.data_bytes_added, std::uint64_t{2} * chunker::max_size);
  // Only the trees on the way to big.bin change: the root tree and the top folder's.
  EXPECT_EQ(second->stats.tree_blobs_added, 2U);

  const output check = restic(repo, "check --read-data");
  ASSERT_EQ(check.status, 0) << check.text;
  const output restore = restic(repo, "restore latest --target " + quote(dir_ / "out"));
  ASSERT_EQ(restore.status, 0) << restore.text;
  EXPECT_EQ(describe_tree(dir_ / "out" / "vol"), describe_tree(src));
  const output snapshots = restic(repo, "snapshots --json");
  EXPECT_THAT(snapshots.text, ::testing::HasSubstr("\"parent\":\"" + to_hex(first->snapshot_id)));
}

TEST_F(ResticInterop, LocksAreHonouredBothWays) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();
  {
    auto lock = repository_lock::acquire(*made);
    ASSERT_TRUE(lock) << lock.error().describe();
    const output check = restic(repo, "check");
    EXPECT_NE(check.status, 0);
    EXPECT_THAT(check.text, ::testing::HasSubstr("locked"));
    auto again = repository_lock::acquire(*made);
    ASSERT_FALSE(again);
    EXPECT_THAT(again.error().describe(), ::testing::HasSubstr("is locked by locks/"));
  }
  EXPECT_TRUE(fs::is_empty(repo / "locks"));
  EXPECT_EQ(restic(repo, "check").status, 0);
}

TEST_F(ResticInterop, LifeboatDeduplicatesAgainstBlobsResticStored) {
  const fs::path repo = dir_ / "repo";
  const output init = restic(repo, "init --repository-version 2");
  ASSERT_EQ(init.status, 0) << init.text;
  const fs::path src = dir_ / "vol";
  make_tree(src);
  // restic compresses its blobs and index files (version 2, compression auto).
  const output first = restic(repo, "backup " + quote(src));
  ASSERT_EQ(first.status, 0) << first.text;

  auto opened = repository::open(repo, password);
  ASSERT_TRUE(opened) << opened.error().describe();
  backup_options options;
  options.source = src;
  options.name = "vol";
  auto done = backup_directory(*opened, options);
  ASSERT_TRUE(done) << done.error().describe();
  EXPECT_EQ(done->stats.files_read, 10U);
  EXPECT_EQ(done->stats.data_blobs_added, 0U);  // every chunk is already in restic's packs

  const output check = restic(repo, "check --read-data");
  ASSERT_EQ(check.status, 0) << check.text;
  const output restore =
      restic(repo, "restore " + to_hex(done->snapshot_id) + " --target " + quote(dir_ / "out"));
  ASSERT_EQ(restore.status, 0) << restore.text;
  EXPECT_EQ(describe_tree(dir_ / "out" / "vol"), describe_tree(src));
}

TEST_F(ResticInterop, ResticChecksAndListsWhatLifeboatsForgetKept) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();
  const fs::path src = dir_ / "vol";
  make_tree(src);
  std::vector<std::string> ids;
  std::optional<object_id> parent;
  for (int day = 1; day <= 4; ++day) {
    std::ofstream(src / "changing") << "day " << day;
    backup_options options;
    options.source = src;
    options.name = "db-data";
    options.tags = {"lifeboat", "schedule=nightly"};
    options.parent = parent;
    options.time = "2026-01-0" + std::to_string(day) + "T03:00:00Z";
    auto done = backup_directory(*made, options);
    ASSERT_TRUE(done) << done.error().describe();
    parent = done->snapshot_id;
    ids.push_back(to_hex(done->snapshot_id));
  }
  keep_policy policy;
  policy.last = 2;
  auto forgot = forget_snapshots(*made, {"schedule=nightly"}, {"/db-data"}, policy);
  ASSERT_TRUE(forgot) << forgot.error().describe();
  EXPECT_EQ(forgot->removed.size(), 2U);

  const output check = restic(repo, "check --read-data");
  ASSERT_EQ(check.status, 0) << check.text;
  const output snapshots = restic(repo, "snapshots --json");
  ASSERT_EQ(snapshots.status, 0) << snapshots.text;
  EXPECT_THAT(snapshots.text, ::testing::Not(::testing::HasSubstr(ids[0])));
  EXPECT_THAT(snapshots.text, ::testing::Not(::testing::HasSubstr("\"id\":\"" + ids[1])));
  EXPECT_THAT(snapshots.text, ::testing::HasSubstr("\"id\":\"" + ids[2]));
  EXPECT_THAT(snapshots.text, ::testing::HasSubstr("\"id\":\"" + ids[3]));
  const fs::path out = dir_ / "restored";
  const output restore = restic(repo, "restore latest --target " + quote(out));
  ASSERT_EQ(restore.status, 0) << restore.text;
  EXPECT_EQ(describe_tree(out / "db-data"), describe_tree(src));
}

TEST_F(ResticInterop, ForgetKeepsWhatResticForgetKeeps) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();
  const fs::path src = dir_ / "vol";
  fs::create_directories(src);
  std::ofstream(src / "a") << "alpha";
  // -05:00: its own day is 01-01, its UTC day 01-02, so --keep-daily tells the two apart.
  const std::vector<std::string> times = {"2025-11-30T10:00:00Z",      "2025-12-20T10:00:00Z",
                                          "2025-12-28T10:00:00Z",      "2025-12-29T10:00:00Z",
                                          "2026-01-01T23:30:00-05:00", "2025-12-31T08:00:00Z",
                                          "2025-12-31T20:00:00Z",      "2026-01-01T01:00:00Z",
                                          "2026-01-01T02:00:00Z",      "2026-01-02T23:59:59.5Z"};
  std::vector<std::string> ids;
  for (const auto& time : times) {
    backup_options options;
    options.source = src;
    options.name = "v";
    options.tags = {"schedule=nightly"};
    options.hostname = "node-1";
    options.time = time;
    auto done = backup_directory(*made, options);
    ASSERT_TRUE(done) << done.error().describe();
    ids.push_back(to_hex(done->snapshot_id));
  }
  // Another schedule's old snapshot of the same volume: neither forget touches it.
  backup_options other;
  other.source = src;
  other.name = "v";
  other.tags = {"schedule=weekly"};
  other.hostname = "node-1";
  other.time = "2025-10-01T10:00:00Z";
  auto kept_other = backup_directory(*made, other);
  ASSERT_TRUE(kept_other) << kept_other.error().describe();
  const fs::path theirs = dir_ / "theirs";
  fs::copy(repo, theirs, fs::copy_options::recursive);
  keep_policy policy;
  policy.daily = 3;
  policy.weekly = 2;
  policy.monthly = 2;
  policy.yearly = 1;
  auto forgot = forget_snapshots(*made, {"schedule=nightly"}, {"/v"}, policy);
  ASSERT_TRUE(forgot) << forgot.error().describe();
  const output forget = restic(theirs,
                               "forget --keep-daily 3 --keep-weekly 2 --keep-monthly 2 "
                               "--keep-yearly 1 --tag schedule=nightly");
  ASSERT_EQ(forget.status, 0) << forget.text;
  const output ours = restic(repo, "snapshots --json");
  const output restics = restic(theirs, "snapshots --json");
  ASSERT_EQ(ours.status, 0) << ours.text;
  ASSERT_EQ(restics.status, 0) << restics.text;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string id = "\"id\":\"" + ids[i];
    const bool restic_keeps = restics.text.find(id) != std::string::npos;
    EXPECT_EQ(ours.text.find(id) != std::string::npos, restic_keeps) << times[i];
    kept += restic_keeps ? 1 : 0;
  }
  EXPECT_EQ(kept, forgot->kept.size());
  EXPECT_LT(kept, ids.size());
  const std::string other_id = "\"id\":\"" + to_hex(kept_other->snapshot_id);
  EXPECT_THAT(ours.text, ::testing::HasSubstr(other_id));
  EXPECT_THAT(restics.text, ::testing::HasSubstr(other_id));
  const output check = restic(repo, "check");
  EXPECT_EQ(check.status, 0) << check.text;
}

std::size_t files_under(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    n += e.is_regular_file() ? 1 : 0;
  }
  return n;
}

TEST_F(ResticInterop, ResticChecksAndRestoresAfterLifeboatsPruneAndAtEachStepOfIt) {
  const fs::path repo = dir_ / "repo";
  auto made = repository::init(repo, password, cheap);
  ASSERT_TRUE(made) << made.error().describe();
  const fs::path src = dir_ / "vol";
  make_tree(src);
  std::optional<object_id> parent;
  for (int run = 1; run <= 2; ++run) {
    backup_options options;
    options.source = src;
    options.name = "db-data";
    options.tags = {"lifeboat", "schedule=nightly"};
    options.parent = parent;
    options.pack_size = 1;  // a pack per blob: the first medium.bin's packs end unused
    options.time = "2026-01-0" + std::to_string(run) + "T03:00:00Z";
    auto done = backup_directory(*made, options);
    ASSERT_TRUE(done) << done.error().describe();
    parent = done->snapshot_id;
    if (run == 1) {  // the second backup sees medium.bin changed
      write_bytes(src / "medium.bin", random_bytes(std::size_t{700} * 1024, 3));
    }
  }
  keep_policy policy;
  policy.last = 1;
  auto forgot = forget_snapshots(*made, {"schedule=nightly"}, {"/db-data"}, policy);
  ASSERT_TRUE(forgot) << forgot.error().describe();
  ASSERT_EQ(forgot->removed.size(), 1U);
  const fs::path before = dir_ / "before";
  fs::copy(repo, before, fs::copy_options::recursive);
  const std::size_t packs_before = files_under(repo / "data");

  auto pruned = prune_unreferenced(*made);
  ASSERT_TRUE(pruned) << pruned.error().describe();
  EXPECT_GT(pruned->packs_removed, 0U);
  EXPECT_EQ(files_under(repo / "data"), packs_before - pruned->packs_removed);
  const output check = restic(repo, "check --read-data");
  ASSERT_EQ(check.status, 0) << check.text;
  const fs::path out = dir_ / "restored";
  const output restore = restic(repo, "restore latest --target " + quote(out));
  ASSERT_EQ(restore.status, 0) << restore.text;
  EXPECT_EQ(describe_tree(out / "db-data"), describe_tree(src));

  // Where a crash could have stopped prune: new index files next to the old ones, then
  // only the new ones with the unused packs still there. restic check accepts both.
  const fs::path both = dir_ / "both-indexes";
  fs::copy(before, both, fs::copy_options::recursive);
  fs::copy(repo / "index", both / "index", fs::copy_options::recursive);
  const output check_both = restic(both, "check");
  EXPECT_EQ(check_both.status, 0) << check_both.text;
  const fs::path orphans = dir_ / "unindexed-packs";
  fs::copy(before, orphans, fs::copy_options::recursive);
  fs::remove_all(orphans / "index");
  fs::copy(repo / "index", orphans / "index", fs::copy_options::recursive);
  const output check_orphans = restic(orphans, "check");
  EXPECT_EQ(check_orphans.status, 0) << check_orphans.text;
  // The other order would not do: packs gone while the old index still names them.
  const fs::path wrong = dir_ / "packs-first";
  fs::copy(before, wrong, fs::copy_options::recursive);
  for (const auto& e : fs::recursive_directory_iterator(before / "data")) {
    if (e.is_regular_file() && !fs::exists(repo / fs::relative(e.path(), before))) {
      fs::remove(wrong / fs::relative(e.path(), before));
    }
  }
  EXPECT_EQ(files_under(wrong / "data"), files_under(repo / "data"));
  const output check_wrong = restic(wrong, "check");
  EXPECT_NE(check_wrong.status, 0) << check_wrong.text;
}

}  // namespace
}  // namespace lifeboat::restic
