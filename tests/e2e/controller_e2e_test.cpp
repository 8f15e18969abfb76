// The controller deployed as a Swarm service from manifests/stack.yml, with
// the image of hack/image.sh, running schedules and on-demand Backups.
#include "tests/e2e/engine_fixture.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>

#include <sys/wait.h>
#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

namespace lifeboat::e2e {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

std::string lifeboat(const std::string& args) { return std::string(LIFEBOAT_BINARY) + " " + args; }

// A port nobody listens on right now, chosen by the kernel.
unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

class controller_e2e : public engine_test {};

TEST_F(controller_e2e, stack_runs_scheduled_and_on_demand_backups) {
  const auto image = run_command("docker image inspect lifeboat:dev >/dev/null 2>&1");
  ASSERT_EQ(image.status, 0) << "no lifeboat:dev image: run hack/image.sh (hack/test.sh does)";

  // The workload: a labelled service writing to its volume.
  const auto group = unique("grp");
  const auto volume = create_volume(unique("data"));
  const auto app = create_service(unique("app"), volume,
                                  "trap 'exit 0' TERM; while true; do date >> /data/log; "
                                  "sleep 1; done",
                                  2);
  ASSERT_FALSE(app.empty());
  {
    auto s = engine().inspect_service(app);
    ASSERT_TRUE(s);
    auto spec = s->spec;
    spec["Labels"].as_object()["docker-volume-backup.stop-during-backup"] = group;
    ASSERT_TRUE(engine().update_service(app, s->version, spec));
  }
  ASSERT_TRUE(eventually([&] { return running_tasks(app) == 2; }));

  // Every replicas change of the workload, from the events stream.
  auto events = engine().events({{"type", {"service"}}, {"service", {app}}});
  ASSERT_TRUE(events) << events.error().describe();
  std::mutex seen_mutex;
  std::vector<std::string> replicas_seen;
  std::jthread follower([&] {
    while (auto e = events->next()) {
      if (const auto it = e->attributes.find("replicas.new"); it != e->attributes.end()) {
        const std::lock_guard lock(seen_mutex);
        replicas_seen.push_back(it->second);
      }
    }
  });
  // However the test ends, the follower is stopped before it is joined.
  struct stop_following {
    engine::event_stream& stream;
    ~stop_following() { stream.cancel(); }
  } stop_on_exit{*events};

  // The controller, deployed as users do.
  const auto archive_dir = std::filesystem::path(testing::TempDir()) / unique("archive");
  std::filesystem::create_directories(archive_dir);
  const auto port = free_port();
  const auto stack = unique("lb");
  const char* host = std::getenv("DOCKER_HOST");
  const std::string socket = std::string(host).substr(std::string("unix://").size());
  const auto deployed = run_command(
      "LIFEBOAT_ENGINE_SOCKET=" + socket + " LIFEBOAT_ARCHIVE_DIR=" + archive_dir.string() +
      " LIFEBOAT_METRICS_PORT=" + std::to_string(port) + " LIFEBOAT_LEASE=" + unique("lease") +
      " docker stack deploy --resolve-image never -c " LIFEBOAT_SOURCE_DIR "/manifests/stack.yml " +
      stack + " 2>&1");
  ASSERT_EQ(deployed.status, 0) << deployed.out;
  on_teardown([stack] {
    run_command("docker stack rm " + stack + " >/dev/null 2>&1");
    // `stack rm` returns before the controller has stopped; a controller still
    // running would recover the workloads that later tests hold.
    eventually([&] {
      return run_command("docker ps -q --filter label=com.docker.stack.namespace=" + stack)
          .out.empty();
    });
  });

  // A schedule every 20 s, applied as a config.
  const auto schedule = unique("every");
  const auto file = std::filesystem::path(testing::TempDir()) / (schedule + ".yaml");
  std::ofstream(file) << "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: "
                      << schedule << "}\nspec:\n  schedule: \"@every 20s\"\n  volumes: [" << volume
                      << "]\n  stopDuringBackup: \"" << group
                      << "\"\n  destinations: [{local: {path: /archive/" << schedule
                      << "}}]\n  retention: {keepLast: 10}\n";
  ASSERT_EQ(run_command(lifeboat("apply -f " + file.string())).status, 0);
  on_teardown([this, schedule] {
    auto configs = engine().list_configs({{"label", {"lifeboat.object"}}});
    for (const auto& c : configs ? *configs : std::vector<engine::config>{}) {
      if (c.name.starts_with(schedule)) {
        (void)engine().remove_config(c.id);
      }
    }
  });
  // And one on demand.
  ASSERT_EQ(run_command(lifeboat("backup now " + schedule)).status, 0);

  // Both kinds of run succeed.
  std::size_t succeeded = 0;
  std::string last_listing;
  const bool done = eventually(
      [&] {
        last_listing = run_command(lifeboat("get backups -o json")).out;
        boost::system::error_code ec;
        const auto v = json::parse(last_listing, ec);
        succeeded = 0;
        for (const auto& b : ec ? json::array{} : v.as_array()) {
          if (b.at("scheduleRef").as_string() == schedule &&
              b.at("phase").as_string() == "Succeeded") {
            ++succeeded;
          }
        }
        return succeeded >= 3;
      },
      180s);
  EXPECT_TRUE(done)
      << "succeeded: " << succeeded << "\n"
      << last_listing << "\n"
      << run_command("docker service logs " + stack + "_controller 2>&1 | tail -30").out;

  // The archives landed, complete, with their checksums.
  const auto dir = archive_dir / schedule;
  std::size_t archives = 0;
  std::error_code listing;
  for (const auto& entry : std::filesystem::directory_iterator(dir, listing)) {
    if (entry.path().extension() == ".gz") {
      ++archives;
      const auto check = run_command("cd " + dir.string() + " && sha256sum -c " +
                                     entry.path().filename().string() +
                                     ".sha256 2>&1 && tar -tzf " + entry.path().string() + " 2>&1");
      EXPECT_EQ(check.status, 0) << check.out;
      EXPECT_NE(check.out.find(volume + "/log"), std::string::npos) << check.out;
    }
  }
  EXPECT_FALSE(listing) << dir << ": " << listing.message();
  EXPECT_GE(archives, 3U);

  // The workload was at zero during the runs and is back, with no label left.
  EXPECT_TRUE(eventually([&] { return running_tasks(app) == 2; }));
  auto s = engine().inspect_service(app);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->replicas, 2U);
  EXPECT_FALSE(s->service_labels.contains("lifeboat.held-by"));
  EXPECT_FALSE(s->service_labels.contains("lifeboat.prior-replicas"));
  events->cancel();
  follower.join();
  {
    const std::lock_guard lock(seen_mutex);
    const auto zeros = std::count(replicas_seen.begin(), replicas_seen.end(), "0");
    EXPECT_GE(zeros, 3) << "the workload was not scaled to zero for each run";
  }

  // Metrics, as Prometheus would scrape them.
  const auto metrics =
      run_command("curl -s http://127.0.0.1:" + std::to_string(port) + "/metrics").out;
  EXPECT_NE(
      metrics.find("lifeboat_backups_total{result=\"success\",schedule=\"" + schedule + "\"}"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("lifeboat_leader 1"), std::string::npos);
  EXPECT_EQ(run_command("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:" +
                        std::to_string(port) + "/readyz")
                .out,
            "200");

  // 2 GiB through the engine (the controller's container cannot see the
  // host's volume folder) under the stack's 25M memory limit: the run
  // succeeds and the controller is never killed.
  const auto big = create_volume(unique("big"));
  {
    auto v = engine().inspect_volume(big);
    ASSERT_TRUE(v);
    const auto filled = run_command("cd '" + v->mountpoint +
                                    "' && head -c 1073741824 /dev/urandom > random && "
                                    "seq 1 300000000 | head -c 1073741824 > numbers");
    ASSERT_EQ(filled.status, 0);
  }
  const auto big_schedule = unique("big");
  const auto big_file = std::filesystem::path(testing::TempDir()) / (big_schedule + ".yaml");
  std::ofstream(big_file) << "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: "
                          << big_schedule << "}\nspec:\n  schedule: \"0 3 1 1 *\"\n  volumes: ["
                          << big << "]\n  stopDuringBackup: \"" << unique("nobody")
                          << "\"\n  destinations: [{local: {path: /archive/" << big_schedule
                          << "}}]\n";
  ASSERT_EQ(run_command(lifeboat("apply -f " + big_file.string())).status, 0);
  on_teardown([this, big_schedule] {
    auto configs = engine().list_configs({{"label", {"lifeboat.object"}}});
    for (const auto& c : configs ? *configs : std::vector<engine::config>{}) {
      if (c.name.starts_with(big_schedule)) {
        (void)engine().remove_config(c.id);
      }
    }
  });
  ASSERT_EQ(run_command(lifeboat("backup now " + big_schedule)).status, 0);
  std::string big_phase;
  EXPECT_TRUE(eventually(
      [&] {
        boost::system::error_code ec;
        const auto v = json::parse(run_command(lifeboat("get backups -o json")).out, ec);
        for (const auto& b : ec ? json::array{} : v.as_array()) {
          if (b.at("scheduleRef").as_string() == big_schedule) {
            big_phase = b.at("phase").as_string();
          }
        }
        return big_phase == "Succeeded" || big_phase == "Failed";
      },
      300s))
      << big_phase;
  EXPECT_EQ(big_phase, "Succeeded")
      << run_command("docker service logs " + stack + "_controller 2>&1 | tail -30").out;
  std::uintmax_t big_bytes = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(archive_dir / big_schedule, listing)) {
    if (entry.path().extension() == ".gz") {
      big_bytes = entry.file_size();
    }
  }
  EXPECT_GT(big_bytes, std::uintmax_t{1} << 30);
  // One task ever: the controller was not OOM-killed and restarted.
  const auto tasks = run_command("docker service ps -q " + stack + "_controller | wc -l").out;
  EXPECT_EQ(tasks, "1\n")
      << run_command("docker service ps --no-trunc " + stack + "_controller").out;
  // cgroup v1 (cgroupfs) or v2: the peak of the controller's container.
  const auto rss = run_command(
      "id=$(docker ps -q --no-trunc --filter label=com.docker.swarm.service.name=" + stack +
      "_controller); cat /sys/fs/cgroup/memory/docker/$id/memory.max_usage_in_bytes "
      "/sys/fs/cgroup/docker/$id/memory.peak 2>/dev/null");
  std::cout << "2 GiB through the engine: archive " << (big_bytes >> 20)
            << " MiB; controller peak memory (bytes) " << rss.out << "\n";
}

}  // namespace
}  // namespace lifeboat::e2e
