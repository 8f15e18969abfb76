#include "api/duration.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace lifeboat::api {
namespace {

using std::chrono::seconds;

struct duration_case {
  std::string text;
  std::optional<seconds> expected;
};

TEST(parse_duration, table) {
  const duration_case cases[] = {
      {"90s", seconds{90}},     {"5m", seconds{300}},
      {"1h30m", seconds{5400}}, {"1h30m15s", seconds{5415}},
      {"2h", seconds{7200}},    {"0h5m", seconds{300}},
      {"", std::nullopt},       {"0s", std::nullopt},
      {"5", std::nullopt},      {"m", std::nullopt},
      {"5x", std::nullopt},     {"5m1h", std::nullopt},
      {"5m5m", std::nullopt},   {"-5m", std::nullopt},
      {"5 m", std::nullopt},    {"99999999999999999999s", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_duration(c.text), c.expected) << "input: '" << c.text << "'";
  }
}

TEST(format_duration, round_trips) {
  for (const auto s : {1, 59, 60, 61, 3599, 3600, 5400, 86400, 90061}) {
    const auto text = format_duration(seconds{s});
    EXPECT_EQ(parse_duration(text), seconds{s}) << text;
  }
  EXPECT_EQ(format_duration(seconds{5400}), "1h30m");
  EXPECT_EQ(format_duration(seconds{0}), "0s");
}

}  // namespace
}  // namespace lifeboat::api
