#include "api/objects.hpp"
#include "api/overloaded.hpp"

#include <array>

namespace lifeboat::api {

namespace {

constexpr std::array<std::string_view, 7> weekday_names{"Sun", "Mon", "Tue", "Wed",
                                                        "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Appends `value` in decimal, padded on the left with `pad` to `width`
// characters (a '-' sign counts toward the width, as with printf).
void append_number(std::string& out, long long value, std::size_t width, char pad = '0') {
  std::string digits;
  const bool negative = value < 0;
  // Work on the magnitude as unsigned so that the most negative value is fine.
  unsigned long long magnitude = negative ? 0ULL - static_cast<unsigned long long>(value)
                                          : static_cast<unsigned long long>(value);
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + magnitude % 10));
    magnitude /= 10;
  } while (magnitude != 0);
  if (negative) {
    digits.insert(digits.begin(), '-');
  }
  if (digits.size() < width) {
    out.append(width - digits.size(), pad);
  }
  out += digits;
}

}  // namespace

std::string_view to_string(compression_kind c) {
  switch (c) {
    case compression_kind::gzip:
      return "gzip";
    case compression_kind::zstd:
      return "zstd";
    case compression_kind::none:
      return "none";
  }
  return "gzip";  // unreachable: every enumerator is handled above
}

std::string_view to_string(notification_level l) {
  switch (l) {
    case notification_level::error:
      return "error";
    case notification_level::info:
      return "info";
  }
  return "error";  // unreachable: every enumerator is handled above
}

std::string_view to_string(backup_format f) {
  switch (f) {
    case backup_format::archive:
      return "archive";
    case backup_format::restic:
      return "restic";
  }
  return "archive";  // unreachable: every enumerator is handled above
}

std::string_view to_string(restic_compression c) {
  switch (c) {
    case restic_compression::off:
      return "off";
    case restic_compression::automatic:
      return "auto";
    case restic_compression::max:
      return "max";
  }
  return "auto";  // unreachable: every enumerator is handled above
}

std::string_view to_string(label_match m) {
  switch (m) {
    case label_match::exact:
      return "exact";
    case label_match::one_of:
      return "one-of";
  }
  return "exact";  // unreachable: every enumerator is handled above
}

std::string_view destination_kind(const destination& d) {
  return std::visit(overloaded{[](const local_destination&) { return std::string_view{"local"}; },
                               [](const s3_destination&) { return std::string_view{"s3"}; },
                               [](const webdav_destination&) { return std::string_view{"webdav"}; },
                               [](const sftp_destination&) { return std::string_view{"sftp"}; }},
                    d);
}

std::string_view kind_of(const object& o) {
  return std::visit([](const auto& typed) { return typed.kind; }, o);
}

const object_meta& metadata_of(const object& o) {
  return std::visit([](const auto& typed) -> const object_meta& { return typed.metadata; }, o);
}

std::string expand_archive_name(std::string_view name_template, std::string_view schedule_name,
                                std::chrono::local_seconds when) {
  using namespace std::chrono;
  const local_days day = floor<days>(when);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> time{when - day};
  const long long year = static_cast<int>(ymd.year());
  const unsigned month = static_cast<unsigned>(ymd.month());
  const unsigned day_of_month = static_cast<unsigned>(ymd.day());
  const unsigned day_of_week = weekday{day}.c_encoding();
  const long long day_of_year = (day - local_days{ymd.year() / January / 1}).count() + 1;

  constexpr std::string_view placeholder = "{schedule}";
  std::string out;
  for (std::size_t i = 0; i < name_template.size(); ++i) {
    const char c = name_template[i];
    if (name_template.substr(i).starts_with(placeholder)) {
      out += schedule_name;
      i += placeholder.size() - 1;
      continue;
    }
    if (c != '%' || i + 1 == name_template.size()) {
      out += c;
      continue;
    }
    const char conversion = name_template[++i];
    switch (conversion) {
      case 'Y':
        append_number(out, year, 4);
        break;
      case 'y':
        append_number(out, ((year % 100) + 100) % 100, 2);
        break;
      case 'm':
        append_number(out, month, 2);
        break;
      case 'd':
        append_number(out, day_of_month, 2);
        break;
      case 'e':
        append_number(out, day_of_month, 2, ' ');
        break;
      case 'H':
        append_number(out, time.hours().count(), 2);
        break;
      case 'M':
        append_number(out, time.minutes().count(), 2);
        break;
      case 'S':
        append_number(out, time.seconds().count(), 2);
        break;
      case 'j':
        append_number(out, day_of_year, 3);
        break;
      case 'a':
        out += weekday_names[day_of_week % weekday_names.size()];
        break;
      case 'b':
        out += month_names[(month + 11) % month_names.size()];
        break;
      case 'F':
        append_number(out, year, 4);
        out += '-';
        append_number(out, month, 2);
        out += '-';
        append_number(out, day_of_month, 2);
        break;
      case '%':
        out += '%';
        break;
      default:
        out += '%';
        out += conversion;
        break;
    }
  }
  return out;
}

}  // namespace lifeboat::api
