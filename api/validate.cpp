#include "api/validate.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <exception>
#include <regex>

#include "api/cron.hpp"

namespace lifeboat::api {

namespace {

constexpr std::size_t max_quoted_bytes = 64;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

std::string too_long(std::size_t max, std::size_t got) {
  return "must be at most " + std::to_string(max) + " characters, got " + std::to_string(got);
}

// A stable, compiler-independent reason for a std::regex_error code.
std::string_view regex_reason(std::regex_constants::error_type code) {
  namespace rc = std::regex_constants;
  if (code == rc::error_collate) {
    return "invalid collating element";
  }
  if (code == rc::error_ctype) {
    return "invalid character class";
  }
  if (code == rc::error_escape) {
    return "invalid escape sequence";
  }
  if (code == rc::error_backref) {
    return "invalid back reference";
  }
  if (code == rc::error_brack) {
    return "unbalanced [ ]";
  }
  if (code == rc::error_paren) {
    // libstdc++ also reports a repetition with nothing before it this way.
    return "unbalanced ( ), or *, + or ? with nothing to repeat";
  }
  if (code == rc::error_brace) {
    return "unbalanced { }";
  }
  if (code == rc::error_badbrace) {
    return "invalid repetition count in { }";
  }
  if (code == rc::error_range) {
    return "invalid character range";
  }
  if (code == rc::error_badrepeat) {
    return "repetition of nothing";
  }
  return "too complex";  // error_space, error_complexity, error_stack
}

constexpr std::string_view supported_conversions = "YmdHMSyjabeF%";

}  // namespace

std::string quote(std::string_view text) {
  static constexpr std::array<char, 16> hex{'0', '1', '2', '3', '4', '5', '6', '7',
                                            '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  bool cut = false;
  if (text.size() > max_quoted_bytes) {
    std::size_t end = max_quoted_bytes;
    // Back up over UTF-8 continuation bytes so that no character is split.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) {
      --end;
    }
    text = text.substr(0, end);
    cut = true;
  }
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (is_control(c)) {
      const auto u = static_cast<unsigned char>(c);
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += cut ? "...\"" : "\"";
  return out;
}

std::optional<std::string> check_object_name(std::string_view name, std::size_t max_length) {
  if (name.empty()) {
    return "must not be empty";
  }
  if (name.size() > max_length) {
    return too_long(max_length, name.size());
  }
  bool valid = is_lower_alnum(name.front()) && is_lower_alnum(name.back());
  for (const char c : name) {
    valid = valid && (is_lower_alnum(c) || c == '-');
  }
  if (!valid) {
    return quote(name) +
           " is not a valid name: use lowercase letters, digits and '-', and start and end "
           "with a letter or digit";
  }
  return std::nullopt;
}

std::optional<std::string> check_config_name(std::string_view name) {
  if (name.empty()) {
    return "must not be empty";
  }
  if (name.size() > max_config_name_length) {
    return too_long(max_config_name_length, name.size());
  }
  bool valid = is_alnum(name.front()) && is_alnum(name.back());
  for (const char c : name) {
    valid = valid && (is_alnum(c) || c == '_' || c == '.' || c == '-');
  }
  if (!valid) {
    return quote(name) +
           " is not a valid config name: use letters, digits, '_', '.' and '-', and start and "
           "end with a letter or digit";
  }
  return std::nullopt;
}

std::optional<std::string> check_volume_name(std::string_view name) {
  if (name.size() > max_volume_name_length) {
    return too_long(max_volume_name_length, name.size());
  }
  bool valid = name.size() >= 2 && is_alnum(name.front());
  for (const char c : name) {
    valid = valid && (is_alnum(c) || c == '_' || c == '.' || c == '-');
  }
  if (!valid) {
    return quote(name) +
           " is not a valid volume name: use at least 2 characters from [a-zA-Z0-9_.-], "
           "starting with a letter or digit";
  }
  return std::nullopt;
}

std::optional<std::string> check_schedule(std::string_view expr) {
  std::string error;
  if (cron_schedule::parse(expr, error)) {
    return std::nullopt;
  }
  return "invalid schedule " + quote(expr) + ": " + error;
}

std::optional<std::string> check_time_zone(std::string_view zone) {
  try {
    if (date::locate_zone(zone) != nullptr) {
      return std::nullopt;
    }
  } catch (const std::exception&) {
    // locate_zone throws std::runtime_error for an unknown name (and when the
    // database cannot be read at all, which the message below also covers).
  }
  return "unknown time zone " + quote(zone) + " (not in the IANA time zone database)";
}

std::optional<std::string> check_exclude_pattern(std::string_view pattern) {
  if (pattern.empty()) {
    return "must not be empty: an empty pattern would exclude every file";
  }
  if (pattern.size() > max_exclude_pattern_length) {
    return too_long(max_exclude_pattern_length, pattern.size());
  }
  try {
    const std::regex compiled{pattern.begin(), pattern.end(), std::regex::ECMAScript};
    static_cast<void>(compiled);
  } catch (const std::regex_error& e) {
    return "invalid regular expression " + quote(pattern) + ": " +
           std::string{regex_reason(e.code())};
  } catch (const std::exception&) {
    // Out of memory while compiling: report it as a property of the pattern.
    return "invalid regular expression " + quote(pattern) + ": too complex";
  }
  return std::nullopt;
}

std::optional<std::string> check_archive_name_template(std::string_view name_template,
                                                       std::string_view schedule_name) {
  constexpr std::string_view placeholder = "{schedule}";
  for (std::size_t i = 0; i < name_template.size(); ++i) {
    const char c = name_template[i];
    if (c == '%') {
      if (i + 1 == name_template.size()) {
        return "ends with a lone \"%\"; write %% for a percent sign";
      }
      const char conversion = name_template[++i];
      if (conversion == 'T') {
        return "\"%T\" is not supported: it writes ':', which tar and Windows file systems "
               "handle badly; use %H-%M-%S";
      }
      if (supported_conversions.find(conversion) == std::string_view::npos) {
        return "unsupported conversion " + quote(name_template.substr(i - 1, 2)) +
               "; use %Y %m %d %H %M %S %y %j %a %b %e %F or %%";
      }
    } else if (c == '{') {
      const std::size_t close = name_template.find('}', i);
      if (close == std::string_view::npos) {
        return "unterminated placeholder " + quote(name_template.substr(i));
      }
      const std::string_view found = name_template.substr(i, close - i + 1);
      if (found != placeholder) {
        return "unknown placeholder " + quote(found) + "; only {schedule} is supported";
      }
      i = close;
    } else if (c == '}') {
      return "unmatched \"}\"";
    } else if (c == ':') {
      return "\":\" is not allowed: tar reads host:file as a remote archive and Windows "
             "cannot store it";
    } else if (is_control(c)) {
      return "must not contain control characters";
    }
  }

  // Every supported conversion has a fixed width in the C locale (for years
  // 1000-9999), so one expansion tells the length of them all.
  using namespace std::chrono;
  const local_seconds sample{local_days{year{2000} / January / 1}};
  const std::string name = expand_archive_name(name_template, schedule_name, sample);
  if (name.empty()) {
    return "must not expand to an empty name";
  }
  if (name == "." || name == "..") {
    return "must not expand to " + quote(name);
  }
  if (name.find('/') != std::string::npos) {
    return "must not contain \"/\": it names a single file";
  }
  if (name.find('\0') != std::string::npos) {
    return "must not contain a NUL character";
  }
  if (name.size() > max_archive_name_length) {
    return "expands to " + std::to_string(name.size()) + " bytes; at most " +
           std::to_string(max_archive_name_length) + " are allowed";
  }
  return std::nullopt;
}

const std::vector<std::string_view>& notification_schemes() {
  static const std::vector<std::string_view> schemes = {"generic+https", "generic+http", "slack",
                                                        "discord",       "smtp",         "gotify",
                                                        "ntfy",          "telegram",     "matrix"};
  return schemes;
}

std::optional<std::string> check_notification_url(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    // No scheme to name: say nothing of the text itself, it may be a token.
    return std::string("not a URL: expected <scheme>://..., e.g. generic+https://host/path");
  }
  const auto scheme = url.substr(0, sep);
  const auto& known = notification_schemes();
  if (std::find(known.begin(), known.end(), scheme) == known.end()) {
    std::string list;
    for (const auto s : known) {
      list += list.empty() ? "" : ", ";
      list += s;
    }
    return "unknown scheme " + quote(scheme) + "; expected one of " + list;
  }
  if (url.size() == sep + 3) {
    return "nothing after " + std::string(scheme) + "://";
  }
  return std::nullopt;
}

std::optional<std::string> check_age_recipient(std::string_view recipient) {
  static constexpr std::string_view bech32_chars = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
  if (recipient.starts_with("age1")) {
    const auto data = recipient.substr(4);
    if (data.size() != 58 || data.find_first_not_of(bech32_chars) != std::string_view::npos) {
      return quote(recipient) +
             " is not an age X25519 recipient: expected \"age1\" and 58 lower-case bech32 "
             "characters, as age-keygen prints them";
    }
    return std::nullopt;
  }
  for (const std::string_view type : {"ssh-ed25519 ", "ssh-rsa "}) {
    if (recipient.starts_with(type)) {
      const auto key = recipient.substr(type.size());
      const auto end = key.find(' ');  // a comment may follow
      const auto base64 = key.substr(0, end);
      const bool ok = !base64.empty() && std::all_of(base64.begin(), base64.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '/' || c == '=';
      });
      if (!ok) {
        return quote(recipient) + " is not an SSH public key: expected \"" + std::string(type) +
               "\" followed by the key in base64";
      }
      return std::nullopt;
    }
  }
  return quote(recipient) +
         " is not an age recipient: expected \"age1…\", \"ssh-ed25519 …\" or \"ssh-rsa …\"";
}

std::optional<std::string> check_absolute_path(std::string_view path) {
  if (path.empty()) {
    return "must not be empty";
  }
  if (path.find('\0') != std::string_view::npos) {
    return "must not contain a NUL character";
  }
  if (path.front() != '/') {
    return quote(path) + " is not an absolute path";
  }
  return std::nullopt;
}

std::optional<std::string> check_archive_file_name(std::string_view name) {
  if (name.empty()) {
    return "must not be empty";
  }
  if (name.find('\0') != std::string_view::npos) {
    return "must not contain a NUL character";
  }
  if (name.find('/') != std::string_view::npos) {
    return quote(name) +
           " is not a file name: an archive is named as it is in its destination, "
           "without folders (a local destination's path or an S3 prefix holds those)";
  }
  if (name == "." || name == "..") {
    return quote(name) + " is not an archive's name";
  }
  return std::nullopt;
}

std::optional<std::string> check_compression_level(compression_kind compression, int level) {
  int max = 0;
  switch (compression) {
    case compression_kind::gzip:
      max = 9;
      break;
    case compression_kind::zstd:
      max = 19;
      break;
    case compression_kind::none:
      return "compression none takes no level";
  }
  if (level < 1 || level > max) {
    return std::string{to_string(compression)} + " level must be between 1 and " +
           std::to_string(max) + ", got " + std::to_string(level);
  }
  return std::nullopt;
}

}  // namespace lifeboat::api
