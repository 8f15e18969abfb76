#pragma once

// The notification run listener: after a run, sends its summary to every URL
// of the schedule's spec.notifications that the level lets through.

#include "api/objects.hpp"
#include "controller/backup/runner.hpp"
#include "controller/notify/notify.hpp"
#include "controller/restore/runner.hpp"

#include <functional>
#include <string>
#include <vector>

namespace lifeboat::notify {

/// The summary of a finished backup run of `schedule` named `run_name`.
run_summary summarize(const std::string& schedule, const std::string& run_name,
                      const backup::run_result& result);

/// The summary of a finished restore run: `restore` as it ran (a backupRef
/// resolved into its archive or source), `backup_ref` and `schedule` as the
/// Restore named them (empty when it did not), `reached` the last phase the
/// run entered (empty: unknown).
run_summary summarize_restore(const api::restore& restore, const std::string& backup_ref,
                              const std::string& schedule, const std::string& reached,
                              const restore::run_result& result);

/// Whether a run that ended `ok` is notified at `level`.
bool wanted(api::notification_level level, bool ok);

class run_notifier {
 public:
  /// Reads a urlsFile whole; an error says why (no such file, ...).
  using file_reader = std::function<result<std::string>(const std::string& path)>;
  /// Called once per URL with whether it was delivered
  /// (lifeboat_notifications_total{result}).
  using counter = std::function<void(bool sent)>;

  /// `s` and `sleep` are borrowed for the notifier's lifetime.
  run_notifier(sender& s, sleeper sleep, file_reader read, counter count);

  /// Sends `summary` to every URL of `spec` (inline ones, then the file's)
  /// when `spec.level` lets it through, worded by spec's template or
  /// templateFile; logs and counts each outcome, never throws, and returns
  /// one delivery per URL (none when not wanted). An unreadable urlsFile is
  /// logged and counted as one failure. A templateFile that cannot be read or
  /// used is logged, and the default message goes out with a last body line
  /// "template error: ..." (a notification is never lost to its wording). Blocks for at
  /// most the bounded retries of each URL. Any thread.
  std::vector<delivery> notify(const api::notifications_spec& spec,
                               const run_summary& summary) const;

 private:
  sender& sender_;
  sleeper sleep_;
  file_reader read_;
  counter count_;
};

/// Reads a whole file (for run_notifier::file_reader).
result<std::string> read_file(const std::string& path);

/// Sleeps for real (for run_notifier's sleeper).
void sleep_for(std::chrono::milliseconds d);

}  // namespace lifeboat::notify
