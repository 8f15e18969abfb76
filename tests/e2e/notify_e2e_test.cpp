// Notifications end to end (issue 15): `lifeboat backup` on the real swarm
// notifies a local HTTP receiver; a receiver that is down is reported as a
// failed notification and the run still succeeds (exit 0); a failed run's
// notification carries its error; a Restore run by the controller is
// notified where its Backup's schedule reports, in the schedule's template,
// and one refused before it runs is reported to its own notifications.
#include "tests/e2e/controller_process.hpp"

#include <gmock/gmock.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include <signal.h>
#include <filesystem>
#include <fstream>

namespace lifeboat::e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Records each POST body into <folder>/req<n> and answers 200; writes the
// port it bound to <port file>.
constexpr const char* receiver_py = R"(
import http.server, os, sys
folder = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = len([f for f in os.listdir(folder) if not f.endswith('.tmp')])
        body = self.rfile.read(int(self.headers['Content-Length']))
        with open(os.path.join(folder, 'req%d.tmp' % n), 'wb') as f:
            f.write(body)
        os.rename(os.path.join(folder, 'req%d.tmp' % n), os.path.join(folder, 'req%d' % n))
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
with open(sys.argv[2] + '.tmp', 'w') as f:
    f.write(str(s.server_address[1]))
os.rename(sys.argv[2] + '.tmp', sys.argv[2])
s.serve_forever()
)";

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class notify_e2e : public engine_test {
 protected:
  void SetUp() override {
    engine_test::SetUp();
    dir_ = fs::path(testing::TempDir()) / unique("notify");
    fs::create_directories(dir_ / "requests");
    on_teardown([this] { fs::remove_all(dir_); });
    std::ofstream(dir_ / "receiver.py") << receiver_py;
    const auto started = run_command("/usr/bin/python3 " + (dir_ / "receiver.py").string() + " " +
                                     (dir_ / "requests").string() + " " + (dir_ / "port").string() +
                                     " >" + (dir_ / "receiver.log").string() + " 2>&1 & echo $!");
    const int pid = std::stoi(started.out);
    on_teardown([pid] { ::kill(pid, SIGTERM); });
    ASSERT_TRUE(eventually([this] { return fs::exists(dir_ / "port"); }))
        << read_all(dir_ / "receiver.log");
    port_ = read_all(dir_ / "port");
  }

  static unsigned short free_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
  }

  fs::path schedule_file(const std::string& volume, const fs::path& destination,
                         const std::string& notifications) {
    const auto file = dir_ / (unique("s") + ".yaml");
    std::ofstream(file) << "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: "
                        << unique("s") << "}\nspec:\n  schedule: \"@daily\"\n  volumes: [" << volume
                        << "]\n  stopDuringBackup: \"" << unique("nobody")
                        << "\"\n  destinations: [{local: {path: " << destination.string()
                        << "}}]\n  notifications:\n"
                        << notifications;
    return file;
  }

  command_result backup(const fs::path& schedule) {
    return run_command(std::string(LIFEBOAT_BINARY) + " backup --schedule " + schedule.string() +
                       " --helper-image " + test_image() + " 2>&1");
  }

  boost::json::object request(int n) {
    return boost::json::parse(read_all(dir_ / "requests" / ("req" + std::to_string(n))))
        .as_object();
  }

  fs::path dir_;
  std::string port_;
};

TEST_F(notify_e2e, a_down_receiver_leaves_the_run_succeeded_and_the_live_one_gets_it) {
  const auto volume = create_volume(unique("data"));
  const auto down = std::to_string(free_port());
  // The URLs come from a file (as from a Swarm secret), with a comment.
  const auto urls = dir_ / "notify_urls";
  std::ofstream(urls) << "# receivers\ngeneric+http://127.0.0.1:" << down
                      << "/hook\ngeneric+http://127.0.0.1:" << port_ << "/hook?$volume=" << volume
                      << "\n";
  const auto schedule = schedule_file(volume, dir_ / "archives",
                                      "    level: info\n    urlsFile: " + urls.string() + "\n");
  const auto r = backup(schedule);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("succeeded"));
  EXPECT_THAT(r.out, HasSubstr("notification generic+http://127.0.0.1:" + down + " failed: "));
  EXPECT_THAT(r.out, HasSubstr("notification generic+http://127.0.0.1:" + port_ + " sent"));
  ASSERT_TRUE(fs::exists(dir_ / "requests" / "req0")) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "requests" / "req1"));
  const auto body = request(0);
  EXPECT_THAT(std::string(body.at("title").as_string()), HasSubstr(" succeeded"));
  EXPECT_THAT(std::string(body.at("message").as_string()), HasSubstr("phase: Succeeded"));
  EXPECT_EQ(body.at("volume").as_string(), volume);
}

TEST_F(notify_e2e, a_failed_run_is_notified_with_its_error) {
  const auto volume = create_volume(unique("data"));
  // The destination is a regular file: the run fails.
  const auto destination = dir_ / "not-a-folder";
  std::ofstream(destination) << "x";
  const auto schedule = schedule_file(
      volume, destination, "    urls: [\"generic+http://127.0.0.1:" + port_ + "/hook\"]\n");
  const auto r = backup(schedule);
  EXPECT_EQ(r.status, 1) << r.out;
  ASSERT_TRUE(fs::exists(dir_ / "requests" / "req0")) << r.out;
  const auto body = request(0);
  EXPECT_THAT(std::string(body.at("title").as_string()), HasSubstr(" failed"));
  const std::string message(body.at("message").as_string());
  EXPECT_THAT(message, HasSubstr("phase: Failed"));
  EXPECT_THAT(message, HasSubstr("error: "));
  EXPECT_THAT(message, HasSubstr(destination.filename().string()));
}

// The Restore has no notifications of its own and restores a Backup of a
// schedule that has some (level error, a template): it fails (its target
// volume does not exist and createVolume is off), so it is reported there;
// the schedule's successful backup before it is not.
TEST_F(notify_e2e, the_controller_notifies_a_failed_restore_where_its_schedule_reports) {
  const auto volume = create_volume(unique("data"));
  const auto schedule = unique("s");
  on_teardown([this] { remove_objects(unique("")); });
  const auto objects = dir_ / "objects.yaml";
  std::ofstream(objects)
      << "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: " << schedule
      << "}\nspec:\n  schedule: '0 3 1 1 *'\n  volumes: [" << volume
      << "]\n  stopDuringBackup: " << unique("nobody")
      << "\n  destinations: [{local: {path: " << (dir_ / "archives").string()
      << "}}]\n  notifications:\n"
      << "    urls: [\"generic+http://127.0.0.1:" << port_ << "/hook\"]\n"
      << "    template:\n      title: \"{{kind}} {{name}} {{result}}\"\n"
      << "      body: \"backup={{backup}} schedule={{schedule}} targets={{targets}} "
         "outcome={{outcome}} error={{error}}\"\n";
  ASSERT_EQ(run_command(lifeboat_command("apply -f " + objects.string() + " 2>&1")).status, 0);
  const auto lease = unique("lease");
  on_teardown([lease] { run_command("docker config rm " + lease + " >/dev/null 2>&1"); });
  controller_process controller(
      dir_ / "controller.log",
      {"--lease-name", lease, "--identity", unique("c"), "--helper-image", test_image()});

  ASSERT_EQ(run_command(lifeboat_command("backup now " + schedule)).status, 0);
  std::string backup;
  ASSERT_TRUE(eventually(
      [&] {
        for (const auto& b : get_objects("backups")) {
          if (b.schedule_ref == schedule && b.phase == "Succeeded") {
            backup = b.name;
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds{120}))
      << controller.log();

  const auto restore = unique("r");
  const auto target = unique("missing");
  const auto restore_file = dir_ / "restore.yaml";
  std::ofstream(restore_file) << "apiVersion: lifeboat/v1\nkind: Restore\nmetadata: {name: "
                              << restore << "}\nspec:\n  backupRef: " << backup
                              << "\n  volumes: [{from: " << volume << ", to: " << target << "}]\n";
  ASSERT_EQ(run_command(lifeboat_command("apply -f " + restore_file.string() + " 2>&1")).status, 0);
  ASSERT_TRUE(eventually([this] { return fs::exists(dir_ / "requests" / "req0"); },
                         std::chrono::seconds{120}))
      << controller.log();
  const auto body = request(0);
  EXPECT_EQ(body.at("title").as_string(), "Restore " + restore + " failed");
  const std::string message(body.at("message").as_string());
  EXPECT_THAT(message, HasSubstr("backup=" + backup + " schedule=" + schedule +
                                 " targets=" + volume + " -> " + target + " outcome="));
  EXPECT_THAT(message, HasSubstr("volume " + target + " does not exist"));

  // A Restore refused before it runs (no such Backup) is reported too, here
  // to its own notifications, in the default wording.
  const auto refused = unique("refused");
  const auto refused_file = dir_ / "refused.yaml";
  std::ofstream(refused_file) << "apiVersion: lifeboat/v1\nkind: Restore\nmetadata: {name: "
                              << refused << "}\nspec:\n  backupRef: " << unique("nobackup")
                              << "\n  volumes: [" << volume
                              << "]\n  notifications: {urls: [\"generic+http://127.0.0.1:" << port_
                              << "/own\"]}\n";
  ASSERT_EQ(run_command(lifeboat_command("apply -f " + refused_file.string() + " 2>&1")).status, 0);
  ASSERT_TRUE(eventually([this] { return fs::exists(dir_ / "requests" / "req1"); },
                         std::chrono::seconds{120}))
      << controller.log();
  const auto second = request(1);
  EXPECT_EQ(second.at("title").as_string(), "lifeboat: Restore " + refused + " failed");
  const std::string refused_message(second.at("message").as_string());
  EXPECT_THAT(refused_message, HasSubstr("phase: Failed (in Pending)\noutcome: invalid\n"));
  EXPECT_THAT(refused_message,
              HasSubstr("error: backup " + unique("nobackup") + " does not exist"));
  EXPECT_EQ(controller.stop(), 0);
  // Nothing else was sent: the backup succeeded, which level error leaves
  // out, and each Restore was reported once.
  EXPECT_FALSE(fs::exists(dir_ / "requests" / "req2"));
}

}  // namespace
}  // namespace lifeboat::e2e
