// Issue 12, item 13 (Logs): every JSON line is one valid JSON object, and no
// text from a volume or a user (file names, messages) can end a log line or
// add a field to it, in JSON or in text.
#include "controller/logging/log.hpp"

#include <gtest/gtest.h>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <random>
#include <sstream>

namespace lifeboat::logging {
namespace {

// Logs through spdlog as the controller does, and returns what was written.
class captured_log {
 public:
  explicit captured_log(format f)
      : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)), logger_("test", sink_) {
    logger_.set_formatter(make_formatter(f));
  }

  template <typename... Args>
  void info(fmt::format_string<Args...> text, Args&&... args) {
    logger_.info(text, std::forward<Args>(args)...);
  }

  std::string written() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  spdlog::logger logger_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    lines.push_back(l);
  }
  return lines;
}

// The one JSON object that `written` must consist of.
boost::json::object only_object(const std::string& written) {
  EXPECT_EQ(std::count(written.begin(), written.end(), '\n'), 1) << written;
  EXPECT_TRUE(written.ends_with('\n')) << written;
  boost::system::error_code ec;
  auto parsed = boost::json::parse(written, ec);
  EXPECT_FALSE(ec) << ec.message() << " in: " << written;
  if (ec || !parsed.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << written;
    return {};
  }
  return parsed.as_object();
}

std::string member(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    return "<missing>";
  }
  return std::string(v->as_string());
}

const std::string forging_message =
    "cannot read \"vol/a\" ok=true\n"
    "time=2030-01-01T00:00:00.000Z level=error event=forged";

TEST(Issue12Item13Logs, JsonLineWithQuotesAndNewlinesInAMessageIsOneValidObject) {
  captured_log log(format::json);
  log.info("event=run_finished backup={} ok={} msg={}", value("nightly-20300101000000"), false,
           value(forging_message));
  const auto o = only_object(log.written());
  EXPECT_EQ(member(o, "level"), "info");
  EXPECT_EQ(member(o, "event"), "run_finished");
  EXPECT_EQ(member(o, "backup"), "nightly-20300101000000");
  EXPECT_EQ(member(o, "ok"), "false");
  EXPECT_EQ(member(o, "msg"), forging_message);
  EXPECT_EQ(o.size(), 6U) << log.written();
}

TEST(Issue12Item13Logs, JsonLineStaysValidWhenACallSiteQuotesByHand) {
  // The controller's lines were written as msg=\"{}\" before value() existed;
  // such a line must still be one valid object, never two lines or fields.
  captured_log log(format::json);
  log.info("event=run_exception error=\"{}\"", forging_message);
  const auto o = only_object(log.written());
  EXPECT_EQ(member(o, "level"), "info");
  EXPECT_NE(member(o, "msg").find("event=forged"), std::string::npos);
  EXPECT_FALSE(o.contains("event"));
}

TEST(Issue12Item13Logs, JsonLineOfFileNamesThatAreNotUtf8IsValidUtf8) {
  const std::string file_name = "vol/caf\xe9\xff\x1b[2J\x7f\xc2\x85.txt";
  for (const bool through_value : {true, false}) {
    captured_log log(format::json);
    if (through_value) {
      log.info("event=entry file={}", value(file_name));
    } else {
      log.info("event=entry file=\"{}\"", file_name);
    }
    const auto o = only_object(log.written());  // the parser rejects invalid UTF-8
    if (through_value) {
      EXPECT_EQ(member(o, "file"), "vol/caf\\xe9\\xff\x1b[2J\x7f\xc2\x85.txt");
    }
  }
}

TEST(Issue12Item13Logs, JsonLineKeepsTimeAndLevelAgainstPairsOfTheSameName) {
  captured_log log(format::json);
  log.info("event=x level={} time={}", value("critical"), value("1970"));
  const auto o = only_object(log.written());
  EXPECT_EQ(member(o, "level"), "info");
  EXPECT_NE(member(o, "time"), "1970");
}

TEST(Issue12Item13Logs, JsonLineOfEveryByteAndOfRandomTextIsOneValidObject) {
  std::mt19937 random(13);  // fixed seed: the same cases on every run
  std::vector<std::string> texts;
  for (int b = 0; b < 256; ++b) {
    texts.emplace_back(1, static_cast<char>(b));
  }
  for (int i = 0; i < 2000; ++i) {
    std::string t(random() % 24, '\0');
    for (auto& c : t) {
      // Mostly the characters that matter here: quotes, backslashes, '=',
      // spaces, controls, UTF-8 lead and continuation bytes.
      static constexpr char interesting[] = "\"\\= \n\r\t\x01\x7f\x80\xbf\xc2\xe2\xf0xu0a";
      c = random() % 2 == 0 ? interesting[random() % (sizeof interesting - 1)]
                            : static_cast<char>(random() % 256);
    }
    texts.push_back(std::move(t));
  }
  for (const auto& t : texts) {
    for (const format f : {format::json, format::text}) {
      captured_log log(f);
      log.info("event=entry file={} raw=\"{}\"", value(t), t);
      const auto written = log.written();
      ASSERT_EQ(std::count(written.begin(), written.end(), '\n'), 1) << written;
      if (f == format::json) {
        only_object(written);
      }
    }
  }
}

TEST(Issue12Item13Logs, TextLineQuotesAValueSoItCannotAddAFieldOrALine) {
  captured_log log(format::text);
  log.info("event=run_finished ok={} msg={}", false, value(forging_message));
  const auto lines = lines_of(log.written());
  ASSERT_EQ(lines.size(), 1U) << log.written();
  const std::string expected_tail =
      " level=info event=run_finished ok=false msg=\"cannot read \\\"vol/a\\\" ok=true\\n"
      "time=2030-01-01T00:00:00.000Z level=error event=forged\"";
  EXPECT_TRUE(lines[0].starts_with("time=")) << lines[0];
  EXPECT_TRUE(lines[0].ends_with(expected_tail)) << lines[0];
}

TEST(Issue12Item13Logs, TextLineEscapesControlsThatACallSiteLeftIn) {
  captured_log log(format::text);
  log.info("event=x detail=\"{}\"", "a\nlevel=error\r\x1b[2K\xe2\x80\xa8z");
  const auto lines = lines_of(log.written());
  ASSERT_EQ(lines.size(), 1U) << log.written();
  EXPECT_TRUE(lines[0].ends_with(R"(detail="a\nlevel=error\r\x1b[2K\u2028z")")) << lines[0];
}

TEST(Issue12Item13Logs, ValueIsBareOnlyForPlainTokens) {
  EXPECT_EQ(value("nightly-db_1.x"), "nightly-db_1.x");
  EXPECT_EQ(value(""), "\"\"");
  EXPECT_EQ(value("a b"), "\"a b\"");
  EXPECT_EQ(value("a=b"), "\"a=b\"");
  EXPECT_EQ(value("a\"b"), R"("a\"b")");
  EXPECT_EQ(value("a\\b"), R"("a\\b")");
  EXPECT_EQ(value("\xff"), R"("\xff")");
  EXPECT_EQ(value("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

TEST(Issue12Item13Logs, LineHasUtcMillisecondTime) {
  const auto t = std::chrono::sys_days{std::chrono::year{2030} / 1 / 2} + std::chrono::hours{3} +
                 std::chrono::minutes{4} + std::chrono::seconds{5} + std::chrono::milliseconds{67};
  EXPECT_EQ(line(format::text, t, "warning", "event=x"),
            "time=2030-01-02T03:04:05.067Z level=warning event=x\n");
  EXPECT_EQ(line(format::json, t, "warning", "event=x"),
            "{\"time\":\"2030-01-02T03:04:05.067Z\",\"level\":\"warning\",\"event\":\"x\"}\n");
}

TEST(Issue12Item13Logs, ParseFormat) {
  EXPECT_EQ(parse_format("text"), format::text);
  EXPECT_EQ(parse_format("json"), format::json);
  EXPECT_EQ(parse_format("xml"), std::nullopt);
}

}  // namespace
}  // namespace lifeboat::logging
