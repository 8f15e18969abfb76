// Issue 13, "Must show" for S3: the runs that must run alone. A 1 GiB volume
// goes to moto as one object equal to the local archive; `lifeboat backup`
// killed with SIGKILL mid-upload leaves no object, and the next run aborts
// the incomplete multipart upload it left. Serial: the 1 GiB run would starve
// other tests on two cores, and `lifeboat recover` releases whatever a run
// with no live owner holds, which includes tests that quiesce without an
// ownership record.

#include "tests/e2e/remote_backup_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr std::uint64_t mib = std::uint64_t{1} << 20;

TEST_F(remote_backup_e2e,
       issue13_a_1_gib_volume_goes_to_s3_as_one_object_equal_to_the_local_archive) {
  // Beside the fixture's two small files; uncompressed, so that the run is
  // about moving 1 GiB, not about gzip.
  write_incompressible_file(dir_ / "device" / "big.bin", 1024 * mib, 13);
  const auto result =
      run(schedule(local_yaml() + s3_yaml("secret"), "  archive: {compression: none}\n"));
  ASSERT_TRUE(result.ok) << result.message;

  const auto name = local_archive(".tar");
  ASSERT_FALSE(name.empty()) << "no .tar in the local folder";
  const fs::path local = dir_ / "archives" / name;
  EXPECT_GT(fs::file_size(local), 1024 * mib);
  EXPECT_THAT(bucket_keys(schedule_name_), ElementsAre(name, name + ".sha256"));
  EXPECT_THAT(moto_->pending_uploads(), IsEmpty());

  const std::string local_sha256 = file_sha256(local);
  ASSERT_EQ(local_sha256.size(), 64U);
  std::ifstream local_sum(dir_ / "archives" / (name + ".sha256"));
  std::string recorded;
  local_sum >> recorded;
  EXPECT_EQ(recorded, local_sha256);
  EXPECT_EQ(s3_object_sha256(name), local_sha256);
  EXPECT_EQ(s3_object(name + ".sha256"), local_sha256 + "  " + name + "\n");

  ASSERT_EQ(result.destinations.size(), 2U);
  EXPECT_TRUE(result.destinations[0].ok && result.destinations[1].ok);
  EXPECT_EQ(result.destinations[1].destination, "s3 backups/");
  EXPECT_EQ(result.destinations[1].bytes, static_cast<double>(fs::file_size(local)));
}

constexpr std::uint64_t prior_replicas = 2;

/// `lifeboat backup` as a user runs it, against the fixture's volume with a
/// labelled service on it, into S3 alone.
class remote_backup_kill_e2e : public remote_backup_e2e {
 protected:
  void SetUp() override {
    remote_backup_e2e::SetUp();
    if (HasFatalFailure()) {
      return;
    }
    // Big enough that the upload (gzip, then 8 MiB parts) takes a while.
    write_incompressible_file(dir_ / "device" / "big.bin", 256 * mib, 9);
    group_ = unique("group");
    namespace json = boost::json;
    const json::object spec{
        {"Name", unique("app")},
        {"Labels", json::object{{"docker-volume-backup.stop-during-backup", group_},
                                {"lifeboat.test", "true"}}},
        {"TaskTemplate",
         json::object{{"ContainerSpec",
                       json::object{{"Image", test_image()},
                                    {"Command", json::array{"sh", "-c", "sleep 100000"}},
                                    {"StopGracePeriod", 1'000'000'000},
                                    {"Mounts", json::array{json::object{{"Type", "volume"},
                                                                        {"Source", volume_},
                                                                        {"Target", "/data"}}}}}},
                      {"RestartPolicy", json::object{{"Condition", "any"}}}}},
        {"Mode", json::object{{"Replicated", json::object{{"Replicas", prior_replicas}}}}}};
    auto id = engine().create_service(spec);
    ASSERT_TRUE(id) << id.error().describe();
    service_ = *id;
    on_teardown([this] { (void)engine().remove_service(service_); });
    // Runs first at teardown: whatever a failed test left held comes back.
    on_teardown([] { (void)run_command(recover_command() + " >/dev/null 2>&1"); });
    ASSERT_TRUE(eventually([&] { return running_tasks(service_) == prior_replicas; }, 120s));

    schedule_file_ = dir_ / "schedule.yaml";
    std::ofstream(schedule_file_) << schedule_yaml(s3_yaml("secret"),
                                                   "  stopDuringBackup: " + group_ + "\n");
  }

  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    remote_backup_e2e::TearDown();
  }

  /// `lifeboat recover`, as a user runs it after a crash. No waiting for the
  /// killed run's ownership record to expire (60 s): its owner was a process
  /// on this host whose PID is gone, which recovery takes as dead at once.
  static std::string recover_command() {
    return std::string(LIFEBOAT_BINARY) + " recover --timeout 120";
  }

  std::vector<std::string> backup_args() const {
    return {LIFEBOAT_BINARY,  "backup",     "--schedule",    schedule_file_.string(),
            "--helper-image", test_image(), "--spool-limit", "0"};
  }

  /// Starts `lifeboat backup` with its output into `log`.
  void start_backup(const fs::path& log) {
    auto args = backup_args();
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::fflush(nullptr);
    child_ = ::fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }

  /// Whether the child has ended (reaped then).
  bool child_ended() {
    int status = 0;
    if (child_ > 0 && ::waitpid(child_, &status, WNOHANG) == child_) {
      child_ = -1;
    }
    return child_ <= 0;
  }

  /// The incomplete multipart uploads of this schedule's archives.
  std::vector<std::string> schedule_uploads() const {
    std::vector<std::string> mine;
    for (auto& key : moto_->pending_uploads()) {
      if (key.starts_with(schedule_name_ + "-")) {
        mine.push_back(std::move(key));
      }
    }
    return mine;
  }

  /// The service is scaled to zero by a run and labelled as held.
  bool held() {
    auto s = engine().inspect_service(service_);
    return s && s->replicas == 0 && s->service_labels.contains("lifeboat.held-by");
  }

  /// Back at its prior replicas, with no label of lifeboat's left.
  ::testing::AssertionResult back_as_before() {
    auto s = engine().inspect_service(service_);
    if (!s) {
      return ::testing::AssertionFailure() << s.error().describe();
    }
    if (s->replicas != prior_replicas) {
      return ::testing::AssertionFailure()
             << "replicas " << s->replicas.value_or(0) << ", was " << prior_replicas;
    }
    for (const auto& [key, value] : s->service_labels) {
      if (key.starts_with("lifeboat.") && key != "lifeboat.test") {
        return ::testing::AssertionFailure() << "label left: " << key << "=" << value;
      }
    }
    return ::testing::AssertionSuccess();
  }

  /// The journals and ownership records of this schedule's runs, by config name.
  std::vector<std::string> run_records() {
    std::vector<std::string> names;
    for (const std::string label : {"lifeboat.journal.run", "lifeboat.owner.run"}) {
      auto configs = engine().list_configs({{"label", {label}}});
      EXPECT_TRUE(configs) << configs.error().describe();
      if (!configs) {
        continue;
      }
      for (const auto& c : *configs) {
        const auto run = c.config_labels.find(label);
        if (run != c.config_labels.end() && run->second.starts_with(schedule_name_ + "-")) {
          names.push_back(c.name);
        }
      }
    }
    return names;
  }

  /// The helper containers of this schedule's runs, by name.
  std::vector<std::string> helper_containers() {
    std::vector<std::string> names;
    auto listed = engine().list_containers({{"label", {"lifeboat.schedule=" + schedule_name_}}});
    EXPECT_TRUE(listed) << listed.error().describe();
    if (listed) {
      for (const auto& c : *listed) {
        names.push_back(c.names.empty() ? c.id : c.names.front());
      }
    }
    return names;
  }

  static std::string read_file(const fs::path& file) {
    std::ifstream in(file);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  std::string group_;
  std::string service_;
  fs::path schedule_file_;
  pid_t child_ = -1;
};

TEST_F(remote_backup_kill_e2e,
       issue13_kill_9_mid_upload_leaves_no_object_and_the_next_run_aborts_the_leftover) {
  const fs::path first_log = dir_ / "first-run.log";
  start_backup(first_log);
  // Mid-upload: the multipart upload exists (its first 8 MiB part is on its
  // way), and the service is still held, since without a spool the volume
  // is read only as fast as the archive is uploaded.
  const bool mid_upload =
      eventually([&] { return child_ended() || (!schedule_uploads().empty() && held()); }, 120s);
  ASSERT_TRUE(mid_upload) << "no multipart upload within 2 minutes; the run's output:\n"
                          << read_file(first_log);
  ASSERT_FALSE(child_ended()) << "the run ended before it could be killed; its output:\n"
                              << read_file(first_log);
  ::kill(child_, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child_, &status, 0), child_);
  child_ = -1;
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  // Nothing under any archive name of this schedule, one incomplete upload.
  EXPECT_THAT(bucket_keys(schedule_name_), IsEmpty());
  const auto leftover = schedule_uploads();
  ASSERT_EQ(leftover.size(), 1U) << ::testing::PrintToString(leftover);
  EXPECT_THAT(leftover.front(), StartsWith(schedule_name_ + "-"));
  EXPECT_TRUE(held()) << "the killed run held the service";
  EXPECT_THAT(run_records(), ::testing::Not(IsEmpty())) << "the killed run's ownership record";

  // Recovery brings the service back and removes the dead run's helper
  // container (the next backup of the schedule would remove it too).
  const auto recovered = run_command(recover_command() + " 2>&1");
  EXPECT_EQ(recovered.status, 0) << recovered.out;
  EXPECT_THAT(recovered.out, HasSubstr("recovered the workloads held by run " + schedule_name_));
  EXPECT_THAT(recovered.out,
              HasSubstr("removed the helper container lifeboat-read-" + schedule_name_ + "-"));
  EXPECT_TRUE(back_as_before());
  EXPECT_TRUE(eventually([&] { return running_tasks(service_) == prior_replicas; }, 120s));

  // The next run: its archive and checksum arrive, and its leftover
  // cleanup aborts the dead run's upload.
  auto args = backup_args();
  std::string command;
  for (const auto& a : args) {
    command += "'" + a + "' ";
  }
  const auto second = run_command(command + "2>&1");
  ASSERT_EQ(second.status, 0) << second.out;
  EXPECT_THAT(second.out, HasSubstr("succeeded"));
  EXPECT_THAT(moto_->pending_uploads(), IsEmpty());
  const auto keys = bucket_keys(schedule_name_);
  ASSERT_EQ(keys.size(), 2U) << ::testing::PrintToString(keys);
  const std::string& name = keys[0];
  EXPECT_EQ(keys[1], name + ".sha256");
  EXPECT_NE(name, leftover.front()) << "a new archive, not the killed run's";
  EXPECT_THAT(second.out, HasSubstr("s3://backups/" + name));
  const std::string sha256 = s3_object_sha256(name);
  ASSERT_EQ(sha256.size(), 64U);
  EXPECT_EQ(s3_object(name + ".sha256"), sha256 + "  " + name + "\n");

  // Nothing of either run is left: no label, no record, no helper.
  EXPECT_TRUE(back_as_before());
  EXPECT_TRUE(eventually([&] { return running_tasks(service_) == prior_replicas; }, 120s));
  EXPECT_THAT(run_records(), IsEmpty());
  EXPECT_THAT(helper_containers(), IsEmpty());
}

}  // namespace
}  // namespace lifeboat::e2e
