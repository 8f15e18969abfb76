#include "controller/metrics/metrics.hpp"
#include "controller/metrics/http_server.hpp"

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>

namespace lifeboat::metrics {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;

struct reply {
  int status = 0;
  std::string body;
};

reply fetch(unsigned short port, const std::string& target) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "localhost");
  http::write(socket, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  return {static_cast<int>(res.result_int()), res.body()};
}

TEST(registry, per_schedule_series_start_at_zero_and_disappear) {
  registry r;
  r.add_schedule("nightly");
  const auto text = r.serialize();
  EXPECT_NE(text.find(R"(lifeboat_backups_total{result="success",schedule="nightly"} 0)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(lifeboat_backups_total{result="skipped",schedule="nightly"} 0)"),
            std::string::npos);

  r.backup_finished("nightly", backup_result::success, 12s, 2s, 1024,
                    std::chrono::system_clock::time_point{std::chrono::seconds{1'800'000'000}});
  const auto after = r.serialize();
  EXPECT_NE(after.find(R"(lifeboat_backups_total{result="success",schedule="nightly"} 1)"),
            std::string::npos)
      << after;
  EXPECT_NE(after.find(R"(lifeboat_backup_size_bytes{schedule="nightly"} 1024)"),
            std::string::npos);
  EXPECT_NE(after.find(
                R"(lifeboat_backup_last_success_timestamp_seconds{schedule="nightly"} 1800000000)"),
            std::string::npos)
      << after;
  EXPECT_NE(after.find(R"(lifeboat_backup_downtime_seconds_count{schedule="nightly"} 1)"),
            std::string::npos);

  r.remove_schedule("nightly");
  EXPECT_EQ(r.serialize().find("nightly"), std::string::npos) << "a removed schedule left series";
  r.remove_schedule("nightly");  // idempotent
}

TEST(registry, skipped_runs_count_without_duration) {
  registry r;
  r.backup_finished("s", backup_result::skipped, 0s, 0s, 0, {});
  const auto text = r.serialize();
  EXPECT_NE(text.find(R"(lifeboat_backups_total{result="skipped",schedule="s"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(lifeboat_backup_duration_seconds_count{schedule="s"} 0)"),
            std::string::npos)
      << text;
}

TEST(registry, uploads_and_failure_reasons_per_schedule_disappear_with_it) {
  registry r;
  r.upload_finished("nightly", "local /archive", true, 4096, 3s);
  r.upload_finished("nightly", "s3 backups/db/", false, 0, 1s);
  r.upload_finished("nightly", "s3 backups/db/", true, 4096, 2s);
  r.backup_failed("nightly", "destination refused");
  r.backup_failed("nightly", "destination refused");
  r.backup_failed("other", "");
  const auto text = r.serialize();
  for (
      const auto* line : {
          R"(lifeboat_destination_uploads_total{destination="s3 backups/db/",result="failure",schedule="nightly"} 1)",
          R"(lifeboat_destination_uploads_total{destination="s3 backups/db/",result="success",schedule="nightly"} 1)",
          R"(lifeboat_destination_uploads_total{destination="local /archive",result="failure",schedule="nightly"} 0)",
          R"(lifeboat_destination_upload_bytes_total{destination="local /archive",schedule="nightly"} 4096)",
          R"(lifeboat_destination_upload_duration_seconds_count{destination="s3 backups/db/",schedule="nightly"} 1)",
          R"(lifeboat_destination_upload_duration_seconds_sum{destination="s3 backups/db/",schedule="nightly"} 2)",
          R"(lifeboat_backup_failures_total{reason="destination_refused",schedule="nightly"} 2)",
          R"(lifeboat_backup_failures_total{reason="unknown",schedule="other"} 1)",
      }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  r.remove_schedule("nightly");
  const auto after = r.serialize();
  EXPECT_EQ(after.find("nightly"), std::string::npos) << after;
  EXPECT_NE(after.find(R"(schedule="other")"), std::string::npos) << after;
}

TEST(http_server, serves_metrics_health_and_readiness) {
  registry r;
  r.set_leader(true);
  std::atomic<bool> ready{false};
  http_server server("127.0.0.1:0", {[&] { return r.serialize(); }, [&] { return ready.load(); }});
  ASSERT_NE(server.port(), 0);

  const auto metrics = fetch(server.port(), "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("lifeboat_leader 1"), std::string::npos) << metrics.body;
  EXPECT_EQ(fetch(server.port(), "/healthz").status, 200);
  EXPECT_EQ(fetch(server.port(), "/readyz").status, 503);
  ready = true;
  EXPECT_EQ(fetch(server.port(), "/readyz").status, 200);
  EXPECT_EQ(fetch(server.port(), "/nope").status, 404);
}

// Issue 12 item 10: what a client can make the listener hold is bounded.
TEST(http_server, a_connection_over_the_limit_is_closed_at_once) {
  server_limits limits;
  limits.max_connections = 2;
  http_server server("127.0.0.1:0", {[] { return std::string("m"); }, [] { return true; }}, limits);
  boost::asio::io_context io;
  const boost::asio::ip::tcp::endpoint at{boost::asio::ip::make_address("127.0.0.1"),
                                          server.port()};
  // Two idle clients fill the slots; accepted in order, before the third.
  boost::asio::ip::tcp::socket idle1(io);
  boost::asio::ip::tcp::socket idle2(io);
  idle1.connect(at);
  idle2.connect(at);
  boost::asio::ip::tcp::socket third(io);
  third.connect(at);
  http::request<http::string_body> req{http::verb::get, "/healthz", 11};
  req.set(http::field::host, "localhost");
  boost::system::error_code ec;
  http::write(third, req, ec);  // may fail already: the server closed it
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(third, buffer, res, ec);
  EXPECT_TRUE(ec) << "the third connection was served: " << res.result_int();

  // The idle ones still get answers: they hold their slots.
  http::write(idle1, req);
  http::response<http::string_body> answered;
  boost::beast::flat_buffer buffer1;
  http::read(idle1, buffer1, answered);
  EXPECT_EQ(answered.result_int(), 200U);
}

TEST(http_server, a_request_larger_than_the_limit_is_refused) {
  server_limits limits;
  limits.max_request_bytes = 1024;
  http_server server("127.0.0.1:0", {[] { return std::string("m"); }, [] { return true; }}, limits);
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
  const std::string raw =
      "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + std::string(64 * 1024, 'x') +
      "\r\n\r\n";
  boost::system::error_code ec;
  boost::asio::write(socket, boost::asio::buffer(raw), ec);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res, ec);
  if (!ec) {
    EXPECT_EQ(res.result(), http::status::request_header_fields_too_large);
  }
  EXPECT_NE(res.result(), http::status::ok);
  // And the server still answers others afterwards.
  EXPECT_EQ(fetch(server.port(), "/healthz").status, 200);
}

TEST(http_server, refuses_a_bad_address_at_start_up) {
  EXPECT_THROW(http_server("nonsense", {}), std::runtime_error);
  EXPECT_THROW(http_server("127.0.0.1:99999", {}), std::runtime_error);
  EXPECT_THROW(http_server("256.1.1.1:80", {}), std::runtime_error);
}

}  // namespace
}  // namespace lifeboat::metrics
