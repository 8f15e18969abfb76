#include "controller/notify/notify.hpp"
#include "api/template.hpp"
#include "controller/notify/listener.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace lifeboat::notify {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const message msg{"lifeboat: Backup nightly-1 failed", "phase: Failed\nerror: no space\n",
                  "nightly-1"};

http_request one_http(std::string_view url) {
  auto r = build_requests(url, msg);
  EXPECT_TRUE(r) << (r ? "" : r.error());
  if (!r || r->size() != 1 || !std::holds_alternative<http_request>(r->front())) {
    ADD_FAILURE() << "expected one HTTP request for " << url;
    return {};
  }
  return std::get<http_request>(r->front());
}

boost::json::object json_of(const http_request& r) {
  return boost::json::parse(r.body).as_object();
}

TEST(build_requests, generic_posts_json_and_maps_its_parameters) {
  const auto r = one_http(
      "generic+https://hooks.example:8443/in/x?template=json&titlekey=subject&messagekey=text"
      "&@X-Api-Key=k1&$host=db1&_template=fwd&keep=1");
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url, "https://hooks.example:8443/in/x?template=fwd&keep=1");
  EXPECT_THAT(r.headers, ElementsAre("Content-Type: application/json", "X-Api-Key: k1"));
  const auto body = json_of(r);
  EXPECT_EQ(body.at("subject").as_string(), msg.title);
  EXPECT_EQ(body.at("text").as_string(), msg.body);
  EXPECT_EQ(body.at("host").as_string(), "db1");
  EXPECT_FALSE(body.contains("title"));

  const auto plain = one_http("generic+http://127.0.0.1:9000/hook");
  EXPECT_EQ(plain.url, "http://127.0.0.1:9000/hook");
  EXPECT_EQ(json_of(plain).at("title").as_string(), msg.title);
  EXPECT_EQ(json_of(plain).at("message").as_string(), msg.body);

  const auto wrong = build_requests("generic+https://h/x?template=markdown", msg);
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error(), HasSubstr("template markdown is not supported"));
}

TEST(build_requests, slack_webhook_in_both_spellings) {
  const auto r = one_http("slack://lifeboat@T000/B000/XXXX?channel=%23ops");
  EXPECT_EQ(r.url, "https://hooks.slack.com/services/T000/B000/XXXX");
  const auto body = json_of(r);
  EXPECT_EQ(body.at("username").as_string(), "lifeboat");
  EXPECT_EQ(body.at("channel").as_string(), "#ops");
  EXPECT_THAT(std::string(body.at("text").as_string()), HasSubstr("no space"));
  EXPECT_EQ(one_http("slack://hook:T000-B000-XXXX@webhook").url,
            "https://hooks.slack.com/services/T000/B000/XXXX");
  const auto bad = build_requests("slack://xoxb:secret-bot-token@C123", msg);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error(), Not(HasSubstr("secret")));
}

TEST(build_requests, discord_webhook) {
  const auto r = one_http("discord://tok3n@123456");
  EXPECT_EQ(r.url, "https://discord.com/api/webhooks/123456/tok3n");
  EXPECT_EQ(json_of(r).at("content").as_string(), msg.title + "\n\n" + msg.body);
  EXPECT_FALSE(build_requests("discord://123456", msg));
}

TEST(build_requests, gotify_with_path_priority_and_plain_http) {
  const auto r = one_http("gotify://gotify.example:8080/sub/AzyoeNS.D4iJLVa/?priority=5");
  EXPECT_EQ(r.url, "https://gotify.example:8080/sub/message");
  EXPECT_THAT(r.headers,
              ElementsAre("Content-Type: application/json", "X-Gotify-Key: AzyoeNS.D4iJLVa"));
  EXPECT_EQ(json_of(r).at("priority").as_int64(), 5);
  EXPECT_EQ(json_of(r).at("title").as_string(), msg.title);
  EXPECT_EQ(one_http("gotify://g.example/tok?disabletls=yes").url, "http://g.example/message");
  EXPECT_FALSE(build_requests("gotify://g.example/", msg));
}

TEST(build_requests, ntfy_topic_headers_and_basic_auth) {
  const auto r = one_http("ntfy://alice:pw@ntfy.example/backups?priority=high&tags=warning");
  EXPECT_EQ(r.url, "https://ntfy.example/backups");
  EXPECT_EQ(r.body, msg.body);
  EXPECT_THAT(r.headers, ElementsAre("Title: " + msg.title, "Priority: high", "Tags: warning",
                                     "Authorization: Basic YWxpY2U6cHc="));
  EXPECT_EQ(one_http("ntfy://localhost:8080/t?scheme=http").url, "http://localhost:8080/t");
}

TEST(build_requests, telegram_one_request_per_chat) {
  auto r = build_requests("telegram://110201543:AAHdqTcv@telegram?chats=@chan,-100123", msg);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2U);
  const auto& first = std::get<http_request>((*r)[0]);
  EXPECT_EQ(first.url, "https://api.telegram.org/bot110201543:AAHdqTcv/sendMessage");
  EXPECT_EQ(json_of(first).at("chat_id").as_string(), "@chan");
  EXPECT_EQ(json_of(std::get<http_request>((*r)[1])).at("chat_id").as_string(), "-100123");
  EXPECT_FALSE(build_requests("telegram://110201543:AAHdqTcv@telegram", msg));
}

TEST(build_requests, matrix_with_an_access_token) {
  const auto r = one_http("matrix://:syt_token@matrix.example:8448/?rooms=!abc:example.org");
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.url,
            "https://matrix.example:8448/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/"
            "m.room.message/nightly-1-0");
  EXPECT_THAT(r.headers,
              ElementsAre("Content-Type: application/json", "Authorization: Bearer syt_token"));
  EXPECT_EQ(json_of(r).at("msgtype").as_string(), "m.text");
  const auto login = build_requests("matrix://bob:hunter2@matrix.example/?rooms=!a:b", msg);
  ASSERT_FALSE(login);
  EXPECT_THAT(login.error(), Not(HasSubstr("hunter2")));
}

TEST(build_requests, smtp_mail_fields_and_encryption) {
  auto r = build_requests(
      "smtp://ops:s3cret@127.0.0.1:2525/?from=lifeboat@example.org&to=a@example.org,"
      "b@example.org&encryption=None&subject=Backup",
      msg);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1U);
  const auto& m = std::get<mail_request>(r->front());
  EXPECT_EQ(m.url, "smtp://127.0.0.1:2525");
  EXPECT_EQ(m.user, "ops");
  EXPECT_EQ(m.password, "s3cret");
  EXPECT_EQ(m.starttls, "none");
  EXPECT_EQ(m.from, "lifeboat@example.org");
  EXPECT_THAT(m.to, ElementsAre("a@example.org", "b@example.org"));
  EXPECT_EQ(m.subject, "Backup");
  EXPECT_EQ(m.body, msg.body);

  auto implicit = build_requests("smtp://mail.example:465/?from=a@b&to=c@d&auth=None", msg);
  ASSERT_TRUE(implicit);
  const auto& i = std::get<mail_request>(implicit->front());
  EXPECT_EQ(i.url, "smtps://mail.example:465");
  EXPECT_EQ(i.subject, msg.title);
  EXPECT_TRUE(i.user.empty());
  auto explicit_tls =
      build_requests("smtp://u:p@mail.example:587/?from=a@b&to=c@d&encryption=ExplicitTLS", msg);
  ASSERT_TRUE(explicit_tls);
  EXPECT_EQ(std::get<mail_request>(explicit_tls->front()).starttls, "require");

  const auto no_to = build_requests("smtp://u:s3cret@mail.example/?from=a@b", msg);
  ASSERT_FALSE(no_to);
  EXPECT_THAT(no_to.error(), Not(HasSubstr("s3cret")));
}

TEST(describe, shows_no_secret) {
  EXPECT_EQ(describe("smtp://u:s3cret@mail.example:25/?from=a"), "smtp://mail.example:25");
  EXPECT_EQ(describe("generic+https://h.example/x?token=t"), "generic+https://h.example");
  EXPECT_EQ(describe("slack://T000/B000/XXXX"), "slack://");
  EXPECT_EQ(describe("discord://tok@123"), "discord://");
  EXPECT_EQ(describe("telegram://1:AAH@telegram?chats=1"), "telegram://telegram");
}

TEST(parse_urls_file, skips_comments_and_blanks) {
  EXPECT_THAT(parse_urls_file("# team chat\n  slack://a/b/c  \n\n\t# off: ntfy://x/y\r\n"
                              "smtp://h/?from=a&to=b\r\n"),
              ElementsAre("slack://a/b/c", "smtp://h/?from=a&to=b"));
  EXPECT_TRUE(parse_urls_file("").empty());
}

// A sender that fails the first `failures` sends, recording each request.
class fake_sender final : public sender {
 public:
  explicit fake_sender(int failures) : failures_(failures) {}
  result<void> send(const request& r) override {
    sent.push_back(r);
    if (failures_ > 0) {
      --failures_;
      return std::string("connection refused");
    }
    return {};
  }
  std::vector<request> sent;

 private:
  int failures_;
};

TEST(deliver, retries_with_backoff_then_succeeds) {
  fake_sender s(2);
  std::vector<std::chrono::milliseconds> waits;
  const auto d = deliver("generic+http://127.0.0.1:1/h", msg, s,
                         [&](std::chrono::milliseconds w) { waits.push_back(w); });
  EXPECT_TRUE(d.ok);
  EXPECT_EQ(d.attempts, 3);
  EXPECT_EQ(s.sent.size(), 3U);
  EXPECT_THAT(waits, ElementsAre(std::chrono::milliseconds{1000}, std::chrono::milliseconds{2000}));
  EXPECT_EQ(d.target, "generic+http://127.0.0.1:1");
}

TEST(deliver, gives_up_after_max_attempts) {
  fake_sender s(10);
  std::vector<std::chrono::milliseconds> waits;
  const auto d = deliver("ntfy://127.0.0.1:1/t?scheme=http", msg, s,
                         [&](std::chrono::milliseconds w) { waits.push_back(w); });
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.attempts, max_attempts);
  EXPECT_EQ(d.error, "connection refused");
  EXPECT_EQ(waits.size(), 2U);
}

TEST(deliver, a_bad_url_is_not_retried) {
  fake_sender s(0);
  const auto d = deliver("telegram://1:AAH@telegram", msg, s,
                         [](std::chrono::milliseconds) { ADD_FAILURE() << "slept"; });
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(d.attempts, 0);
  EXPECT_TRUE(s.sent.empty());
  EXPECT_THAT(d.error, HasSubstr("chats"));
}

TEST(format_message, carries_every_field) {
  run_summary s;
  s.kind = "Backup";
  s.name = "nightly-20261204030000";
  s.schedule = "nightly";
  s.ok = false;
  s.phase = "Failed";
  s.duration = std::chrono::milliseconds{12345};
  s.held = std::chrono::milliseconds{2100};
  s.bytes = 4096;
  s.destinations = {{"local /archive", "ok"}, {"s3 b/p/", "destination refused"}};
  s.error = "s3 b/p/: HTTP 403";
  const auto m = format_message(s);
  EXPECT_EQ(m.title, "lifeboat: Backup nightly-20261204030000 failed");
  EXPECT_EQ(m.id, s.name);
  EXPECT_EQ(m.body,
            "schedule: nightly\nbackup: nightly-20261204030000\nphase: Failed\n"
            "duration: 12.3 s\nheld: 2.1 s\nbytes: 4096\ndestination local /archive: ok\n"
            "destination s3 b/p/: destination refused\nerror: s3 b/p/: HTTP 403\n");
}

// A Restore of a schedule's backup that failed while writing.
run_summary failed_restore() {
  api::restore r;
  r.metadata.name = "db-back";
  r.spec.archive = "/archive/db-1.tar.gz";  // its backupRef, as resolved
  r.spec.volumes = {{"app_db", "app_db"}, {"app_up", "app_up2"}};
  restore::run_result result;
  result.ok = false;
  result.outcome = restore::outcome::write_failed;
  result.message = "app_up2: no space left on device";
  result.archive = "/archive/db-1.tar.gz";
  result.bytes = 2048;
  result.duration = std::chrono::milliseconds{4500};
  result.downtime = std::chrono::milliseconds{1200};
  return summarize_restore(r, "db-1", "db", "Restoring", result);
}

TEST(summarize_restore, carries_the_restores_fields) {
  const auto s = failed_restore();
  EXPECT_EQ(s.kind, "Restore");
  EXPECT_EQ(s.name, "db-back");
  EXPECT_FALSE(s.ok);
  EXPECT_EQ(s.phase, "Failed");
  EXPECT_EQ(s.reached, "Restoring");
  EXPECT_EQ(s.source, "/archive/db-1.tar.gz");
  EXPECT_THAT(s.targets, ElementsAre("app_db -> app_db", "app_up -> app_up2"));
  EXPECT_EQ(s.outcome, "write_failed");
  EXPECT_EQ(s.error, "app_up2: no space left on device");

  api::restore remote;
  remote.metadata.name = "r";
  remote.spec.source = api::restore_source{api::local_destination{"/b"}, "x.tar"};
  restore::run_result ok;
  ok.ok = true;
  ok.outcome = restore::outcome::succeeded;
  ok.message = "1 volume(s)";
  const auto t = summarize_restore(remote, "", "", "Resuming", ok);
  EXPECT_EQ(t.source, "local x.tar");
  EXPECT_EQ(t.phase, "Succeeded");
  EXPECT_EQ(t.error, "");
}

TEST(format_message, a_restore_says_what_it_read_where_it_wrote_and_how_far_it_got) {
  const auto m = format_message(failed_restore());
  EXPECT_EQ(m.title, "lifeboat: Restore db-back failed");
  EXPECT_EQ(m.id, "db-back");
  EXPECT_EQ(m.body,
            "schedule: db\nrestore: db-back\nbackup: db-1\nsource: /archive/db-1.tar.gz\n"
            "volumes: app_db -> app_db, app_up -> app_up2\nphase: Failed (in Restoring)\n"
            "outcome: write_failed\nduration: 4.5 s\nheld: 1.2 s\nbytes: 2048\n"
            "archive: /archive/db-1.tar.gz\nerror: app_up2: no space left on device\n");
}

TEST(template_values, every_placeholder_has_a_value) {
  const auto v = template_values(failed_restore());
  for (const auto name : api::template_placeholders()) {
    EXPECT_TRUE(v.contains(name)) << name;
  }
  EXPECT_EQ(v.size(), api::template_placeholders().size());
  EXPECT_EQ(v.at("restore"), "db-back");
  EXPECT_EQ(v.at("backup"), "db-1");
  EXPECT_EQ(v.at("targets"), "app_db -> app_db, app_up -> app_up2");
  EXPECT_EQ(v.at("reached"), "Restoring");
  EXPECT_EQ(v.at("heldTime"), "1.2 s");
  EXPECT_EQ(v.at("result"), "failed");

  run_summary b;
  b.kind = "Backup";
  b.name = "nightly-1";
  b.ok = true;
  b.phase = "Succeeded";
  b.destinations = {{"local /a", "ok"}, {"s3 b/", "HTTP 403"}};
  const auto bv = template_values(b);
  EXPECT_EQ(bv.at("backup"), "nightly-1");
  EXPECT_EQ(bv.at("restore"), "");
  EXPECT_EQ(bv.at("reached"), "Succeeded");  // unknown: the terminal phase
  EXPECT_EQ(bv.at("destinations"), "local /a: ok; s3 b/: HTTP 403");
}

TEST(format_message, a_template_words_the_parts_it_sets) {
  const auto s = failed_restore();
  api::notification_template t;
  t.title = "[{{result}}] {{kind}} {{name}} from {{backup}}";
  const auto m = format_message(s, t);
  EXPECT_EQ(m.title, "[failed] Restore db-back from db-1");
  EXPECT_EQ(m.body, format_message(s).body);
  EXPECT_EQ(m.id, "db-back");
  t.body = "{{targets}}: {{error}} after {{duration}}";
  EXPECT_EQ(format_message(s, t).body,
            "app_db -> app_db, app_up -> app_up2: app_up2: no space left on device after 4.5 s");
}

TEST(parse_template_file, title_line_then_body) {
  const auto t = parse_template_file("{{kind}} {{name}}\r\nline 1 {{error}}\nline 2\n");
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->title, "{{kind}} {{name}}");
  EXPECT_EQ(t->body, "line 1 {{error}}\nline 2\n");
  const auto title_only = parse_template_file("{{name}}");
  ASSERT_TRUE(title_only);
  EXPECT_EQ(title_only->title, "{{name}}");
  EXPECT_FALSE(title_only->body);
  const auto body_only = parse_template_file("\n{{error}}");
  ASSERT_TRUE(body_only);
  EXPECT_FALSE(body_only->title);
  EXPECT_EQ(body_only->body, "{{error}}");

  const auto bad = parse_template_file("{{name}}\n{{eror}}\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error(), HasSubstr("body: unknown placeholder {{eror}}"));
}

// run_notifier with a recording sender and files in memory.
struct notifier_fixture {
  fake_sender sender{0};
  std::map<std::string, std::string> files;
  int sent = 0;
  int failed = 0;
  run_notifier notifier{
      sender, [](std::chrono::milliseconds) {},
      [this](const std::string& path) -> result<std::string> {
        const auto it = files.find(path);
        if (it == files.end()) {
          return {boost::system::in_place_error, "No such file or directory: " + path};
        }
        return {boost::system::in_place_value, it->second};
      },
      [this](bool ok) { ++(ok ? sent : failed); }};

  std::string title_of(std::size_t i) const {
    return std::string(
        boost::json::parse(std::get<http_request>(sender.sent.at(i)).body).at("title").as_string());
  }
  std::string body_of(std::size_t i) const {
    return std::string(boost::json::parse(std::get<http_request>(sender.sent.at(i)).body)
                           .at("message")
                           .as_string());
  }
};

TEST(run_notifier, words_a_restore_by_its_template_file) {
  notifier_fixture f;
  f.files["/t.tpl"] = "{{restore}}: {{result}} in {{reached}}\nvolumes {{targets}}\n";
  api::notifications_spec spec;
  spec.urls = {"generic+http://127.0.0.1:1/h"};
  spec.template_file = "/t.tpl";
  const auto out = f.notifier.notify(spec, failed_restore());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].ok);
  EXPECT_EQ(f.sent, 1);
  EXPECT_EQ(f.title_of(0), "db-back: failed in Restoring");
  EXPECT_EQ(f.body_of(0), "volumes app_db -> app_db, app_up -> app_up2\n");
}

TEST(run_notifier, a_bad_template_file_still_sends_the_default_saying_why) {
  notifier_fixture f;
  f.files["/bad.tpl"] = "{{nme}}\n";
  api::notifications_spec spec;
  spec.urls = {"generic+http://127.0.0.1:1/h"};
  spec.template_file = "/bad.tpl";
  ASSERT_EQ(f.notifier.notify(spec, failed_restore()).size(), 1U);
  EXPECT_EQ(f.title_of(0), "lifeboat: Restore db-back failed");
  EXPECT_THAT(f.body_of(0),
              HasSubstr("template error: /bad.tpl: title: unknown placeholder {{nme}}"));
  spec.template_file = "/missing.tpl";
  ASSERT_EQ(f.notifier.notify(spec, failed_restore()).size(), 1U);
  EXPECT_THAT(f.body_of(1), HasSubstr("template error: /missing.tpl: cannot read it: No such"));
  EXPECT_EQ(f.sent, 2);
}

TEST(run_notifier, a_restore_follows_the_same_level_rule) {
  notifier_fixture f;
  api::notifications_spec spec;
  spec.urls = {"generic+http://127.0.0.1:1/h"};
  auto ok = failed_restore();
  ok.ok = true;
  ok.phase = "Succeeded";
  EXPECT_TRUE(f.notifier.notify(spec, ok).empty());  // level error: only failures
  EXPECT_EQ(f.notifier.notify(spec, failed_restore()).size(), 1U);
  spec.level = api::notification_level::info;
  EXPECT_EQ(f.notifier.notify(spec, ok).size(), 1U);
  EXPECT_EQ(f.sent, 2);
  EXPECT_EQ(f.failed, 0);
}

}  // namespace
}  // namespace lifeboat::notify
