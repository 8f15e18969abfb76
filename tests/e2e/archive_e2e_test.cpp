// Backups end to end on the real swarm: a volume with a tree of every kind of
// entry (modes, owners, symlinks, hard links, empty folders, a sparse file, a
// 1 GiB file, 10 000 small files) is backed up while a labelled service writes
// to it; the archive must list and extract with GNU tar and bsdtar to exactly
// the tree as it was while the service was at zero. Then kill -9 in the middle
// of writing an archive: nothing under the final name, the partial file gone
// after the next run.

#include "api/decode.hpp"
#include "controller/backup/archive_steps.hpp"
#include "controller/backup/engine_runner.hpp"
#include "controller/quiesce/journal_store.hpp"
#include "tests/e2e/engine_fixture.hpp"

#include <fcntl.h>
#include <nettle/sha2.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// The manifest: one line per entry, everything tar is expected to keep.

std::string sha256_of(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return "unreadable";
  }
  sha256_ctx ctx{};
  sha256_init(&ctx);
  std::vector<std::uint8_t> buf(1 << 20);
  ssize_t n = 0;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
    sha256_update(&ctx, static_cast<std::size_t>(n), buf.data());
  }
  ::close(fd);
  std::array<std::uint8_t, SHA256_DIGEST_SIZE> digest{};
  sha256_digest(&ctx, digest.size(), digest.data());
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  for (const auto b : digest) {
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  return hex;
}

/// path -> "type mode uid:gid size content", where content is the sha256 of a
/// regular file, the target of a symlink, and "=first/path" for the later
/// names of a hard-linked file (the first in path order carries the data).
/// Directory sizes and times are left out (they differ between file systems);
/// regular files keep their mtime.
std::map<std::string, std::string> manifest(const fs::path& root) {
  std::vector<std::string> paths;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    paths.push_back(fs::relative(it->path(), root).string());
  }
  std::sort(paths.begin(), paths.end());
  std::map<std::pair<dev_t, ino_t>, std::string> first_name;
  std::map<std::string, std::string> out;
  for (const auto& p : paths) {
    struct stat st {};
    const fs::path full = root / p;
    if (::lstat(full.c_str(), &st) != 0) {
      out[p] = "vanished";
      continue;
    }
    std::string type;
    std::string content;
    if (S_ISREG(st.st_mode)) {
      type = "file";
      if (st.st_nlink > 1) {
        const auto [it, fresh] = first_name.try_emplace({st.st_dev, st.st_ino}, p);
        content = fresh ? sha256_of(full) : "=" + it->second;
      } else {
        content = sha256_of(full);
      }
      content += " mtime=" + std::to_string(st.st_mtim.tv_sec);
    } else if (S_ISDIR(st.st_mode)) {
      type = "dir";
      st.st_size = 0;
    } else if (S_ISLNK(st.st_mode)) {
      type = "symlink";
      content = fs::read_symlink(full).string();
    } else {
      type = "other";
    }
    char mode[16];
    std::snprintf(mode, sizeof mode, "%05o", st.st_mode & 07777);
    out[p] = type + " " + mode + " " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid) +
             " " + std::to_string(st.st_size) + " " + content;
  }
  return out;
}

/// The first differences between two manifests, for a readable failure.
std::string differences(const std::map<std::string, std::string>& want,
                        const std::map<std::string, std::string>& got) {
  std::string out;
  int shown = 0;
  for (const auto& [path, line] : want) {
    const auto it = got.find(path);
    if (it == got.end()) {
      out += "  missing " + path + "\n";
    } else if (it->second != line) {
      out += "  " + path + ": want " + line + ", got " + it->second + "\n";
    } else {
      continue;
    }
    if (++shown == 10) {
      return out;
    }
  }
  for (const auto& [path, line] : got) {
    if (!want.contains(path)) {
      out += "  unexpected " + path + " " + line + "\n";
      if (++shown == 10) {
        break;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// The tree.

void write_file(const fs::path& path, std::string_view content, mode_t mode, uid_t uid, gid_t gid) {
  std::ofstream(path, std::ios::binary) << content;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
  ASSERT_EQ(::lchown(path.c_str(), uid, gid), 0) << path;
}

/// 1 GiB that compresses about as well as a database file: each MiB is half
/// random, half a repeated record.
void write_big_file(const fs::path& path, std::size_t mib) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  ASSERT_GE(fd, 0) << path;
  std::mt19937_64 random(42);
  std::vector<std::uint64_t> block((1 << 20) / sizeof(std::uint64_t));
  const std::string record = "id=000042 name=lifeboat status=active balance=1000.00\n";
  for (std::size_t m = 0; m < mib; ++m) {
    for (std::size_t i = 0; i < block.size() / 2; ++i) {
      block[i] = random();
    }
    auto* text = reinterpret_cast<char*>(block.data() + block.size() / 2);
    for (std::size_t i = 0; i < (1 << 19); ++i) {
      text[i] = record[(i + m) % record.size()];
    }
    ASSERT_EQ(::write(fd, block.data(), 1 << 20), 1 << 20);
  }
  ::close(fd);
}

void build_tree(const fs::path& root) {
  const fs::path s = root / "static";
  fs::create_directories(s / "empty");
  fs::create_directories(s / "nested" / "empty" / "deeper");
  fs::create_directories(s / "private");
  fs::create_directories(s / "shared-tmp");
  fs::create_directories(root / "live");
  ASSERT_EQ(::chmod((s / "private").c_str(), 0700), 0);
  ASSERT_EQ(::chmod((s / "shared-tmp").c_str(), 01777), 0);
  ASSERT_EQ(::lchown((s / "private").c_str(), 999, 999), 0);

  write_file(s / "secret.key", "not really a key\n", 0600, 999, 999);
  write_file(s / "run.sh", "#!/bin/sh\necho hello\n", 0755, 0, 0);
  write_file(s / "setuid-tool", "pretend binary\n", 04755, 0, 0);
  write_file(s / "www-data.html", "<p>hi</p>\n", 0644, 33, 33);
  write_file(s / "nobody.txt", "nobody's\n", 0444, 65534, 65534);
  write_file(s / "private" / "notes", "private notes\n", 0600, 999, 999);
  write_file(s / "hard-a", "one inode, three names\n", 0640, 1000, 1000);
  ASSERT_EQ(::link((s / "hard-a").c_str(), (s / "hard-b").c_str()), 0);
  ASSERT_EQ(::link((s / "hard-a").c_str(), (s / "nested" / "hard-c").c_str()), 0);
  fs::create_symlink("run.sh", s / "link-to-run");
  fs::create_symlink("../static/nested", s / "link-to-dir");
  fs::create_symlink("does-not-exist", s / "dangling");
  ASSERT_EQ(::lchown((s / "dangling").c_str(), 1000, 1000), 0);

  // Sparse: 256 MiB with three islands of data.
  {
    const int fd = ::open((s / "sparse.img").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    const std::string island(64 * 1024, 'S');
    for (const off_t at : {off_t{0}, off_t{100} << 20, (off_t{256} << 20) - 65536}) {
      ASSERT_EQ(::pwrite(fd, island.data(), island.size(), at), 65536);
    }
    ::close(fd);
  }

  // 10 000 small files in 100 folders, sizes 0..4 KiB, a few modes.
  for (int d = 0; d < 100; ++d) {
    const fs::path dir = s / "small" / ("d" + std::to_string(d));
    fs::create_directories(dir);
    for (int f = 0; f < 100; ++f) {
      const int n = d * 100 + f;
      const std::string content(static_cast<std::size_t>((n * 37) % 4097), 'a' + (n % 26));
      write_file(dir / ("f" + std::to_string(n)), content, n % 3 == 0 ? 0600 : 0644,
                 static_cast<uid_t>(n % 5 == 0 ? 1000 : 0),
                 static_cast<gid_t>(n % 7 == 0 ? 1000 : 0));
    }
  }
  write_big_file(s / "big.bin", 1024);
}

// ---------------------------------------------------------------------------

constexpr std::string_view stop_label = "docker-volume-backup.stop-during-backup";

// One volume with the tree and one labelled service writing to it for the
// whole suite: building 1 GiB and 10 000 files once is enough.
class archive_e2e : public engine_test {
 protected:
  static void SetUpTestSuite() {
    auto c = engine::client::connect();
    ASSERT_TRUE(c) << c.error().describe();
    suite_client_.emplace(std::move(*c));
    volume_ = "lbt" + std::to_string(::getpid()) + "-archive-data";
    auto v = suite_client_->create_volume(volume_);
    ASSERT_TRUE(v) << v.error().describe();
    ASSERT_FALSE(v->mountpoint.empty());
    mountpoint_ = v->mountpoint;
    build_tree(mountpoint_);

    namespace json = boost::json;
    // Appends a numbered line 50 times a second: a writer whose data would
    // tear if it were read while running.
    const json::object spec{
        {"Name", volume_ + "-writer"},
        {"Labels", json::object{{std::string(stop_label), "true"}}},
        {"TaskTemplate",
         json::object{
             {"ContainerSpec",
              json::object{
                  {"Image", test_image()},
                  {"Command",
                   json::array{"sh", "-c",
                               "i=$(wc -l < /data/live/log 2>/dev/null || echo 0); "
                               "while true; do i=$((i+1)); echo \"line $i\" >> /data/live/log; "
                               "usleep 20000; done"}},
                  {"StopGracePeriod", 1'000'000'000},
                  {"Mounts", json::array{json::object{
                                 {"Type", "volume"}, {"Source", volume_}, {"Target", "/data"}}}}}},
             {"RestartPolicy", json::object{{"Condition", "any"}}}}},
        {"Mode", json::object{{"Replicated", json::object{{"Replicas", 1}}}}}};
    auto id = suite_client_->create_service(spec);
    ASSERT_TRUE(id) << id.error().describe();
    service_ = *id;
  }

  static void TearDownTestSuite() {
    if (!suite_client_) {
      return;
    }
    if (!service_.empty()) {
      (void)suite_client_->remove_service(service_);
    }
    eventually([&] {
      auto r = suite_client_->remove_volume(volume_, true);
      return r || r.error().is(engine::errc::not_found);
    });
    suite_client_.reset();
  }

  void SetUp() override {
    engine_test::SetUp();
    ASSERT_FALSE(service_.empty());
    ASSERT_TRUE(eventually([&] { return running_tasks(service_) == 1; }))
        << "the writer service never ran";
    // Something written since the service started: it really writes.
    ASSERT_TRUE(eventually([&] { return fs::exists(fs::path(mountpoint_) / "live" / "log"); }));
    auto journals = quiesce::make_config_journal_store(engine());
    journals_ = std::move(journals);
    dir_ = fs::temp_directory_path() / unique("archives");
    fs::create_directories(dir_);
    on_teardown([dir = dir_] { fs::remove_all(dir); });
  }

  api::backup_schedule schedule(std::string_view name, std::string_view compression) const {
    const std::string yaml =
        "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n  name: " + std::string(name) +
        "\nspec:\n  schedule: '@every 1h'\n  volumes: [" + volume_ +
        "]\n  archive:\n    compression: " + std::string(compression) +
        "\n  destinations:\n    - local: {path: " + dir_.string() + "}\n";
    const auto decoded = api::decode(yaml);
    EXPECT_TRUE(decoded.ok());
    return std::get<api::backup_schedule>(decoded.objects().at(0));
  }

  bool service_held() {
    auto s = engine().inspect_service(service_);
    return s && s->replicas == 0 && running_tasks(service_) == 0;
  }

  /// Backs up with the real runner; the manifest of the volume is taken inside
  /// the held window (the archive step is where the runner reads), after
  /// checking that the writer is down.
  backup::run_result backup_holding(const api::backup_schedule& s, bool direct_read,
                                    std::map<std::string, std::string>& held_manifest,
                                    bool& was_held) {
    auto steps = backup::standard_archive_steps();
    auto write = steps.write;
    steps.write = [&, write](const backup::archive_request& request) {
      was_held = service_held();
      held_manifest = manifest(mountpoint_);
      return write(request);
    };
    backup::runner_options options;
    options.helper_image = test_image();
    options.direct_read = direct_read;
    backup::engine_runner runner(engine(), *journals_, steps, options);
    const std::atomic<bool> cancel{false};
    return runner.run(
        s, unique("run"), [](std::string_view, const std::string&) {}, [](int) {}, cancel);
  }

  /// Extracts `archive` with `command` ("tar ..." or "bsdtar ...") into a fresh
  /// folder and returns the manifest of the volume's folder in it.
  std::map<std::string, std::string> extracted(const std::string& archive,
                                               const std::string& command) {
    const fs::path into = dir_ / ("x-" + std::to_string(extractions_++));
    fs::create_directories(into);
    const auto r = run_command(command + " '" + archive + "' -C '" + into.string() + "'");
    EXPECT_EQ(r.status, 0) << command;
    auto m = manifest(into / volume_);
    fs::remove_all(into);
    return m;
  }

  std::unique_ptr<quiesce::journal_store> journals_;
  fs::path dir_;
  int extractions_ = 0;

  static inline std::optional<engine::client> suite_client_;
  static inline std::string volume_;
  static inline std::string mountpoint_;
  static inline std::string service_;
};

TEST_F(archive_e2e, round_trip_while_a_service_writes_direct_read_gzip) {
  std::map<std::string, std::string> held;
  bool was_held = false;
  const auto result = backup_holding(schedule("roundtrip-gz", "gzip"), true, held, was_held);
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_TRUE(was_held) << "the writer was still running while the volume was read";
  EXPECT_THAT(result.message, ::testing::HasSubstr(volume_ + ": direct"));
  EXPECT_GT(held.size(), 10'000U);
  EXPECT_TRUE(eventually([&] { return running_tasks(service_) == 1; }))
      << "the writer did not come back";

  // A standard .tar.gz: gzip, GNU tar and bsdtar read it; the checksum holds.
  const fs::path archive = result.archive;
  EXPECT_EQ(run_command("gzip -t '" + archive.string() + "'").status, 0);
  EXPECT_EQ(run_command("cd '" + dir_.string() + "' && sha256sum -c --quiet '" +
                        archive.filename().string() + ".sha256'")
                .status,
            0);
  EXPECT_EQ(run_command("tar -tzf '" + archive.string() + "' > /dev/null").status, 0);
  EXPECT_EQ(run_command("bsdtar -tf '" + archive.string() + "' > /dev/null").status, 0);

  const auto gnu = extracted(archive, "tar --numeric-owner -xpzf");
  EXPECT_EQ(gnu, held) << "GNU tar:\n" << differences(held, gnu);
  const auto bsd = extracted(archive, "bsdtar --numeric-owner -xpf");
  EXPECT_EQ(bsd, held) << "bsdtar:\n" << differences(held, bsd);
}

TEST_F(archive_e2e, round_trip_through_the_engine_zstd) {
  std::map<std::string, std::string> held;
  bool was_held = false;
  const auto result = backup_holding(schedule("roundtrip-zst", "zstd"), false, held, was_held);
  ASSERT_TRUE(result.ok) << result.message;
  EXPECT_TRUE(was_held);
  EXPECT_THAT(result.message, ::testing::HasSubstr(volume_ + ": engine"));
  EXPECT_TRUE(eventually([&] { return running_tasks(service_) == 1; }));

  const std::string archive = result.archive;
  EXPECT_EQ(run_command("zstd -tq '" + archive + "'").status, 0);
  const auto gnu = extracted(archive, "tar --numeric-owner --zstd -xpf");
  EXPECT_EQ(gnu, held) << "GNU tar:\n" << differences(held, gnu);
  const auto bsd = extracted(archive, "bsdtar --numeric-owner -xpf");
  EXPECT_EQ(bsd, held) << "bsdtar:\n" << differences(held, bsd);
}

TEST_F(archive_e2e, kill_9_while_writing_leaves_nothing_under_the_final_name) {
  const fs::path file = dir_ / "schedule.yaml";
  {
    const auto s = schedule("killed", "gzip");
    std::ofstream(file) << api::encode_yaml(s);
  }
  auto final_archives = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const auto name = e.path().filename().string();
      if (name.ends_with(".tar.gz")) {
        names.push_back(name);
      }
    }
    return names;
  };
  auto partials = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename().string().ends_with(".partial")) {
        names.push_back(e.path().filename().string());
      }
    }
    return names;
  };

  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Through the engine: the slower path, so there is time to land the kill.
    ::execl(LIFEBOAT_BINARY, LIFEBOAT_BINARY, "backup", "--schedule", file.c_str(),
            "--helper-image", test_image().c_str(), "--read-through-engine", nullptr);
    ::_exit(127);
  }
  // Killed once a few MiB of the partial file are on disk.
  const bool writing = eventually(
      [&] {
        for (const auto& p : partials()) {
          std::error_code ec;
          if (fs::file_size(dir_ / p, ec) > (4U << 20)) {
            return true;
          }
        }
        return false;
      },
      120s);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(writing) << "the backup never started writing";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the backup ended before the kill";

  EXPECT_THAT(final_archives(), ::testing::IsEmpty()) << "an archive is visible after a kill";
  EXPECT_THAT(partials(), ::testing::SizeIs(1));
  EXPECT_TRUE(service_held()) << "the writer came back by itself?";

  // Recovery brings the writer back, as a restarted controller would.
  const auto recovered =
      run_command(std::string(LIFEBOAT_BINARY) + " recover --timeout 120 > /dev/null");
  EXPECT_EQ(recovered.status, 0);
  EXPECT_TRUE(eventually([&] { return running_tasks(service_) == 1; }));

  // The next run of the schedule removes the leftover and publishes its own.
  const auto again = run_command(std::string(LIFEBOAT_BINARY) + " backup --schedule '" +
                                 file.string() + "' --helper-image " + test_image());
  EXPECT_EQ(again.status, 0) << again.out;
  EXPECT_THAT(partials(), ::testing::IsEmpty());
  EXPECT_THAT(final_archives(), ::testing::SizeIs(1));
  // The volume container of the killed run is not left behind.
  const auto containers = run_command(
      "docker ps -aq --filter label=lifeboat.volume-container=true "
      "--filter name=lifeboat-read-killed-");
  EXPECT_EQ(containers.out, "") << "the killed run's volume container was left behind";
}

}  // namespace
}  // namespace lifeboat::e2e
