#include "api/decode.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <variant>
#include <vector>

namespace lifeboat::api {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using testing::ElementsAre;
using testing::HasSubstr;

// Every error of every document, formatted as the CLI prints them (without
// the file name), so that a test states path, position and message at once.
std::vector<std::string> formatted_errors(const decode_result& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors()) {
    out.push_back(format_error(e));
  }
  return out;
}

std::string dump(const decode_result& r) {
  std::string out;
  for (const auto& e : formatted_errors(r)) {
    out += e + "\n";
  }
  return out;
}

template <class T>
T decode_one(const std::string& yaml) {
  const decode_result r = decode(yaml);
  EXPECT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.documents.size(), 1U);
  if (r.documents.size() != 1 || !r.documents[0].value ||
      !std::holds_alternative<T>(*r.documents[0].value)) {
    ADD_FAILURE() << "no " << T::kind << " in:\n" << yaml;
    return T{};
  }
  return std::get<T>(*r.documents[0].value);
}

// ---------------------------------------------------------------------------
// Valid objects.

TEST(decode, backup_schedule_minimal_gets_every_default) {
  const auto s = decode_one<backup_schedule>(R"(apiVersion: lifeboat/v1
kind: BackupSchedule
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  volumes: [app_db]
  destinations: [{local: {path: /archive}}]
)");
  EXPECT_EQ(s.metadata.name, "nightly");
  EXPECT_TRUE(s.metadata.labels.empty());
  EXPECT_EQ(s.spec.schedule, "0 3 * * *");
  EXPECT_EQ(s.spec.timezone, "UTC");
  EXPECT_FALSE(s.spec.suspend);
  EXPECT_THAT(s.spec.volumes, ElementsAre("app_db"));
  EXPECT_FALSE(s.spec.volume_selector);
  EXPECT_EQ(s.spec.stop_during_backup, "true");
  EXPECT_EQ(s.spec.timeouts.scale_down, minutes{5});
  EXPECT_EQ(s.spec.timeouts.scale_up, minutes{5});
  EXPECT_EQ(s.spec.archive.name, "{schedule}-%Y-%m-%dT%H-%M-%S");
  EXPECT_EQ(s.spec.archive.compression, compression_kind::gzip);
  EXPECT_FALSE(s.spec.archive.level);
  EXPECT_FALSE(s.spec.archive.exclude);
  ASSERT_EQ(s.spec.destinations.size(), 1U);
  EXPECT_EQ(std::get<local_destination>(s.spec.destinations[0]).path, "/archive");
  EXPECT_FALSE(s.spec.retention);
  EXPECT_EQ(s.spec.history_limits.succeeded, 3);
  EXPECT_EQ(s.spec.history_limits.failed, 3);
}

TEST(decode, backup_schedule_with_every_field) {
  const auto s = decode_one<backup_schedule>(R"(apiVersion: lifeboat/v1
kind: BackupSchedule
metadata:
  name: nightly-db
  labels: {team: db, com.example/tier: "1"}
spec:
  schedule: "0 3 * * *"
  timezone: Europe/Berlin
  suspend: true
  volumeSelector:
    matchLabels: {backup: nightly}
  stopDuringBackup: db
  timeouts: {scaleDown: 90s, scaleUp: 1h30m}
  archive:
    name: "{schedule}-%F"
    compression: zstd
    level: 19
    exclude: '\.cache/'
  destinations:
    - local: {path: /archive}
    - local:
        path: /mnt/offsite
  retention: {days: 7, keepLast: 0}
  historyLimits: {succeeded: 10, failed: 0}
)");
  backup_schedule expected;
  expected.metadata.name = "nightly-db";
  expected.metadata.labels = {{"team", "db"}, {"com.example/tier", "1"}};
  expected.spec.schedule = "0 3 * * *";
  expected.spec.timezone = "Europe/Berlin";
  expected.spec.suspend = true;
  expected.spec.volume_selector = label_selector{{{"backup", "nightly"}}};
  expected.spec.stop_during_backup = "db";
  expected.spec.timeouts = {seconds{90}, seconds{5400}};
  expected.spec.archive = {"{schedule}-%F", compression_kind::zstd, 19, R"(\.cache/)", {}};
  expected.spec.destinations = {local_destination{"/archive"}, local_destination{"/mnt/offsite"}};
  expected.spec.retention.emplace();
  expected.spec.retention->days = 7;
  expected.spec.retention->keep_last = 0;
  expected.spec.history_limits = {10, 0};
  EXPECT_EQ(s, expected) << encode_yaml(s);
}

TEST(decode, backup) {
  const auto b = decode_one<backup>(R"(apiVersion: lifeboat/v1
kind: Backup
metadata: {name: nightly-db-20240101030000, labels: {by: hand}}
spec: {scheduleRef: nightly-db}
)");
  EXPECT_EQ(b.metadata.name, "nightly-db-20240101030000");
  EXPECT_EQ(b.metadata.labels.at("by"), "hand");
  EXPECT_EQ(b.spec.schedule_ref, "nightly-db");
}

TEST(decode, restore_with_defaults_and_every_mapping_form) {
  const auto r = decode_one<restore>(R"(apiVersion: lifeboat/v1
kind: Restore
metadata: {name: restore-db}
spec:
  backupRef: nightly-db-20240101030000
  volumes:
    - app_db
    - app_uploads=uploads_copy
    - {from: app_logs, to: logs_old}
    - from: app_cache
)");
  EXPECT_EQ(r.spec.backup_ref, "nightly-db-20240101030000");
  EXPECT_FALSE(r.spec.archive);
  EXPECT_THAT(r.spec.volumes, ElementsAre(volume_mapping{"app_db", "app_db"},
                                          volume_mapping{"app_uploads", "uploads_copy"},
                                          volume_mapping{"app_logs", "logs_old"},
                                          volume_mapping{"app_cache", "app_cache"}));
  EXPECT_FALSE(r.spec.wipe);
  EXPECT_FALSE(r.spec.create_volume);        // a missing target fails the restore
  EXPECT_EQ(r.spec.stop_during_backup, "");  // only the workloads mounting the targets
  EXPECT_EQ(r.spec.timeouts, timeouts_spec{});
}

TEST(decode, restore_from_an_archive_path) {
  const auto r = decode_one<restore>(R"(apiVersion: lifeboat/v1
kind: Restore
metadata: {name: from-file}
spec:
  archive: /archive/nightly-db-2024-01-01T03-00-00.tar.gz
  volumes: [app_db]
  wipe: true
  createVolume: true
  stopDuringBackup: db
  timeouts: {scaleUp: 10m}
)");
  EXPECT_FALSE(r.spec.backup_ref);
  EXPECT_TRUE(r.spec.create_volume);
  EXPECT_EQ(r.spec.archive, "/archive/nightly-db-2024-01-01T03-00-00.tar.gz");
  EXPECT_TRUE(r.spec.wipe);
  EXPECT_EQ(r.spec.stop_during_backup, "db");
  EXPECT_EQ(r.spec.timeouts.scale_down, minutes{5});
  EXPECT_EQ(r.spec.timeouts.scale_up, minutes{10});
}

TEST(decode, restore_from_an_archive_on_a_destination) {
  const auto r = decode_one<restore>(R"(apiVersion: lifeboat/v1
kind: Restore
metadata: {name: from-s3}
spec:
  source:
    destination:
      s3: {bucket: backups, prefix: db/, accessKeyIdFile: /run/secrets/k,
           secretAccessKeyFile: /run/secrets/s}
    name: nightly-db-2024-01-01T03-00-00.tar.gz
  volumes: [app_db]
)");
  EXPECT_FALSE(r.spec.backup_ref);
  EXPECT_FALSE(r.spec.archive);
  ASSERT_TRUE(r.spec.source);
  EXPECT_EQ(r.spec.source->name, "nightly-db-2024-01-01T03-00-00.tar.gz");
  const auto* s3 = std::get_if<s3_destination>(&r.spec.source->destination);
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s3->bucket, "backups");
  EXPECT_EQ(s3->prefix, "db/");
  EXPECT_EQ(s3->secret_access_key_file, "/run/secrets/s");
}

TEST(decode, restore_from_a_restic_snapshot_reads_back_from_its_yaml) {
  const auto r = decode_one<restore>(R"(apiVersion: lifeboat/v1
kind: Restore
metadata: {name: from-restic}
spec:
  restic:
    repository: /archive/restic-db
    passwordFile: /run/secrets/restic
    snapshot: 4f2a9c1e
    tags: [lifeboat, schedule=db]
  volumes:
    - app_db
    - /srv/data=app_uploads
    - {from: /var/lib/mysql, to: app_mysql}
  wipe: true
)");
  ASSERT_TRUE(r.spec.restic);
  EXPECT_EQ(
      *r.spec.restic,
      (restic_source{
          "/archive/restic-db", "/run/secrets/restic", "4f2a9c1e", {"lifeboat", "schedule=db"}}));
  ASSERT_EQ(r.spec.volumes.size(), 3U);
  EXPECT_EQ(r.spec.volumes[0], (volume_mapping{"app_db", "app_db"}));
  EXPECT_EQ(r.spec.volumes[1], (volume_mapping{"/srv/data", "app_uploads"}));
  EXPECT_EQ(r.spec.volumes[2], (volume_mapping{"/var/lib/mysql", "app_mysql"}));
  // The controller hands a Restore to its agents as YAML: it must read back equal.
  const auto again = decode_one<restore>(encode_yaml(r));
  EXPECT_EQ(again, r);

  const auto latest = decode_one<restore>(
      "apiVersion: lifeboat/v1\nkind: Restore\nmetadata: {name: l}\nspec:\n  restic: "
      "{repository: /r, passwordFile: /p}\n  volumes: [app_db]\n");
  ASSERT_TRUE(latest.spec.restic);
  EXPECT_EQ(latest.spec.restic->snapshot, "latest");
  EXPECT_TRUE(latest.spec.restic->tags.empty());
}

TEST(decode_destination, reads_one_destination_as_a_schedule_lists_it) {
  const auto ok = decode_destination("local: {path: /archive/db}\n");
  ASSERT_TRUE(ok.value) << (ok.errors.empty() ? "" : format_error(ok.errors.front()));
  EXPECT_EQ(*ok.value, destination(local_destination{"/archive/db"}));

  const auto bad = decode_destination("s3: {bucket: b, secretAccessKey: x}\n");
  EXPECT_FALSE(bad.value);
  std::vector<std::string> errors;
  for (const auto& e : bad.errors) {
    errors.push_back(format_error(e));
  }
  EXPECT_THAT(errors, ::testing::Contains(::testing::HasSubstr(
                          "1:34: s3.secretAccessKey: secrets are never written into an object")));
  EXPECT_THAT(errors, ::testing::Contains("1:5: s3.accessKeyIdFile: required field is missing"));

  EXPECT_EQ(format_error(decode_destination("").errors.at(0)),
            "1:1: no destination: expected one like s3: {bucket: …}");
  EXPECT_EQ(
      format_error(decode_destination("local: {path: /a}\n---\nlocal: {path: /b}\n").errors.at(0)),
      "2:1: expected one document holding one destination");
  EXPECT_FALSE(decode_destination("local: [").value);
}

TEST(decode, plain_scalars_are_strings_where_strings_are_expected) {
  const auto s = decode_one<backup_schedule>(R"(apiVersion: lifeboat/v1
kind: BackupSchedule
metadata: {name: "123", labels: {n: 1.50, b: yes}}
spec:
  schedule: "@daily"
  volumes: [app_db]
  stopDuringBackup: true
  destinations: [{local: {path: /a}}]
  timezone: ~
)");
  EXPECT_EQ(s.metadata.name, "123");
  EXPECT_EQ(s.metadata.labels.at("n"), "1.50");  // as written, not reformatted
  EXPECT_EQ(s.metadata.labels.at("b"), "yes");
  EXPECT_EQ(s.spec.stop_during_backup, "true");
  EXPECT_EQ(s.spec.timezone, "UTC");  // an explicit null is an absent field
}

TEST(decode, multiple_documents_keep_order_index_and_line) {
  const decode_result r = decode(R"(---
apiVersion: lifeboat/v1
kind: Backup
metadata: {name: one}
spec: {scheduleRef: nightly}
---
# an empty document is skipped
---
apiVersion: lifeboat/v1
kind: Backup
metadata: {name: Two}
spec: {scheduleRef: nightly}
---
apiVersion: lifeboat/v1
kind: Restore
metadata: {name: three}
spec: {backupRef: one, volumes: [app_db]}
...
)");
  ASSERT_EQ(r.documents.size(), 3U);
  EXPECT_EQ(r.documents[0].index, 0);
  EXPECT_EQ(r.documents[0].line, 1);
  EXPECT_EQ(r.documents[1].index, 2);
  EXPECT_EQ(r.documents[1].line, 8);
  EXPECT_EQ(r.documents[1].kind, "Backup");
  EXPECT_EQ(r.documents[1].name, "Two");
  EXPECT_FALSE(r.documents[1].value);
  EXPECT_EQ(r.documents[2].index, 3);
  EXPECT_EQ(r.documents[2].line, 13);
  EXPECT_FALSE(r.ok());
  const auto objects = r.objects();
  ASSERT_EQ(objects.size(), 2U);
  EXPECT_EQ(metadata_of(objects[0]).name, "one");
  EXPECT_EQ(metadata_of(objects[1]).name, "three");
  EXPECT_THAT(formatted_errors(r),
              ElementsAre("11:18: metadata.name: \"Two\" is not a valid name: use lowercase "
                          "letters, digits and '-', and start and end with a letter or digit"));
}

TEST(decode, empty_text_has_no_documents) {
  for (const char* text : {"", "\n", "# only a comment\n", "---\n", "---\n...\n---\n"}) {
    const decode_result r = decode(text);
    EXPECT_TRUE(r.documents.empty()) << text;
    EXPECT_TRUE(r.ok());
  }
}

// ---------------------------------------------------------------------------
// Errors: one table row per kind of error, with the exact formatted errors.

struct error_case {
  std::string name;
  std::string yaml;
  std::vector<std::string> expected;
};

// The first 7 lines of a valid schedule; a case appends spec fields from line 8.
std::string schedule_with(const std::string& more_spec) {
  return "apiVersion: lifeboat/v1\n"
         "kind: BackupSchedule\n"
         "metadata: {name: nightly}\n"
         "spec:\n"
         "  schedule: \"0 3 * * *\"\n"
         "  volumes: [app_db]\n"
         "  destinations: [{local: {path: /archive}}]\n" +
         more_spec;
}

// A valid restore whose spec ends at line 5; a case appends from line 6.
std::string restore_with(const std::string& spec) {
  return "apiVersion: lifeboat/v1\n"
         "kind: Restore\n"
         "metadata: {name: r}\n"
         "spec:\n" +
         spec;
}

// A valid restic schedule whose spec ends at line 9; a case appends from
// line 10, or replaces the destinations (line 9).
std::string restic_schedule_with(
    const std::string& more_spec,
    const std::string& destinations = "  destinations: [{local: {path: /archive/restic-db}}]\n",
    const std::string& restic = "  restic: {passwordFile: /run/secrets/restic}\n") {
  return "apiVersion: lifeboat/v1\n"
         "kind: BackupSchedule\n"
         "metadata: {name: nightly}\n"
         "spec:\n"
         "  schedule: \"0 3 * * *\"\n"
         "  volumes: [app_db]\n"
         "  format: restic\n" +
         restic + destinations + more_spec;
}

void run(const std::vector<error_case>& cases) {
  for (const auto& c : cases) {
    const decode_result r = decode(c.yaml);
    EXPECT_EQ(formatted_errors(r), c.expected) << c.name << "\n" << c.yaml;
    EXPECT_TRUE(r.objects().empty()) << c.name;
  }
}

TEST(decode, restic_schedule_with_every_keep_rule_round_trips) {
  const auto s = decode_one<backup_schedule>(restic_schedule_with(
      "  retention: {keepLast: 2, keepHourly: 24, keepDaily: 7, keepWeekly: 4, keepMonthly: 12, "
      "keepYearly: 3}\n"));
  EXPECT_EQ(s.spec.format, backup_format::restic);
  ASSERT_TRUE(s.spec.restic);
  EXPECT_EQ(s.spec.restic->password_file, "/run/secrets/restic");
  EXPECT_EQ(s.spec.restic->compression, restic_compression::automatic);
  retention_spec keep;
  keep.keep_last = 2;
  keep.keep_hourly = 24;
  keep.keep_daily = 7;
  keep.keep_weekly = 4;
  keep.keep_monthly = 12;
  keep.keep_yearly = 3;
  EXPECT_EQ(s.spec.retention, keep);
  EXPECT_EQ(s.spec.archive, archive_spec{});
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s) << encode_yaml(s);
}

TEST(decode, restic_compression_and_the_archive_format_by_name) {
  const auto s = decode_one<backup_schedule>(
      restic_schedule_with("", "  destinations: [{local: {path: /r}}]\n",
                           "  restic: {passwordFile: /run/secrets/r, compression: max}\n"));
  ASSERT_TRUE(s.spec.restic);
  EXPECT_EQ(s.spec.restic->compression, restic_compression::max);
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s) << encode_yaml(s);
  const auto a = decode_one<backup_schedule>(schedule_with("  format: archive\n"));
  EXPECT_EQ(a.spec.format, backup_format::archive);
  EXPECT_FALSE(a.spec.restic);
}

TEST(decode_errors, document_shape) {
  run({
      {"root is a list", "- a\n- b\n", {"1:1: expected a map, got a list"}},
      {"root is a scalar", "hello\n", {"1:1: expected a map, got \"hello\""}},
      {"bad apiVersion",
       "apiVersion: lifeboat/v2\nkind: Backup\nmetadata: {name: b}\nspec: {scheduleRef: s}\n",
       {"1:13: apiVersion: unsupported apiVersion \"lifeboat/v2\"; expected \"lifeboat/v1\""}},
      {"unknown kind",
       "apiVersion: lifeboat/v1\nkind: Backups\nmetadata: {name: b}\nspec: {scheduleRef: s}\n",
       {"2:7: kind: unknown kind \"Backups\"; expected BackupSchedule, Backup or Restore"}},
      {"missing top-level fields",
       "kind: Backup\n",
       {"1:1: apiVersion: required field is missing", "1:1: metadata: required field is missing",
        "1:1: spec: required field is missing"}},
      {"status is not decoded",
       "apiVersion: lifeboat/v1\nkind: Backup\nmetadata: {name: b}\nspec: {scheduleRef: s}\n"
       "status: {phase: Succeeded}\n",
       {"5:1: status: unknown field"}},
      {"metadata fields",
       "apiVersion: lifeboat/v1\nkind: Backup\nmetadata:\n  namespace: x\n  labels: [a]\n"
       "spec: {scheduleRef: s}\n",
       {"4:3: metadata.name: required field is missing", "4:3: metadata.namespace: unknown field",
        "5:11: metadata.labels: expected a map, got a list"}},
      {"label values are strings, keys not empty",
       "apiVersion: lifeboat/v1\nkind: Backup\nmetadata:\n  name: b\n"
       "  labels: {a: [x], b: , \"\": c, d.e/f: {}}\nspec: {scheduleRef: s}\n",
       {"5:15: metadata.labels.a: expected a string, got a list",
        "5:23: metadata.labels.b: expected a string, got null",
        "5:25: metadata.labels[\"\"]: keys must not be empty",
        "5:39: metadata.labels[\"d.e/f\"]: expected a string, got a map"}},
      {"schedule name leaves room for backup names",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: " + std::string(49, 'a') +
           "}\nspec:\n  schedule: \"0 3 * * *\"\n  volumes: [app_db]\n"
           "  destinations: [{local: {path: /archive}}]\n",
       {"3:18: metadata.name: must be at most 48 characters, got 49"}},
  });
}

TEST(decode_errors, syntax) {
  run({
      {"bad indentation", "a: b\n  c: d\n", {"2:4: illegal map value"}},
      {"unclosed flow sequence", "a: [1, 2\n", {"2:1: end of sequence flow not found"}},
      {"undefined alias", "a: *nope\n", {"1:4: the referenced anchor is not defined"}},
      // yaml-cpp 0.7 hands out empty documents at a leading ',' forever
      // (found by the fuzzer); the decoder detects it and stops.
      {"leading comma", ",a: b\n", {"1:1: unexpected \",\""}},
  });
}

TEST(decode_errors, syntax_error_keeps_the_documents_before_it) {
  const decode_result r = decode(
      "apiVersion: lifeboat/v1\nkind: Backup\nmetadata: {name: b}\nspec: {scheduleRef: s}\n"
      "---\n"
      "a: [\n");
  ASSERT_EQ(r.documents.size(), 2U);
  EXPECT_TRUE(r.documents[0].value);
  EXPECT_EQ(r.documents[1].index, 1);
  EXPECT_THAT(formatted_errors(r), ElementsAre("7:1: end of sequence flow not found"));
}

TEST(decode_errors, fields_and_types) {
  run({
      {"unknown field with a suggestion",
       schedule_with("  timeZone: UTC\n"),
       {"8:3: spec.timeZone: unknown field; did you mean \"timezone\"?"}},
      {"unknown field without a suggestion",
       schedule_with("  colour: blue\n"),
       {"8:3: spec.colour: unknown field"}},
      {"duplicate field",
       schedule_with("  suspend: true\n  suspend: false\n"),
       {"9:3: spec.suspend: duplicate field"}},
      {"non-string field name",
       schedule_with("  [a]: b\n"),
       {"8:3: spec: field names must be strings, got a list"}},
      {"string where a map is expected",
       schedule_with("  archive: gzip\n"),
       {"8:12: spec.archive: expected a map, got \"gzip\""}},
      {"map where a list is expected",
       schedule_with("  retention: {days: 1}\n  historyLimits: [1]\n"),
       {"9:18: spec.historyLimits: expected a map, got a list"}},
      {"list where a string is expected",
       schedule_with("  timezone: [UTC]\n"),
       {"8:13: spec.timezone: expected a string, got a list"}},
      {"null list item",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
       "  schedule: \"0 3 * * *\"\n  volumes: [app_db, ~]\n"
       "  destinations: [{local: {path: /archive}}]\n",
       {"6:21: spec.volumes[1]: expected a string, got null"}},
      {"yes is not a boolean",
       schedule_with("  suspend: yes\n"),
       {"8:12: spec.suspend: expected true or false, got \"yes\""}},
      {"True is not a boolean",
       schedule_with("  suspend: True\n"),
       {"8:12: spec.suspend: expected true or false, got \"True\""}},
      {"a quoted boolean is a string",
       schedule_with("  suspend: \"true\"\n"),
       {"8:12: spec.suspend: expected true or false, got the string \"true\""}},
      {"an integer that is not one",
       schedule_with("  historyLimits: {succeeded: 1.5, failed: 0x10}\n"),
       {"8:30: spec.historyLimits.succeeded: expected an integer, got \"1.5\"",
        "8:43: spec.historyLimits.failed: expected an integer, got \"0x10\""}},
      {"a quoted integer is a string",
       schedule_with("  historyLimits: {succeeded: \"3\"}\n"),
       {"8:30: spec.historyLimits.succeeded: expected an integer, got the string \"3\""}},
      {"integers out of range",
       schedule_with("  historyLimits: {succeeded: -1, failed: 99999999999999999999}\n"),
       {"8:30: spec.historyLimits.succeeded: must not be negative, got -1",
        "8:42: spec.historyLimits.failed: must be between 0 and 2147483647, got "
        "99999999999999999999"}},
      {"bad enum value",
       schedule_with("  archive: {compression: bzip2}\n"),
       {"8:26: spec.archive.compression: must be one of gzip, zstd, none; got \"bzip2\""}},
      {"invalid UTF-8",
       schedule_with("  stopDuringBackup: \"a\xff\"\n"),
       {"8:21: spec.stopDuringBackup: must be valid UTF-8"}},
      {"NUL character",
       schedule_with("  stopDuringBackup: \"a\\0b\"\n"),
       {"8:21: spec.stopDuringBackup: must not contain a NUL character"}},
      {"empty group",
       schedule_with("  stopDuringBackup: \"\"\n"),
       {"8:21: spec.stopDuringBackup: must not be empty"}},
  });
}

TEST(decode_errors, missing_required_fields_point_at_the_parent_map) {
  run({
      {"schedule",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
       "  volumes: [app_db]\n  destinations: [{local: {path: /archive}}]\n",
       {"5:3: spec.schedule: required field is missing"}},
      {"null counts as missing",
       "apiVersion: lifeboat/v1\nkind: Backup\nmetadata:\n  name:\nspec: {scheduleRef: s}\n",
       {"4:3: metadata.name: required field is missing"}},
      {"destinations",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
       "  schedule: \"0 3 * * *\"\n  volumes: [app_db]\n",
       {"5:3: spec.destinations: required field is missing"}},
      {"destination path",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
       "  schedule: \"0 3 * * *\"\n  volumes: [app_db]\n  destinations:\n    - local: {}\n",
       {"8:14: spec.destinations[0].local.path: required field is missing"}},
      {"scheduleRef",
       "apiVersion: lifeboat/v1\nkind: Backup\nmetadata: {name: b}\nspec: {}\n",
       {"4:7: spec.scheduleRef: required field is missing"}},
      {"matchLabels",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
       "  schedule: \"0 3 * * *\"\n  volumeSelector: {}\n"
       "  destinations: [{local: {path: /archive}}]\n",
       {"6:19: spec.volumeSelector.matchLabels: required field is missing"}},
  });
}

TEST(decode_errors, schedule_validation) {
  run({
      {"unknown time zone",
       schedule_with("  timezone: Europe/Berln\n"),
       {"8:13: spec.timezone: unknown time zone \"Europe/Berln\" (not in the IANA time zone "
        "database)"}},
      {"bad duration",
       schedule_with("  timeouts: {scaleDown: 5x, scaleUp: 0s}\n"),
       {"8:25: spec.timeouts.scaleDown: invalid duration \"5x\": write digits with units h, m "
        "and s in that order, e.g. 90s, 5m, 1h30m",
        "8:38: spec.timeouts.scaleUp: invalid duration \"0s\": write digits with units h, m and "
        "s in that order, e.g. 90s, 5m, 1h30m"}},
      {"bad regex",
       schedule_with("  archive: {exclude: '(a'}\n"),
       {"8:22: spec.archive.exclude: invalid regular expression \"(a\": unbalanced ( ), or *, + "
        "or ? with nothing to repeat"}},
      {"bad archive name template",
       schedule_with("  archive: {name: \"{schedule}-%T\"}\n"),
       {"8:19: spec.archive.name: \"%T\" is not supported: it writes ':', which tar and Windows "
        "file systems handle badly; use %H-%M-%S"}},
      {"unknown placeholder",
       schedule_with("  archive: {name: \"{name}-%F\"}\n"),
       {"8:19: spec.archive.name: unknown placeholder \"{name}\"; only {schedule} is "
        "supported"}},
      {"level out of range",
       schedule_with("  archive: {compression: gzip, level: 10}\n"),
       {"8:39: spec.archive.level: gzip level must be between 1 and 9, got 10"}},
      {"level without compression",
       schedule_with("  archive: {compression: none, level: 1}\n"),
       {"8:39: spec.archive.level: compression none takes no level"}},
      {"restic fields without format restic",
       schedule_with("  restic: {passwordFile: /run/secrets/r}\n"),
       {"8:11: spec.restic: only with format: restic"}},
      {"format restic without its fields",
       schedule_with("  format: restic\n"),
       {"5:3: spec.restic: required with format: restic (at least passwordFile: the repository's "
        "password)"}},
      {"unknown format",
       schedule_with("  format: borg\n"),
       {"8:11: spec.format: must be one of archive, restic; got \"borg\""}},
      {"archive fields with format restic",
       restic_schedule_with("  archive: {compression: zstd}\n"),
       {"10:12: spec.archive: not with format: restic (the repository compresses and encrypts; see "
        "spec.restic)"}},
      {"restic into two destinations",
       restic_schedule_with("", "  destinations: [{local: {path: /a}}, {local: {path: /b}}]\n"),
       {"9:39: spec.destinations[1]: format: restic writes one repository: give exactly one "
        "destination"}},
      {"restic into a bucket",
       restic_schedule_with("",
                            "  destinations: [{s3: {bucket: backups, accessKeyIdFile: /k, "
                            "secretAccessKeyFile: /s}}]\n"),
       {"9:18: spec.destinations[0]: format: restic needs a local destination (the repository's "
        "folder); s3 holds archives only"}},
      {"unknown restic compression",
       restic_schedule_with("", "  destinations: [{local: {path: /r}}]\n",
                            "  restic: {passwordFile: /run/secrets/r, compression: fast}\n"),
       {"8:55: spec.restic.compression: must be one of off, auto, max; got \"fast\""}},
      {"inline restic password",
       schedule_with("  format: restic\n  restic: {password: hunter2}\n"),
       {"9:11: spec.restic.passwordFile: required field is missing",
        "9:22: spec.restic.password: secrets are never written into an object: put it in a file (a "
        "Swarm secret under /run/secrets) and name that file in passwordFile"}},
      {"relative password file",
       schedule_with("  format: restic\n  restic: {passwordFile: secret}\n"),
       {"9:26: spec.restic.passwordFile: \"secret\" is not an absolute path"}},
      {"days for restic",
       restic_schedule_with("  retention: {days: 7}\n"),
       {"10:21: spec.retention.days: not with format: restic: use keepLast, keepHourly, keepDaily, "
        "keepWeekly, keepMonthly or keepYearly"}},
      {"empty restic retention",
       restic_schedule_with("  retention: {}\n"),
       {"10:14: spec.retention: set at least one of keepLast, keepHourly, keepDaily, keepWeekly, "
        "keepMonthly or keepYearly"}},
      {"empty retention",
       schedule_with("  retention: {}\n"),
       {"8:14: spec.retention: set at least one of days, keepLast, keepHourly, keepDaily, "
        "keepWeekly, keepMonthly or keepYearly"}},
      {"negative retention",
       schedule_with("  retention: {days: -1}\n"),
       {"8:21: spec.retention.days: must not be negative, got -1"}},
      {"volumes and selector",
       schedule_with("  volumeSelector: {matchLabels: {a: b}}\n"),
       {"8:19: spec.volumeSelector: volumes and volumeSelector are mutually exclusive"}},
      {"neither volumes nor selector",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
       "  schedule: \"0 3 * * *\"\n  destinations: [{local: {path: /archive}}]\n",
       {"5:3: spec: one of volumes or volumeSelector is required"}},
      {"empty selector",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
       "  schedule: \"0 3 * * *\"\n  volumeSelector: {matchLabels: {}}\n"
       "  destinations: [{local: {path: /archive}}]\n",
       {"6:33: spec.volumeSelector.matchLabels: must not be empty"}},
      {"volume names",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
       "  schedule: \"0 3 * * *\"\n  volumes: [a, app_db, app_db]\n"
       "  destinations: [{local: {path: /archive}}]\n",
       {"6:13: spec.volumes[0]: \"a\" is not a valid volume name: use at least 2 characters "
        "from [a-zA-Z0-9_.-], starting with a letter or digit",
        "6:24: spec.volumes[2]: duplicate volume \"app_db\""}},
      {"empty volume list",
       "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
       "  schedule: \"0 3 * * *\"\n  volumes: []\n"
       "  destinations: [{local: {path: /archive}}]\n",
       {"6:12: spec.volumes: must not be empty"}},
  });
}

TEST(decode_errors, invalid_cron_expression) {
  // The cron grammar belongs to api/cron.cpp; here only the plumbing is
  // checked: path, position and a message that names the field.
  const decode_result r = decode(
      "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
      "  schedule: \"0 25 * * *\"\n  volumes: [app_db]\n"
      "  destinations: [{local: {path: /archive}}]\n");
  const auto errors = r.errors();
  ASSERT_EQ(errors.size(), 1U) << dump(r);
  EXPECT_EQ(errors[0].path, "spec.schedule");
  EXPECT_EQ(errors[0].line, 5);
  EXPECT_EQ(errors[0].column, 13);
  EXPECT_THAT(errors[0].message, testing::StartsWith("invalid schedule \"0 25 * * *\": "));
  EXPECT_THAT(errors[0].message, HasSubstr("hour"));
}

TEST(decode_errors, destinations) {
  const std::string head =
      "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
      "  schedule: \"0 3 * * *\"\n  volumes: [app_db]\n";
  run({
      {"empty list", head + "  destinations: []\n", {"7:17: spec.destinations: must not be empty"}},
      {"unknown kind",
       head + "  destinations:\n    - ftp: {host: b}\n",
       {"8:7: spec.destinations[0].ftp: unknown destination kind \"ftp\"; expected local, s3, "
        "webdav, sftp"}},
      {"two kinds in one item",
       head + "  destinations:\n    - local: {path: /a}\n      ftp: {}\n",
       {"8:7: spec.destinations[0]: expected exactly one destination kind (local, s3, webdav, "
        "sftp), got 2",
        "9:7: spec.destinations[0].ftp: unknown destination kind \"ftp\"; expected local, s3, "
        "webdav, sftp"}},
      {"no kind",
       head + "  destinations: [{}]\n",
       {"7:18: spec.destinations[0]: expected exactly one destination kind (local, s3, webdav, "
        "sftp), got 0"}},
      {"item is not a map",
       head + "  destinations: [/archive]\n",
       {"7:18: spec.destinations[0]: expected a map, got \"/archive\""}},
      {"relative path",
       head + "  destinations:\n    - local: {path: archive}\n",
       {"8:21: spec.destinations[0].local.path: \"archive\" is not an absolute path"}},
      {"unknown field in a destination",
       head + "  destinations:\n    - local: {path: /a, pth: /b}\n",
       {"8:25: spec.destinations[0].local.pth: unknown field; did you mean \"path\"?"}},
  });
}

// Issue 13: an S3 destination, every field, and its YAML round trip.
TEST(decode, s3_destination_with_every_field) {
  const auto s = decode_one<backup_schedule>(R"(apiVersion: lifeboat/v1
kind: BackupSchedule
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  volumes: [app_db]
  destinations:
    - s3:
        bucket: backups
        prefix: db/
        endpoint: https://s3.example.com/
        region: eu-west-1
        pathStyle: true
        storageClass: STANDARD_IA
        accessKeyIdFile: /run/secrets/s3_key_id
        secretAccessKeyFile: /run/secrets/s3_secret
        caFile: /run/secrets/ca.pem
    - s3: {bucket: other, accessKeyIdFile: /k, secretAccessKeyFile: /s, insecureSkipVerify: true}
)");
  ASSERT_EQ(s.spec.destinations.size(), 2U);
  s3_destination expected;
  expected.bucket = "backups";
  expected.prefix = "db/";
  expected.endpoint = "https://s3.example.com";
  expected.region = "eu-west-1";
  expected.path_style = true;
  expected.storage_class = "STANDARD_IA";
  expected.access_key_id_file = "/run/secrets/s3_key_id";
  expected.secret_access_key_file = "/run/secrets/s3_secret";
  expected.ca_file = "/run/secrets/ca.pem";
  EXPECT_EQ(std::get<s3_destination>(s.spec.destinations[0]), expected);
  const auto& minimal = std::get<s3_destination>(s.spec.destinations[1]);
  EXPECT_EQ(minimal.region, "us-east-1");
  EXPECT_FALSE(minimal.path_style);
  EXPECT_FALSE(minimal.endpoint);
  EXPECT_TRUE(minimal.insecure_skip_verify);
  EXPECT_EQ(destination_kind(s.spec.destinations[0]), "s3");
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s);
}

// Issue 13: secrets only from files; an inline secret names its field and
// says where it belongs.
TEST(decode_errors, s3_destination) {
  const std::string head =
      "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
      "  schedule: \"0 3 * * *\"\n  volumes: [app_db]\n  destinations:\n    - s3:\n";
  const std::string files = "        accessKeyIdFile: /k\n        secretAccessKeyFile: /s\n";
  run({
      {"inline secret",
       head + "        bucket: b1b\n" + files + "        secretAccessKey: hunter2\n",
       {"12:26: spec.destinations[0].s3.secretAccessKey: secrets are never written into an "
        "object: put it in a file (a Swarm secret under /run/secrets) and name that file in "
        "secretAccessKeyFile"}},
      {"inline key id",
       head + "        bucket: b1b\n" + files + "        accessKeyId: AKIA\n",
       {"12:22: spec.destinations[0].s3.accessKeyId: secrets are never written into an object: "
        "put it in a file (a Swarm secret under /run/secrets) and name that file in "
        "accessKeyIdFile"}},
      {"missing fields",
       head + "        prefix: x/\n",
       {"9:9: spec.destinations[0].s3.bucket: required field is missing",
        "9:9: spec.destinations[0].s3.accessKeyIdFile: required field is missing",
        "9:9: spec.destinations[0].s3.secretAccessKeyFile: required field is missing"}},
      {"bad values",
       head + "        bucket: B\n" + files +
           "        endpoint: s3.example.com\n        prefix: /db\n        region: \"\"\n"
           "        caFile: ca.pem\n",
       {"9:17: spec.destinations[0].s3.bucket: invalid bucket name \"B\": 3 to 63 lower-case "
        "letters, digits, '-' and '.', starting and ending with a letter or digit",
        "12:19: spec.destinations[0].s3.endpoint: must start with https:// or http://, got "
        "\"s3.example.com\"",
        "13:17: spec.destinations[0].s3.prefix: must not start with '/': keys are written as "
        "prefix + archive name",
        "14:17: spec.destinations[0].s3.region: invalid region \"\"",
        "15:17: spec.destinations[0].s3.caFile: \"ca.pem\" is not an absolute path"}},
      {"endpoint with a path",
       head + "        bucket: b1b\n" + files + "        endpoint: http://h:9000/x\n",
       {"12:19: spec.destinations[0].s3.endpoint: must be a scheme and a host (and port) only, "
        "like https://s3.example.com; got \"http://h:9000/x\""}},
  });
}

// Issue 13: a WebDAV destination; the password only from a file.
TEST(decode, webdav_destination) {
  const auto s = decode_one<backup_schedule>(R"(apiVersion: lifeboat/v1
kind: BackupSchedule
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  volumes: [app_db]
  destinations:
    - webdav: {url: https://dav.example.com/backups, username: backup, passwordFile: /run/secrets/dav}
)");
  ASSERT_EQ(s.spec.destinations.size(), 1U);
  const auto& dav = std::get<webdav_destination>(s.spec.destinations[0]);
  EXPECT_EQ(dav.url, "https://dav.example.com/backups/");
  EXPECT_EQ(dav.username, "backup");
  EXPECT_EQ(dav.password_file, "/run/secrets/dav");
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s);
}

TEST(decode_errors, webdav_destination) {
  const std::string head =
      "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
      "  schedule: \"0 3 * * *\"\n  volumes: [app_db]\n  destinations:\n    - webdav:\n";
  run({
      {"inline password",
       head + "        url: https://h/b/\n        username: u\n        passwordFile: /p\n"
              "        password: hunter2\n",
       {"12:19: spec.destinations[0].webdav.password: secrets are never written into an object: "
        "put it in a file (a Swarm secret under /run/secrets) and name that file in "
        "passwordFile"}},
      {"bad url and a lone username",
       head + "        url: ftp://h/b/\n        username: u\n",
       {"9:9: spec.destinations[0].webdav: set username and passwordFile together",
        "9:14: spec.destinations[0].webdav.url: must be an http:// or https:// URL of a folder, "
        "like https://dav.example.com/backups/; got \"ftp://h/b/\""}},
  });
}

// Issue 13: an SFTP destination, with a key or a password file; the host key
// always checked against knownHostsFile.
TEST(decode, sftp_destination) {
  const auto s = decode_one<backup_schedule>(R"(apiVersion: lifeboat/v1
kind: BackupSchedule
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  volumes: [app_db]
  destinations:
    - sftp: {host: backup.example.com, port: 2222, user: backup, path: /srv/backups/,
             identityFile: /run/secrets/ssh_key, knownHostsFile: /run/secrets/known_hosts}
    - sftp: {host: "::1", user: b, path: /, passwordFile: /run/secrets/pw,
             knownHostsFile: /k}
)");
  ASSERT_EQ(s.spec.destinations.size(), 2U);
  sftp_destination expected;
  expected.host = "backup.example.com";
  expected.port = 2222;
  expected.user = "backup";
  expected.path = "/srv/backups";
  expected.identity_file = "/run/secrets/ssh_key";
  expected.known_hosts_file = "/run/secrets/known_hosts";
  EXPECT_EQ(std::get<sftp_destination>(s.spec.destinations[0]), expected);
  const auto& with_password = std::get<sftp_destination>(s.spec.destinations[1]);
  EXPECT_EQ(with_password.port, 22);
  EXPECT_EQ(with_password.host, "::1");
  EXPECT_EQ(with_password.path, "/");
  EXPECT_FALSE(with_password.identity_file);
  EXPECT_EQ(with_password.password_file, "/run/secrets/pw");
  EXPECT_EQ(destination_kind(s.spec.destinations[0]), "sftp");
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s);
}

TEST(decode_errors, sftp_destination) {
  const std::string head =
      "apiVersion: lifeboat/v1\nkind: BackupSchedule\nmetadata: {name: n}\nspec:\n"
      "  schedule: \"0 3 * * *\"\n  volumes: [app_db]\n  destinations:\n    - sftp:\n";
  const std::string base = "        host: h\n        user: u\n        path: /b\n";
  const std::string known = "        knownHostsFile: /k\n";
  run({
      {"inline password",
       head + base + known + "        passwordFile: /p\n        password: hunter2\n",
       {"14:19: spec.destinations[0].sftp.password: secrets are never written into an object: "
        "put it in a file (a Swarm secret under /run/secrets) and name that file in "
        "passwordFile"}},
      {"inline password without passwordFile",
       head + base + known + "        password: hunter2\n",
       {"9:9: spec.destinations[0].sftp: set identityFile (a private key) or passwordFile",
        "13:19: spec.destinations[0].sftp.password: secrets are never written into an object: "
        "put it in a file (a Swarm secret under /run/secrets) and name that file in "
        "passwordFile"}},
      {"both identityFile and passwordFile",
       head + base + known + "        identityFile: /i\n        passwordFile: /p\n",
       {"9:9: spec.destinations[0].sftp: set identityFile or passwordFile, not both"}},
      {"no knownHostsFile: host keys are never skipped",
       head + base + "        identityFile: /i\n",
       {"9:9: spec.destinations[0].sftp.knownHostsFile: required field is missing: the server's "
        "host key is always verified (put its known_hosts line, from ssh-keyscan -p PORT HOST, "
        "in a file and name it here)"}},
      {"no way to turn host key checking off",
       head + base + known + "        identityFile: /i\n        insecureSkipVerify: true\n",
       {"14:9: spec.destinations[0].sftp.insecureSkipVerify: unknown field"}},
      {"missing fields",
       head + "        port: 22\n" + known + "        identityFile: /i\n",
       {"9:9: spec.destinations[0].sftp.host: required field is missing",
        "9:9: spec.destinations[0].sftp.user: required field is missing",
        "9:9: spec.destinations[0].sftp.path: required field is missing"}},
      {"bad values",
       head + "        host: \"h/x\"\n        port: 0\n        user: \"a:b\"\n"
              "        path: srv\n        identityFile: key\n        knownHostsFile: k\n",
       {"9:15: spec.destinations[0].sftp.host: invalid host \"h/x\"",
        "10:15: spec.destinations[0].sftp.port: must be between 1 and 65535, got 0",
        "11:15: spec.destinations[0].sftp.user: invalid user \"a:b\"",
        "12:15: spec.destinations[0].sftp.path: \"srv\" is not an absolute path",
        "13:23: spec.destinations[0].sftp.identityFile: \"key\" is not an absolute path",
        "14:25: spec.destinations[0].sftp.knownHostsFile: \"k\" is not an absolute path"}},
      {"port too large",
       head + base + known + "        identityFile: /i\n        port: 65536\n",
       {"14:15: spec.destinations[0].sftp.port: must be between 1 and 65535, got 65536"}},
  });
}

TEST(decode_errors, restore) {
  run({
      {"backupRef and archive",
       restore_with("  backupRef: b\n  archive: /a.tar\n  volumes: [app_db]\n"),
       {"6:12: spec.archive: backupRef, archive, source and restic are mutually exclusive: give "
        "one"}},
      {"archive and source",
       restore_with("  archive: /a.tar\n  source: {destination: {local: {path: /b}}, name: a.tar}\n"
                    "  volumes: [app_db]\n"),
       {"6:11: spec.source: backupRef, archive, source and restic are mutually exclusive: give "
        "one"}},
      {"neither backupRef nor archive nor source",
       restore_with("  volumes: [app_db]\n"),
       {"5:3: spec: one of backupRef, archive, source or restic is required"}},
      {"restic: relative paths, an inline password, a bad snapshot, a comma in a tag",
       restore_with("  restic: {repository: repo, passwordFile: pw, password: x, snapshot: "
                    "LATEST, tags: [\"a,b\"]}\n  volumes: [app_db]\n"),
       {"5:24: spec.restic.repository: \"repo\" is not an absolute path",
        "5:44: spec.restic.passwordFile: \"pw\" is not an absolute path",
        "5:58: spec.restic.password: secrets are never written into an object: put it in a "
        "file (a Swarm secret under /run/secrets) and name that file in passwordFile",
        "5:71: spec.restic.snapshot: expected latest or a snapshot ID (lower-case hex, as "
        "restic snapshots prints it), got \"LATEST\"",
        "5:86: spec.restic.tags[0]: a tag is not empty and has no ',' (restic splits tags at "
        "commas)"}},
      {"restic with archive; decryption with restic; a snapshot path without its target",
       restore_with("  archive: /a.tar\n  restic: {repository: /r, passwordFile: /p}\n"
                    "  decryption: {age: {identityFile: /k}}\n  volumes: [/srv/data, "
                    "/srv/x=app_db]\n"),
       {"6:11: spec.restic: backupRef, archive, source and restic are mutually exclusive: give "
        "one",
        "7:15: spec.decryption: not with restic: the repository's password "
        "(restic.passwordFile) decrypts it",
        "8:13: spec.volumes[0]: a path inside the snapshot needs the target volume: "
        "/srv/data=VOLUME, or {from: /srv/data, to: VOLUME}"}},
      {"a snapshot path without restic",
       restore_with("  archive: /a.tar\n  volumes: [{from: /srv/data, to: app_db}]\n"),
       {"6:20: spec.volumes[0].from: \"/srv/data\" is not a valid volume name: use at least 2 "
        "characters from [a-zA-Z0-9_.-], starting with a letter or digit"}},
      {"source named with a folder, destination of no kind",
       restore_with("  source: {destination: {ftp: {}}, name: db/a.tar}\n  volumes: [app_db]\n"),
       {"5:26: spec.source.destination.ftp: unknown destination kind \"ftp\"; expected local, "
        "s3, webdav, sftp",
        "5:42: spec.source.name: \"db/a.tar\" is not a file name: an archive is named as it is "
        "in its destination, without folders (a local destination's path or an S3 prefix holds "
        "those)"}},
      {"source without a name, an inline secret in its destination",
       restore_with(
           "  source:\n    destination:\n      webdav: {url: \"http://h/b/\", username: u, "
           "password: p}\n  volumes: [app_db]\n"),
       {"6:5: spec.source.name: required field is missing",
        "7:15: spec.source.destination.webdav: set username and passwordFile together",
        "7:59: spec.source.destination.webdav.password: secrets are never written into an "
        "object: put it in a file (a Swarm secret under /run/secrets) and name that file in "
        "passwordFile"}},
      {"relative archive",
       restore_with("  archive: a.tar\n  volumes: [app_db]\n"),
       {"5:12: spec.archive: \"a.tar\" is not an absolute path"}},
      {"bad backupRef",
       restore_with("  backupRef: B\n  volumes: [app_db]\n"),
       {"5:14: spec.backupRef: \"B\" is not a valid name: use lowercase letters, digits and '-', "
        "and start and end with a letter or digit"}},
      {"volumes missing",
       restore_with("  backupRef: b\n"),
       {"5:3: spec.volumes: required field is missing"}},
      {"short form with a bad target",
       restore_with("  backupRef: b\n  volumes: [\"app_db=x\", \"app_db=\"]\n"),
       {"6:13: spec.volumes[0]: \"x\" is not a valid volume name: use at least 2 characters "
        "from [a-zA-Z0-9_.-], starting with a letter or digit",
        "6:25: spec.volumes[1]: \"\" is not a valid volume name: use at least 2 characters from "
        "[a-zA-Z0-9_.-], starting with a letter or digit"}},
      {"long form",
       restore_with("  backupRef: b\n  volumes:\n    - {to: app_db, into: x}\n"),
       {"7:7: spec.volumes[0].from: required field is missing",
        "7:20: spec.volumes[0].into: unknown field"}},
      {"two mappings into one volume",
       restore_with("  backupRef: b\n  volumes: [app_db, \"other=app_db\"]\n"),
       {"6:21: spec.volumes[1]: volume \"app_db\" is the target of another mapping"}},
      {"item is a list",
       restore_with("  backupRef: b\n  volumes: [[app_db]]\n"),
       {"6:13: spec.volumes[0]: expected a string or a map, got a list"}},
      {"wipe is a boolean",
       restore_with("  backupRef: b\n  volumes: [app_db]\n  wipe: 1\n"),
       {"7:9: spec.wipe: expected true or false, got \"1\""}},
      {"createVolume is a boolean (issue 12 item 2)",
       restore_with("  backupRef: b\n  volumes: [app_db]\n  createVolume: \"yes\"\n"),
       {"7:17: spec.createVolume: expected true or false, got the string \"yes\""}},
      {"createVolume is not a list",
       restore_with("  backupRef: b\n  volumes: [app_db]\n  createVolume: [true]\n"),
       {"7:17: spec.createVolume: expected true or false, got a list"}},
  });
}

TEST(decode_errors, every_error_of_a_document_is_reported_in_text_order) {
  const decode_result r = decode(R"(apiVersion: lifeboat/v1
kind: BackupSchedule
metadata: {name: Nightly}
spec:
  schedule: "0 3 * * *"
  timezone: Mars/Olympus
  suspend: no
  volumes: [app_db]
  archive: {compression: lz4, exclude: "["}
  destinations:
    - ftp: {host: x}
  retention: {keepLast: many}
  extra: 1
)");
  EXPECT_THAT(
      formatted_errors(r),
      ElementsAre("3:18: metadata.name: \"Nightly\" is not a valid name: use lowercase letters, "
                  "digits and '-', and start and end with a letter or digit",
                  "6:13: spec.timezone: unknown time zone \"Mars/Olympus\" (not in the IANA "
                  "time zone database)",
                  "7:12: spec.suspend: expected true or false, got \"no\"",
                  "9:26: spec.archive.compression: must be one of gzip, zstd, none; got \"lz4\"",
                  "9:40: spec.archive.exclude: invalid regular expression \"[\": unbalanced [ ]",
                  "11:7: spec.destinations[0].ftp: unknown destination kind \"ftp\"; expected "
                  "local, s3, webdav, sftp",
                  "12:25: spec.retention.keepLast: expected an integer, got \"many\"",
                  "13:3: spec.extra: unknown field"));
  ASSERT_EQ(r.documents.size(), 1U);
  EXPECT_FALSE(r.documents[0].value);
  EXPECT_EQ(r.documents[0].kind, "BackupSchedule");
  EXPECT_EQ(r.documents[0].name, "Nightly");
}

TEST(decode_errors, aliases_and_cycles_are_walked_by_the_schema_only) {
  // `labels` aliases its own parent map: a cycle must neither hang nor crash.
  run({
      {"self-referencing map",
       "apiVersion: lifeboat/v1\nkind: Backup\nmetadata: &m {name: b, labels: *m}\n"
       "spec: {scheduleRef: s}\n",
       {"3:11: metadata.labels.labels: expected a string, got a map"}},
  });
  // Aliases of scalars are plain values.
  const auto b = decode_one<backup>(
      "apiVersion: lifeboat/v1\nkind: Backup\nmetadata: {name: &n b, labels: {a: *n}}\n"
      "spec: {scheduleRef: s}\n");
  EXPECT_EQ(b.metadata.labels.at("a"), "b");
}

TEST(format_error, leaves_out_unknown_parts) {
  EXPECT_EQ(format_error({"spec.x", 3, 7, "bad"}), "3:7: spec.x: bad");
  EXPECT_EQ(format_error({"", 3, 7, "bad"}), "3:7: bad");
  EXPECT_EQ(format_error({"spec.x", 0, 0, "bad"}), "spec.x: bad");
}

// ---------------------------------------------------------------------------
// Encoding.

TEST(encode_yaml, writes_every_default_and_reads_back) {
  const auto b = decode_one<backup>(
      "apiVersion: lifeboat/v1\nkind: Backup\nmetadata: {name: b}\nspec: {scheduleRef: s}\n");
  EXPECT_EQ(encode_yaml(b),
            "apiVersion: lifeboat/v1\n"
            "kind: Backup\n"
            "metadata:\n"
            "  name: b\n"
            "spec:\n"
            "  scheduleRef: s\n");
}

TEST(encode_yaml, round_trips_every_kind) {
  const std::vector<std::string> texts = {
      R"(apiVersion: lifeboat/v1
kind: BackupSchedule
metadata: {name: "123", labels: {"true": "null", n: "1.5", e: ""}}
spec:
  schedule: "0 3 * * *"
  timezone: Europe/Berlin
  volumeSelector: {matchLabels: {backup: "yes", "~": ~x}}
  stopDuringBackup: "on"
  archive: {name: "%F %%", compression: none, exclude: "^a: b'\"#"}
  destinations: [{local: {path: "/a b/#c"}}]
  retention: {keepLast: 2}
)",
      R"(apiVersion: lifeboat/v1
kind: Restore
metadata: {name: r}
spec:
  archive: "/x/\u00e9\t.tar"
  volumes: [a1, "b1=c1"]
  wipe: true
  createVolume: true
)",
      R"(apiVersion: lifeboat/v1
kind: Restore
metadata: {name: r}
spec:
  source:
    destination: {webdav: {url: "https://h/b/", username: u, passwordFile: /p}}
    name: "x y.tar.zst"
  volumes: [a1]
)",
  };
  for (const auto& text : texts) {
    const decode_result first = decode(text);
    ASSERT_TRUE(first.ok()) << dump(first) << text;
    const object o = first.objects().at(0);
    const std::string yaml = encode_yaml(o);
    const decode_result second = decode(yaml);
    ASSERT_TRUE(second.ok()) << dump(second) << yaml;
    EXPECT_EQ(second.objects().at(0), o) << yaml;
  }
}

TEST(encode_yaml, quotes_strings_other_parsers_would_not_read_as_strings) {
  backup b;
  b.metadata.name = "b";
  b.metadata.labels = {{"a", "true"}, {"b", "1.5"}, {"c", "~"}, {"d", "plain"}, {"e", "No"}};
  b.spec.schedule_ref = "s";
  EXPECT_THAT(encode_yaml(b), HasSubstr("    a: \"true\"\n"
                                        "    b: \"1.5\"\n"
                                        "    c: \"~\"\n"
                                        "    d: plain\n"
                                        "    e: \"No\"\n"));
}

// Issue 14: archives encrypted with age, to keys or to a passphrase, and the
// restore's way to decrypt them.
constexpr const char* age_key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

TEST(decode, age_encryption_and_decryption_round_trip) {
  const auto s = decode_one<backup_schedule>(
      schedule_with(std::string("  archive:\n    compression: zstd\n    encryption:\n      age:\n"
                                "        recipients: [") +
                    age_key +
                    ", \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL0 user@host\"]\n"
                    "        recipientsFile: /run/secrets/age_recipients\n"));
  ASSERT_TRUE(s.spec.archive.encryption);
  const auto& age = std::get<age_encryption>(*s.spec.archive.encryption);
  EXPECT_EQ(age.recipients, (std::vector<std::string>{
                                age_key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL0 user@host"}));
  EXPECT_EQ(age.recipients_file, "/run/secrets/age_recipients");
  EXPECT_FALSE(age.passphrase_file);
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s);

  const auto p = decode_one<backup_schedule>(
      schedule_with("  archive: {encryption: {age: {passphraseFile: /run/secrets/pass}}}\n"));
  ASSERT_TRUE(p.spec.archive.encryption);
  EXPECT_EQ(std::get<age_encryption>(*p.spec.archive.encryption).passphrase_file,
            "/run/secrets/pass");
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(p)), p);

  const auto r = decode_one<restore>(
      restore_with("  archive: /a.tar.zst.age\n  volumes: [app_db]\n"
                   "  decryption: {age: {identityFile: /run/secrets/age_key}}\n"));
  ASSERT_TRUE(r.spec.decryption);
  EXPECT_EQ(std::get<age_decryption>(*r.spec.decryption).identity_file, "/run/secrets/age_key");
  EXPECT_EQ(decode_one<restore>(encode_yaml(r)), r);
}

TEST(decode_errors, age_encryption) {
  run({
      {"two methods",
       schedule_with("  archive:\n    encryption:\n      age: {recipients: [" +
                     std::string(age_key) + "]}\n      gpg: {publicKeyFile: /k.asc}\n"),
       {"10:7: spec.archive.encryption: expected exactly one method (age or gpg), got 2"}},
      {"a wrong recipient string, named with its index",
       schedule_with("  archive: {encryption: {age: {recipients: [" + std::string(age_key) +
                     ", age1short]}}}\n"),
       {"8:109: spec.archive.encryption.age.recipients[1]: \"age1short\" is not an age X25519 "
        "recipient: expected \"age1\" and 58 lower-case bech32 characters, as age-keygen "
        "prints them"}},
      {"not a recipient at all",
       schedule_with("  archive: {encryption: {age: {recipients: [\"AGE-SECRET-KEY-1XYZ\"]}}}\n"),
       {"8:45: spec.archive.encryption.age.recipients[0]: \"AGE-SECRET-KEY-1XYZ\" is not an age "
        "recipient: expected \"age1…\", \"ssh-ed25519 …\" or \"ssh-rsa …\""}},
      {"passphrase with recipients",
       schedule_with("  archive: {encryption: {age: {recipientsFile: /r, passphraseFile: /p}}}\n"),
       {"8:31: spec.archive.encryption.age: passphraseFile excludes recipients and "
        "recipientsFile: age encrypts to a passphrase alone"}},
      {"nothing to encrypt to",
       schedule_with("  archive: {encryption: {age: {}}}\n"),
       {"8:31: spec.archive.encryption.age: set recipients, recipientsFile or passphraseFile"}},
      {"an inline passphrase, a relative file",
       schedule_with(
           "  archive: {encryption: {age: {recipientsFile: r.txt, passphrase: hunter2}}}\n"),
       {"8:48: spec.archive.encryption.age.recipientsFile: \"r.txt\" is not an absolute path",
        "8:67: spec.archive.encryption.age.passphrase: secrets are never written into an "
        "object: put it in a file (a Swarm secret under /run/secrets) and name that file in "
        "passphraseFile"}},
      {"decryption with both, and an unknown method",
       restore_with("  archive: /a\n  volumes: [app_db]\n"
                    "  decryption: {age: {identityFile: /i, passphraseFile: /p}}\n"),
       {"7:21: spec.decryption.age: set identityFile or passphraseFile, not both"}},
      {"decryption by an unknown method",
       restore_with("  archive: /a\n  volumes: [app_db]\n  decryption: {pgp: {}}\n"),
       {"7:16: spec.decryption.pgp: unknown method \"pgp\"; expected age or gpg"}},
  });
}

// Issue 14's other method: OpenPGP, to public keys (a file, or inline armored
// keys as the controller hands them to agents) or to a passphrase.
constexpr const char* armored_key =
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0000BYJKwYBBAHaRw8BAQdA\n=abcd\n"
    "-----END PGP PUBLIC KEY BLOCK-----\n";

TEST(decode, gpg_encryption_and_decryption_round_trip) {
  const auto s = decode_one<backup_schedule>(
      schedule_with("  archive:\n    compression: zstd\n    encryption:\n      gpg:\n"
                    "        publicKeyFile: /run/secrets/backup.asc\n"));
  ASSERT_TRUE(s.spec.archive.encryption);
  const auto& gpg = std::get<gpg_encryption>(*s.spec.archive.encryption);
  EXPECT_EQ(gpg.public_key_file, "/run/secrets/backup.asc");
  EXPECT_TRUE(gpg.public_keys.empty());
  EXPECT_FALSE(gpg.passphrase_file);
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s);

  const auto p = decode_one<backup_schedule>(
      schedule_with("  archive: {encryption: {gpg: {passphraseFile: /run/secrets/gpg_pass}}}\n"));
  EXPECT_EQ(std::get<gpg_encryption>(*p.spec.archive.encryption).passphrase_file,
            "/run/secrets/gpg_pass");
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(p)), p);

  // What an agent is given: the keys inline, multi-line, read back exactly.
  backup_schedule agent = s;
  agent.spec.archive.encryption = gpg_encryption{std::nullopt, armored_key, std::nullopt};
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(agent)), agent);

  const auto r =
      decode_one<restore>(restore_with("  archive: /a.tar.zst.gpg\n  volumes: [app_db]\n"
                                       "  decryption: {gpg: {secretKeyFile: /run/secrets/key.asc, "
                                       "passphraseFile: /run/secrets/p}}\n"));
  ASSERT_TRUE(r.spec.decryption);
  const auto& keys = std::get<gpg_decryption>(*r.spec.decryption);
  EXPECT_EQ(keys.secret_key_file, "/run/secrets/key.asc");
  EXPECT_EQ(keys.passphrase_file, "/run/secrets/p");
  EXPECT_EQ(decode_one<restore>(encode_yaml(r)), r);

  const auto symmetric =
      decode_one<restore>(restore_with("  archive: /a.tar.zst.gpg\n  volumes: [app_db]\n"
                                       "  decryption: {gpg: {passphraseFile: /run/secrets/p}}\n"));
  EXPECT_FALSE(std::get<gpg_decryption>(*symmetric.spec.decryption).secret_key_file);
  EXPECT_EQ(decode_one<restore>(encode_yaml(symmetric)), symmetric);
}

TEST(decode_errors, gpg_encryption) {
  run({
      {"age and gpg at once",
       schedule_with("  archive:\n    encryption:\n      gpg: {publicKeyFile: /k.asc}\n"
                     "      age: {passphraseFile: /p}\n"),
       {"10:7: spec.archive.encryption: expected exactly one method (age or gpg), got 2"}},
      {"neither method",
       schedule_with("  archive: {encryption: {}}\n"),
       {"8:25: spec.archive.encryption: expected exactly one method (age or gpg), got 0"}},
      {"public key and passphrase",
       schedule_with(
           "  archive: {encryption: {gpg: {publicKeyFile: /k.asc, passphraseFile: /p}}}\n"),
       {"8:31: spec.archive.encryption.gpg: passphraseFile excludes publicKeyFile: an archive "
        "is encrypted to public keys or to a passphrase, not both"}},
      {"nothing to encrypt to",
       schedule_with("  archive: {encryption: {gpg: {}}}\n"),
       {"8:31: spec.archive.encryption.gpg: set publicKeyFile or passphraseFile"}},
      {"a key file and inline keys",
       schedule_with("  archive: {encryption: {gpg: {publicKeyFile: /k.asc, publicKeys: \"" +
                     std::string("-----BEGIN PGP PUBLIC KEY BLOCK-----") + "\"}}}\n"),
       {"8:31: spec.archive.encryption.gpg: set publicKeyFile or publicKeys, not both"}},
      {"inline keys that are not armored public keys",
       schedule_with("  archive: {encryption: {gpg: {publicKeys: mQENBF}}}\n"),
       {"8:44: spec.archive.encryption.gpg.publicKeys: expected armored public keys "
        "(\"-----BEGIN PGP PUBLIC KEY BLOCK-----\", as gpg --armor --export writes them)"}},
      {"a relative file, an inline passphrase, an unknown field",
       schedule_with("  archive: {encryption: {gpg: {publicKeyFile: k.asc, passphrase: x, "
                     "recipients: [a]}}}\n"),
       {"8:47: spec.archive.encryption.gpg.publicKeyFile: \"k.asc\" is not an absolute path",
        "8:66: spec.archive.encryption.gpg.passphrase: secrets are never written into an "
        "object: put it in a file (a Swarm secret under /run/secrets) and name that file in "
        "passphraseFile",
        "8:69: spec.archive.encryption.gpg.recipients: unknown field"}},
      {"decryption with nothing",
       restore_with("  archive: /a\n  volumes: [app_db]\n  decryption: {gpg: {}}\n"),
       {"7:21: spec.decryption.gpg: set secretKeyFile, passphraseFile or both"}},
      {"decryption with an inline secret key",
       restore_with("  archive: /a\n  volumes: [app_db]\n"
                    "  decryption: {gpg: {secretKey: x, identityFile: /i}}\n"),
       {"7:21: spec.decryption.gpg: set secretKeyFile, passphraseFile or both",
        "7:33: spec.decryption.gpg.secretKey: secrets are never written into an object: put it "
        "in a file (a Swarm secret under /run/secrets) and name that file in secretKeyFile",
        "7:36: spec.decryption.gpg.identityFile: unknown field"}},
  });
}

// Issue 15: exec hooks. `execLabel` scopes them, `timeouts.hooks` bounds each
// point; both decode strictly and round-trip, and a Restore has no hooks.
TEST(decode, exec_label_and_hooks_timeout) {
  const auto unset = decode_one<backup_schedule>(schedule_with(""));
  EXPECT_FALSE(unset.spec.exec_label);
  EXPECT_EQ(unset.spec.timeouts.hooks, minutes{5});

  const auto s =
      decode_one<backup_schedule>(schedule_with("  execLabel: db\n  timeouts: {hooks: 90s}\n"));
  EXPECT_EQ(s.spec.exec_label, "db");
  EXPECT_EQ(s.spec.timeouts.hooks, seconds{90});
  EXPECT_EQ(s.spec.timeouts.scale_down, minutes{5});
  EXPECT_THAT(encode_yaml(s), HasSubstr("execLabel: db\n"));
  EXPECT_THAT(encode_yaml(s), HasSubstr("hooks: 1m30s\n"));
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s);
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(unset)), unset);
}

TEST(decode_errors, exec_label_and_hooks_timeout) {
  run({
      {"empty execLabel",
       schedule_with("  execLabel: \"\"\n"),
       {"8:14: spec.execLabel: must not be empty"}},
      {"execLabel not a string",
       schedule_with("  execLabel: [a]\n"),
       {"8:14: spec.execLabel: expected a string, got a list"}},
      {"bad hooks timeout",
       schedule_with("  timeouts: {hooks: 0s}\n"),
       {"8:21: spec.timeouts.hooks: invalid duration \"0s\": write digits with units h, m and s "
        "in that order, e.g. 90s, 5m, 1h30m"}},
      {"hooks timeout in a restore",
       restore_with("  backupRef: b\n  volumes: [app_db]\n  timeouts: {hooks: 1m}\n"),
       {"7:14: spec.timeouts.hooks: unknown field"}},
  });
}

// Issue 15: notifications after runs, inline URLs checked for a known scheme
// and never repeated beyond it in an error (they may hold a password).
TEST(decode, notifications_round_trip) {
  const auto s = decode_one<backup_schedule>(
      schedule_with("  notifications:\n    level: info\n"
                    "    urls: [\"generic+https://hooks.example/x?template=json\", "
                    "\"ntfy://ntfy.sh/backups\"]\n"
                    "    urlsFile: /run/secrets/notify_urls\n"));
  ASSERT_TRUE(s.spec.notifications);
  EXPECT_EQ(s.spec.notifications->level, notification_level::info);
  EXPECT_EQ(s.spec.notifications->urls,
            (std::vector<std::string>{"generic+https://hooks.example/x?template=json",
                                      "ntfy://ntfy.sh/backups"}));
  EXPECT_EQ(s.spec.notifications->urls_file, "/run/secrets/notify_urls");
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s);

  const auto f = decode_one<backup_schedule>(
      schedule_with("  notifications: {urlsFile: /run/secrets/notify_urls}\n"));
  ASSERT_TRUE(f.spec.notifications);
  EXPECT_EQ(f.spec.notifications->level, notification_level::error);
  EXPECT_TRUE(f.spec.notifications->urls.empty());
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(f)), f);

  const auto none = decode_one<backup_schedule>(schedule_with(""));
  EXPECT_FALSE(none.spec.notifications);
}

TEST(decode_errors, notifications) {
  run({
      {"unknown scheme named by position, password left out",
       schedule_with("  notifications:\n    urls: [\"slack://t/a/b\", "
                     "\"pushover://user:s3cret@host/\"]\n"),
       {"9:29: spec.notifications.urls[1]: unknown scheme \"pushover\"; expected one of "
        "generic+https, generic+http, slack, discord, smtp, gotify, ntfy, telegram, matrix"}},
      {"not a URL",
       schedule_with("  notifications: {urls: [\"user:s3cret@host\"]}\n"),
       {"8:26: spec.notifications.urls[0]: not a URL: expected <scheme>://..., e.g. "
        "generic+https://host/path"}},
      {"unknown level",
       schedule_with("  notifications: {level: warn, urlsFile: /u}\n"),
       {"8:26: spec.notifications.level: unknown level \"warn\"; expected error or info"}},
      {"no URLs",
       schedule_with("  notifications: {level: info}\n"),
       {"8:18: spec.notifications: set urls or urlsFile"}},
      {"relative file",
       schedule_with("  notifications: {urlsFile: notify_urls}\n"),
       {"8:29: spec.notifications.urlsFile: \"notify_urls\" is not an absolute path"}},
      {"unknown field",
       schedule_with("  notifications: {urlsFile: /u, title: x}\n"),
       {"8:33: spec.notifications.title: unknown field"}},
      {"unknown placeholder, named with its field",
       schedule_with("  notifications:\n    urls: [\"ntfy://h/t\"]\n"
                     "    template: {title: \"{{name}} {{sheduel}}\"}\n"),
       {"10:23: spec.notifications.template.title: unknown placeholder {{sheduel}}; known: "
        "kind, name, result, phase, reached, schedule, backup, restore, source, targets, "
        "archive, duration, heldTime, bytes, outcome, destinations, error"}},
      {"unclosed placeholder",
       schedule_with("  notifications:\n    urls: [\"ntfy://h/t\"]\n"
                     "    template: {body: \"{{error\"}\n"),
       {"10:22: spec.notifications.template.body: a {{ at offset 0 has no closing }}"}},
      {"empty template",
       schedule_with("  notifications: {urlsFile: /u, template: {}}\n"),
       {"8:43: spec.notifications.template: set title, body or both"}},
      {"template and templateFile",
       schedule_with("  notifications: {urlsFile: /u, template: {title: x}, templateFile: /t}\n"),
       {"8:18: spec.notifications.templateFile: template and templateFile are mutually "
        "exclusive"}},
      {"a Restore's notifications are checked alike",
       restore_with("  archive: /a.tar\n  volumes: [app_db]\n"
                    "  notifications: {urls: [\"x://h\"]}\n"),
       {"7:26: spec.notifications.urls[0]: unknown scheme \"x\"; expected one of "
        "generic+https, generic+http, slack, discord, smtp, gotify, ntfy, telegram, matrix"}},
  });
}

// Issue 15: templates, and notifications on a Restore (the same shape).
TEST(decode, notification_templates_and_restore_notifications) {
  const auto s = decode_one<backup_schedule>(
      schedule_with("  notifications:\n    urlsFile: /u\n"
                    "    template: {title: \"{{kind}} {{name}}: {{result}}\"}\n"));
  ASSERT_TRUE(s.spec.notifications && s.spec.notifications->message_template);
  EXPECT_EQ(s.spec.notifications->message_template->title, "{{kind}} {{name}}: {{result}}");
  EXPECT_FALSE(s.spec.notifications->message_template->body);
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s);

  const auto r = decode_one<restore>(
      restore_with("  backupRef: b\n  volumes: [app_db]\n  notifications:\n    level: info\n"
                   "    urls: [\"ntfy://h/t\"]\n    templateFile: /run/configs/restore.tpl\n"));
  ASSERT_TRUE(r.spec.notifications);
  EXPECT_EQ(r.spec.notifications->level, notification_level::info);
  EXPECT_EQ(r.spec.notifications->template_file, "/run/configs/restore.tpl");
  EXPECT_EQ(decode_one<restore>(encode_yaml(r)), r);
  EXPECT_FALSE(decode_one<restore>(restore_with("  backupRef: b\n  volumes: [app_db]\n"))
                   .spec.notifications);
}

// Issue 15: one-of label matching. `labelMatch` is exact unless told, is
// written back only when it is not, and round-trips in both kinds.
TEST(decode, label_match) {
  const auto unset = decode_one<backup_schedule>(schedule_with(""));
  EXPECT_EQ(unset.spec.label_match, label_match::exact);
  EXPECT_THAT(encode_yaml(unset), testing::Not(HasSubstr("labelMatch")));

  const auto exact = decode_one<backup_schedule>(schedule_with("  labelMatch: exact\n"));
  EXPECT_EQ(exact.spec.label_match, label_match::exact);
  EXPECT_EQ(exact, unset);

  const auto s =
      decode_one<backup_schedule>(schedule_with("  stopDuringBackup: db\n  labelMatch: one-of\n"));
  EXPECT_EQ(s.spec.label_match, label_match::one_of);
  EXPECT_EQ(s.spec.stop_during_backup, "db");
  EXPECT_THAT(encode_yaml(s), HasSubstr("labelMatch: one-of\n"));
  EXPECT_EQ(decode_one<backup_schedule>(encode_yaml(s)), s);

  // Under exact a comma is part of the one group.
  const auto comma = decode_one<backup_schedule>(schedule_with("  stopDuringBackup: \"a,b\"\n"));
  EXPECT_EQ(comma.spec.stop_during_backup, "a,b");

  const auto r = decode_one<restore>(
      restore_with("  backupRef: b\n  volumes: [app_db]\n  stopDuringBackup: db\n"
                   "  labelMatch: one-of\n"));
  EXPECT_EQ(r.spec.label_match, label_match::one_of);
  EXPECT_THAT(encode_yaml(r), HasSubstr("labelMatch: one-of\n"));
  EXPECT_EQ(decode_one<restore>(encode_yaml(r)), r);
  EXPECT_EQ(to_string(label_match::exact), "exact");
  EXPECT_EQ(to_string(label_match::one_of), "one-of");
}

TEST(decode_errors, label_match) {
  run({
      {"unknown labelMatch",
       schedule_with("  labelMatch: any\n"),
       {"8:15: spec.labelMatch: must be one of exact, one-of; got \"any\""}},
      {"labelMatch not a string",
       schedule_with("  labelMatch: [exact]\n"),
       {"8:15: spec.labelMatch: expected a string, got a list"}},
      {"a group with a comma under one-of",
       schedule_with("  stopDuringBackup: \"a,b\"\n  labelMatch: one-of\n"),
       {"8:21: spec.stopDuringBackup: must not contain ',' with labelMatch one-of (a label value "
        "is split at commas into groups); got \"a,b\""}},
      {"unknown labelMatch in a restore",
       restore_with("  backupRef: b\n  volumes: [app_db]\n  labelMatch: One-Of\n"),
       {"7:15: spec.labelMatch: must be one of exact, one-of; got \"One-Of\""}},
  });
}

}  // namespace
}  // namespace lifeboat::api
