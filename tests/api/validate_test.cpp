#include "api/validate.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

#include "api/objects.hpp"

namespace lifeboat::api {
namespace {

using std::nullopt;
using testing::HasSubstr;

struct check_case {
  std::string input;
  std::optional<std::string> expected;  // nullopt: valid
};

TEST(check_object_name, table) {
  const std::string long_name(64, 'a');
  const check_case cases[] = {
      {"nightly", nullopt},
      {"a", nullopt},
      {"0", nullopt},
      {"nightly-db-2", nullopt},
      {std::string(63, 'a'), nullopt},
      {"", "must not be empty"},
      {long_name, "must be at most 63 characters, got 64"},
      {"Nightly",
       "\"Nightly\" is not a valid name: use lowercase letters, digits and '-', and start and end "
       "with a letter or digit"},
      {"-a",
       "\"-a\" is not a valid name: use lowercase letters, digits and '-', and start and end "
       "with a letter or digit"},
      {"a-",
       "\"a-\" is not a valid name: use lowercase letters, digits and '-', and start and end "
       "with a letter or digit"},
      {"a_b",
       "\"a_b\" is not a valid name: use lowercase letters, digits and '-', and start and end "
       "with a letter or digit"},
      {"a.b",
       "\"a.b\" is not a valid name: use lowercase letters, digits and '-', and start and end "
       "with a letter or digit"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(check_object_name(c.input), c.expected) << c.input;
  }
  EXPECT_EQ(check_object_name(std::string(48, 'a'), max_schedule_name_length), nullopt);
  EXPECT_EQ(check_object_name(std::string(49, 'a'), max_schedule_name_length),
            "must be at most 48 characters, got 49");
}

TEST(check_volume_name, follows_the_docker_local_driver) {
  const std::string message =
      " is not a valid volume name: use at least 2 characters from [a-zA-Z0-9_.-], starting "
      "with a letter or digit";
  const check_case cases[] = {
      {"ab", nullopt},
      {"app_db", nullopt},
      {"App.Data-1_x", nullopt},
      {"0a", nullopt},
      {std::string(255, 'v'), nullopt},
      {"a", "\"a\"" + message},  // Docker refuses one-character names
      {"", "\"\"" + message},
      {"_a", "\"_a\"" + message},
      {".a", "\".a\"" + message},
      {"a/b", "\"a/b\"" + message},
      {"a b", "\"a b\"" + message},
      {std::string(256, 'v'), "must be at most 255 characters, got 256"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(check_volume_name(c.input), c.expected) << c.input;
  }
}

TEST(check_schedule, delegates_to_cron) {
  EXPECT_EQ(check_schedule("0 3 * * *"), nullopt);
  const auto error = check_schedule("0 25 * * *");
  ASSERT_TRUE(error);
  EXPECT_THAT(*error, testing::StartsWith("invalid schedule \"0 25 * * *\": "));
  EXPECT_THAT(*error, HasSubstr("hour"));
}

TEST(check_time_zone, table) {
  const check_case cases[] = {
      {"UTC", nullopt},
      {"Europe/Berlin", nullopt},
      {"America/Argentina/Buenos_Aires", nullopt},
      {"Europe/Berln", "unknown time zone \"Europe/Berln\" (not in the IANA time zone database)"},
      {"", "unknown time zone \"\" (not in the IANA time zone database)"},
      {"../../etc/passwd",
       "unknown time zone \"../../etc/passwd\" (not in the IANA time zone database)"},
      {"europe/berlin", "unknown time zone \"europe/berlin\" (not in the IANA time zone database)"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(check_time_zone(c.input), c.expected) << c.input;
  }
}

TEST(check_exclude_pattern, table) {
  const check_case cases[] = {
      {R"(\.cache/)", nullopt},
      {"^tmp/|\\.log$", nullopt},
      {"[a-z]+\\d{2,3}", nullopt},
      {"", "must not be empty: an empty pattern would exclude every file"},
      {"(a",
       "invalid regular expression \"(a\": unbalanced ( ), or *, + or ? with nothing to repeat"},
      {"[a", "invalid regular expression \"[a\": unbalanced [ ]"},
      {"*a",
       "invalid regular expression \"*a\": unbalanced ( ), or *, + or ? with nothing to repeat"},
      {"a{2,1}", "invalid regular expression \"a{2,1}\": invalid repetition count in { }"},
      {"[z-a]", "invalid regular expression \"[z-a]\": invalid character range"},
      {"\\", "invalid regular expression \"\\\\\": invalid escape sequence"},
      {std::string(513, 'a'), "must be at most 512 characters, got 513"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(check_exclude_pattern(c.input), c.expected) << c.input;
  }
}

TEST(check_exclude_pattern, survives_patterns_that_blow_up) {
  // Huge repetition counts exceed libstdc++'s state limit instead of
  // exhausting memory; they must come back as an error, not an exception.
  EXPECT_EQ(check_exclude_pattern("(a{1000}){1000}"),
            "invalid regular expression \"(a{1000}){1000}\": too complex");
  const std::string nested = std::string(250, '(') + "a" + std::string(250, ')');
  EXPECT_EQ(check_exclude_pattern(nested), nullopt);
}

TEST(check_archive_name_template, table) {
  const check_case cases[] = {
      {"{schedule}-%Y-%m-%dT%H-%M-%S", nullopt},
      {"%F_%j_%a_%b_%e_%y", nullopt},
      {"backup-100%%", nullopt},
      {"{schedule}", nullopt},
      {"%T",
       "\"%T\" is not supported: it writes ':', which tar and Windows file systems handle badly; "
       "use %H-%M-%S"},
      {"%Q", "unsupported conversion \"%Q\"; use %Y %m %d %H %M %S %y %j %a %b %e %F or %%"},
      {"%D", "unsupported conversion \"%D\"; use %Y %m %d %H %M %S %y %j %a %b %e %F or %%"},
      {"%Ey", "unsupported conversion \"%E\"; use %Y %m %d %H %M %S %y %j %a %b %e %F or %%"},
      {"a%", "ends with a lone \"%\"; write %% for a percent sign"},
      {"{name}-%F", "unknown placeholder \"{name}\"; only {schedule} is supported"},
      {"{schedule", "unterminated placeholder \"{schedule\""},
      {"a}", "unmatched \"}\""},
      {"%H:%M",
       "\":\" is not allowed: tar reads host:file as a remote archive and Windows cannot store "
       "it"},
      {"a\nb", "must not contain control characters"},
      {"", "must not expand to an empty name"},
      {".", "must not expand to \".\""},
      {"..", "must not expand to \"..\""},
      {"a/b", "must not contain \"/\": it names a single file"},
      {std::string(200, 'x'), nullopt},
      {std::string(201, 'x'), "expands to 201 bytes; at most 200 are allowed"},
      // {schedule} counts with the schedule's name: 191 + 10 characters.
      {std::string(191, 'x') + "{schedule}", "expands to 201 bytes; at most 200 are allowed"},
      // Each conversion counts with its expanded width: %F is 10 bytes.
      {std::string(191, 'x') + "%F", "expands to 201 bytes; at most 200 are allowed"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(check_archive_name_template(c.input, "nightly-db"), c.expected) << c.input;
  }
}

TEST(check_absolute_path, table) {
  const check_case cases[] = {
      {"/archive", nullopt},
      {"/", nullopt},
      {"", "must not be empty"},
      {"archive", "\"archive\" is not an absolute path"},
      {"./archive", "\"./archive\" is not an absolute path"},
      {std::string("/a\0b", 4), "must not contain a NUL character"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(check_absolute_path(c.input), c.expected) << c.input;
  }
}

TEST(check_compression_level, table) {
  EXPECT_EQ(check_compression_level(compression_kind::gzip, 1), nullopt);
  EXPECT_EQ(check_compression_level(compression_kind::gzip, 9), nullopt);
  EXPECT_EQ(check_compression_level(compression_kind::gzip, 10),
            "gzip level must be between 1 and 9, got 10");
  EXPECT_EQ(check_compression_level(compression_kind::gzip, 0),
            "gzip level must be between 1 and 9, got 0");
  EXPECT_EQ(check_compression_level(compression_kind::zstd, 19), nullopt);
  EXPECT_EQ(check_compression_level(compression_kind::zstd, 20),
            "zstd level must be between 1 and 19, got 20");
  EXPECT_EQ(check_compression_level(compression_kind::none, 1), "compression none takes no level");
}

TEST(quote, escapes_and_shortens) {
  EXPECT_EQ(quote("plain"), "\"plain\"");
  EXPECT_EQ(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quote("a\nb\tc\x01"), "\"a\\nb\\tc\\x01\"");
  EXPECT_EQ(quote(std::string(70, 'x')), "\"" + std::string(64, 'x') + "...\"");
  // A two-byte character straddling the cut is dropped whole.
  EXPECT_EQ(quote(std::string(63, 'x') + "\xc3\xa9" + "yyy"),
            "\"" + std::string(63, 'x') + "...\"");
}

TEST(expand_archive_name, every_conversion) {
  using namespace std::chrono;
  // Sunday 2024-03-03 04:05:06, day 63 of a leap year.
  const local_seconds when =
      local_days{year{2024} / March / 3} + hours{4} + minutes{5} + seconds{6};
  EXPECT_EQ(expand_archive_name("{schedule}-%Y-%m-%dT%H-%M-%S", "nightly", when),
            "nightly-2024-03-03T04-05-06");
  EXPECT_EQ(expand_archive_name("%y|%j|%a|%b|%e|%F|%%", "s", when),
            "24|063|Sun|Mar| 3|2024-03-03|%");
  EXPECT_EQ(expand_archive_name("%Y%m%d", "s", local_days{year{1999} / December / 31}), "19991231");
  // Unsupported sequences are copied as written.
  EXPECT_EQ(expand_archive_name("%Q{x}%", "s", when), "%Q{x}%");
}

TEST(objects, kind_and_extension_names) {
  EXPECT_EQ(kind_of(object{backup_schedule{}}), "BackupSchedule");
  EXPECT_EQ(kind_of(object{backup{}}), "Backup");
  EXPECT_EQ(kind_of(object{restore{}}), "Restore");
  restore r;
  r.metadata.name = "r";
  EXPECT_EQ(metadata_of(object{r}).name, "r");
  EXPECT_EQ(destination_kind(destination{local_destination{"/a"}}), "local");
}

}  // namespace
}  // namespace lifeboat::api
