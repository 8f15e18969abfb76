#include "api/cron.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace lifeboat::api {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_seconds;
using local_minutes = date::local_time<minutes>;

// "2026-03-29T01:00:00Z" -> instant. Hand-rolled because date::parse trips
// GCC 12's -Wmaybe-uninitialized inside date.h. A malformed literal is a bug
// in the test.
sys_seconds utc(const std::string& text) {
  int y = 0;
  unsigned mo = 0;
  unsigned d = 0;
  int h = 0;
  int mi = 0;
  int s = 0;
  char zulu = 0;
  if (std::sscanf(text.c_str(), "%d-%u-%uT%d:%d:%d%c", &y, &mo, &d, &h, &mi, &s, &zulu) != 7 ||
      zulu != 'Z') {
    ADD_FAILURE() << "bad UTC literal in test: " << text;
  }
  const date::year_month_day day{date::year{y}, date::month{mo}, date::day{d}};
  if (!day.ok()) {
    ADD_FAILURE() << "bad date in test: " << text;
  }
  return date::sys_days{day} + std::chrono::hours{h} + minutes{mi} + seconds{s};
}

// Results are compared as text so a failure reads as a timestamp.
std::string format_utc(sys_seconds t) { return date::format("%Y-%m-%dT%H:%M:%SZ", t); }

cron_schedule must_parse(std::string_view expr) {
  std::string error;
  auto schedule = cron_schedule::parse(expr, error);
  if (!schedule) {
    ADD_FAILURE() << "parse(\"" << expr << "\") failed: " << error;
    return *cron_schedule::parse("* * * * *", error);
  }
  return *schedule;
}

// ---------------------------------------------------------------------------
// Parsing

struct parse_error_case {
  std::string expr;
  std::string message;  // expected substring of the error
};

TEST(cron_parse, refuses_bad_expressions) {
  const parse_error_case cases[] = {
      {"", "empty schedule expression"},
      {" \t ", "empty schedule expression"},
      {"* * * *", "expected 5 fields, got 4"},
      {"* * * * * *", "expected 5 fields, got 6"},
      {"*", "expected 5 fields, got 1"},
      {"60 * * * *", "minute: 60 is out of range 0-59"},
      {"* 24 * * *", "hour: 24 is out of range 0-23"},
      {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
      {"* * 32 * *", "day-of-month: 32 is out of range 1-31"},
      {"* * * 0 *", "month: 0 is out of range 1-12"},
      {"* * * 13 *", "month: 13 is out of range 1-12"},
      {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
      {"99999999999 * * * *", "minute: 99999999999 is out of range 0-59"},
      {"1-60 * * * *", "minute: 60 is out of range 0-59"},
      {"0,24 0,24 * * *", "hour: 24 is out of range 0-23"},
      {"* * * * FOO", "day-of-week: unknown name \"FOO\""},
      {"* * * * monday", "day-of-week: unknown name \"monday\""},
      {"* * * FOO *", "month: unknown name \"FOO\""},
      {"* * * JANUARY *", "month: unknown name \"JANUARY\""},
      {"JAN * * * *", "minute: invalid value \"JAN\""},
      {"* MON * * *", "hour: invalid value \"MON\""},
      {"* * * * MON1", "day-of-week: invalid value \"MON1\""},
      {"5x * * * *", "minute: invalid value \"5x\""},
      {"? * * * *", "minute: invalid value \"?\""},
      {"*/0 * * * *", "minute: step must be positive"},
      {"* 0-23/0 * * *", "hour: step must be positive"},
      {"*/ * * * *", "minute: missing step"},
      {"*/x * * * *", "minute: invalid step \"x\""},
      {"*/-5 * * * *", "minute: invalid step \"-5\""},
      {"1/2/3 * * * *", "minute: invalid step \"2/3\""},
      {"5-1 * * * *", "minute: range 5-1 is reversed"},
      {"* * * DEC-JAN *", "month: range DEC-JAN is reversed"},
      {"* * * * SAT-MON", "day-of-week: range SAT-MON is reversed"},
      {"-5 * * * *", "minute: invalid range \"-5\""},
      {"5- * * * *", "minute: invalid range \"5-\""},
      {"* * * * MON-", "day-of-week: invalid range \"MON-\""},
      {"*-5 * * * *", "minute: invalid value \"*\""},
      {"1,,2 * * * *", "minute: empty list item"},
      {"1, * * * *", "minute: empty list item"},
      {",1 * * * *", "minute: empty list item"},
      {"0 0 30 2 *", "never fire"},
      {"0 0 31 2 *", "never fire"},
      {"0 0 31 4,6,9,11 *", "never fire"},
      {"0 0 30,31 FEB *", "never fire"},
      // `*/2` counts as unrestricted, so this is day 30 AND an even weekday:
      // never in February.
      {"0 0 30 2 */2", "never fire"},
      {"@every", "@every: missing duration"},
      {"@every 5x", "@every: invalid duration \"5x\" (expected e.g. 90s, 5m, 1h30m)"},
      {"@every 0s", "@every: invalid duration \"0s\""},
      {"@every -5m", "@every: invalid duration \"-5m\""},
      {"@every 5m 10s", "@every: unexpected \"10s\""},
      {"@daily 5", "@daily: takes no arguments, got \"5\""},
      {"@fortnightly", "unknown macro \"@fortnightly\""},
      {"@", "unknown macro \"@\""},
      {"@DAILY", "unknown macro \"@DAILY\""},
  };
  for (const auto& c : cases) {
    std::string error;
    const auto schedule = cron_schedule::parse(c.expr, error);
    EXPECT_FALSE(schedule.has_value()) << "expr: \"" << c.expr << "\"";
    EXPECT_NE(error.find(c.message), std::string::npos)
        << "expr: \"" << c.expr << "\"\n  error: " << error << "\n  want:  " << c.message;
  }
}

TEST(cron_parse, accepts_valid_expressions_and_keeps_the_text) {
  const std::string cases[] = {
      "* * * * *",
      "0 0 * * 7",
      "0 0 * * sun",
      "0 0 * * Sun-Sat",
      "0 0 1 jan,Jul,DEC *",
      "0-59/15 0-23/6 1-31/2 1-12/3 0-7/2",
      "5/20 * * * *",
      "0 0 29 2 *",
      // Both day fields restricted: fires on February's Mondays (Vixie OR).
      "0 0 30 2 MON",
      "*/100 */100 */100 */100 */100",
      "  0 0 * * *  ",
      "0\t0\t*  *\t \t*",
      "@hourly",
      "@daily",
      "@midnight",
      "@weekly",
      "@monthly",
      "@yearly",
      "@annually",
      "@every 90s",
      "@every 1h30m",
      "  @every\t5m ",
  };
  for (const auto& expr : cases) {
    std::string error;
    const auto schedule = cron_schedule::parse(expr, error);
    ASSERT_TRUE(schedule.has_value()) << "expr: \"" << expr << "\": " << error;
    EXPECT_EQ(schedule->text(), expr);
  }
}

// Spellings that must fire at exactly the same instants.
TEST(cron_parse, equivalent_spellings_fire_alike) {
  const std::vector<std::vector<std::string>> groups = {
      {"0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * sun", "@weekly"},
      {"0 0 * * *", "@daily", "@midnight", "0\t0  *   * *"},
      {"0 * * * *", "@hourly"},
      {"0 0 1 * *", "@monthly"},
      {"0 0 1 1 *", "0 0 1 jan *", "@yearly", "@annually"},
      {"0 0 * * MON-FRI", "0 0 * * 1-5", "0 0 * * 1,2,3,4,5", "0 0 * * mon,TUE,wEd,thu,FRI"},
      {"0 0 * * FRI-SUN", "0 0 * * 5-7", "0 0 * * 0,5,6", "0 0 * * 5-0"},
      {"*/15 * * * *", "0,15,30,45 * * * *", "0-59/15 * * * *", "0/15 * * * *"},
      {"5/20 * * * *", "5,25,45 * * * *", "5-59/20 * * * *"},
      {"0 0 1 JAN-MAR *", "0 0 1 1-3 *", "0 0 1 1,2,3 *"},
      {"0 0 1 */4 *", "0 0 1 JAN,MAY,SEP *"},
      {"0 */6 * * *", "0 0,6,12,18 * * *"},
      // Vixie quirk: "1-31" does not start with `*`, so it is restricted and
      // ORed with the weekday; the pair matches every day.
      {"0 0 1-31 * MON", "0 0 * * *"},
      {"0 0 * * */2", "0 0 * * 0,2,4,6"},
  };
  const date::time_zone* zone = date::locate_zone("Europe/Berlin");
  for (const auto& group : groups) {
    const cron_schedule reference = must_parse(group.front());
    for (const auto& expr : group) {
      const cron_schedule schedule = must_parse(expr);
      sys_seconds want = utc("2025-12-31T22:30:00Z");
      sys_seconds got = want;
      for (int i = 0; i < 60; ++i) {
        want = reference.next_after(want, *zone);
        got = schedule.next_after(got, *zone);
        ASSERT_EQ(format_utc(got), format_utc(want))
            << "\"" << expr << "\" vs \"" << group.front() << "\", firing " << i;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// next_after, case by case

struct next_case {
  std::string name;
  std::string expr;
  std::string zone;
  std::string after;     // UTC
  std::string expected;  // UTC
};

TEST(cron_next_after, table) {
  const next_case cases[] = {
      // UTC basics.
      {"every_minute", "* * * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"},
      {"mid_minute", "* * * * *", "UTC", "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z"},
      {"strictly_after", "0 * * * *", "UTC", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"},
      {"one_second_before", "0 * * * *", "UTC", "2026-01-01T10:59:59Z", "2026-01-01T11:00:00Z"},
      {"list", "5,10 * * * *", "UTC", "2026-01-01T10:07:00Z", "2026-01-01T10:10:00Z"},
      {"range_next_day", "0 9-17 * * *", "UTC", "2026-01-01T17:30:00Z", "2026-01-02T09:00:00Z"},
      {"step", "*/15 * * * *", "UTC", "2026-01-01T10:46:00Z", "2026-01-01T11:00:00Z"},
      {"step_range", "10-50/20 * * * *", "UTC", "2026-01-01T10:31:00Z", "2026-01-01T10:50:00Z"},
      {"step_range_wraps_hour", "10-50/20 * * * *", "UTC", "2026-01-01T10:51:00Z",
       "2026-01-01T11:10:00Z"},
      {"start_with_step", "5/20 * * * *", "UTC", "2026-01-01T10:46:00Z", "2026-01-01T11:05:00Z"},
      {"hour_step", "0 */6 * * *", "UTC", "2026-01-01T06:00:00Z", "2026-01-01T12:00:00Z"},
      {"year_end", "59 23 31 12 *", "UTC", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"},
      {"new_year", "0 0 1 1 *", "UTC", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
      {"month_names", "0 0 1 jan,Jul *", "UTC", "2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z"},
      {"month_name_range", "0 0 1 MAR-MAY *", "UTC", "2026-05-02T00:00:00Z",
       "2027-03-01T00:00:00Z"},
      {"month_step", "0 0 1 */5 *", "UTC", "2026-06-15T00:00:00Z", "2026-11-01T00:00:00Z"},
      {"day_31_skips_short_months", "0 0 31 * *", "UTC", "2026-01-31T00:00:00Z",
       "2026-03-31T00:00:00Z"},
      {"day_31_in_april_list", "0 0 31 3,4 *", "UTC", "2026-03-31T00:00:00Z",
       "2027-03-31T00:00:00Z"},
      // 2026-01-01 is a Thursday.
      {"weekday_names", "0 9 * * mon-fri", "UTC", "2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z"},
      {"sunday_as_7", "0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"},
      {"sunday_as_0", "0 0 * * 0", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"},
      {"sunday_closes_range", "0 0 * * FRI-SUN", "UTC", "2026-01-03T00:00:00Z",
       "2026-01-04T00:00:00Z"},
      {"sunday_closes_range_then_friday", "0 0 * * FRI-SUN", "UTC", "2026-01-04T00:00:00Z",
       "2026-01-09T00:00:00Z"},
      // Vixie OR: both day fields restricted.
      {"dom_or_dow_friday", "0 0 13 * FRI", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"},
      {"dom_or_dow_next_friday", "0 0 13 * FRI", "UTC", "2026-01-02T00:00:00Z",
       "2026-01-09T00:00:00Z"},
      {"dom_or_dow_13th_tuesday", "0 0 13 * FRI", "UTC", "2026-01-09T00:00:00Z",
       "2026-01-13T00:00:00Z"},
      {"dom_or_dow_after_13th", "0 0 13 * FRI", "UTC", "2026-01-13T00:00:00Z",
       "2026-01-16T00:00:00Z"},
      {"dom_or_dow_feb_30_means_feb_mondays", "0 0 30 2 MON", "UTC", "2026-01-01T00:00:00Z",
       "2026-02-02T00:00:00Z"},
      {"dom_or_dow_feb_29_or_monday", "0 0 29 2 MON", "UTC", "2028-02-28T00:00:00Z",
       "2028-02-29T00:00:00Z"},
      // Vixie AND: a field starting with `*` (even `*/2`) is unrestricted.
      {"star_step_dom_and_monday", "0 0 */2 * MON", "UTC", "2026-01-01T00:00:00Z",
       "2026-01-05T00:00:00Z"},
      {"star_step_dom_and_monday_skips_even", "0 0 */2 * MON", "UTC", "2026-01-05T00:00:00Z",
       "2026-01-19T00:00:00Z"},
      {"first_of_month_and_star_step_dow", "0 0 1 * */2", "UTC", "2026-01-01T00:00:00Z",
       "2026-02-01T00:00:00Z"},
      {"star_dom_and_sunday_in_march", "0 0 * 3 SUN", "UTC", "2026-01-01T00:00:00Z",
       "2026-03-01T00:00:00Z"},
      // Leap years.
      {"feb_29_next_leap_year", "0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z",
       "2028-02-29T00:00:00Z"},
      {"feb_29_strictly_after", "0 0 29 2 *", "UTC", "2028-02-29T00:00:00Z",
       "2032-02-29T00:00:00Z"},
      {"feb_29_from_2024", "30 12 29 FEB *", "UTC", "2024-02-29T12:30:00Z", "2028-02-29T12:30:00Z"},
      {"feb_29_skips_2100", "0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},
      {"feb_29_in_2000", "0 0 29 2 *", "UTC", "1997-01-01T00:00:00Z", "2000-02-29T00:00:00Z"},
      {"feb_28_non_leap", "0 0 28 2 *", "UTC", "2026-02-27T00:00:00Z", "2026-02-28T00:00:00Z"},
      {"feb_29_or_friday", "0 0 29 2 FRI", "UTC", "2026-02-27T00:00:00Z", "2027-02-05T00:00:00Z"},
      {"feb_29_berlin", "0 0 29 2 *", "Europe/Berlin", "2026-01-01T00:00:00Z",
       "2028-02-28T23:00:00Z"},
      // Macros.
      {"hourly", "@hourly", "UTC", "2026-01-01T10:59:00Z", "2026-01-01T11:00:00Z"},
      {"daily", "@daily", "UTC", "2026-01-01T12:00:00Z", "2026-01-02T00:00:00Z"},
      {"midnight", "@midnight", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"},
      {"weekly", "@weekly", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"},
      {"monthly", "@monthly", "UTC", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
      {"yearly", "@yearly", "UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
      {"annually", "@annually", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"},
      {"daily_berlin", "@daily", "Europe/Berlin", "2026-07-01T12:00:00Z", "2026-07-01T22:00:00Z"},
      {"before_1970", "0 0 1 1 *", "UTC", "1969-06-01T00:00:00Z", "1970-01-01T00:00:00Z"},

      // Fixed odd offsets.
      {"kolkata_morning", "0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z",
       "2026-01-01T03:30:00Z"},
      {"kolkata_midnight", "0 0 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z",
       "2026-01-01T18:30:00Z"},
      {"kolkata_half_hour_list", "0,30 * * * *", "Asia/Kolkata", "2026-01-01T00:10:00Z",
       "2026-01-01T00:30:00Z"},
      {"chatham_midnight_dst", "0 0 * * *", "Pacific/Chatham", "2026-01-01T00:00:00Z",
       "2026-01-01T10:15:00Z"},
      {"chatham_midnight_standard", "0 0 * * *", "Pacific/Chatham", "2026-06-01T00:00:00Z",
       "2026-06-01T11:15:00Z"},
      {"chatham_day_of_month_local", "0 0 1 * *", "Pacific/Chatham", "2026-05-31T11:14:59Z",
       "2026-05-31T11:15:00Z"},

      // Europe/Berlin, spring forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z).
      {"berlin_winter", "0 3 * * *", "Europe/Berlin", "2026-01-01T00:00:00Z",
       "2026-01-01T02:00:00Z"},
      {"berlin_gap_runs_at_jump", "30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z",
       "2026-03-29T01:00:00Z"},
      {"berlin_gap_then_next_day", "30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z",
       "2026-03-30T00:30:00Z"},
      {"berlin_gap_two_minutes_once", "0,30 2 * * *", "Europe/Berlin", "2026-03-29T00:59:59Z",
       "2026-03-29T01:00:00Z"},
      {"berlin_gap_two_minutes_once_after", "0,30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z",
       "2026-03-30T00:00:00Z"},
      {"berlin_gap_and_three_once", "0 2,3 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z",
       "2026-03-30T00:00:00Z"},
      {"berlin_gap_every_minute_of_hour", "* 2 * * *", "Europe/Berlin", "2026-03-29T00:30:00Z",
       "2026-03-29T01:00:00Z"},
      {"berlin_gap_every_minute_of_hour_after", "* 2 * * *", "Europe/Berlin",
       "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"},
      {"berlin_before_gap", "59 1 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z",
       "2026-03-29T00:59:00Z"},
      {"berlin_hourly_over_gap", "0 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z",
       "2026-03-29T01:00:00Z"},
      {"berlin_hourly_after_gap", "0 * * * *", "Europe/Berlin", "2026-03-29T01:00:00Z",
       "2026-03-29T02:00:00Z"},
      {"berlin_quarter_over_gap", "*/15 * * * *", "Europe/Berlin", "2026-03-29T00:45:00Z",
       "2026-03-29T01:00:00Z"},
      {"berlin_quarter_after_gap", "*/15 * * * *", "Europe/Berlin", "2026-03-29T01:00:00Z",
       "2026-03-29T01:15:00Z"},
      {"berlin_gap_hour_other_days_only", "30 2 29 3 *", "Europe/Berlin", "2026-03-29T01:00:00Z",
       "2027-03-29T00:30:00Z"},
      // Europe/Berlin, fall back 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z).
      {"berlin_repeat_first", "30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z",
       "2026-10-25T00:30:00Z"},
      {"berlin_repeat_not_second", "30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z",
       "2026-10-26T01:30:00Z"},
      {"berlin_repeat_from_inside_second", "30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z",
       "2026-10-26T01:30:00Z"},
      {"berlin_hourly_before_repeat", "0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z",
       "2026-10-25T00:00:00Z"},
      {"berlin_hourly_over_repeat", "0 * * * *", "Europe/Berlin", "2026-10-25T00:00:00Z",
       "2026-10-25T02:00:00Z"},
      {"berlin_quarter_in_first_pass", "*/15 * * * *", "Europe/Berlin", "2026-10-25T00:15:00Z",
       "2026-10-25T00:30:00Z"},
      {"berlin_quarter_over_repeat", "*/15 * * * *", "Europe/Berlin", "2026-10-25T00:45:00Z",
       "2026-10-25T02:00:00Z"},
      {"berlin_quarter_inside_second_pass", "*/15 * * * *", "Europe/Berlin", "2026-10-25T01:20:00Z",
       "2026-10-25T02:00:00Z"},
      {"berlin_after_repeat", "0 3 * * *", "Europe/Berlin", "2026-10-25T00:00:00Z",
       "2026-10-25T02:00:00Z"},
      {"berlin_summer_daily", "0 0 * * *", "Europe/Berlin", "2026-07-01T00:00:00Z",
       "2026-07-01T22:00:00Z"},

      // America/New_York, spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z).
      {"new_york_winter_midnight", "0 0 * * *", "America/New_York", "2026-01-01T00:00:00Z",
       "2026-01-01T05:00:00Z"},
      {"new_york_gap_runs_at_jump", "30 2 * * *", "America/New_York", "2026-03-08T05:00:00Z",
       "2026-03-08T07:00:00Z"},
      {"new_york_gap_then_next_day", "30 2 * * *", "America/New_York", "2026-03-08T07:00:00Z",
       "2026-03-09T06:30:00Z"},
      {"new_york_hourly_over_gap", "0 * * * *", "America/New_York", "2026-03-08T06:00:00Z",
       "2026-03-08T07:00:00Z"},
      {"new_york_hourly_after_gap", "0 * * * *", "America/New_York", "2026-03-08T07:00:00Z",
       "2026-03-08T08:00:00Z"},
      {"new_york_quarter_over_gap", "*/15 * * * *", "America/New_York", "2026-03-08T06:45:00Z",
       "2026-03-08T07:00:00Z"},
      {"new_york_quarter_after_gap", "*/15 * * * *", "America/New_York", "2026-03-08T07:00:00Z",
       "2026-03-08T07:15:00Z"},
      // America/New_York, fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z).
      {"new_york_repeat_first", "30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z",
       "2026-11-01T05:30:00Z"},
      {"new_york_repeat_not_second", "30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z",
       "2026-11-02T06:30:00Z"},
      {"new_york_after_repeat", "30 2 * * *", "America/New_York", "2026-10-31T12:00:00Z",
       "2026-11-01T07:30:00Z"},
      {"new_york_hourly_over_repeat", "0 * * * *", "America/New_York", "2026-11-01T05:00:00Z",
       "2026-11-01T07:00:00Z"},
      {"new_york_quarter_over_repeat", "*/15 * * * *", "America/New_York", "2026-11-01T05:45:00Z",
       "2026-11-01T07:00:00Z"},
      {"new_york_quarter_inside_second_pass", "*/15 * * * *", "America/New_York",
       "2026-11-01T06:05:00Z", "2026-11-01T07:00:00Z"},

      // Australia/Lord_Howe: +10:30 / +11:00. Spring forward 2026-10-04 02:00 -> 02:30
      // (2026-10-03T15:30Z); fall back 2026-04-05 02:00 -> 01:30 (2026-04-04T15:00Z).
      {"lord_howe_gap_runs_at_jump", "15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z",
       "2026-10-03T15:30:00Z"},
      {"lord_howe_gap_then_next_day", "15 2 * * *", "Australia/Lord_Howe", "2026-10-03T15:30:00Z",
       "2026-10-04T15:15:00Z"},
      {"lord_howe_hourly_over_gap", "0 * * * *", "Australia/Lord_Howe", "2026-10-03T15:00:00Z",
       "2026-10-03T15:30:00Z"},
      {"lord_howe_hourly_after_gap", "0 * * * *", "Australia/Lord_Howe", "2026-10-03T15:30:00Z",
       "2026-10-03T16:00:00Z"},
      {"lord_howe_quarter_over_gap", "*/15 * * * *", "Australia/Lord_Howe", "2026-10-03T15:15:00Z",
       "2026-10-03T15:30:00Z"},
      {"lord_howe_quarter_after_gap", "*/15 * * * *", "Australia/Lord_Howe", "2026-10-03T15:30:00Z",
       "2026-10-03T15:45:00Z"},
      {"lord_howe_half_past_two_exists", "30 2 * * *", "Australia/Lord_Howe",
       "2026-10-03T00:00:00Z", "2026-10-03T15:30:00Z"},
      {"lord_howe_repeat_first", "45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z",
       "2026-04-04T14:45:00Z"},
      {"lord_howe_repeat_not_second", "45 1 * * *", "Australia/Lord_Howe", "2026-04-04T14:45:00Z",
       "2026-04-05T15:15:00Z"},
      {"lord_howe_hourly_over_repeat", "0 * * * *", "Australia/Lord_Howe", "2026-04-04T14:00:00Z",
       "2026-04-04T15:30:00Z"},
      {"lord_howe_quarter_over_repeat", "*/15 * * * *", "Australia/Lord_Howe",
       "2026-04-04T14:45:00Z", "2026-04-04T15:30:00Z"},

      // Pacific/Chatham: +12:45 / +13:45. Spring forward 2026-09-27 02:45 -> 03:45
      // (2026-09-26T14:00Z); fall back 2026-04-05 03:45 -> 02:45 (2026-04-04T14:00Z).
      {"chatham_gap_runs_at_jump", "0 3 * * *", "Pacific/Chatham", "2026-09-26T00:00:00Z",
       "2026-09-26T14:00:00Z"},
      {"chatham_gap_then_next_day", "0 3 * * *", "Pacific/Chatham", "2026-09-26T14:00:00Z",
       "2026-09-27T13:15:00Z"},
      {"chatham_repeat_first", "0 3 * * *", "Pacific/Chatham", "2026-04-04T00:00:00Z",
       "2026-04-04T13:15:00Z"},
      {"chatham_repeat_not_second", "0 3 * * *", "Pacific/Chatham", "2026-04-04T13:15:00Z",
       "2026-04-05T14:15:00Z"},

      // Samoa skipped 2011-12-30 entirely (-10 -> +14 at 2011-12-30T10:00Z).
      {"apia_skipped_day_runs_after_jump", "0 12 30 12 *", "Pacific/Apia", "2011-12-01T00:00:00Z",
       "2011-12-30T10:00:00Z"},
      {"apia_skipped_day_every_noon", "0 12 * * *", "Pacific/Apia", "2011-12-29T22:00:00Z",
       "2011-12-30T10:00:00Z"},
      {"apia_after_skipped_day", "0 12 * * *", "Pacific/Apia", "2011-12-30T10:00:00Z",
       "2011-12-30T22:00:00Z"},

      // @every: multiples of the period since the epoch, whatever the zone.
      {"every_90s", "@every 90s", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z"},
      {"every_90s_just_before", "@every 90s", "UTC", "2026-01-01T00:01:29Z",
       "2026-01-01T00:01:30Z"},
      {"every_90s_on_a_multiple", "@every 90s", "UTC", "2026-01-01T00:01:30Z",
       "2026-01-01T00:03:00Z"},
      {"every_1h30m", "@every 1h30m", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T01:30:00Z"},
      {"every_1h30m_over_midnight", "@every 1h30m", "UTC", "2026-01-01T23:59:00Z",
       "2026-01-02T00:00:00Z"},
      {"every_1h30m_ignores_zone", "@every 1h30m", "Pacific/Chatham", "2026-01-01T00:00:00Z",
       "2026-01-01T01:30:00Z"},
      {"every_1h30m_ignores_dst", "@every 1h30m", "Europe/Berlin", "2026-03-29T00:59:00Z",
       "2026-03-29T01:30:00Z"},
      {"every_7m", "@every 7m", "America/New_York", "2026-01-01T00:00:01Z", "2026-01-01T00:07:00Z"},
      {"every_25h", "@every 25h", "UTC", "1970-01-01T00:00:00Z", "1970-01-02T01:00:00Z"},
      {"every_before_epoch", "@every 7m", "UTC", "1969-12-31T23:59:00Z", "1970-01-01T00:00:00Z"},
      {"every_before_epoch_on_multiple", "@every 1h", "UTC", "1969-12-31T23:00:00Z",
       "1970-01-01T00:00:00Z"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + ": \"" + c.expr + "\" in " + c.zone + " after " + c.after);
    const cron_schedule schedule = must_parse(c.expr);
    const date::time_zone* zone = date::locate_zone(c.zone);
    EXPECT_EQ(format_utc(schedule.next_after(utc(c.after), *zone)), c.expected);
  }
}

TEST(cron_next_after, leap_days_over_four_centuries) {
  const cron_schedule schedule = must_parse("0 0 29 2 *");
  const date::time_zone* zone = date::locate_zone("UTC");
  sys_seconds t = utc("1900-01-01T00:00:00Z");
  int expected_year = 1904;
  while (expected_year < 2300) {
    const date::year y{expected_year};
    if (y.is_leap()) {
      t = schedule.next_after(t, *zone);
      ASSERT_EQ(format_utc(t), std::to_string(expected_year) + "-02-29T00:00:00Z");
    }
    ++expected_year;
  }
}

// ---------------------------------------------------------------------------
// Property: next_after agrees with a brute-force walk over every UTC minute
// of a year.

struct local_fields {
  int minute;
  int hour;
  int day;
  int month;
  int weekday;  // 0 = Sunday
};

local_fields fields_of(local_minutes l) {
  const date::local_days day = date::floor<date::days>(l);
  const date::year_month_day ymd{day};
  const date::hh_mm_ss<minutes> time{l - day};
  return {static_cast<int>(time.minutes().count()), static_cast<int>(time.hours().count()),
          static_cast<int>(static_cast<unsigned>(ymd.day())),
          static_cast<int>(static_cast<unsigned>(ymd.month())),
          static_cast<int>(date::weekday{day}.c_encoding())};
}

// One UTC minute as the reference sees it.
struct walked_minute {
  sys_seconds instant;
  local_fields local;
  bool repeated;          // its local time already occurred earlier
  std::size_t gap_begin;  // local minutes the clock skipped just before it,
  std::size_t gap_end;    // as a range of walked_zone::skipped
};

struct walked_zone {
  std::vector<walked_minute> minutes;
  std::vector<local_fields> skipped;
};

// Written independently of the implementation: converts each UTC minute to
// local time and notes which local minutes repeat and which were jumped over.
walked_zone walk(const date::time_zone& zone, sys_seconds begin, sys_seconds end) {
  walked_zone out;
  local_minutes latest = date::floor<minutes>(zone.to_local(begin - minutes{1}));
  for (sys_seconds u = begin; u < end; u += minutes{1}) {
    const local_minutes local = date::floor<minutes>(zone.to_local(u));
    walked_minute m{u, fields_of(local), local <= latest, out.skipped.size(), 0};
    for (local_minutes l = latest + minutes{1}; l < local; l += minutes{1}) {
      out.skipped.push_back(fields_of(l));
    }
    m.gap_end = out.skipped.size();
    latest = std::max(latest, local);
    out.minutes.push_back(m);
  }
  return out;
}

// A minute fires if its local time matches and occurs for the first time, or
// if any matching local minute was skipped just before it (once, even if
// several were).
std::vector<sys_seconds> reference_firings(const walked_zone& zone,
                                           bool (*matches)(const local_fields&)) {
  std::vector<sys_seconds> out;
  for (const walked_minute& m : zone.minutes) {
    bool fires = !m.repeated && matches(m.local);
    for (std::size_t i = m.gap_begin; i < m.gap_end && !fires; ++i) {
      fires = matches(zone.skipped[i]);
    }
    if (fires) {
      out.push_back(m.instant);
    }
  }
  return out;
}

struct property_case {
  std::string_view expr;
  bool (*matches)(const local_fields&);  // the expression, restated by hand
};

TEST(cron_next_after, matches_brute_force_reference) {
  const property_case cases[] = {
      {"0 * * * *", [](const local_fields& l) { return l.minute == 0; }},
      {"*/15 * * * *", [](const local_fields& l) { return l.minute % 15 == 0; }},
      {"30 2 * * *", [](const local_fields& l) { return l.hour == 2 && l.minute == 30; }},
      {"* 2 * * *", [](const local_fields& l) { return l.hour == 2; }},
      {"10,40 2 * * *",
       [](const local_fields& l) { return l.hour == 2 && (l.minute == 10 || l.minute == 40); }},
      {"30 1 * * *", [](const local_fields& l) { return l.hour == 1 && l.minute == 30; }},
      {"0 3 * * *", [](const local_fields& l) { return l.hour == 3 && l.minute == 0; }},
      {"0,30 1-3 * * *",
       [](const local_fields& l) {
         return l.hour >= 1 && l.hour <= 3 && (l.minute == 0 || l.minute == 30);
       }},
      {"5-50/15 */6 * * *",
       [](const local_fields& l) {
         return l.minute >= 5 && l.minute <= 50 && (l.minute - 5) % 15 == 0 && l.hour % 6 == 0;
       }},
      {"0 0 13 * FRI",
       [](const local_fields& l) {
         return l.hour == 0 && l.minute == 0 && (l.day == 13 || l.weekday == 5);
       }},
      {"0 0 1-7 * MON",
       [](const local_fields& l) {
         return l.hour == 0 && l.minute == 0 && (l.day <= 7 || l.weekday == 1);
       }},
      {"0 12 */2 * MON",
       [](const local_fields& l) {
         return l.hour == 12 && l.minute == 0 && l.day % 2 == 1 && l.weekday == 1;
       }},
      {"0 0 * 3,10 SUN",
       [](const local_fields& l) {
         return l.hour == 0 && l.minute == 0 && (l.month == 3 || l.month == 10) && l.weekday == 0;
       }},
      {"0 9 * * mon-fri",
       [](const local_fields& l) {
         return l.hour == 9 && l.minute == 0 && l.weekday >= 1 && l.weekday <= 5;
       }},
      {"0 0 * * 7",
       [](const local_fields& l) { return l.hour == 0 && l.minute == 0 && l.weekday == 0; }},
      {"0 0 31 * *",
       [](const local_fields& l) { return l.hour == 0 && l.minute == 0 && l.day == 31; }},
      {"15 4 1 jan,JUL *",
       [](const local_fields& l) {
         return l.hour == 4 && l.minute == 15 && l.day == 1 && (l.month == 1 || l.month == 7);
       }},
  };
  const std::string zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                               "Pacific/Chatham"};
  const sys_seconds begin = utc("2026-01-01T00:00:00Z");
  const sys_seconds end = utc("2027-01-01T00:00:00Z");

  for (const auto& zone_name : zones) {
    const date::time_zone* zone = date::locate_zone(zone_name);
    const walked_zone walked = walk(*zone, begin, end);
    for (const auto& c : cases) {
      SCOPED_TRACE(testing::Message() << '"' << c.expr << "\" in " << zone_name);
      const cron_schedule schedule = must_parse(c.expr);
      const std::vector<sys_seconds> want = reference_firings(walked, c.matches);
      ASSERT_FALSE(want.empty());

      // Follow the chain of firings, and also ask from the middle of each
      // interval and from just before each firing.
      int mismatches = 0;
      sys_seconds previous = begin - seconds{1};
      for (const sys_seconds firing : want) {
        const sys_seconds queries[] = {previous, previous + (firing - previous) / 2,
                                       firing - seconds{1}};
        for (const sys_seconds q : queries) {
          const sys_seconds got = schedule.next_after(q, *zone);
          if (got != firing && ++mismatches <= 5) {
            ADD_FAILURE() << "after " << format_utc(q) << ": got " << format_utc(got) << ", want "
                          << format_utc(firing);
          }
        }
        previous = firing;
      }
      EXPECT_GE(schedule.next_after(previous, *zone), end);
      EXPECT_EQ(mismatches, 0);
    }
  }
}

}  // namespace
}  // namespace lifeboat::api
