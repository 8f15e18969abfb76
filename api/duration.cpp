#include "api/duration.hpp"

#include <array>
#include <cstdint>

namespace lifeboat::api {

namespace {

struct unit {
  char suffix;
  std::int64_t seconds;
};

// Order matters: units must appear largest first, each at most once.
constexpr std::array<unit, 3> units{{{'h', 3600}, {'m', 60}, {'s', 1}}};
constexpr std::int64_t max_seconds = std::int64_t{100} * 366 * 24 * 3600;

}  // namespace

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  std::int64_t total = 0;
  std::size_t next_unit = 0;
  std::size_t pos = 0;
  if (text.empty()) {
    return std::nullopt;
  }
  while (pos < text.size()) {
    std::int64_t number = 0;
    const std::size_t digits_start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      number = number * 10 + (text[pos] - '0');
      if (number > max_seconds) {
        return std::nullopt;
      }
      ++pos;
    }
    if (pos == digits_start || pos == text.size()) {
      return std::nullopt;
    }
    const char suffix = text[pos++];
    while (next_unit < units.size() && units[next_unit].suffix != suffix) {
      ++next_unit;
    }
    if (next_unit == units.size()) {
      return std::nullopt;
    }
    total += number * units[next_unit].seconds;
    ++next_unit;
    if (total > max_seconds) {
      return std::nullopt;
    }
  }
  if (total == 0) {
    return std::nullopt;
  }
  return std::chrono::seconds{total};
}

std::string format_duration(std::chrono::seconds d) {
  std::int64_t rest = d.count();
  if (rest <= 0) {
    return "0s";
  }
  std::string out;
  for (const unit& u : units) {
    if (rest >= u.seconds) {
      out += std::to_string(rest / u.seconds);
      out += u.suffix;
      rest %= u.seconds;
    }
  }
  return out;
}

}  // namespace lifeboat::api
