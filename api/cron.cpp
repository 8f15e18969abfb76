#include "api/cron.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "api/duration.hpp"

namespace lifeboat::api {

namespace {

constexpr std::array<std::string_view, 12> month_names{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> weekday_names{"SUN", "MON", "TUE", "WED",
                                                        "THU", "FRI", "SAT"};

// One of the five fields. `names[i]` spells the value `min + i`.
struct field_spec {
  std::string_view name;
  int min;
  int max;
  std::span<const std::string_view> names;
  bool sunday_closes_range = false;  // day-of-week: "FRI-SUN" means 5-7
};

constexpr field_spec minute_spec{"minute", 0, 59, {}};
constexpr field_spec hour_spec{"hour", 0, 23, {}};
constexpr field_spec day_of_month_spec{"day-of-month", 1, 31, {}};
constexpr field_spec month_spec{"month", 1, 12, month_names};
// 7 is Sunday as well as 0, as in Vixie cron; the caller folds bit 7 into bit 0.
constexpr field_spec day_of_week_spec{"day-of-week", 0, 7, weekday_names, true};

constexpr std::string_view every_hint = "(expected e.g. 90s, 5m, 1h30m)";

// The macros expand to five fields and go through the same field parser.
struct macro {
  std::string_view name;
  std::string_view fields;
};
constexpr std::array<macro, 7> macros{{
    {"@hourly", "0 * * * *"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
}};

// The longest a month can be, leap years included; parse refuses day-of-month
// sets that fit in none of the selected months.
constexpr std::array<int, 13> max_days_in_month{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

// next_after scans forward month by month; any schedule parse accepts fires
// within one 400-year Gregorian cycle, so running past it is a bug.
constexpr int max_years_scanned = 401;

bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

char to_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool all_of(std::string_view s, bool (*pred)(char)) {
  for (const char c : s) {
    if (!pred(c)) {
      return false;
    }
  }
  return !s.empty();
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_upper(a[i]) != to_upper(b[i])) {
      return false;
    }
  }
  return true;
}

std::vector<std::string_view> split_blanks(std::string_view s) {
  std::vector<std::string_view> words;
  std::size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && is_blank(s[pos])) {
      ++pos;
    }
    const std::size_t start = pos;
    while (pos < s.size() && !is_blank(s[pos])) {
      ++pos;
    }
    if (pos > start) {
      words.push_back(s.substr(start, pos - start));
    }
  }
  return words;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

// Digits only; saturates instead of overflowing so a huge number is still
// reported as out of range rather than wrapping into range.
int parse_number(std::string_view digits) {
  constexpr int cap = 1000000;
  int value = 0;
  for (const char c : digits) {
    value = value * 10 + (c - '0');
    if (value > cap) {
      return cap;
    }
  }
  return value;
}

bool fail(const field_spec& spec, std::string_view problem, std::string& error) {
  error = std::string(spec.name) + ": " + std::string(problem);
  return false;
}

bool parse_value(std::string_view token, const field_spec& spec, int& value, std::string& error) {
  if (all_of(token, is_digit)) {
    value = parse_number(token);
    if (value < spec.min || value > spec.max) {
      return fail(spec,
                  std::string(token) + " is out of range " + std::to_string(spec.min) + "-" +
                      std::to_string(spec.max),
                  error);
    }
    return true;
  }
  if (!spec.names.empty() && all_of(token, is_alpha)) {
    for (std::size_t i = 0; i < spec.names.size(); ++i) {
      if (equals_ignore_case(token, spec.names[i])) {
        value = spec.min + static_cast<int>(i);
        return true;
      }
    }
    return fail(spec, "unknown name " + quoted(token), error);
  }
  return fail(spec, "invalid value " + quoted(token), error);
}

// One list item: `*`, `a`, or `a-b`, each optionally followed by `/step`.
// `a/step` means `a-max/step`, as in cronie and Kubernetes CronJobs.
bool parse_item(std::string_view item, const field_spec& spec, std::uint64_t& bits,
                std::string& error) {
  if (item.empty()) {
    return fail(spec, "empty list item", error);
  }
  std::string_view base = item;
  int step = 1;
  bool has_step = false;
  if (const auto slash = item.find('/'); slash != std::string_view::npos) {
    base = item.substr(0, slash);
    const std::string_view step_text = item.substr(slash + 1);
    if (step_text.empty()) {
      return fail(spec, "missing step after \"/\" in " + quoted(item), error);
    }
    if (!all_of(step_text, is_digit)) {
      return fail(spec, "invalid step " + quoted(step_text) + " in " + quoted(item), error);
    }
    step = parse_number(step_text);
    if (step == 0) {
      return fail(spec, "step must be positive in " + quoted(item), error);
    }
    has_step = true;
  }

  int low = spec.min;
  int high = spec.max;
  if (base == "*") {
    // The whole range.
  } else if (const auto dash = base.find('-'); dash != std::string_view::npos) {
    const std::string_view low_text = base.substr(0, dash);
    const std::string_view high_text = base.substr(dash + 1);
    if (low_text.empty() || high_text.empty()) {
      return fail(spec, "invalid range " + quoted(base), error);
    }
    if (!parse_value(low_text, spec, low, error) || !parse_value(high_text, spec, high, error)) {
      return false;
    }
    // "FRI-SUN" reads naturally; let Sunday close a range as 7.
    if (spec.sunday_closes_range && high == 0 && low > 0) {
      high = 7;
    }
    if (low > high) {
      return fail(spec,
                  "range " + std::string(base) + " is reversed (" + std::to_string(low) + " > " +
                      std::to_string(high) + ")",
                  error);
    }
  } else {
    if (!parse_value(base, spec, low, error)) {
      return false;
    }
    high = has_step ? spec.max : low;
  }
  for (int v = low; v <= high; v += step) {
    bits |= std::uint64_t{1} << v;
  }
  return true;
}

bool parse_field(std::string_view text, const field_spec& spec, std::uint64_t& bits,
                 std::string& error) {
  bits = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (!parse_item(item, spec, bits, error)) {
      return false;
    }
    if (comma == std::string_view::npos) {
      return true;
    }
    start = comma + 1;
  }
}

template <std::size_t N>
std::bitset<N> to_bitset(std::uint64_t bits) {
  return std::bitset<N>(bits & ((std::uint64_t{1} << N) - 1));
}

// The first set bit at index >= from, or -1.
template <std::size_t N>
int next_set(const std::bitset<N>& bits, int from) {
  for (int i = from; i < static_cast<int>(N); ++i) {
    if (bits[static_cast<std::size_t>(i)]) {
      return i;
    }
  }
  return -1;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) {
    --q;
  }
  return q;
}

using local_minutes = date::local_time<std::chrono::minutes>;

// The calendar fields of a parsed schedule, searched in local wall-clock time.
struct local_matcher {
  const std::bitset<60>& minutes;
  const std::bitset<24>& hours;
  const std::bitset<32>& days_of_month;
  const std::bitset<13>& months;
  const std::bitset<7>& days_of_week;
  bool day_of_month_restricted;
  bool day_of_week_restricted;

  // Vixie cron: OR when both day fields are restricted, AND otherwise. With
  // AND a plain `*` holds every value, so only the other field decides; a
  // `*/n` still limits the days to the ones it lists.
  bool day_matches(date::local_days day) const {
    const date::year_month_day ymd{day};
    const bool dom = days_of_month[static_cast<unsigned>(ymd.day())];
    const bool dow = days_of_week[date::weekday{day}.c_encoding()];
    if (day_of_month_restricted && day_of_week_restricted) {
      return dom || dow;
    }
    return dom && dow;
  }

  // The first local minute >= from that matches all fields. Skips whole
  // months, days and hours, so even a yearly schedule takes a few dozen steps.
  // Throws std::logic_error if nothing matches within 400 years, which parse
  // rules out.
  local_minutes next_match(local_minutes from) const {
    date::local_days day = date::floor<date::days>(from);
    const auto minute_of_day = (from - day).count();
    int hour = static_cast<int>(minute_of_day / 60);
    int minute = static_cast<int>(minute_of_day % 60);
    const date::year last_year = date::year_month_day{day}.year() + date::years{max_years_scanned};

    while (true) {
      const date::year_month_day ymd{day};
      if (ymd.year() > last_year) {
        throw std::logic_error("cron_schedule: no firing time within 400 years");
      }
      if (!months[static_cast<unsigned>(ymd.month())]) {
        const date::year_month next_month = ymd.year() / ymd.month() + date::months{1};
        day = date::local_days{next_month / 1};
        hour = 0;
        minute = 0;
        continue;
      }
      if (!day_matches(day)) {
        day += date::days{1};
        hour = 0;
        minute = 0;
        continue;
      }
      const int h = next_set(hours, hour);
      if (h == -1) {
        day += date::days{1};
        hour = 0;
        minute = 0;
        continue;
      }
      if (h != hour) {
        hour = h;
        minute = 0;
      }
      const int m = next_set(minutes, minute);
      if (m == -1) {
        ++hour;
        minute = 0;
        continue;
      }
      return day + std::chrono::hours{hour} + std::chrono::minutes{m};
    }
  }
};

}  // namespace

std::optional<cron_schedule> cron_schedule::parse(std::string_view expr, std::string& error) {
  cron_schedule schedule;
  schedule.text_ = std::string(expr);

  std::vector<std::string_view> words = split_blanks(expr);
  if (words.empty()) {
    error = "empty schedule expression";
    return std::nullopt;
  }

  if (words[0].starts_with('@')) {
    if (words[0] == "@every") {
      if (words.size() < 2) {
        error = "@every: missing duration " + std::string(every_hint);
        return std::nullopt;
      }
      if (words.size() > 2) {
        error = "@every: unexpected " + quoted(words[2]) + " after the duration";
        return std::nullopt;
      }
      const auto every = parse_duration(words[1]);
      if (!every) {
        error = "@every: invalid duration " + quoted(words[1]) + " " + std::string(every_hint);
        return std::nullopt;
      }
      schedule.every_ = *every;
      return schedule;
    }
    const macro* found = nullptr;
    for (const macro& m : macros) {
      if (words[0] == m.name) {
        found = &m;
      }
    }
    if (found == nullptr) {
      error = "unknown macro " + quoted(words[0]) +
              " (expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually or "
              "@every <duration>)";
      return std::nullopt;
    }
    if (words.size() > 1) {
      error = std::string(found->name) + ": takes no arguments, got " + quoted(words[1]);
      return std::nullopt;
    }
    words = split_blanks(found->fields);
  }

  if (words.size() != 5) {
    error = "expected 5 fields, got " + std::to_string(words.size()) +
            " (minute hour day-of-month month day-of-week)";
    return std::nullopt;
  }

  std::uint64_t minutes = 0;
  std::uint64_t hours = 0;
  std::uint64_t days_of_month = 0;
  std::uint64_t months = 0;
  std::uint64_t days_of_week = 0;
  if (!parse_field(words[0], minute_spec, minutes, error) ||
      !parse_field(words[1], hour_spec, hours, error) ||
      !parse_field(words[2], day_of_month_spec, days_of_month, error) ||
      !parse_field(words[3], month_spec, months, error) ||
      !parse_field(words[4], day_of_week_spec, days_of_week, error)) {
    return std::nullopt;
  }
  if ((days_of_week & (std::uint64_t{1} << 7)) != 0) {
    days_of_week |= 1;
  }
  schedule.minutes_ = to_bitset<60>(minutes);
  schedule.hours_ = to_bitset<24>(hours);
  schedule.days_of_month_ = to_bitset<32>(days_of_month);
  schedule.months_ = to_bitset<13>(months);
  schedule.days_of_week_ = to_bitset<7>(days_of_week);
  // Vixie cron's test: a field is a wildcard when it starts with `*`, so
  // `*/2` is unrestricted for the OR rule even though it skips values.
  schedule.day_of_month_restricted_ = !words[2].starts_with('*');
  schedule.day_of_week_restricted_ = !words[4].starts_with('*');

  // With the OR rule the weekdays alone make the schedule fire. Otherwise a
  // selected day of month must exist in a selected month; every such date
  // falls on every weekday within a 400-year cycle, so that is enough.
  if (!(schedule.day_of_month_restricted_ && schedule.day_of_week_restricted_)) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!schedule.months_[static_cast<std::size_t>(m)]) {
        continue;
      }
      const int first_day = next_set(schedule.days_of_month_, 1);
      possible = first_day != -1 && first_day <= max_days_in_month[static_cast<std::size_t>(m)];
    }
    if (!possible) {
      error =
          "day-of-month: none of the selected days exists in the selected months, so the "
          "schedule would never fire";
      return std::nullopt;
    }
  }
  return schedule;
}

std::chrono::sys_seconds cron_schedule::next_after(std::chrono::sys_seconds t,
                                                   const date::time_zone& zone) const {
  if (every_.count() > 0) {
    const std::int64_t period = every_.count();
    const std::int64_t n = floor_div(t.time_since_epoch().count(), period) + 1;
    return std::chrono::sys_seconds{std::chrono::seconds{n * period}};
  }

  // Mapping a matching local minute to the instant it fires at (first
  // occurrence if repeated, end of the gap if skipped) never goes backwards in
  // time, so the answer is the first matching local minute whose instant is
  // after t. Every local minute up to t's own local time fires at or before t.
  const local_matcher matcher{minutes_,
                              hours_,
                              days_of_month_,
                              months_,
                              days_of_week_,
                              day_of_month_restricted_,
                              day_of_week_restricted_};
  const date::local_seconds local_t = zone.to_local(t);
  local_minutes candidate = date::floor<std::chrono::minutes>(local_t) + std::chrono::minutes{1};
  while (true) {
    candidate = matcher.next_match(candidate);
    const date::local_seconds local = candidate;
    const date::local_info info = zone.get_info(local);
    std::chrono::sys_seconds instant;
    if (info.result == date::local_info::nonexistent) {
      instant = info.second.begin;
    } else {
      // For an ambiguous time `first` holds the offset in force before the
      // clock fell back, which gives the first occurrence.
      instant = std::chrono::sys_seconds{local.time_since_epoch()} - info.first.offset;
    }
    if (instant > t) {
      return instant;
    }
    // Only the second pass through a repeated interval gets here.
    candidate += std::chrono::minutes{1};
  }
}

}  // namespace lifeboat::api
