#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace lifeboat::api {

/// A parsed schedule expression: five cron fields (minute hour day-of-month
/// month day-of-week, with lists, ranges, steps, month and weekday names),
/// a macro (@hourly @daily @midnight @weekly @monthly @yearly @annually), or
/// `@every <duration>`.
///
/// Semantics (the contract the tests check):
///  - Fields are matched against local wall-clock time in the given zone.
///  - Day-of-month and day-of-week follow Vixie cron: when both are restricted
///    (neither starts with `*`) a day matches if either matches.
///  - A local time that does not exist (the clock jumps forward over it) runs
///    at the first instant after the jump, once.
///  - A local time that occurs twice (the clock falls back) runs once, at its
///    first occurrence.
///  - `@every d` fires at the multiples of d counted from the Unix epoch (UTC),
///    independent of the zone, so it needs no memory of the previous run.
class cron_schedule {
 public:
  /// Parses `expr`. On failure returns nullopt and sets `error` to a message
  /// naming the offending field, e.g. "hour: 24 is out of range 0-23".
  static std::optional<cron_schedule> parse(std::string_view expr, std::string& error);

  /// The first firing instant strictly after `t`, at a whole second.
  /// `zone` comes from date::locate_zone. Never fails for a parsed schedule:
  /// an expression that can never fire (e.g. "0 0 30 2 *") is refused by parse.
  std::chrono::sys_seconds next_after(std::chrono::sys_seconds t,
                                      const date::time_zone& zone) const;

  /// The expression as written.
  const std::string& text() const { return text_; }

 private:
  cron_schedule() = default;

  std::string text_;
  std::chrono::seconds every_{0};  // non-zero for `@every`
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // bit 0 unused
  std::bitset<13> months_;         // bit 0 unused
  std::bitset<7> days_of_week_;    // 0 = Sunday
  bool day_of_month_restricted_ = false;
  bool day_of_week_restricted_ = false;
};

}  // namespace lifeboat::api
