#include "api/text.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>

namespace lifeboat::api {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

void append_byte_escape(std::string& out, unsigned char byte) {
  out += "\\x";
  out += hex_digits[byte >> 4U];
  out += hex_digits[byte & 0xFU];
}

void append_code_point_escape(std::string& out, std::uint32_t code_point) {
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) {
    out += hex_digits[(code_point >> static_cast<unsigned>(shift)) & 0xFU];
  }
}

bool continuation(unsigned char byte) { return (byte & 0xC0U) == 0x80U; }

// The length of the valid UTF-8 sequence at the start of `text` (2 to 4) and
// its code point, or 0 when the bytes there are not one (overlong forms,
// surrogates and code points above U+10FFFF are not).
std::size_t utf8_sequence(std::string_view text, std::uint32_t& code_point) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code_point = lead & 0x1FU;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code_point = lead & 0x0FU;
    low = lead == 0xE0 ? 0xA0 : 0x80;
    high = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code_point = lead & 0x07U;
    low = lead == 0xF0 ? 0x90 : 0x80;
    high = lead == 0xF4 ? 0x8F : 0xBF;
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) {
    return 0;
  }
  for (std::size_t i = 1; i < length; ++i) {
    if (!continuation(byte(i))) {
      return 0;
    }
    code_point = (code_point << 6U) | (byte(i) & 0x3FU);
  }
  return length;
}

// Code points that move the cursor to a new line or change the order in
// which a terminal or editor shows what follows ("Trojan Source").
bool line_or_order_control(std::uint32_t code_point) {
  return (code_point >= 0x80 && code_point <= 0x9F) || code_point == 0x2028 ||
         code_point == 0x2029 || (code_point >= 0x202A && code_point <= 0x202E) ||
         (code_point >= 0x2066 && code_point <= 0x2069);
}

enum class mode { valid_utf8, controls, quoted };

std::string escape(std::string_view text, mode m) {
  const bool quoting = m == mode::quoted;
  const bool controls = m != mode::valid_utf8;
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80 && !controls) {
      out += static_cast<char>(byte);
      ++i;
      continue;
    }
    if (byte < 0x80) {
      switch (byte) {
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\\':
          out += quoting ? "\\\\" : "\\";
          break;
        case '"':
          out += quoting ? "\\\"" : "\"";
          break;
        default:
          if (byte < 0x20 || byte == 0x7F) {
            append_byte_escape(out, byte);
          } else {
            out += static_cast<char>(byte);
          }
      }
      ++i;
      continue;
    }
    std::uint32_t code_point = 0;
    const std::size_t length = utf8_sequence(text.substr(i), code_point);
    if (length == 0) {
      append_byte_escape(out, byte);
      ++i;
    } else if (controls && line_or_order_control(code_point)) {
      append_code_point_escape(out, code_point);
      i += length;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  return out;
}

}  // namespace

std::string valid_utf8(std::string_view text) { return escape(text, mode::valid_utf8); }

std::string escape_controls(std::string_view text) { return escape(text, mode::controls); }

std::string escape_quoted(std::string_view text) { return escape(text, mode::quoted); }

std::string percent_decode(std::string_view text) {
  const auto hex = [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0
               ? (c <= '9' ? c - '0' : (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10))
               : -1;
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex(text[i + 1]) >= 0 && hex(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string human_bytes(double bytes) {
  constexpr std::array<const char*, 5> units = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (bytes >= 1024 && u + 1 < units.size()) {
    bytes /= 1024;
    ++u;
  }
  std::array<char, 32> out{};
  const int n = u == 0 ? std::snprintf(out.data(), out.size(), "%.0f B", bytes)
                       : std::snprintf(out.data(), out.size(), "%.1f %s", bytes, units[u]);
  return {out.data(), static_cast<std::size_t>(std::max(n, 0))};
}

}  // namespace lifeboat::api
