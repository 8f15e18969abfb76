// Notifications against real servers on loopback (issue 15): a Python HTTP
// receiver for generic+http, aiosmtpd for smtp, and a receiver that is down.
// Label `notify`: no engine, but real processes and sockets.

#include "controller/notify/listener.hpp"
#include "controller/notify/notify.hpp"
#include "tests/controller/archive/test_support.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace lifeboat::notify {
namespace {

using archive::test::read_file;
using archive::test::run;
using archive::test::scratch_dir;
using archive::test::shell_quote;
using ::testing::HasSubstr;

/// A TCP port on 127.0.0.1 that was free a moment ago.
unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

bool accepts(unsigned short port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  return !ec;
}

/// Polls `done` every 50 ms until it holds or 30 s have passed.
template <class F>
bool eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

/// A background process started through /bin/sh, stopped with SIGTERM.
class process {
 public:
  explicit process(const std::string& command) {
    pid_ = std::stoi(run(command + " & echo $!").output);
  }
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  ~process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
    }
  }

 private:
  int pid_ = 0;
};

// Records each request's body (one file per request) and answers 200; binds
// a port of its own and writes it to `port` once it listens.
constexpr const char* receiver_py = R"(
import http.server, os, sys
folder = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = len(os.listdir(folder))
        body = self.rfile.read(int(self.headers['Content-Length']))
        with open(os.path.join(folder, 'req%d.tmp' % n), 'wb') as f:
            f.write(self.path.encode() + b'\n' + body)
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

run_summary failed_run() {
  run_summary s;
  s.kind = "Backup";
  s.name = "notify-test-20261204160000";
  s.schedule = "notify-test";
  s.ok = false;
  s.phase = "Failed";
  s.duration = std::chrono::seconds{3};
  s.destinations = {{"local /archive", "no space"}};
  s.error = "local /archive: no space left on device (wrote 1.2 GiB)";
  return s;
}

api::notifications_spec spec_of(std::vector<std::string> urls) {
  api::notifications_spec spec;
  spec.urls = std::move(urls);
  return spec;
}

struct counts {
  int sent = 0;
  int failed = 0;
};

TEST(notify_servers, generic_http_receiver_gets_the_json) {
  scratch_dir dir;
  std::filesystem::create_directories(dir / "requests");
  const auto port_file = dir / "port";
  process receiver(
      "python3 -c " + shell_quote(receiver_py) + " " + shell_quote((dir / "requests").string()) +
      " " + shell_quote(port_file.string()) + " >" + shell_quote((dir / "log").string()) + " 2>&1");
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(port_file); }))
      << read_file(dir / "log");
  const std::string port = read_file(port_file);

  curl_sender sender(std::chrono::seconds{5});
  counts c;
  const run_notifier notifier(
      sender, [](std::chrono::milliseconds) {}, &notify::read_file,
      [&](bool sent) { ++(sent ? c.sent : c.failed); });
  const auto out = notifier.notify(
      spec_of({"generic+http://127.0.0.1:" + port + "/hook?$host=db1&keep=1"}), failed_run());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].ok) << out[0].error;
  EXPECT_EQ(out[0].attempts, 1);
  EXPECT_EQ(c.sent, 1);
  EXPECT_EQ(c.failed, 0);

  ASSERT_TRUE(std::filesystem::exists(dir / "requests" / "req0"));
  const std::string text = read_file(dir / "requests" / "req0");
  const auto newline = text.find('\n');
  EXPECT_EQ(text.substr(0, newline), "/hook?keep=1");
  const auto body = boost::json::parse(text.substr(newline + 1)).as_object();
  EXPECT_EQ(body.at("title").as_string(), "lifeboat: Backup notify-test-20261204160000 failed");
  EXPECT_THAT(std::string(body.at("message").as_string()),
              HasSubstr("error: local /archive: no space left on device"));
  EXPECT_EQ(body.at("host").as_string(), "db1");
}

TEST(notify_servers, smtp_server_receives_the_failure_mail) {
  scratch_dir dir;
  const auto port = free_port();
  const auto log = dir / "smtp.log";
  // Debian's python3 (python3-aiosmtpd), whatever python3 is first on PATH.
  // -u: the debugging handler prints each mail; unbuffered, so it is in the
  // log as soon as the server has it.
  process smtp("/usr/bin/python3 -u -m aiosmtpd -n -l 127.0.0.1:" + std::to_string(port) + " >" +
               shell_quote(log.string()) + " 2>&1");
  ASSERT_TRUE(eventually([&] { return accepts(port); })) << read_file(log);

  curl_sender sender(std::chrono::seconds{5});
  counts c;
  const run_notifier notifier(
      sender, [](std::chrono::milliseconds) {}, &notify::read_file,
      [&](bool sent) { ++(sent ? c.sent : c.failed); });
  const auto out =
      notifier.notify(spec_of({"smtp://127.0.0.1:" + std::to_string(port) +
                               "/?from=lifeboat@example.org&to=ops@example.org&encryption=None"}),
                      failed_run());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].ok) << out[0].error;
  EXPECT_EQ(c.sent, 1);
  EXPECT_TRUE(eventually([&] {
    return read_file(log).find("no space left on device") != std::string::npos;
  })) << read_file(log);
  const auto text = read_file(log);
  EXPECT_THAT(text, HasSubstr("Subject: lifeboat: Backup notify-test-20261204160000 failed"));
  EXPECT_THAT(text, HasSubstr("To: ops@example.org"));
}

TEST(notify_servers, a_receiver_that_is_down_is_counted_as_failed) {
  const auto port = free_port();  // nothing listens there
  curl_sender sender(std::chrono::seconds{5});
  counts c;
  std::vector<std::chrono::milliseconds> waits;
  const run_notifier notifier(
      sender, [&](std::chrono::milliseconds w) { waits.push_back(w); }, &notify::read_file,
      [&](bool sent) { ++(sent ? c.sent : c.failed); });
  auto spec = spec_of({"generic+http://127.0.0.1:" + std::to_string(port) + "/hook"});
  spec.level = api::notification_level::info;
  auto ok_run = failed_run();
  ok_run.ok = true;
  ok_run.error.clear();
  const auto out = notifier.notify(spec, ok_run);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_FALSE(out[0].ok);
  EXPECT_EQ(out[0].attempts, max_attempts);
  EXPECT_THAT(out[0].error, HasSubstr(std::to_string(port)));
  EXPECT_EQ(c.failed, 1);
  EXPECT_EQ(c.sent, 0);
  EXPECT_EQ(waits.size(), 2U);

  // At level error a run that succeeded is not notified at all.
  spec.level = api::notification_level::error;
  EXPECT_TRUE(notifier.notify(spec, ok_run).empty());
  EXPECT_EQ(c.failed, 1);
}

TEST(notify_servers, an_unreadable_urls_file_is_one_counted_failure) {
  curl_sender sender(std::chrono::seconds{5});
  counts c;
  const run_notifier notifier(
      sender, [](std::chrono::milliseconds) {}, &notify::read_file,
      [&](bool sent) { ++(sent ? c.sent : c.failed); });
  api::notifications_spec spec;
  spec.urls_file = "/nonexistent/notify_urls";
  const auto out = notifier.notify(spec, failed_run());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_FALSE(out[0].ok);
  EXPECT_THAT(out[0].error, HasSubstr("cannot read urlsFile"));
  EXPECT_EQ(c.failed, 1);
}

/// Starts the receiver of receiver_py into `p`, writing requests into
/// `dir`/requests; returns its port once it listens ("" when it never did).
std::string start_receiver(const scratch_dir& dir, std::optional<process>& p) {
  std::filesystem::create_directories(dir / "requests");
  const auto port_file = dir / "port";
  p.emplace("python3 -c " + shell_quote(receiver_py) + " " +
            shell_quote((dir / "requests").string()) + " " + shell_quote(port_file.string()) +
            " >" + shell_quote((dir / "log").string()) + " 2>&1");
  if (!eventually([&] { return std::filesystem::exists(port_file); })) {
    return "";
  }
  return read_file(port_file);
}

/// The JSON body of the receiver's request number `n`.
boost::json::object request_body(const scratch_dir& dir, int n) {
  const std::string text = read_file(dir / "requests" / ("req" + std::to_string(n)));
  return boost::json::parse(text.substr(text.find('\n') + 1)).as_object();
}

TEST(notify_servers, a_templated_message_arrives_as_written) {
  scratch_dir dir;
  std::optional<process> receiver;
  const std::string port = start_receiver(dir, receiver);
  ASSERT_FALSE(port.empty()) << read_file(dir / "log");

  curl_sender sender(std::chrono::seconds{5});
  counts c;
  const run_notifier notifier(
      sender, [](std::chrono::milliseconds) {}, &notify::read_file,
      [&](bool sent) { ++(sent ? c.sent : c.failed); });
  auto spec = spec_of({"generic+http://127.0.0.1:" + port + "/hook"});
  spec.message_template =
      api::notification_template{"{{schedule}}: {{result}} ({{phase}})",
                                 "{{name}} held {{heldTime}}; {{destinations}}; {{error}}"};
  const auto out = notifier.notify(spec, failed_run());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].ok) << out[0].error;
  EXPECT_EQ(c.sent, 1);
  ASSERT_TRUE(std::filesystem::exists(dir / "requests" / "req0"));
  const auto body = request_body(dir, 0);
  EXPECT_EQ(body.at("title").as_string(), "notify-test: failed (Failed)");
  EXPECT_EQ(body.at("message").as_string(),
            "notify-test-20261204160000 held 0.0 s; local /archive: no space; local /archive: "
            "no space left on device (wrote 1.2 GiB)");

  // The same from a templateFile: title line, then the body.
  const auto file = dir / "notify.tpl";
  run("printf '%s\\n%s\\n' '[{{kind}}] {{name}}' 'error={{error}}' >" + shell_quote(file.string()));
  spec.message_template.reset();
  spec.template_file = file.string();
  ASSERT_TRUE(notifier.notify(spec, failed_run()).at(0).ok);
  ASSERT_TRUE(std::filesystem::exists(dir / "requests" / "req1"));
  const auto from_file = request_body(dir, 1);
  EXPECT_EQ(from_file.at("title").as_string(), "[Backup] notify-test-20261204160000");
  EXPECT_EQ(from_file.at("message").as_string(),
            "error=local /archive: no space left on device (wrote 1.2 GiB)\n");
}

TEST(notify_servers, a_restores_notification_arrives) {
  scratch_dir dir;
  std::optional<process> receiver;
  const std::string port = start_receiver(dir, receiver);
  ASSERT_FALSE(port.empty()) << read_file(dir / "log");

  api::restore r;
  r.metadata.name = "notify-test-restore";
  r.spec.archive = "/archive/notify-test-1.tar.zst";
  r.spec.volumes = {{"notify_test_db", "notify_test_db2"}};
  restore::run_result result;
  result.ok = false;
  result.outcome = restore::outcome::checksum_mismatch;
  result.message = "checksum mismatch: the archive is not the one that was written";
  result.archive = *r.spec.archive;

  curl_sender sender(std::chrono::seconds{5});
  counts c;
  const run_notifier notifier(
      sender, [](std::chrono::milliseconds) {}, &notify::read_file,
      [&](bool sent) { ++(sent ? c.sent : c.failed); });
  const auto out =
      notifier.notify(spec_of({"generic+http://127.0.0.1:" + port + "/restores"}),
                      summarize_restore(r, "notify-test-1", "notify-test", "Verifying", result));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].ok) << out[0].error;
  EXPECT_EQ(c.sent, 1);
  EXPECT_EQ(c.failed, 0);
  ASSERT_TRUE(std::filesystem::exists(dir / "requests" / "req0"));
  const auto body = request_body(dir, 0);
  EXPECT_EQ(body.at("title").as_string(), "lifeboat: Restore notify-test-restore failed");
  const std::string text(body.at("message").as_string());
  EXPECT_THAT(text, HasSubstr("restore: notify-test-restore\nbackup: notify-test-1\n"));
  EXPECT_THAT(text, HasSubstr("volumes: notify_test_db -> notify_test_db2\n"));
  EXPECT_THAT(text, HasSubstr("phase: Failed (in Verifying)\noutcome: checksum_mismatch\n"));
  EXPECT_THAT(text, HasSubstr("error: checksum mismatch"));
}

}  // namespace
}  // namespace lifeboat::notify
