#include "controller/archive/engine_source.hpp"

#include "controller/archive/writer.hpp"
#include "controller/engine/client.hpp"
#include "tests/controller/archive/test_support.hpp"
#include "tests/controller/engine/scripted_stream.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

// Volumes read through the engine's client: GET /containers/{id}/archive
// answered by an in-memory engine (the engine tests' scripted stream) with a
// real tar stream, fed through engine_volume_source into the writer.
namespace lifeboat::archive {
namespace {

namespace fs = std::filesystem;
using engine::test::scripted_engine;
using test::run;
using test::scratch_dir;
using test::shell_quote;

std::string tar_response(const std::string& tar) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: " +
         std::to_string(tar.size()) + "\r\n\r\n" + tar;
}

// A tar of a small folder named "data", as the engine gives /data.
std::string volume_tar(const scratch_dir& dir, const std::string& content) {
  const fs::path data = dir / "data";
  fs::remove_all(data);
  fs::create_directories(data / "sub");
  std::ofstream(data / "sub" / "file") << content;
  const fs::path tar = dir / "volume.tar";
  auto r = run("tar -C " + shell_quote(dir.path().string()) + " -cf " + shell_quote(tar.string()) +
               " data");
  EXPECT_EQ(r.status, 0) << r.output;
  return test::read_file(tar);
}

engine::client make_client(const scripted_engine& engine) {
  return engine::client(engine.connect(), "1.41", std::chrono::seconds{5});
}

std::vector<std::string> paths(const fs::path& archive) {
  std::vector<std::string> out;
  for (const auto& e : test::list_archive(archive)) {
    out.push_back(e.path);
  }
  return out;
}

TEST(engine_volume_source, volumes_opened_one_at_a_time_under_their_names) {
  scratch_dir dir;
  scripted_engine engine;
  engine.respond(tar_response(volume_tar(dir, "first")), 1000)
      .respond(tar_response(volume_tar(dir, "second")), 7);
  const auto client = make_client(engine);
  std::vector<int> live_at_open;
  auto opener = [&](std::string path) {
    return [&, path] {
      live_at_open.push_back(engine.live());
      return client.get_archive("c0ffee", path);
    };
  };
  std::vector<volume_source> sources;
  sources.emplace_back(engine_volume_source("app_db", opener("/data")));
  sources.emplace_back(engine_volume_source("app_uploads", opener("/data")));
  EXPECT_EQ(engine.connections(), 0U);  // nothing opened before the writer reads

  const fs::path out = dir / "out.tar.gz";
  std::ofstream file(out, std::ios::binary);
  auto r = write_archive(sources, {}, [&](std::span<const char> bytes) -> result<void> {
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return {};
  });
  file.close();
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(live_at_open, (std::vector<int>{0, 0}));  // the first was closed when read
  EXPECT_EQ(engine.live(), 0);
  EXPECT_EQ(paths(out),
            (std::vector<std::string>{"app_db/", "app_db/sub/", "app_db/sub/file", "app_uploads/",
                                      "app_uploads/sub/", "app_uploads/sub/file"}));
  EXPECT_EQ(r->sources[1].path, read_path::tar_stream);
  EXPECT_EQ(to_string(r->sources[1].path), "engine");
  EXPECT_EQ(engine.written(0).substr(0, 50), "GET /v1.41/containers/c0ffee/archive?path=%2Fdata ");
}

TEST(engine_volume_source, engine_failures_fail_the_archive_with_the_engines_words) {
  scratch_dir dir;
  const std::string response = tar_response(volume_tar(dir, std::string(100000, 'x')));
  {
    // The connection breaks in the middle of the body.
    scripted_engine engine;
    engine::test::script s;
    s.response = response;
    s.read_limit = 4096;
    s.fail_at = 10;
    engine.expect(s);
    const auto client = make_client(engine);
    std::vector<volume_source> sources;
    sources.emplace_back(
        engine_volume_source("app_db", [&] { return client.get_archive("c0ffee", "/data"); }));
    auto r = write_archive(sources, {}, [](std::span<const char>) -> result<void> { return {}; });
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::source_failed)) << r.error().describe();
    EXPECT_NE(r.error().message.find("reading the engine's archive"), std::string::npos);
  }
  {
    // The container is gone.
    scripted_engine engine;
    engine.respond(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 36\r\n\r\n"
        R"({"message":"No such container: c0f"})");
    const auto client = make_client(engine);
    std::vector<volume_source> sources;
    sources.emplace_back(
        engine_volume_source("app_db", [&] { return client.get_archive("c0f", "/data"); }));
    auto r = write_archive(sources, {}, [](std::span<const char>) -> result<void> { return {}; });
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::source_failed)) << r.error().describe();
    EXPECT_NE(r.error().message.find("app_db"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("No such container"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace lifeboat::archive
