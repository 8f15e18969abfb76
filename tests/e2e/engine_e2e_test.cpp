// The engine client against the real local swarm of hack/swarm-up.sh.
#include "tests/e2e/engine_fixture.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <array>
#include <atomic>
#include <map>
#include <thread>

namespace lifeboat::e2e {
namespace {

using engine::errc;
using namespace std::chrono_literals;

// Reads a whole archive body and returns its regular files by path.
std::map<std::string, std::string> untar(engine::http::body_reader& reader) {
  std::string tar;
  std::array<char, 64 * 1024> chunk{};
  for (;;) {
    auto n = reader.read(chunk);
    EXPECT_TRUE(n) << n.error().describe();
    if (!n || *n == 0) {
      break;
    }
    tar.append(chunk.data(), *n);
  }
  std::map<std::string, std::string> files;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  archive_entry* entry = nullptr;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    if (archive_entry_filetype(entry) != AE_IFREG) {
      continue;
    }
    std::string content(static_cast<std::size_t>(archive_entry_size(entry)), '\0');
    archive_read_data(a, content.data(), content.size());
    files[archive_entry_pathname(entry)] = content;
  }
  archive_read_free(a);
  return files;
}

// One regular file as a tar stream, written by libarchive.
std::string tar_of(const std::string& path, const std::string& content) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* sink, const void* data, std::size_t n) -> la_ssize_t {
        static_cast<std::string*>(sink)->append(static_cast<const char*>(data), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, path.c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
  archive_write_header(a, e);
  archive_write_data(a, content.data(), content.size());
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

TEST_F(engine_test, swarm_manager_and_version) {
  auto info = engine().info();
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_EQ(info->swarm.local_node_state, "active");
  EXPECT_TRUE(info->swarm.control_available);
  auto nodes = engine().list_nodes();
  ASSERT_TRUE(nodes) << nodes.error().describe();
  ASSERT_FALSE(nodes->empty());
  EXPECT_EQ(nodes->front().role, "manager");
  EXPECT_EQ(engine().api_version(), "1.41");
}

TEST_F(engine_test, missing_objects_are_not_found) {
  auto s = engine().inspect_service(unique("nope"));
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(errc::not_found)) << s.error().describe();
  EXPECT_NE(s.error().message.find("not found"), std::string::npos) << s.error().message;
  EXPECT_EQ(s.error().http_status, 404);
  EXPECT_TRUE(engine().inspect_config(unique("nope")).error().is(errc::not_found));
  EXPECT_TRUE(engine().inspect_volume(unique("nope")).error().is(errc::not_found));
  EXPECT_TRUE(engine().inspect_container(unique("nope")).error().is(errc::not_found));
}

TEST_F(engine_test, service_scale_with_version_conflict_and_event) {
  const auto volume = create_volume(unique("vol"));
  const auto id = create_service(unique("svc"), volume, "while true; do sleep 1; done", 2);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(eventually([&] { return running_tasks(id) == 2; }))
      << "2 tasks never ran; running: " << running_tasks(id);

  auto listed = engine().list_services({{"id", {id}}});
  ASSERT_TRUE(listed) << listed.error().describe();
  ASSERT_EQ(listed->size(), 1U);
  EXPECT_EQ(listed->front().mode, engine::service_mode::replicated);
  EXPECT_EQ(listed->front().replicas, 2U);
  EXPECT_EQ(listed->front().desired_tasks, 2U);

  // Follow service events before writing, from a thread, so the update is seen.
  auto events = engine().events({{"type", {"service"}}, {"service", {id}}});
  ASSERT_TRUE(events) << events.error().describe();
  std::atomic<bool> saw_update{false};
  std::thread follower([&] {
    for (;;) {
      auto e = events->next();
      if (!e) {
        return;
      }
      if (e->action == "update" && e->actor_id == id) {
        saw_update = true;
        return;
      }
    }
  });

  auto before = engine().inspect_service(id);
  ASSERT_TRUE(before) << before.error().describe();
  auto spec = before->spec;
  spec["Mode"].as_object()["Replicated"].as_object()["Replicas"] = 1;
  spec["Labels"].as_object()["lifeboat.prior-replicas"] = "2";
  auto updated = engine().update_service(id, before->version, spec);
  ASSERT_TRUE(updated) << updated.error().describe();

  // The same, stale version again: the engine refuses it as out of sequence.
  auto stale = engine().update_service(id, before->version, spec);
  ASSERT_FALSE(stale);
  EXPECT_TRUE(stale.error().is(errc::conflict)) << stale.error().describe();
  EXPECT_NE(stale.error().message.find("update out of sequence"), std::string::npos);

  auto after = engine().inspect_service(id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->replicas, 1U);
  EXPECT_EQ(after->service_labels.at("lifeboat.prior-replicas"), "2");
  EXPECT_GT(after->version, before->version);
  EXPECT_TRUE(eventually([&] { return running_tasks(id) == 1; }));

  const bool seen = eventually([&] { return saw_update.load(); }, 30s);
  events->cancel();
  follower.join();
  EXPECT_TRUE(seen) << "the events stream did not deliver the service update";
}

TEST_F(engine_test, config_labels_update_and_data_change_refused) {
  const auto name = unique("cfg");
  auto id = engine().create_config(name, "kind: BackupSchedule\n", {{"lifeboat.object", "true"}});
  ASSERT_TRUE(id) << id.error().describe();
  on_teardown([this, id = *id] { (void)engine().remove_config(id); });

  auto listed = engine().list_configs({{"label", {"lifeboat.object"}}, {"name", {name}}});
  ASSERT_TRUE(listed) << listed.error().describe();
  ASSERT_EQ(listed->size(), 1U);
  EXPECT_EQ(listed->front().data, "kind: BackupSchedule\n");

  auto current = engine().inspect_config(*id);
  ASSERT_TRUE(current);
  auto labelled = engine().update_config_labels(
      *current, {{"lifeboat.object", "true"}, {"lifeboat.status.phase", "Ready"}});
  ASSERT_TRUE(labelled) << labelled.error().describe();
  auto after = engine().inspect_config(*id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->config_labels.at("lifeboat.status.phase"), "Ready");
  EXPECT_EQ(after->data, "kind: BackupSchedule\n");

  // Stale version: conflict.
  auto stale = engine().update_config_labels(*current, {{"lifeboat.object", "true"}});
  ASSERT_FALSE(stale);
  EXPECT_TRUE(stale.error().is(errc::conflict)) << stale.error().describe();

  // Configs are immutable apart from their labels.
  auto spec = after->spec;
  spec["Data"] = "Y2hhbmdlZAo=";  // "changed\n"
  auto changed = engine().update_config(after->id, after->version, spec);
  ASSERT_FALSE(changed);
  EXPECT_TRUE(changed.error().is(errc::bad_request)) << changed.error().describe();
  EXPECT_NE(changed.error().message.find("only updates to Labels are allowed"), std::string::npos)
      << changed.error().message;
}

TEST_F(engine_test, archive_get_from_a_never_started_container) {
  const auto volume = create_volume(unique("vol"));
  const auto id = create_service(
      unique("writer"), volume,
      "echo written-by-the-service > /data/hello.txt; while true; do sleep 1; done", 1);
  ASSERT_FALSE(id.empty());
  const auto reader_id = create_container(volume, /*read_only=*/true);
  ASSERT_FALSE(reader_id.empty());

  std::map<std::string, std::string> files;
  ASSERT_TRUE(eventually([&] {
    auto body = engine().get_archive(reader_id, "/data");
    if (!body) {
      return false;
    }
    files = untar(*body);
    return files.contains("data/hello.txt");
  })) << "the service's file never appeared in the archive";
  EXPECT_EQ(files["data/hello.txt"], "written-by-the-service\n");

  auto inspected = engine().inspect_container(reader_id);
  ASSERT_TRUE(inspected);
  EXPECT_EQ(inspected->status, "created");
}

TEST_F(engine_test, archive_put_is_seen_by_a_new_container) {
  const auto volume = create_volume(unique("vol"));
  const auto writer = create_container(volume, /*read_only=*/false);
  ASSERT_FALSE(writer.empty());
  const std::string tar = tar_of("restored.txt", "put-through-the-engine\n");
  std::size_t sent = 0;
  auto put = engine().put_archive(writer, "/data", [&](std::span<char> into) {
    const std::size_t n = std::min(into.size(), tar.size() - sent);
    std::copy_n(tar.data() + sent, n, into.data());
    sent += n;
    return engine::result<std::size_t>(n);
  });
  ASSERT_TRUE(put) << put.error().describe();

  const auto checker =
      create_container(volume, /*read_only=*/true,
                       {"sh", "-c", "test \"$(cat /data/restored.txt)\" = put-through-the-engine"});
  ASSERT_TRUE(engine().start_container(checker));
  auto code = engine().wait_container(checker, 60s);
  ASSERT_TRUE(code) << code.error().describe();
  EXPECT_EQ(*code, 0);
}

TEST_F(engine_test, container_lifecycle_and_exec) {
  const auto volume = create_volume(unique("vol"));
  const auto id = create_container(volume, false, {"sleep", "300"});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(engine().start_container(id));
  ASSERT_TRUE(engine().start_container(id)) << "starting a running container is not an error";

  auto exec = engine().create_exec(id, {"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(exec) << exec.error().describe();
  auto output = engine().start_exec(*exec);
  ASSERT_TRUE(output) << output.error().describe();
  // stdout and stderr are separate pipes, so their order in the stream may vary.
  EXPECT_TRUE(*output == "out\nerr\n" || *output == "err\nout\n") << *output;
  auto status = engine().inspect_exec(*exec);
  ASSERT_TRUE(status);
  EXPECT_FALSE(status->running);
  EXPECT_EQ(status->exit_code, 3);

  auto listed = engine().list_containers({{"id", {id}}});
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1U);
  EXPECT_EQ(listed->front().state, "running");
  ASSERT_EQ(listed->front().mounts.size(), 1U);
  EXPECT_EQ(listed->front().mounts.front().name, volume);

  ASSERT_TRUE(engine().stop_container(id, 1s));
  auto code = engine().wait_container(id, 30s);
  ASSERT_TRUE(code) << code.error().describe();
  auto inspected = engine().inspect_container(id);
  ASSERT_TRUE(inspected);
  EXPECT_FALSE(inspected->running);
  EXPECT_EQ(inspected->status, "exited");
}

}  // namespace
}  // namespace lifeboat::e2e
