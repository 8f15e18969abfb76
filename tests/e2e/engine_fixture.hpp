#pragma once

#include "controller/engine/client.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace lifeboat::e2e {

/// The busybox image hack/swarm-up.sh imports.
inline std::string test_image() {
  const char* image = std::getenv("LIFEBOAT_TEST_IMAGE");
  return image != nullptr && *image != '\0' ? image : "lifeboat-test/busybox:latest";
}

struct command_result {
  int status = -1;  ///< exit status; -1 when the command could not run or was killed
  std::string out;  ///< its standard output (standard error goes to the test's log)
};

/// Runs a shell command, as a user would type it.
inline command_result run_command(const std::string& command) {
  command_result r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return r;
  }
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    r.out.append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// Polls `done` until it returns true or `timeout` passes; returns the last
/// answer. E2E tests wait on a real engine's asynchronous convergence this way,
/// never with a fixed sleep.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds{60}) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  return done();
}

/// Connects to the engine of hack/swarm-up.sh ($DOCKER_HOST) and removes, at
/// the end of each test, everything the test registered.
class engine_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = engine::client::connect();
    ASSERT_TRUE(c) << "no engine: " << c.error().describe()
                   << " (run hack/swarm-up.sh and export DOCKER_HOST, or use hack/test.sh)";
    client_.emplace(std::move(*c));
    static int counter = 0;
    prefix_ = "lbt" + std::to_string(::getpid()) + "x" + std::to_string(counter++);
  }

  void TearDown() override {
    if (!client_) {
      return;
    }
    for (auto it = cleanups_.rbegin(); it != cleanups_.rend(); ++it) {
      (*it)();
    }
  }

  engine::client& engine() { return *client_; }

  /// A name unique to this test run.
  std::string unique(std::string_view what) const { return prefix_ + "-" + std::string(what); }

  void on_teardown(std::function<void()> f) { cleanups_.push_back(std::move(f)); }

  /// Creates a replicated service mounting `volume` at /data that runs `script`.
  std::string create_service(const std::string& name, const std::string& volume,
                             const std::string& script, std::uint64_t replicas) {
    namespace json = boost::json;
    const json::object spec{
        {"Name", name},
        {"Labels", json::object{{"lifeboat.test", "true"}}},
        {"TaskTemplate",
         json::object{{"ContainerSpec",
                       json::object{{"Image", test_image()},
                                    {"Command", json::array{"sh", "-c", script}},
                                    {"StopGracePeriod", 1'000'000'000},
                                    {"Mounts", json::array{json::object{{"Type", "volume"},
                                                                        {"Source", volume},
                                                                        {"Target", "/data"}}}}}},
                      {"RestartPolicy", json::object{{"Condition", "any"}}}}},
        {"Mode", json::object{{"Replicated", json::object{{"Replicas", replicas}}}}}};
    auto id = engine().create_service(spec);
    EXPECT_TRUE(id) << id.error().describe();
    if (!id) {
      return {};
    }
    on_teardown([this, id = *id] { (void)engine().remove_service(id); });
    return *id;
  }

  /// Creates (never starts) a container with `volume` at /data.
  std::string create_container(const std::string& volume, bool read_only,
                               std::vector<std::string> cmd = {"true"}) {
    namespace json = boost::json;
    json::array args;
    for (auto& a : cmd) {
      args.emplace_back(a);
    }
    const json::object body{
        {"Image", test_image()},
        {"Cmd", std::move(args)},
        {"HostConfig",
         json::object{{"NetworkMode", "none"},
                      {"Mounts", json::array{json::object{{"Type", "volume"},
                                                          {"Source", volume},
                                                          {"Target", "/data"},
                                                          {"ReadOnly", read_only}}}}}}};
    auto id = engine().create_container(body);
    EXPECT_TRUE(id) << id.error().describe();
    if (!id) {
      return {};
    }
    on_teardown([this, id = *id] { (void)engine().remove_container(id, true); });
    return *id;
  }

  std::string create_volume(const std::string& name) {
    auto v = engine().create_volume(name);
    EXPECT_TRUE(v) << v.error().describe();
    // Removal waits until the services and containers using it are gone.
    on_teardown([this, name] {
      eventually([&] {
        auto r = engine().remove_volume(name, true);
        return r || r.error().is(engine::errc::not_found);
      });
    });
    return name;
  }

  /// Tasks of `service_id` observed in state "running".
  std::size_t running_tasks(const std::string& service_id) {
    auto tasks = engine().list_tasks({{"service", {service_id}}});
    if (!tasks) {
      return 0;
    }
    std::size_t n = 0;
    for (const auto& t : *tasks) {
      n += t.state == "running" ? 1 : 0;
    }
    return n;
  }

 private:
  std::optional<engine::client> client_;
  std::string prefix_;
  std::vector<std::function<void()>> cleanups_;
};

}  // namespace lifeboat::e2e
