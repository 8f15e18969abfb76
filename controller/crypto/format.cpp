#include "controller/crypto/format.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>

namespace lifeboat::crypto::detail {

namespace {

constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

constexpr std::string_view bech32_charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

std::uint32_t bech32_polymod(const std::vector<unsigned char>& values) {
  static constexpr std::array<std::uint32_t, 5> generator = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa,
                                                             0x3d4233dd, 0x2a1462b3};
  std::uint32_t chk = 1;
  for (const unsigned char v : values) {
    const std::uint32_t top = chk >> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (std::size_t i = 0; i < generator.size(); ++i) {
      if (((top >> i) & 1) != 0) {
        chk ^= generator[i];
      }
    }
  }
  return chk;
}

std::vector<unsigned char> bech32_hrp_expand(std::string_view hrp) {
  std::vector<unsigned char> out;
  out.reserve((hrp.size() * 2) + 1);
  for (const char c : hrp) {
    out.push_back(static_cast<unsigned char>(c) >> 5);
  }
  out.push_back(0);
  for (const char c : hrp) {
    out.push_back(static_cast<unsigned char>(c) & 31);
  }
  return out;
}

char to_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
char to_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool is_vchar(char c) { return c >= 0x21 && c <= 0x7e; }

/// Shown in messages: the line cut short and with non-printing bytes escaped.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text.substr(0, 40)) {
    if (c >= 0x20 && c <= 0x7e) {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    }
  }
  if (text.size() > 40) {
    out += "...";
  }
  return out + "\"";
}

}  // namespace

std::string base64_encode(std::span<const unsigned char> bytes) {
  std::string out;
  out.reserve(((bytes.size() + 2) / 3) * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8) |
                            std::uint32_t{bytes[i + 2]};
    out += base64_alphabet[(v >> 18) & 63];
    out += base64_alphabet[(v >> 12) & 63];
    out += base64_alphabet[(v >> 6) & 63];
    out += base64_alphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{bytes[i]} << 16;
    out += base64_alphabet[(v >> 18) & 63];
    out += base64_alphabet[(v >> 12) & 63];
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8);
    out += base64_alphabet[(v >> 18) & 63];
    out += base64_alphabet[(v >> 12) & 63];
    out += base64_alphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::vector<unsigned char>> base64_decode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::vector<unsigned char> out;
  out.reserve((text.size() * 3) / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = base64_value(c);
    if (v < 0) {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((acc >> bits) & 0xff));
    }
  }
  // Canonical encodings leave the unused low bits of the last character zero.
  if ((acc & ((1U << bits) - 1)) != 0) {
    return std::nullopt;
  }
  return out;
}

std::string bech32_encode(std::string_view hrp, std::span<const unsigned char> data) {
  std::string lower_hrp;
  bool upper = false;
  for (const char c : hrp) {
    upper = upper || (c >= 'A' && c <= 'Z');
    lower_hrp += to_lower(c);
  }
  std::vector<unsigned char> values;
  std::uint32_t acc = 0;
  int bits = 0;
  for (const unsigned char b : data) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      values.push_back(static_cast<unsigned char>((acc >> bits) & 31));
    }
  }
  if (bits > 0) {
    values.push_back(static_cast<unsigned char>((acc << (5 - bits)) & 31));
  }
  std::vector<unsigned char> checked = bech32_hrp_expand(lower_hrp);
  checked.insert(checked.end(), values.begin(), values.end());
  checked.resize(checked.size() + 6, 0);
  const std::uint32_t mod = bech32_polymod(checked) ^ 1;
  for (int i = 0; i < 6; ++i) {
    values.push_back(static_cast<unsigned char>((mod >> (5 * (5 - i))) & 31));
  }
  std::string out = lower_hrp + "1";
  for (const unsigned char v : values) {
    out += bech32_charset[v];
  }
  if (upper) {
    std::transform(out.begin(), out.end(), out.begin(), to_upper);
  }
  return out;
}

result<bech32_data> bech32_decode(std::string_view text) {
  bool has_lower = false;
  bool has_upper = false;
  for (const char c : text) {
    if (c < 33 || c > 126) {
      return make_error(errc::invalid_key,
                        "not a bech32 string: it contains a character that "
                        "is not printable ASCII");
    }
    has_lower = has_lower || (c >= 'a' && c <= 'z');
    has_upper = has_upper || (c >= 'A' && c <= 'Z');
  }
  if (has_lower && has_upper) {
    return make_error(errc::invalid_key, "not a bech32 string: it mixes upper and lower case");
  }
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), to_lower);
  const std::size_t separator = lower.rfind('1');
  if (separator == std::string::npos || separator == 0 || lower.size() - separator - 1 < 6) {
    return make_error(errc::invalid_key,
                      "not a bech32 string: no '1' separating a prefix from 6 or more data "
                      "characters");
  }
  bech32_data out;
  out.hrp = lower.substr(0, separator);
  std::vector<unsigned char> values;
  for (std::size_t i = separator + 1; i < lower.size(); ++i) {
    const std::size_t v = bech32_charset.find(lower[i]);
    if (v == std::string_view::npos) {
      return make_error(errc::invalid_key,
                        fmt::format("not a bech32 string: '{}' at position {} is not in the "
                                    "bech32 character set",
                                    lower[i], i + 1));
    }
    values.push_back(static_cast<unsigned char>(v));
  }
  std::vector<unsigned char> checked = bech32_hrp_expand(out.hrp);
  checked.insert(checked.end(), values.begin(), values.end());
  if (bech32_polymod(checked) != 1) {
    return make_error(errc::invalid_key, "not a bech32 string: bad checksum (a mistyped key?)");
  }
  values.resize(values.size() - 6);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const unsigned char v : values) {
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.data.push_back(static_cast<unsigned char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 5 || (acc & ((1U << bits) - 1)) != 0) {
    return make_error(errc::invalid_key, "not a bech32 string: bad padding of the data part");
  }
  return out;
}

std::string format_stanza(const stanza& s) {
  std::string out = "->";
  for (const std::string& arg : s.args) {
    out += ' ';
    out += arg;
  }
  out += '\n';
  const std::string body = base64_encode(s.body);
  std::size_t i = 0;
  for (; body.size() - i >= 64; i += 64) {
    out.append(body, i, 64);
    out += '\n';
  }
  out.append(body, i);
  out += '\n';
  return out;
}

error header_parser::bad(std::string message) const {
  return make_error(errc::corrupt, fmt::format("header line {}: {}", line_number_, message));
}

result<bool> header_parser::advance(std::string_view buffer) {
  if (state_ == state::version) {
    // Refuse what is not age at once, before waiting for a newline that may never come.
    static constexpr std::string_view armor = "-----BEGIN AGE ENCRYPTED FILE-----";
    static constexpr std::string_view prefix = "age-encryption.org/";
    if (buffer.substr(0, armor.size()) == armor.substr(0, std::min(buffer.size(), armor.size()))) {
      if (buffer.size() >= armor.size()) {
        return make_error(errc::corrupt,
                          "an ASCII-armored age file (-----BEGIN AGE ENCRYPTED FILE-----); only "
                          "the binary format is read");
      }
    } else if (buffer.substr(0, prefix.size()) !=
               prefix.substr(0, std::min(buffer.size(), prefix.size()))) {
      return make_error(errc::corrupt,
                        "not an age file: it does not start with \"age-encryption.org/\"");
    }
  }
  while (state_ != state::done) {
    const std::size_t newline = buffer.find('\n', offset_);
    if (newline == std::string_view::npos) {
      if (buffer.size() > max_header_size) {
        return make_error(errc::corrupt, fmt::format("header longer than {} bytes, or no header",
                                                     max_header_size));
      }
      return false;
    }
    const std::string_view text = buffer.substr(offset_, newline - offset_);
    ++line_number_;
    if (state_ == state::stanza_or_end && text.starts_with("---")) {
      mac_input_size_ = offset_ + 3;
    }
    offset_ = newline + 1;
    if (offset_ > max_header_size) {
      return make_error(errc::corrupt, fmt::format("header longer than {} bytes", max_header_size));
    }
    if (auto r = line(text); !r) {
      return r.error();
    }
  }
  return true;
}

result<void> header_parser::line(std::string_view text) {
  switch (state_) {
    case state::version:
      if (text == version_line.substr(0, version_line.size() - 1)) {
        state_ = state::stanza_or_end;
        return {};
      }
      return bad(fmt::format("unsupported version line {} (only age-encryption.org/v1 is read)",
                             quoted(text)));
    case state::stanza_or_end: {
      if (text.starts_with("-> ")) {
        stanza s;
        std::string_view rest = text.substr(3);
        while (true) {
          const std::size_t space = rest.find(' ');
          const std::string_view arg = rest.substr(0, space);
          if (arg.empty() || !std::all_of(arg.begin(), arg.end(), is_vchar)) {
            return bad(
                fmt::format("stanza line {} has an empty argument or a byte that is not "
                            "printable ASCII",
                            quoted(text)));
          }
          s.args.emplace_back(arg);
          if (space == std::string_view::npos) {
            break;
          }
          rest = rest.substr(space + 1);
        }
        stanzas_.push_back(std::move(s));
        body_text_.clear();
        state_ = state::body;
        return {};
      }
      if (text.starts_with("---")) {
        if (stanzas_.empty()) {
          return bad("the MAC line comes before any recipient stanza");
        }
        const std::string_view encoded = text.substr(std::min<std::size_t>(4, text.size()));
        if (!text.starts_with("--- ") || encoded.size() != 43) {
          return bad(fmt::format("malformed MAC line {}", quoted(text)));
        }
        auto mac = base64_decode(encoded);
        if (!mac || mac->size() != mac_.size()) {
          return bad("the MAC is not canonical unpadded base64");
        }
        std::copy(mac->begin(), mac->end(), mac_.begin());
        state_ = state::done;
        return {};
      }
      return bad(fmt::format(R"(expected a stanza ("-> ") or the MAC line ("--- "), got {})",
                             quoted(text)));
    }
    case state::body: {
      if (text.size() > 64) {
        return bad("stanza body line longer than 64 columns");
      }
      body_text_ += text;
      if (text.size() == 64) {
        return {};
      }
      auto body = base64_decode(body_text_);
      if (!body) {
        return bad("stanza body is not canonical unpadded base64");
      }
      stanzas_.back().body = std::move(*body);
      state_ = state::stanza_or_end;
      return {};
    }
    case state::done:
      break;
  }
  return bad("read past the end of the header");
}

}  // namespace lifeboat::crypto::detail
