#pragma once

// The lifeboat object types: plain data, as decoded from YAML (api/decode.hpp)
// with every default filled in. An object returned by the decoder has passed
// validation, so the invariants stated on each field hold; an object built in
// code must respect them too.

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace lifeboat::api {

/// The only apiVersion this build reads and writes.
inline constexpr std::string_view api_version = "lifeboat/v1";

/// metadata.name is at most this long (an RFC 1123 label).
inline constexpr std::size_t max_name_length = 63;

/// A BackupSchedule's name is at most this long, so that the names of the
/// Backups the controller creates for it, `<schedule>-<yyyymmddhhmmss>`,
/// still fit in max_name_length.
inline constexpr std::size_t max_schedule_name_length = max_name_length - 15;

/// An expanded archive name (without the extension) is at most this long, so
/// that the name plus ".tar.zst.partial" stays well under NAME_MAX (255).
inline constexpr std::size_t max_archive_name_length = 200;

struct object_meta {
  std::string name;                           // [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 63
  std::map<std::string, std::string> labels;  // keys non-empty

  bool operator==(const object_meta&) const = default;
};

/// How long a quiesce or a resume may take before the run fails.
struct timeouts_spec {
  std::chrono::seconds scale_down{std::chrono::minutes{5}};  // > 0
  std::chrono::seconds scale_up{std::chrono::minutes{5}};    // > 0
  /// How long the exec hooks of one hook point may take together (schedules
  /// only: `timeouts.hooks` in a Restore is an unknown field).
  std::chrono::seconds hooks{std::chrono::minutes{5}};  // > 0

  bool operator==(const timeouts_spec&) const = default;
};

enum class compression_kind { gzip, zstd, none };

/// "gzip", "zstd" or "none": the spelling used in YAML.
std::string_view to_string(compression_kind c);

/// age encryption of an archive (age-encryption.org/v1): to public keys, or
/// to a passphrase (scrypt), never both. Public keys are not secrets, so they
/// may be written inline; a passphrase only ever comes from a file.
struct age_encryption {
  /// "age1…" (X25519), "ssh-ed25519 AAAA…", "ssh-rsa AAAA…".
  std::vector<std::string> recipients;
  /// An absolute path: one recipient per line, '#' comments and blank lines
  /// skipped (age's own recipients-file format).
  std::optional<std::string> recipients_file;
  /// An absolute path whose content (a trailing newline stripped) is the
  /// passphrase; excludes the two above, as age allows scrypt alone.
  std::optional<std::string> passphrase_file;

  bool operator==(const age_encryption&) const = default;
};

/// OpenPGP encryption of an archive (RFC 4880, through gpg): to public keys,
/// or to a passphrase (symmetric, as `gpg -c`), never both.
struct gpg_encryption {
  /// An absolute path: one or more public keys, armored or binary, as
  /// `gpg --export` writes them.
  std::optional<std::string> public_key_file;
  /// Armored public keys inline (not secrets): how the controller hands the
  /// keys of public_key_file to agents on other nodes.
  std::string public_keys;
  /// An absolute path whose content (a trailing newline stripped) is the
  /// passphrase; excludes the two above.
  std::optional<std::string> passphrase_file;

  bool operator==(const gpg_encryption&) const = default;
};

/// `archive.encryption`: exactly one method.
using encryption_spec = std::variant<age_encryption, gpg_encryption>;

struct archive_spec {
  /// A template: strftime conversions %Y %m %d %H %M %S %y %j %a %b %e %F,
  /// `%%`, and `{schedule}`. See expand_archive_name.
  std::string name = "{schedule}-%Y-%m-%dT%H-%M-%S";
  compression_kind compression = compression_kind::gzip;
  /// Unset means the compressor's default. gzip 1-9, zstd 1-19, never with none.
  std::optional<int> level;
  /// An ECMAScript regular expression (std::regex) that compiles.
  std::optional<std::string> exclude;
  /// Encrypts the compressed stream as it is written; the name gains ".age"
  /// or ".gpg".
  std::optional<encryption_spec> encryption;

  bool operator==(const archive_spec&) const = default;
};

/// A directory on the controller's file system. Each destination kind is an
/// alternative of `destination`; code that visits a destination fails to
/// compile until it handles every kind.
struct local_destination {
  std::string path;  // absolute

  bool operator==(const local_destination&) const = default;
};

/// An S3-compatible bucket. Object keys are `prefix` + archive name.
/// Credentials come from files only (Swarm secrets), never inline.
struct s3_destination {
  std::string bucket;                        // not empty
  std::string prefix;                        // may be empty; no leading '/'
  std::optional<std::string> endpoint;       // http(s)://host[:port]; unset: AWS's for `region`
  std::string region = "us-east-1";          // not empty
  bool path_style = false;                   // <endpoint>/<bucket>/<key> instead of <bucket>.<host>
  std::optional<std::string> storage_class;  // STANDARD_IA, ...; unset: the bucket's default
  std::string access_key_id_file;            // absolute
  std::string secret_access_key_file;        // absolute
  std::optional<std::string> ca_file;        // absolute
  bool insecure_skip_verify = false;         // TLS peer not verified (a warning)

  bool operator==(const s3_destination&) const = default;
};

/// A WebDAV folder. Archives are uploaded as "<name>.partial" and moved to
/// their name once complete. The password comes from a file only.
struct webdav_destination {
  std::string url;                           // http(s)://host[:port]/path/, ends with '/'
  std::optional<std::string> username;       // basic auth, with password_file
  std::optional<std::string> password_file;  // absolute
  std::optional<std::string> ca_file;        // absolute
  bool insecure_skip_verify = false;

  bool operator==(const webdav_destination&) const = default;
};

/// A folder on an SSH server, over SFTP. Archives are uploaded as
/// "<name>.partial" and renamed once complete. The server's host key is always
/// checked against `known_hosts_file`; the client authenticates with the
/// private key in `identity_file` or the password in `password_file` (exactly
/// one of the two), both files only, never inline.
struct sftp_destination {
  std::string host;                          // a name or address, not empty
  int port = 22;                             // 1..65535
  std::string user;                          // not empty, no ':'
  std::string path;                          // absolute, no trailing '/' (but "/")
  std::optional<std::string> identity_file;  // absolute
  std::optional<std::string> password_file;  // absolute
  std::string known_hosts_file;              // absolute

  bool operator==(const sftp_destination&) const = default;
};

using destination =
    std::variant<local_destination, s3_destination, webdav_destination, sftp_destination>;

/// The YAML key naming the kind of `d`: "local", "s3", "webdav", "sftp".
std::string_view destination_kind(const destination& d);

/// Which archives (or restic snapshots) pruning keeps. At least one field is
/// set. The calendar rules (keep_hourly .. keep_yearly) are restic's
/// `forget --keep-*` rules and only accepted with format restic; `days` only
/// without it.
struct retention_spec {
  std::optional<int> days;       // >= 0: keep archives younger than this
  std::optional<int> keep_last;  // >= 0: keep at least the newest N
  // (Initialised, so that `retention_spec{days, keep_last}` stays complete.)
  std::optional<int> keep_hourly{};  // >= 0: the newest of each of the newest N hours
  std::optional<int> keep_daily{};   // >= 0: ... days
  std::optional<int> keep_weekly{};  // >= 0: ... ISO weeks
  std::optional<int> keep_monthly{};
  std::optional<int> keep_yearly{};

  bool operator==(const retention_spec&) const = default;
};

/// What a schedule's runs write: one archive per run (tar, compressed,
/// maybe encrypted), or one snapshot per volume into a restic repository.
enum class backup_format { archive, restic };

/// "archive" or "restic": the spelling used in YAML.
std::string_view to_string(backup_format f);

/// How restic compresses the blobs it stores (repository format version 2).
enum class restic_compression { off, automatic, max };

/// "off", "auto" or "max": the spelling used in YAML (restic's own).
std::string_view to_string(restic_compression c);

/// `spec.restic`: set exactly when the format is restic. The repository is
/// the schedule's one destination (a `local` folder).
struct restic_spec {
  /// An absolute path whose content (a trailing newline stripped) is the
  /// repository's password: a Swarm secret, never inline.
  std::string password_file;
  restic_compression compression = restic_compression::automatic;

  bool operator==(const restic_spec&) const = default;
};

/// How many finished Backup objects of a schedule are kept.
struct history_limits_spec {
  int succeeded = 3;  // >= 0
  int failed = 3;     // >= 0

  bool operator==(const history_limits_spec&) const = default;
};

/// How a workload's docker-volume-backup.stop-during-backup(-no-restart)
/// label value is matched against a run's group (docker-volume-backup's
/// LABEL_MATCH_BEHAVIOR). `exact`: the value is the group. `one_of`: the value
/// is a comma-separated list of groups (spaces around each ignored), one of
/// which is the group: `a, b` is in groups `a` and `b`.
enum class label_match { exact, one_of };

/// "exact" or "one-of": the spelling used in YAML.
std::string_view to_string(label_match m);

/// Selects the volumes that carry all of these labels.
struct label_selector {
  std::map<std::string, std::string> match_labels;  // not empty, keys non-empty

  bool operator==(const label_selector&) const = default;
};

/// Which runs are notified: `error` only failed runs, `info` every run.
enum class notification_level { error, info };

std::string_view to_string(notification_level l);

/// A notification's own wording. Either part may be unset, never both.
struct notification_template {
  std::optional<std::string> title;
  std::optional<std::string> body;

  bool operator==(const notification_template&) const = default;
};

/// Where a schedule's runs are reported: shoutrrr-style URLs
/// (`generic+https://`, `slack://`, `smtp://`, ...; see
/// api::notification_schemes), given inline or one per line in a file (a
/// Swarm secret, since most URLs carry a token). Inline URLs have a known
/// scheme; the file is read, and its URLs checked, when a run ends.
struct notifications_spec {
  notification_level level = notification_level::error;
  std::vector<std::string> urls;         // each with a known scheme
  std::optional<std::string> urls_file;  // absolute; one URL a line, '#' comments
  // At least one of the two is set.
  /// `template`: the title and body, each with {{placeholders}}
  /// (api/template.hpp), all known; a part left unset keeps the default.
  std::optional<notification_template> message_template;
  /// `templateFile`, absolute (excludes `template`): read when a run ends;
  /// its first line is the title, the rest the body.
  std::optional<std::string> template_file;

  bool operator==(const notifications_spec&) const = default;
};

struct backup_schedule_spec {
  std::string schedule;          // parses with cron_schedule::parse
  std::string timezone = "UTC";  // found by date::locate_zone
  bool suspend = false;
  /// Exactly one of `volumes` (non-empty, distinct Docker volume names) and
  /// `volume_selector` is set.
  std::vector<std::string> volumes;
  std::optional<label_selector> volume_selector;
  /// The value of the docker-volume-backup.stop-during-backup label that
  /// selects the workloads to quiesce.
  std::string stop_during_backup = "true";
  /// How stop_during_backup is matched against workloads' label values. With
  /// one_of, stop_during_backup contains no ','.
  api::label_match label_match = api::label_match::exact;
  /// Restricts exec hooks to containers also labelled
  /// `docker-volume-backup.exec-label=<value>`; unset: every container with
  /// hook labels (docker-volume-backup's EXEC_LABEL). Never empty when set.
  std::optional<std::string> exec_label;
  timeouts_spec timeouts;
  backup_format format = backup_format::archive;
  /// Set exactly when format is restic; `archive` then keeps its defaults
  /// (the decoder refuses an `archive` field), and `destinations` holds one
  /// `local` destination: the repository.
  std::optional<restic_spec> restic;
  archive_spec archive;
  std::vector<destination> destinations;    // not empty
  std::optional<retention_spec> retention;  // unset: keep everything
  history_limits_spec history_limits;
  std::optional<notifications_spec> notifications;  // unset: no notifications

  bool operator==(const backup_schedule_spec&) const = default;
};

struct backup_schedule {
  static constexpr std::string_view kind = "BackupSchedule";
  object_meta metadata;
  backup_schedule_spec spec;

  bool operator==(const backup_schedule&) const = default;
};

/// The controller's status of a Backup is kept in labels of its config, not
/// here: this is only what a user (or the scheduler) asks for.
struct backup_spec {
  std::string schedule_ref;  // a BackupSchedule's metadata.name

  bool operator==(const backup_spec&) const = default;
};

struct backup {
  static constexpr std::string_view kind = "Backup";
  object_meta metadata;
  backup_spec spec;

  bool operator==(const backup&) const = default;
};

/// Restore the archived volume `from` into the volume `to`.
struct volume_mapping {
  std::string from;  // Docker volume name
  std::string to;    // Docker volume name; equals `from` unless renamed

  bool operator==(const volume_mapping&) const = default;
};

/// An archive on a destination, by its file name there: a Restore reads it
/// through the destination (a remote one is copied to a local spool file,
/// checked and read from there, before anything is held).
struct restore_source {
  api::destination destination;
  std::string name;  // a file name: no '/', not "." or ".."

  bool operator==(const restore_source&) const = default;
};

/// A snapshot in a local restic repository (lifeboat's own, or one `restic
/// backup` made): a Restore reads it directly, verifying every blob first.
struct restic_source {
  std::string repository;     ///< the repository's folder, an absolute path
  std::string password_file;  ///< an absolute path: a Swarm secret, never inline
  /// "latest": per volume, the newest snapshot that holds the volume's path
  /// (and every tag of `tags`); else a snapshot ID or a unique prefix of one
  /// (lower-case hex, as `restic snapshots` prints them).
  std::string snapshot = "latest";
  std::vector<std::string> tags;

  bool operator==(const restic_source&) const = default;
};

/// What decrypts an encrypted archive: exactly one of the two, absolute
/// paths (Swarm secrets).
struct age_decryption {
  std::optional<std::string> identity_file;    ///< age-keygen's file, or an OpenSSH private key
  std::optional<std::string> passphrase_file;  ///< for archives encrypted to a passphrase

  bool operator==(const age_decryption&) const = default;
};

/// What decrypts an OpenPGP archive: secret keys (`gpg --export-secret-keys`),
/// with the passphrase that protects them if any; or, without keys, the
/// passphrase of a symmetrically encrypted archive. Absolute paths.
struct gpg_decryption {
  std::optional<std::string> secret_key_file;
  std::optional<std::string> passphrase_file;

  bool operator==(const gpg_decryption&) const = default;
};

/// `Restore.spec.decryption`: exactly one method.
using decryption_spec = std::variant<age_decryption, gpg_decryption>;

struct restore_spec {
  /// Exactly one of the four is set as decoded. The controller resolves a
  /// backupRef into `archive`, `source` or `restic` beside it.
  std::optional<std::string> backup_ref;  // a Backup's metadata.name
  std::optional<std::string> archive;     // an absolute path
  std::optional<restore_source> source;   // an archive on a destination
  std::optional<restic_source> restic;    // a snapshot in a restic repository
  /// Not empty; no two share a `to`. With `restic`, a `from` may be an
  /// absolute path inside the snapshot (one `restic backup /srv/data` made),
  /// with `to` given; a volume name stands for "/<name>", where lifeboat's
  /// snapshots keep a volume.
  std::vector<volume_mapping> volumes;
  bool wipe = false;  // empty each target volume before extracting
  /// Create a target volume that does not exist, on the node of the engine
  /// that runs the restore. Off: a missing target fails the restore (a typo
  /// or a volume on another node must not become a new empty volume here).
  bool create_volume = false;
  /// A label group to hold as well. Empty (the default): only the workloads
  /// that mount a target volume are held — a restore of one volume must not
  /// take down every labelled service of the swarm.
  std::string stop_during_backup;
  /// As in a schedule: how stop_during_backup is matched (with one_of, it
  /// contains no ','). Meaningless without stop_during_backup.
  api::label_match label_match = api::label_match::exact;
  timeouts_spec timeouts;
  /// Needed for an encrypted archive; a plain one is read as it is.
  std::optional<decryption_spec> decryption;
  /// Where the run is reported. Unset: the notifications of the schedule of
  /// the Backup named by backup_ref, if any; else none.
  std::optional<notifications_spec> notifications;

  bool operator==(const restore_spec&) const = default;
};

struct restore {
  static constexpr std::string_view kind = "Restore";
  object_meta metadata;
  restore_spec spec;

  bool operator==(const restore&) const = default;
};

using object = std::variant<backup_schedule, backup, restore>;

/// "BackupSchedule", "Backup" or "Restore".
std::string_view kind_of(const object& o);

const object_meta& metadata_of(const object& o);

/// Expands an archive name template for a run of `schedule_name` at the local
/// wall-clock time `when` (the caller picks the zone, normally the schedule's).
/// Conversions are those of strftime in the C locale (%a and %b in English),
/// whatever the process locale. Meant for templates that passed
/// check_archive_name_template (api/validate.hpp); in any other template an
/// unsupported `%x` or `{...}` is copied as written. The extension is not added.
std::string expand_archive_name(std::string_view name_template, std::string_view schedule_name,
                                std::chrono::local_seconds when);

}  // namespace lifeboat::api
