// lifeboat restore against the real swarm: a backup restored into a new
// volume gives the same tree; a wipe-restore into a volume whose service runs
// holds the service meanwhile; hostile and damaged archives change nothing;
// kill -9 mid-restore is undone by `lifeboat recover`.
#include "tests/e2e/engine_fixture.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;

std::string lifeboat(const std::string& args) { return std::string(LIFEBOAT_BINARY) + " " + args; }

// lifeboat:dev (hack/image.sh) carries busybox for the wipe container.
std::string helper_image() {
  const char* image = std::getenv("LIFEBOAT_IMAGE");
  return image != nullptr && *image != '\0' ? image : "lifeboat:dev";
}

class restore_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    dir_ = fs::path(testing::TempDir()) / unique("restore");
    fs::create_directories(dir_);
    on_teardown([this] { fs::remove_all(dir_); });
    on_teardown([this] {
      // Containers a killed restore left behind.
      auto left = engine().list_containers({{"label", {"lifeboat.volume-container=true"}}});
      for (const auto& c : left ? *left : std::vector<engine::container_summary>{}) {
        for (const auto& n : c.names) {
          if (n.find("lifeboat-restore-restore-") != std::string::npos ||
              n.find("lifeboat-wipe-restore-") != std::string::npos) {
            (void)engine().remove_container(c.id, true);
          }
        }
      }
    });
  }

  // Runs `script` with `volume` at /data in a throw-away busybox container.
  command_result in_volume(const std::string& volume, const std::string& script) {
    return run_command("docker run --rm --network none -v " + volume + ":/data " + test_image() +
                       " sh -c '" + script + "'");
  }

  // Path, type, mode, owner, size, links and target of every entry, and the
  // SHA-256 of every file: what "identical" means for a restore. A
  // directory's size is left out: it depends on the order its entries were
  // created in (a direct read stores them in readdir order, the engine in
  // name order), not on what it holds.
  std::string manifest(const std::string& volume) {
    auto r = in_volume(volume,
                       "cd /data && find . | sort | while read -r p; do "
                       "if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then "
                       "stat -c \"%n %F %a %u:%g - %h %N\" \"$p\"; else "
                       "stat -c \"%n %F %a %u:%g %s %h %N\" \"$p\"; fi; done && "
                       "find . -type f | sort | xargs -r sha256sum");
    EXPECT_EQ(r.status, 0);
    return r.out;
  }

  std::string restore(const std::string& args) {
    return lifeboat("restore --helper-image " + helper_image() + " " + args + " 2>&1");
  }

  // The tree of the archive issue: modes, owners, symlinks, hard links, empty
  // folders, a 1 GiB file and 10 000 small files.
  void fill(const std::string& volume) {
    auto r = in_volume(
        volume,
        "set -e; cd /data; mkdir -p small empty deep/a/b private; "
        "chmod 0700 private; chmod 1777 deep; "
        "echo secret > private/key; chmod 0600 private/key; chown 999:999 private/key; "
        "echo data > deep/a/b/file; chown 1234:5678 deep/a/b/file; chmod 4755 deep/a/b/file; "
        "ln deep/a/b/file hard1; ln deep/a/b/file deep/hard2; "
        "ln -s deep/a/b/file rel-link; ln -s ../../hard1 deep/a/up-link; ln -s missing dangling; "
        "head -c 1073741824 /dev/zero > big.bin; echo tail >> big.bin; "
        "cd small; i=0; while [ $i -lt 10000 ]; do echo $i > f$i; i=$((i+1)); done");
    ASSERT_EQ(r.status, 0) << r.out;
  }

  // An archive "<name>.tar.gz" of the folder "data" that `script` fills
  // (run in it by the host's shell; GNU tar keeps holes with --sparse).
  fs::path archive_of(const std::string& name, const std::string& script) {
    const auto staging = dir_ / ("staging-" + name);
    fs::create_directories(staging / "data");
    EXPECT_EQ(run_command("cd '" + (staging / "data").string() + "' && " + script).status, 0);
    const auto file = dir_ / (name + ".tar.gz");
    EXPECT_EQ(
        run_command("tar --sparse -czf '" + file.string() + "' -C '" + staging.string() + "' data")
            .status,
        0);
    return file;
  }

  fs::path dir_;
};

// The lines in which two manifests differ, for a readable failure.
std::string manifest_diff(const std::string& want, const std::string& got) {
  const auto dir = fs::temp_directory_path();
  const auto a = dir / ("lifeboat-want-" + std::to_string(::getpid()));
  const auto b = dir / ("lifeboat-got-" + std::to_string(::getpid()));
  std::ofstream(a) << want;
  std::ofstream(b) << got;
  const auto d = run_command("diff '" + a.string() + "' '" + b.string() + "' | head -20");
  fs::remove(a);
  fs::remove(b);
  return d.out;
}

// A manifest without the lines of the writer's file /data/junk.
std::string without_junk(const std::string& manifest) {
  std::string out;
  std::size_t start = 0;
  while (start < manifest.size()) {
    const auto end = manifest.find('\n', start);
    const auto line = manifest.substr(start, end == std::string::npos ? end : end - start + 1);
    if (line.find("./junk") == std::string::npos) {
      out += line;
    }
    start = end == std::string::npos ? manifest.size() : end + 1;
  }
  return out;
}

fs::path newest_archive(const fs::path& dir) {
  fs::path found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (e.is_regular_file() && name.ends_with(".tar.zst")) {
      found = e.path();
    }
  }
  return found;
}

TEST_F(restore_e2e, round_trip_then_wipe_restore_holds_the_running_service) {
  const auto original = create_volume(unique("orig"));
  const auto copy = unique("copy");
  on_teardown([this, copy] {
    eventually([&] {
      auto r = engine().remove_volume(copy, true);
      return r || r.error().is(engine::errc::not_found);
    });
  });
  fill(original);
  const auto expected = manifest(original);
  ASSERT_NE(expected.find("big.bin"), std::string::npos);

  // Backup with lifeboat.
  const auto schedule = dir_ / "schedule.yaml";
  std::ofstream(schedule) << "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: "
                          << unique("s") << "}\nspec:\n  schedule: \"@daily\"\n  volumes: ["
                          << original << "]\n  stopDuringBackup: \"" << unique("nobody")
                          << "\"\n  archive: {compression: zstd}\n"
                          << "  destinations: [{local: {path: " << (dir_ / "archives").string()
                          << "}}]\n";
  auto backup = run_command(lifeboat("backup --schedule " + schedule.string() + " --helper-image " +
                                     helper_image() + " 2>&1"));
  ASSERT_EQ(backup.status, 0) << backup.out;
  const auto archive = newest_archive(dir_ / "archives");
  ASSERT_FALSE(archive.empty());
  ASSERT_TRUE(fs::exists(archive.string() + ".sha256"));

  // Restore into a new volume (asked for). The default path (direct here, where the
  // mountpoints are writable): through the engine, the engine's own
  // extraction chowns hard links after the fact, which clears a setuid bit
  // shared by linked files.
  auto restored = run_command(restore("--archive " + archive.string() + " --volume " + original +
                                      "=" + copy + " --create-volume"));
  ASSERT_EQ(restored.status, 0) << restored.out;
  EXPECT_NE(restored.out.find("checksum verified"), std::string::npos) << restored.out;
  const auto restored_manifest = manifest(copy);
  EXPECT_TRUE(restored_manifest == expected) << "the restored tree differs:\n"
                                             << manifest_diff(expected, restored_manifest);

  // Wipe-restore into the original while an unlabelled service writes to it.
  const auto service = create_service(unique("writer"), original,
                                      "while true; do date > /data/junk; sleep 1; done", 1);
  ASSERT_TRUE(eventually([&] { return running_tasks(service) == 1; }));
  ASSERT_TRUE(eventually([&] { return in_volume(original, "test -f /data/junk").status == 0; }));
  auto pending = std::async(std::launch::async, [&] {
    return run_command(
        restore("--archive " + archive.string() + " --volume " + original + " --wipe"));
  });
  bool held = false;
  while (pending.wait_for(std::chrono::milliseconds{100}) != std::future_status::ready) {
    auto s = engine().inspect_service(service);
    if (s && s->replicas == 0u && s->service_labels.contains("lifeboat.held-by")) {
      held = true;
    }
  }
  const auto wiped = pending.get();
  ASSERT_EQ(wiped.status, 0) << wiped.out;
  EXPECT_TRUE(held) << "the service was never seen held during the restore";
  auto after = engine().inspect_service(service);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->replicas, 1u);
  EXPECT_FALSE(after->service_labels.contains("lifeboat.held-by"));
  EXPECT_TRUE(eventually([&] { return running_tasks(service) == 1; }));
  // The writer is back and writes its junk again: compare without it.
  (void)engine().remove_service(service);
  ASSERT_TRUE(eventually([&] { return running_tasks(service) == 0; }));
  const auto wiped_manifest = without_junk(manifest(original));
  EXPECT_TRUE(wiped_manifest == expected) << "not the archive's tree:\n"
                                          << manifest_diff(expected, wiped_manifest);

  // kill -9 in the middle of a restore: the service stays held until
  // `lifeboat recover` brings it back.
  const auto victim = create_service(unique("victim"), copy, "sleep 100000", 1);
  ASSERT_TRUE(eventually([&] { return running_tasks(victim) == 1; }));
  const auto pid_file = dir_ / "pid";
  // Detached, with both outputs in a file: popen returns at once.
  const std::string command =
      lifeboat("restore --helper-image " + helper_image() + " --archive " + archive.string() +
               " --volume " + original + "=" + copy + " --wipe --path engine");
  ASSERT_EQ(run_command("sh -c '" + command + " > " + (dir_ / "killed.log").string() +
                        " 2>&1 & echo $! > " + pid_file.string() + "'")
                .status,
            0);
  // Killed once it unpacks (the unpack of 1 GiB takes seconds).
  ASSERT_TRUE(eventually([&] {
    return run_command("grep -q Restoring " + (dir_ / "killed.log").string()).status == 0;
  })) << run_command("cat " + (dir_ / "killed.log").string()).out;
  std::string pid;
  std::ifstream(pid_file) >> pid;
  ASSERT_FALSE(pid.empty());
  ASSERT_EQ(::kill(std::stoi(pid), SIGKILL), 0);
  auto still = engine().inspect_service(victim);
  ASSERT_TRUE(still);
  EXPECT_EQ(still->replicas, 0u);
  // Recovery leaves a run alone while its owner's lease is fresh (it cannot
  // tell a killed process from a slow one), so it succeeds once that expired.
  command_result recovered;
  EXPECT_TRUE(eventually(
      [&] {
        recovered = run_command(lifeboat("recover 2>&1"));
        return recovered.status == 0 &&
               eventually([&] { return running_tasks(victim) == 1; }, std::chrono::seconds{5});
      },
      std::chrono::seconds{150}))
      << recovered.out;
  EXPECT_TRUE(eventually([&] { return running_tasks(victim) == 1; })) << recovered.out;
}

// One hand-made entry list, gzip'd.
struct raw_entry {
  raw_entry(std::string p, unsigned t = AE_IFREG, std::string s = {}, std::string h = {})
      : path(std::move(p)), type(t), symlink(std::move(s)), hardlink(std::move(h)) {}
  std::string path;
  unsigned type;
  std::string symlink;
  std::string hardlink;
};

void write_tar(const fs::path& file, const std::vector<raw_entry>& entries) {
  ::archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  archive_write_open_filename(a, file.c_str());
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, 0755);
    if (!e.symlink.empty()) {
      archive_entry_set_symlink(entry, e.symlink.c_str());
    }
    if (!e.hardlink.empty()) {
      archive_entry_set_hardlink(entry, e.hardlink.c_str());
    }
    const std::string data = e.type == AE_IFREG && e.hardlink.empty() ? "evil\n" : "";
    archive_entry_set_size(entry, static_cast<la_int64_t>(data.size()));
    archive_write_header(a, entry);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
}

TEST_F(restore_e2e, hostile_and_damaged_archives_leave_the_volume_unchanged) {
  const auto volume = create_volume(unique("target"));
  ASSERT_EQ(in_volume(volume,
                      "mkdir -p /data/d && echo keep > /data/d/keep && "
                      "head -c 3000000 /dev/urandom > /data/blob")
                .status,
            0);
  const auto before = manifest(volume);
  const raw_entry root{"v/", AE_IFDIR};
  const raw_entry file{"v/file"};
  struct hostile {
    hostile(std::string n, std::vector<raw_entry> e, std::string en)
        : name(std::move(n)), entries(std::move(e)), entry(std::move(en)) {}
    std::string name;
    std::vector<raw_entry> entries;
    std::string entry;
  };
  const std::vector<hostile> cases = {
      {"absolute", {root, file, {"/etc/evil"}}, "/etc/evil"},
      {"dotdot", {root, file, {"v/../../evil"}}, "v/../../evil"},
      {"symlink", {root, file, {"v/up", AE_IFLNK, "../../../etc"}}, "v/up"},
      {"hardlink", {root, file, {"v/h", AE_IFREG, "", "etc/passwd"}}, "v/h"},
      {"device", {root, file, {"v/null", AE_IFCHR}}, "v/null"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto file_path = dir_ / (c.name + ".tar.gz");
    write_tar(file_path, c.entries);
    auto r = run_command(
        restore("--archive " + file_path.string() + " --volume v=" + volume + " --wipe"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("entry " + c.entry + ":"), std::string::npos) << r.out;
    EXPECT_TRUE(manifest(volume) == before) << "the volume changed";
  }

  // A real archive of the volume's content, truncated; then with a wrong checksum.
  const auto good = dir_ / "good.tar.gz";
  ASSERT_EQ(run_command("docker run --rm --network none -v " + volume + ":/data " + test_image() +
                        " tar -C / -czf - data > " + good.string())
                .status,
            0);
  const auto cut = dir_ / "cut.tar.gz";
  fs::copy_file(good, cut);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  auto r =
      run_command(restore("--archive " + cut.string() + " --volume data=" + volume + " --wipe"));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("corrupt archive: at entry data/blob"), std::string::npos) << r.out;
  EXPECT_TRUE(manifest(volume) == before) << "the volume changed";

  std::ofstream(good.string() + ".sha256") << std::string(64, '0') << "  good.tar.gz\n";
  r = run_command(restore("--archive " + good.string() + " --volume data=" + volume + " --wipe"));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("checksum mismatch"), std::string::npos) << r.out;
  EXPECT_TRUE(manifest(volume) == before) << "the volume changed";
}

// Issue 12, item 2: a target volume that does not exist is an error naming
// the node the restore runs on; it is created only when asked.
TEST_F(restore_e2e, item2_a_missing_target_volume_is_created_only_when_asked) {
  const auto archive = archive_of("one", "echo restored > file");
  const auto missing = unique("nowhere");
  on_teardown([this, missing] {
    eventually([&] {
      auto r = engine().remove_volume(missing, true);
      return r || r.error().is(engine::errc::not_found);
    });
  });
  auto info = engine().info();
  ASSERT_TRUE(info) << info.error().describe();
  ASSERT_FALSE(info->name.empty());
  ASSERT_FALSE(info->swarm.node_id.empty());

  auto refused =
      run_command(restore("--archive " + archive.string() + " --volume data=" + missing));
  EXPECT_EQ(refused.status, 1) << refused.out;
  EXPECT_NE(refused.out.find("volume " + missing + " does not exist on node " + info->name +
                             " (node ID " + info->swarm.node_id + ")"),
            std::string::npos)
      << refused.out;
  EXPECT_NE(refused.out.find("set createVolume: true"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("--create-volume"), std::string::npos) << refused.out;
  auto absent = engine().inspect_volume(missing);
  EXPECT_TRUE(!absent && absent.error().is(engine::errc::not_found)) << "the volume was created";

  auto created = run_command(
      restore("--archive " + archive.string() + " --volume data=" + missing + " --create-volume"));
  EXPECT_EQ(created.status, 0) << created.out;
  EXPECT_EQ(in_volume(missing, "cat /data/file").out, "restored\n");
}

// Issue 12, item 2: a restore whose files do not fit is refused while
// verifying, before anything is held, wiped or written.
class item2_restore_space_e2e : public restore_e2e {
 protected:
  // A volume whose data is a 4 MiB tmpfs, mounted only while a container
  // uses it: written through the engine, measured inside a container.
  std::string small_tmpfs_volume(const std::string& name) {
    const auto created =
        run_command("docker volume create -o type=tmpfs -o device=tmpfs -o o=size=4m " + name);
    EXPECT_EQ(created.status, 0) << created.out;
    on_teardown([this, name] {
      eventually([&] {
        auto r = engine().remove_volume(name, true);
        return r || r.error().is(engine::errc::not_found);
      });
    });
    return name;
  }

  struct watched {
    command_result run;
    bool held = false;  ///< the service was seen at 0 replicas or labelled held-by
  };

  // Runs `command` while watching `service` for any sign of a hold.
  watched run_watching(const std::string& service, const std::string& command) {
    auto pending = std::async(std::launch::async, [&] { return run_command(command); });
    watched w;
    while (pending.wait_for(std::chrono::milliseconds{50}) != std::future_status::ready) {
      auto s = engine().inspect_service(service);
      if (s && (s->replicas != 1u || s->service_labels.contains("lifeboat.held-by"))) {
        w.held = true;
      }
    }
    w.run = pending.get();
    return w;
  }
};

TEST_F(item2_restore_space_e2e, item2_a_wipe_restore_bigger_than_the_free_space_is_refused) {
  const auto volume = small_tmpfs_volume(unique("small"));
  // The service keeps the tmpfs mounted, with 3 MiB in it, written once.
  const auto service = create_service(
      unique("app"), volume,
      "head -c 3145728 /dev/urandom > /data/keep && sha256sum /data/keep > /data/keep.sum && "
      "sleep 100000",
      1);
  ASSERT_TRUE(eventually([&] { return running_tasks(service) == 1; }));
  ASSERT_TRUE(eventually([&] { return in_volume(volume, "test -s /data/keep.sum").status == 0; }));
  const auto before = in_volume(volume, "cat /data/keep.sum && sha256sum /data/keep");
  ASSERT_EQ(before.status, 0) << before.out;

  // 6 MiB into a 4 MiB file system: refused even counting the 3 MiB that
  // wipe would remove, naming the volume, the bytes needed and free.
  const auto big = archive_of("big", "head -c 6291456 /dev/urandom > big");
  auto refused = run_watching(
      service, restore("--archive " + big.string() + " --volume data=" + volume + " --wipe"));
  EXPECT_EQ(refused.run.status, 1) << refused.run.out;
  EXPECT_NE(refused.run.out.find("not enough space: volume " + volume + " needs 6291456 bytes"),
            std::string::npos)
      << refused.run.out;
  // keep and keep.sum take 3 MiB and a page of the 4 MiB.
  EXPECT_NE(refused.run.out.find(" free, plus 3149824 bytes (3.0 MiB) that its content takes, "
                                 "which wipe removes first"),
            std::string::npos)
      << refused.run.out;
  EXPECT_NE(refused.run.out.find("its file system has 1044480 bytes (1020.0 KiB) free"),
            std::string::npos)
      << refused.run.out;
  EXPECT_EQ(refused.run.out.find("Quiescing"), std::string::npos) << refused.run.out;
  EXPECT_FALSE(refused.held) << "the service was held by a refused restore";

  // Without wipe nothing is credited: 2 MiB do not fit in the 1 MiB free.
  const auto two = archive_of("two", "head -c 2097152 /dev/urandom > two");
  auto in_place =
      run_watching(service, restore("--archive " + two.string() + " --volume data=" + volume));
  EXPECT_EQ(in_place.run.status, 1) << in_place.run.out;
  EXPECT_NE(in_place.run.out.find("not enough space: volume " + volume + " needs 2097152 bytes"),
            std::string::npos)
      << in_place.run.out;
  EXPECT_FALSE(in_place.held) << "the service was held by a refused restore";

  // Untouched: the same service task kept the same data.
  auto after = engine().inspect_service(service);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->replicas, 1u);
  EXPECT_FALSE(after->service_labels.contains("lifeboat.held-by"));
  EXPECT_EQ(running_tasks(service), 1u);
  const auto now = in_volume(volume, "cat /data/keep.sum && sha256sum /data/keep");
  EXPECT_EQ(now.out, before.out) << "the volume's data changed";

  // With wipe the same 2 MiB fit: the 3 MiB in the volume are removed first.
  auto wiped =
      run_command(restore("--archive " + two.string() + " --volume data=" + volume + " --wipe"));
  EXPECT_EQ(wiped.status, 0) << wiped.out;
  EXPECT_NE(wiped.out.find("fits"), std::string::npos) << wiped.out;
  EXPECT_TRUE(eventually([&] { return running_tasks(service) == 1; }));
}

TEST_F(item2_restore_space_e2e, item2_sparse_files_count_at_logical_size_on_the_engine_path) {
  // A plain local volume whose mountpoint is a 4 MiB tmpfs: the direct path
  // measures it with statvfs.
  const auto volume = create_volume(unique("plain"));
  auto v = engine().inspect_volume(volume);
  ASSERT_TRUE(v) << v.error().describe();
  ASSERT_EQ(run_command("mount -t tmpfs -o size=4m tmpfs '" + v->mountpoint + "'").status, 0);
  on_teardown([mp = v->mountpoint] { run_command("umount '" + mp + "'"); });
  // 64 MiB of which 8 KiB are data.
  const auto sparse = archive_of("sparse",
                                 "head -c 4096 /dev/urandom > hole && truncate -s 64M hole && "
                                 "head -c 4096 /dev/urandom >> hole");

  // Through the engine the holes are written as zeros: refused.
  auto engine_path = run_command(
      restore("--archive " + sparse.string() + " --volume data=" + volume + " --path engine"));
  EXPECT_EQ(engine_path.status, 1) << engine_path.out;
  EXPECT_NE(engine_path.out.find("not enough space: volume " + volume + " needs 67112960 bytes"),
            std::string::npos)
      << engine_path.out;
  EXPECT_TRUE(fs::is_empty(v->mountpoint)) << "written although refused";

  // Directly the holes stay holes: it fits, and stays sparse.
  auto direct_path = run_command(
      restore("--archive " + sparse.string() + " --volume data=" + volume + " --path direct"));
  EXPECT_EQ(direct_path.status, 0) << direct_path.out;
  EXPECT_NE(direct_path.out.find("fits (8.0 KiB needed, direct)"), std::string::npos)
      << direct_path.out;
  const auto file = fs::path(v->mountpoint) / "hole";
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(fs::file_size(file), 64U * 1024 * 1024 + 4096);
}

}  // namespace
}  // namespace lifeboat::e2e
