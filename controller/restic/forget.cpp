#include "controller/restic/forget.hpp"

#include "controller/restic/store.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <numeric>
#include <string_view>
#include <utility>

#include <unistd.h>

namespace lifeboat::restic {

namespace {

namespace chr = std::chrono;

struct parsed_time {
  chr::sys_days day{};       // the date in the time's own offset
  int hour = 0;              // in the time's own offset
  std::int64_t instant = 0;  // nanoseconds since the epoch, UTC
};

bool number(std::string_view s, std::size_t at, std::size_t len, int& out) {
  if (at + len > s.size()) {
    return false;
  }
  const char* first = s.data() + at;
  const auto [end, ec] = std::from_chars(first, first + len, out);
  return ec == std::errc() && end == first + len;
}

// YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)
std::optional<parsed_time> parse_time(std::string_view s) {
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!number(s, 0, 4, year) || s.size() < 19 || s[4] != '-' || !number(s, 5, 2, month) ||
      s[7] != '-' || !number(s, 8, 2, day) || (s[10] != 'T' && s[10] != ' ') ||
      !number(s, 11, 2, hour) || s[13] != ':' || !number(s, 14, 2, minute) || s[16] != ':' ||
      !number(s, 17, 2, second)) {
    return std::nullopt;
  }
  std::size_t at = 19;
  std::int64_t nanos = 0;
  if (at < s.size() && s[at] == '.') {
    ++at;
    int digits = 0;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
      if (digits < 9) {
        nanos = nanos * 10 + (s[at] - '0');
        ++digits;
      }
      ++at;
    }
    for (; digits < 9; ++digits) {
      nanos *= 10;
    }
  }
  int offset_minutes = 0;
  if (at < s.size() && s[at] == 'Z' && at + 1 == s.size()) {
    offset_minutes = 0;
  } else if (at + 6 == s.size() && (s[at] == '+' || s[at] == '-') && s[at + 3] == ':') {
    int oh = 0;
    int om = 0;
    if (!number(s, at + 1, 2, oh) || !number(s, at + 4, 2, om)) {
      return std::nullopt;
    }
    offset_minutes = (s[at] == '-' ? -1 : 1) * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  const chr::year_month_day ymd{chr::year{year}, chr::month{static_cast<unsigned>(month)},
                                chr::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  parsed_time t;
  t.day = chr::sys_days(ymd);
  t.hour = hour;
  const auto local = t.day + chr::hours(hour) + chr::minutes(minute) + chr::seconds(second) -
                     chr::minutes(offset_minutes);
  t.instant = chr::duration_cast<chr::nanoseconds>(local.time_since_epoch()).count() + nanos;
  return t;
}

// The ISO 8601 week of `day` as year * 100 + week.
std::int64_t iso_week(chr::sys_days day) {
  const chr::weekday wd{day};
  // The Thursday of the same ISO week decides its year.
  const auto thursday = day - (wd - chr::Monday) + chr::days(3);
  const chr::year_month_day ymd{thursday};
  const chr::sys_days first{ymd.year() / chr::January / 1};
  const auto week = ((thursday - first).count() / 7) + 1;
  return (static_cast<std::int64_t>(static_cast<int>(ymd.year())) * 100) + week;
}

}  // namespace

result<std::vector<bool>> keep_by_policy(const std::vector<std::string>& times,
                                         const keep_policy& policy) {
  std::vector<parsed_time> parsed;
  parsed.reserve(times.size());
  for (std::size_t i = 0; i < times.size(); ++i) {
    auto t = parse_time(times[i]);
    if (!t) {
      return make_error(errc::invalid_format, "snapshot time " + std::to_string(i) + " (\"" +
                                                  times[i] + "\") is not an RFC 3339 time");
    }
    parsed.push_back(*t);
  }
  std::vector<std::size_t> newest_first(times.size());
  std::iota(newest_first.begin(), newest_first.end(), std::size_t{0});
  std::stable_sort(newest_first.begin(), newest_first.end(), [&](std::size_t a, std::size_t b) {
    return parsed[a].instant > parsed[b].instant;
  });

  struct rule {
    int left;
    std::int64_t (*bucket)(const parsed_time&, std::size_t);
    std::optional<std::int64_t> last_bucket;
  };

  std::vector<rule> rules;
  const auto add = [&](const std::optional<int>& count,
                       std::int64_t (*bucket)(const parsed_time&, std::size_t)) {
    if (count && *count > 0) {
      rules.push_back({*count, bucket, std::nullopt});
    }
  };

  add(policy.last, [](const parsed_time&, std::size_t i) { return static_cast<std::int64_t>(i); });
  add(policy.hourly, [](const parsed_time& t, std::size_t) {
    return (static_cast<std::int64_t>(t.day.time_since_epoch().count()) * 24) + t.hour;
  });
  add(policy.daily, [](const parsed_time& t, std::size_t) {
    return static_cast<std::int64_t>(t.day.time_since_epoch().count());
  });
  add(policy.weekly, [](const parsed_time& t, std::size_t) { return iso_week(t.day); });
  add(policy.monthly, [](const parsed_time& t, std::size_t) {
    const chr::year_month_day ymd{t.day};
    return (static_cast<std::int64_t>(static_cast<int>(ymd.year())) * 100) +
           static_cast<unsigned>(ymd.month());
  });
  add(policy.yearly, [](const parsed_time& t, std::size_t) {
    return static_cast<std::int64_t>(static_cast<int>(chr::year_month_day{t.day}.year()));
  });

  if (rules.empty()) {
    // Like restic: a policy without any rule forgets nothing.
    return std::vector<bool>(times.size(), true);
  }
  std::vector<bool> keep(times.size(), false);
  for (std::size_t rank = 0; rank < newest_first.size(); ++rank) {
    const std::size_t i = newest_first[rank];
    if (rank == 0) {
      keep[i] = true;  // never the newest (every rule keeps it anyway)
    }
    for (rule& r : rules) {
      const std::int64_t b = r.bucket(parsed[i], rank);
      if (r.left > 0 && (!r.last_bucket || *r.last_bucket != b)) {
        keep[i] = true;
        r.last_bucket = b;
        --r.left;
      }
    }
  }
  return keep;
}

result<forget_result> forget_snapshots(const repository& repo, const std::vector<std::string>& tags,
                                       const std::vector<std::string>& paths,
                                       const keep_policy& policy) {
  auto lock = repository_lock::acquire(repo);
  if (!lock) {
    return lock.error();
  }
  auto all = list_snapshots(repo);
  if (!all) {
    return all.error();
  }
  std::vector<std::pair<object_id, std::string>> mine;
  for (const auto& entry : *all) {
    const snapshot& s = entry.second;
    const bool tagged = std::ranges::all_of(
        tags, [&](const std::string& t) { return std::ranges::find(s.tags, t) != s.tags.end(); });
    if (tagged && s.paths == paths) {
      mine.emplace_back(entry.first, s.time);
    }
  }
  std::vector<std::string> times;
  times.reserve(mine.size());
  for (const auto& m : mine) {
    times.push_back(m.second);
  }
  auto keep = keep_by_policy(times, policy);
  if (!keep) {
    return keep.error();
  }
  forget_result out;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    if ((*keep)[i]) {
      out.kept.push_back(mine[i].first);
      continue;
    }
    const auto file = repo.path() / "snapshots" / to_hex(mine[i].first);
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
      return make_error(errc::io, "cannot remove " + file.string() + ": " + std::strerror(errno));
    }
    out.removed.push_back(mine[i].first);
  }
  auto released = lock->release();
  if (!released) {
    return released.error();
  }
  return out;
}

}  // namespace lifeboat::restic
