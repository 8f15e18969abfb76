// format: restic end to end on the real swarm (issue 17): a labelled writer
// is held while lifeboat writes one snapshot per volume into a local restic
// repository; Debian's restic checks the repository (--read-data) and
// restores the volume's exact tree; the next run reads only the changed file
// and forgets by keepLast; a wrong password or a folder that is not a
// repository fails before anything is held; `lifeboat backup` killed with
// SIGKILL at random instants leaves a repository restic accepts, and the
// next run goes on from it.
#include "reconcilers/schedule.hpp"
#include "tests/e2e/backup_runner_fixture.hpp"

#include <boost/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <regex>
#include <set>
#include <thread>

namespace lifeboat::e2e {
namespace {

class restic_e2e : public backup_runner_test {
 protected:
  void SetUp() override {
    backup_runner_test::SetUp();
    if (run_command("command -v restic >/dev/null").status != 0) {
      GTEST_FAIL() << "Debian's restic is not installed (hack/setup.sh installs it)";
    }
    repo_ = dir_ / "repo";
    password_ = dir_ / "password";
    std::ofstream(password_) << "correct horse\n";
  }

  api::backup_schedule restic_schedule(const std::string& volume, const std::string& group) {
    const auto decoded = api::decode(
        "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n  name: " + unique("nightly") +
        "\nspec:\n  schedule: '@daily'\n  volumes: [" + volume + "]\n  stopDuringBackup: " + group +
        "\n  format: restic\n  restic: {passwordFile: " + password_.string() +
        "}\n  destinations:\n    - local: {path: " + repo_.string() +
        "}\n  retention: {keepLast: 1}\n");
    EXPECT_TRUE(decoded.ok());
    return std::get<api::backup_schedule>(decoded.objects().at(0));
  }

  /// The real runner; `held` says whether `service` was at zero replicas while
  /// the runner reported workloads held.
  backup::run_result run_backup(
      const api::backup_schedule& s, const std::string& service, bool& held,
      const std::function<void()>& while_held = [] {}) {
    backup::runner_options options;
    options.helper_image = test_image();
    backup::engine_runner runner(engine(), *journals_, backup::standard_archive_steps(), options);
    const std::atomic<bool> cancel{false};
    held = false;
    return runner.run(
        s, unique("run-" + std::to_string(++runs_)), [](std::string_view, const std::string&) {},
        [&](int workloads) {
          if (workloads > 0) {
            auto current = engine().inspect_service(service);
            held = current && current->replicas == 0U;
            while_held();
          }
        },
        cancel);
  }

  command_result restic(const std::string& args) {
    return run_command("restic -r " + repo_.string() + " --password-file " + password_.string() +
                       " --no-cache " + args + " 2>&1");
  }

  command_result in_volume(const std::string& volume, const std::string& script) {
    return run_command("docker run --rm --network none -v " + volume + ":/data " + test_image() +
                       " sh -c '" + script + "'");
  }

  /// Every path with type, mode, owner, link count and symlink target, then
  /// every file's SHA-256: what a restore must reproduce.
  static std::string tree(const fs::path& root) {
    auto r = run_command("cd " + root.string() +
                         " && find . -printf '%P %y %m %U:%G %n %l\\n' | sort && find . -type f "
                         "-print0 | sort -z | xargs -0 -r sha256sum");
    EXPECT_EQ(r.status, 0);
    return r.out;
  }

  fs::path mountpoint(const std::string& volume) {
    auto r = run_command("docker volume inspect -f '{{.Mountpoint}}' " + volume);
    EXPECT_EQ(r.status, 0);
    std::string path = r.out;
    while (!path.empty() && path.back() == '\n') {
      path.pop_back();
    }
    return path;
  }

  /// `restic restore latest` into a fresh folder; the volume's tree is under it.
  fs::path restored(const std::string& volume) {
    const auto target = dir_ / ("restored-" + std::to_string(++restores_));
    auto r = restic("restore latest --target " + target.string());
    EXPECT_EQ(r.status, 0) << r.out;
    return target / volume;
  }

  std::size_t snapshot_count() {
    auto r = restic("snapshots --json");
    EXPECT_EQ(r.status, 0) << r.out;
    return r.status == 0 ? boost::json::parse(r.out).as_array().size() : 0;
  }

  fs::path repo_;
  fs::path password_;
  int restores_ = 0;
  int runs_ = 0;
};

// "(4 file(s), 1 read, 3 unchanged" of the volume's part of a run's message.
std::pair<int, int> files_read_and_unchanged(const std::string& message) {
  static const std::regex counts(R"(\((\d+) file\(s\), (\d+) read, (\d+) unchanged)");
  std::smatch m;
  if (!std::regex_search(message, m, counts)) {
    ADD_FAILURE() << "no file counts in: " << message;
    return {-1, -1};
  }
  return {std::stoi(m[2]), std::stoi(m[3])};
}

TEST_F(restic_e2e, snapshots_restic_reads_back_then_only_the_change_is_read) {
  const auto volume = create_volume(unique("db"));
  ASSERT_EQ(in_volume(volume,
                      "set -e; cd /data; mkdir -p a/b empty; echo hello > a/b/f; "
                      "dd if=/dev/urandom of=big bs=1024 count=6000 2>/dev/null; "
                      "echo secret > s; chmod 640 s; chown 1234:5678 big; "
                      "ln -s a/b/f link; ln big big.hard")
                .status,
            0);
  const auto group = unique("g");
  const auto service = writer(unique("db"), volume, group);
  const auto schedule = restic_schedule(volume, group);

  bool held = false;
  auto first = run_backup(schedule, service, held);
  ASSERT_TRUE(first.ok) << first.message;
  EXPECT_TRUE(held) << "the writer was not at zero while the volume was read";
  EXPECT_TRUE(back_as_before(service));
  EXPECT_EQ(first.archive, repo_.string());
  EXPECT_TRUE(first.snapshots.starts_with(volume + "=")) << first.snapshots;
  EXPECT_EQ(files_read_and_unchanged(first.message), std::make_pair(4, 0)) << first.message;

  // Debian's restic accepts the repository, data included, and restores the
  // exact tree.
  auto check = restic("check --read-data");
  ASSERT_EQ(check.status, 0) << check.out;
  EXPECT_EQ(tree(restored(volume)), tree(mountpoint(volume)));
  auto listed = restic("snapshots --json");
  ASSERT_EQ(listed.status, 0) << listed.out;
  const auto snapshot = boost::json::parse(listed.out).as_array().at(0).as_object();
  EXPECT_EQ(snapshot.at("paths").as_array().at(0).as_string(), "/" + volume);
  EXPECT_NE(listed.out.find("\"schedule=" + schedule.metadata.name + "\""), std::string::npos)
      << listed.out;

  // One file changes: the next run reads it alone, and keepLast 1 forgets the
  // first snapshot (and prunes what only it referenced).
  ASSERT_EQ(in_volume(volume, "echo again >> /data/a/b/f").status, 0);
  auto second = run_backup(schedule, service, held);
  ASSERT_TRUE(second.ok) << second.message;
  EXPECT_TRUE(held);
  EXPECT_TRUE(back_as_before(service));
  EXPECT_EQ(files_read_and_unchanged(second.message), std::make_pair(1, 3)) << second.message;
  EXPECT_NE(second.message.find("forgot 1 snapshot(s)"), std::string::npos) << second.message;
  EXPECT_EQ(snapshot_count(), 1U);
  check = restic("check --read-data");
  ASSERT_EQ(check.status, 0) << check.out;
  const auto again = restored(volume);
  EXPECT_EQ(tree(again), tree(mountpoint(volume)));
  std::ifstream f(again / "a/b/f");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "hello\nagain\n");
}

TEST_F(restic_e2e, a_wrong_password_or_a_foreign_folder_fails_before_anything_is_held) {
  const auto volume = create_volume(unique("db"));
  ASSERT_EQ(in_volume(volume, "echo hello > /data/f").status, 0);
  const auto group = unique("g");
  const auto service = writer(unique("db"), volume, group);
  const auto schedule = restic_schedule(volume, group);
  bool held = false;
  ASSERT_TRUE(run_backup(schedule, service, held).ok);
  const auto version = engine().inspect_service(service)->version;

  std::ofstream(password_) << "wrong\n";
  auto wrong = run_backup(schedule, service, held);
  EXPECT_FALSE(wrong.ok);
  EXPECT_NE(wrong.message.find("no key opens with the password in " + password_.string()),
            std::string::npos)
      << wrong.message;
  EXPECT_FALSE(held);
  EXPECT_EQ(engine().inspect_service(service)->version, version) << "the writer was touched";

  // A folder holding something else is not made a repository.
  std::ofstream(password_) << "correct horse\n";
  fs::remove_all(repo_);
  fs::create_directories(repo_);
  std::ofstream(repo_ / "notes.txt") << "archives live here\n";
  auto foreign = run_backup(schedule, service, held);
  EXPECT_FALSE(foreign.ok);
  EXPECT_NE(foreign.message.find("is not a restic repository"), std::string::npos)
      << foreign.message;
  EXPECT_FALSE(held);
  EXPECT_EQ(engine().inspect_service(service)->version, version);
  EXPECT_FALSE(fs::exists(repo_ / "config"));
}

// A writer that comes back during the read (`docker service scale` while
// held) makes the run fail, and the snapshot it wrote is removed: only
// snapshots read with every writer held stay in the repository.
TEST_F(restic_e2e, a_run_whose_hold_was_broken_keeps_no_snapshot) {
  const auto volume = create_volume(unique("db"));
  ASSERT_EQ(in_volume(volume, "echo hello > /data/f").status, 0);
  const auto group = unique("g");
  const auto name = unique("writer");
  const auto service = writer(name, volume, group);
  const auto schedule = restic_schedule(volume, group);
  bool held = false;
  ASSERT_TRUE(run_backup(schedule, service, held).ok);
  ASSERT_EQ(snapshot_count(), 1U);

  ASSERT_EQ(in_volume(volume, "echo changed > /data/f").status, 0);
  auto disturbed = run_backup(schedule, service, held, [&] {
    scale(service, 1);
    ASSERT_TRUE(eventually([&] { return running_tasks(service) == 1; }));
  });
  EXPECT_FALSE(disturbed.ok) << "kept a snapshot read while the writer ran";
  EXPECT_NE(disturbed.message.find("service " + name), std::string::npos) << disturbed.message;
  EXPECT_NE(disturbed.message.find("its 1 snapshot(s) removed"), std::string::npos)
      << disturbed.message;
  EXPECT_EQ(snapshot_count(), 1U) << "the disturbed run's snapshot stayed";
  auto unlock = restic("unlock");
  EXPECT_EQ(unlock.status, 0) << unlock.out;
  auto check = restic("check --read-data");
  EXPECT_EQ(check.status, 0) << check.out;
  EXPECT_TRUE(back_as_before(service));
}

// lifeboat restores its own snapshot through `lifeboat restore --repository`
// (restore::engine_runner, as a Restore object runs): a volume that is not
// empty is refused without --wipe, and nothing is held or written; with
// --wipe the writer is held while the volume gets the snapshot's exact tree
// back; a snapshot named by an ID prefix goes into another volume.
TEST_F(restic_e2e,
       lifeboat_restores_its_snapshot_holding_the_writer_into_an_empty_or_wiped_volume) {
  const auto volume = create_volume(unique("db"));
  ASSERT_EQ(in_volume(volume,
                      "set -e; cd /data; mkdir -p a/b empty; echo hello > a/b/f; "
                      "dd if=/dev/urandom of=big bs=1024 count=3000 2>/dev/null; "
                      "echo secret > s; chmod 640 s; chown 1234:5678 big; "
                      "ln -s a/b/f link; ln big big.hard; truncate -s 8M holes; "
                      "printf x | dd of=holes bs=1 seek=4000000 conv=notrunc 2>/dev/null")
                .status,
            0);
  const auto group = unique("g");
  const auto service = writer(unique("db"), volume, group);
  bool held = false;
  const auto backed_up = run_backup(restic_schedule(volume, group), service, held);
  ASSERT_TRUE(backed_up.ok) << backed_up.message;
  const auto at_backup = tree(mountpoint(volume));

  ASSERT_EQ(in_volume(volume, "echo later > /data/later; rm /data/s; echo x >> /data/a/b/f").status,
            0);
  const auto changed = tree(mountpoint(volume));
  ASSERT_NE(changed, at_backup);
  const std::string restore = std::string(LIFEBOAT_BINARY) + " restore --repository " +
                              repo_.string() + " --password-file " + password_.string();

  auto refused = run_command(restore + " --volume " + volume + " 2>&1");
  EXPECT_EQ(refused.status, 1) << refused.out;
  EXPECT_NE(refused.out.find("volume " + volume +
                             " is not empty: a restic snapshot is restored "
                             "into an empty volume; set wipe: true (--wipe) to empty it first"),
            std::string::npos)
      << refused.out;
  EXPECT_EQ(refused.out.find("held"), std::string::npos) << refused.out;
  EXPECT_EQ(tree(mountpoint(volume)), changed);

  const auto wrong_password = dir_ / "wrong";
  std::ofstream(wrong_password) << "nope\n";
  auto wrong = run_command(std::string(LIFEBOAT_BINARY) + " restore --repository " +
                           repo_.string() + " --password-file " + wrong_password.string() +
                           " --volume " + volume + " --wipe 2>&1");
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.out.find("no key opens with the password in " + wrong_password.string()),
            std::string::npos)
      << wrong.out;
  EXPECT_EQ(tree(mountpoint(volume)), changed);

  auto restored_here = run_command(restore + " --volume " + volume + " --wipe 2>&1");
  ASSERT_EQ(restored_here.status, 0) << restored_here.out;
  EXPECT_NE(restored_here.out.find("1 workload(s) held"), std::string::npos) << restored_here.out;
  EXPECT_TRUE(back_as_before(service));
  EXPECT_EQ(tree(mountpoint(volume)), at_backup);

  // "<volume>=<64 hex digits>": the first 8 name it.
  const auto id = backed_up.snapshots.substr(volume.size() + 1, 8);
  const auto copy = create_volume(unique("copy"));
  auto into_copy =
      run_command(restore + " --snapshot " + id + " --volume " + volume + "=" + copy + " 2>&1");
  ASSERT_EQ(into_copy.status, 0) << into_copy.out;
  EXPECT_EQ(tree(mountpoint(copy)), at_backup);
}

// A snapshot Debian's restic made of a folder (`restic backup /…/src`) goes
// into a volume by its path inside the snapshot: modes with setuid, owners,
// symlinks, hard links, a sparse file, a fifo and an empty folder.
TEST_F(restic_e2e, lifeboat_restores_a_snapshot_restic_backup_made) {
  const auto source = dir_ / "src";
  ASSERT_EQ(run_command("set -e; mkdir -p " + source.string() + "/d/e " + source.string() +
                        "/empty; cd " + source.string() +
                        "; echo hi > d/e/f; chmod 4750 d/e/f; ln d/e/f hard; chown 123:456 hard; "
                        "ln -s d/e/f link; truncate -s 10M sparse; printf x | dd of=sparse bs=1 "
                        "seek=5000000 conv=notrunc 2>/dev/null; mkfifo fifo")
                .status,
            0);
  auto made = restic("init");
  ASSERT_EQ(made.status, 0) << made.out;
  auto backed_up = restic("backup " + source.string());
  ASSERT_EQ(backed_up.status, 0) << backed_up.out;
  auto listed = restic("snapshots --json");
  ASSERT_EQ(listed.status, 0) << listed.out;
  const std::string id(
      boost::json::parse(listed.out).as_array().at(0).as_object().at("id").as_string());

  const auto target = create_volume(unique("from-restic"));
  auto restored_here =
      run_command(std::string(LIFEBOAT_BINARY) + " restore --repository " + repo_.string() +
                  " --password-file " + password_.string() + " --snapshot " + id + " --volume " +
                  source.string() + "=" + target + " 2>&1");
  ASSERT_EQ(restored_here.status, 0) << restored_here.out;
  EXPECT_EQ(tree(mountpoint(target)), tree(source));
}

// The issue's loop: `lifeboat backup` (the CLI, as a process) is killed with
// SIGKILL at a random instant of its run, 20 times, the data changing between
// runs; after every kill `restic unlock` (stale locks only) and `restic
// check --read-data` accept the repository.
// Then a run to the end succeeds (the dead runs' locks are stale) and
// `restic restore latest` gives the volume's tree. The seed is printed, so a
// failing order of kills can be replayed with LIFEBOAT_KILL_SEED.
TEST_F(restic_e2e, kill_9_at_random_instants_leaves_a_repository_restic_accepts) {
  const auto volume = create_volume(unique("db"));
  ASSERT_EQ(in_volume(volume,
                      "set -e; cd /data; for i in 1 2 3 4 5 6; do "
                      "dd if=/dev/urandom of=f$i bs=1M count=4 2>/dev/null; done; "
                      "mkdir d; for i in $(seq 1 200); do echo $i > d/$i; done")
                .status,
            0);
  // No workload carries this group: the kills test the repository, and
  // holds_e2e/chaos test what a killed run leaves held.
  const auto schedule_file = dir_ / "schedule.yaml";
  const auto schedule_name = unique("killed");
  std::ofstream(schedule_file) << "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata:\n"
                                  "  name: "
                               << schedule_name << "\nspec:\n  schedule: '@daily'\n  volumes: ["
                               << volume << "]\n  stopDuringBackup: " << unique("nobody")
                               << "\n  format: restic\n  restic: {passwordFile: "
                               << password_.string()
                               << "}\n  destinations:\n    - local: {path: " << repo_.string()
                               << "}\n  retention: {keepLast: 3}\n";
  const std::string command = std::string(LIFEBOAT_BINARY) + " backup --schedule " +
                              schedule_file.string() + " >/dev/null 2>&1";

  // How long a whole run takes here: the kills fall within it.
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(run_command(command).status, 0);
  const auto run_time = std::chrono::steady_clock::now() - started;

  const char* seed_text = std::getenv("LIFEBOAT_KILL_SEED");
  const auto seed = seed_text != nullptr ? std::stoul(seed_text) : std::random_device{}();
  std::cout << "[ kills    ] seed " << seed << ", a run takes "
            << std::chrono::duration_cast<std::chrono::milliseconds>(run_time).count() << " ms\n";
  std::mt19937 random(seed);
  std::uniform_int_distribution<long> instant(
      0, std::chrono::duration_cast<std::chrono::microseconds>(run_time).count());
  int finished_anyway = 0;
  for (int kill = 0; kill < 20; ++kill) {
    ASSERT_EQ(in_volume(volume, "dd if=/dev/urandom of=/data/f" + std::to_string(kill % 6 + 1) +
                                    " bs=64k count=16 seek=" + std::to_string(kill * 3) +
                                    " conv=notrunc 2>/dev/null; echo " + std::to_string(kill) +
                                    " >> /data/d/1")
                  .status,
              0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto delay = std::chrono::microseconds(instant(random));
    std::this_thread::sleep_for(delay);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    finished_anyway += WIFEXITED(status) ? 1 : 0;
    // A killed run leaves its lock file, as a killed restic does; restic takes
    // it for stale (its process is gone) and `unlock` removes it. A lock
    // restic did not take for stale would stay, and fail the check.
    auto unlock = restic("unlock");
    ASSERT_EQ(unlock.status, 0) << unlock.out;
    auto check = restic("check --read-data");
    ASSERT_EQ(check.status, 0) << "after a kill at " << delay.count() << " us (seed " << seed
                               << "):\n"
                               << check.out;
  }
  std::cout << "[ kills    ] " << 20 - finished_anyway << " runs killed midway, " << finished_anyway
            << " finished first\n";

  // A run by hand is named by its second, and the run killed last may have
  // left its ownership record under this second's name. Made certain here:
  // records of a live-looking foreign owner under the names of this second and
  // the next two. The next run takes the first free second.
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  std::set<std::string> taken;
  for (int ahead = 0; ahead < 3; ++ahead) {
    const auto run = reconcilers::backup_name(schedule_name, now + std::chrono::seconds{ahead});
    ASSERT_TRUE(journals_->claim_run(
        {run, "elsewhere/1/dead", std::chrono::system_clock::now(), std::chrono::hours{1}}));
    taken.insert(run);
  }
  auto last = run_command(std::string(LIFEBOAT_BINARY) + " backup --schedule " +
                          schedule_file.string() + " 2>&1");
  for (const auto& run : taken) {
    EXPECT_TRUE(journals_->drop_run(run));
  }
  ASSERT_EQ(last.status, 0) << last.out;
  const auto named = last.out.find(
      "backup " + reconcilers::backup_name(schedule_name, now + std::chrono::seconds{3}) +
      " succeeded");
  EXPECT_NE(named, std::string::npos) << "the first free second is 3 s on:\n" << last.out;
  auto check = restic("check --read-data");
  ASSERT_EQ(check.status, 0) << check.out;
  EXPECT_EQ(tree(restored(volume)), tree(mountpoint(volume)));
  EXPECT_LE(snapshot_count(), 3U) << "keepLast 3";
}

}  // namespace
}  // namespace lifeboat::e2e
