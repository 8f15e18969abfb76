#include "controller/logging/log.hpp"

#include "api/text.hpp"

#include <fmt/core.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <utility>
#include <vector>

namespace lifeboat::logging {

namespace {

bool plain_token_char(char c) { return c > ' ' && c < 0x7F && c != '"' && c != '=' && c != '\\'; }

std::string utc_time(std::chrono::system_clock::time_point time) {
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(time);
  const auto seconds = std::chrono::floor<std::chrono::seconds>(ms);
  const std::time_t t = std::chrono::system_clock::to_time_t(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (ms - seconds).count());
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

void append_utf8(std::string& out, std::uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0U | (code_point >> 6U));
    out += static_cast<char>(0x80U | (code_point & 0x3FU));
  } else {
    out += static_cast<char>(0xE0U | (code_point >> 12U));
    out += static_cast<char>(0x80U | ((code_point >> 6U) & 0x3FU));
    out += static_cast<char>(0x80U | (code_point & 0x3FU));
  }
}

// Reads the quoted value that starts at text[i] (the opening quote) as
// value() wrote it; advances i past the closing quote. A byte escape above 7F
// stood for a byte that was not UTF-8 and stays written as the escape, so the
// result is valid UTF-8 when the message was.
std::optional<std::string> read_quoted(std::string_view text, std::size_t& i) {
  std::string out;
  ++i;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      ++i;
      return out;
    }
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 >= text.size()) {
      return std::nullopt;
    }
    const char e = text[i + 1];
    i += 2;
    switch (e) {
      case '"':
      case '\\':
        out += e;
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'x': {
        if (i + 2 > text.size() || hex_value(text[i]) < 0 || hex_value(text[i + 1]) < 0) {
          return std::nullopt;
        }
        const int byte = hex_value(text[i]) * 16 + hex_value(text[i + 1]);
        if (byte < 0x80) {
          out += static_cast<char>(byte);
        } else {
          out.append(text.substr(i - 2, 4));
        }
        i += 2;
        break;
      }
      case 'u': {
        std::uint32_t code_point = 0;
        for (int k = 0; k < 4; ++k) {
          if (i >= text.size() || hex_value(text[i]) < 0) {
            return std::nullopt;
          }
          code_point = code_point * 16 + static_cast<std::uint32_t>(hex_value(text[i]));
          ++i;
        }
        if (code_point >= 0xD800 && code_point <= 0xDFFF) {
          return std::nullopt;
        }
        append_utf8(out, code_point);
        break;
      }
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

// The `key=value` pairs of a message, or nullopt when it is not made of them.
std::optional<std::vector<std::pair<std::string, std::string>>> read_pairs(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t key_start = i;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) != 0 ||
                               text[i] == '_' || text[i] == '-' || text[i] == '.')) {
      ++i;
    }
    if (i == key_start || i >= text.size() || text[i] != '=') {
      return std::nullopt;
    }
    std::string key(text.substr(key_start, i - key_start));
    ++i;
    std::string val;
    if (i < text.size() && text[i] == '"') {
      auto quoted = read_quoted(text, i);
      if (!quoted) {
        return std::nullopt;
      }
      val = std::move(*quoted);
    } else {
      const std::size_t value_start = i;
      while (i < text.size() && plain_token_char(text[i])) {
        ++i;
      }
      val = std::string(text.substr(value_start, i - value_start));
    }
    pairs.emplace_back(std::move(key), std::move(val));
    if (i < text.size()) {
      if (text[i] != ' ') {
        return std::nullopt;
      }
      ++i;
    }
  }
  return pairs;
}

std::string_view level_name(spdlog::level::level_enum level) {
  const auto name = spdlog::level::to_string_view(level);
  return {name.data(), name.size()};
}

class line_formatter final : public spdlog::formatter {
 public:
  explicit line_formatter(logging::format f) : format_(f) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto text = line(format_, msg.time, level_name(msg.level),
                           std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<line_formatter>(format_);
  }

 private:
  logging::format format_;
};

}  // namespace

std::optional<format> parse_format(std::string_view name) {
  if (name == "text") {
    return format::text;
  }
  if (name == "json") {
    return format::json;
  }
  return std::nullopt;
}

std::string value(std::string_view text) {
  if (!text.empty() && std::all_of(text.begin(), text.end(), plain_token_char)) {
    return std::string(text);
  }
  return "\"" + api::escape_quoted(text) + "\"";
}

std::string line(format f, std::chrono::system_clock::time_point time, std::string_view level,
                 std::string_view message) {
  if (f == format::text) {
    return fmt::format("time={} level={} {}\n", utc_time(time), level,
                       api::escape_controls(message));
  }
  boost::json::object record;
  record["time"] = utc_time(time);
  record["level"] = level;
  if (auto pairs = read_pairs(message)) {
    for (auto& [key, val] : *pairs) {
      // A pair never replaces time or level, nor an earlier pair.
      if (!record.contains(key)) {
        // The serializer escapes controls but copies bytes as they are.
        record[key] = api::valid_utf8(val);
      }
    }
  } else {
    record["msg"] = api::valid_utf8(message);
  }
  return boost::json::serialize(record) + "\n";
}

std::unique_ptr<spdlog::formatter> make_formatter(format f) {
  return std::make_unique<line_formatter>(f);
}

void install(format f) {
  auto logger = spdlog::stdout_logger_mt("lifeboat");
  logger->set_formatter(make_formatter(f));
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace lifeboat::logging
