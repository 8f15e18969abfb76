#pragma once

// Notifications after runs (issue 15): shoutrrr-style URLs, as
// docker-volume-backup users already write them, turned into the HTTP
// request or the mail each service takes, and sent with bounded retries.
//
// The mapping (build_requests) is pure, so every scheme is tested without a
// network; sending goes through the `sender` interface and waits between
// attempts through an injected `sleeper`, so tests never sleep.

#include "api/objects.hpp"

#include <boost/system/result.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace lifeboat::notify {

/// Errors here are text for a log line or a status, never holding a secret.
template <class T>
using result = boost::system::result<T, std::string>;

/// What is sent: a one-line title and a plain-text body. `id` is unique per
/// run (the run's name) and makes retried Matrix sends idempotent.
struct message {
  std::string title;
  std::string body;
  std::string id;
};

/// One HTTP(S) request: method, full URL, "Name: value" headers, body.
struct http_request {
  std::string method = "POST";
  std::string url;
  std::vector<std::string> headers;
  std::string body;

  bool operator==(const http_request&) const = default;
};

/// One mail through SMTP. `url` is smtp://host:port or smtps://host:port
/// (implicit TLS); `starttls` is "none", "try" or "require".
struct mail_request {
  std::string url;
  std::string user;  // empty: no authentication
  std::string password;
  std::string starttls = "try";
  std::string from;
  std::vector<std::string> to;
  std::string subject;
  std::string body;

  bool operator==(const mail_request&) const = default;
};

using request = std::variant<http_request, mail_request>;

/// The requests that deliver `m` to the service `url` names (several for a
/// Telegram or Matrix URL with several chats or rooms). Errors name the
/// scheme and what is missing or wrong, never the URL's secret parts.
result<std::vector<request>> build_requests(std::string_view url, const message& m);

/// `url` for a log line: scheme and host only ("slack://hooks", "smtp://mail:25").
std::string describe(std::string_view url);

/// The URLs of a urlsFile: one a line, blank lines and lines starting with
/// '#' (after leading blanks) skipped, surrounding blanks trimmed.
std::vector<std::string> parse_urls_file(std::string_view text);

/// Sends one request; an error says what failed (status, curl's reason).
class sender {
 public:
  virtual ~sender() = default;
  virtual result<void> send(const request& r) = 0;
};

/// Sends through libcurl: HTTP(S) and SMTP(S) only, each attempt bounded by
/// `timeout`. Thread-safe: every send uses its own handle.
class curl_sender final : public sender {
 public:
  explicit curl_sender(std::chrono::milliseconds timeout = std::chrono::seconds{10});
  result<void> send(const request& r) override;

 private:
  std::chrono::milliseconds timeout_;
};

/// Waits between attempts; production sleeps, tests record.
using sleeper = std::function<void(std::chrono::milliseconds)>;

/// How many times a URL is tried, and the waits between tries (1 s, then 2 s).
inline constexpr int max_attempts = 3;
inline constexpr std::chrono::milliseconds first_backoff{1000};

/// The outcome for one URL.
struct delivery {
  std::string target;  // describe(url)
  bool ok = false;
  int attempts = 0;
  std::string error;  // the last attempt's, when !ok
};

/// Delivers `m` to `url`: builds the requests (a bad URL fails at once, no
/// retry) and sends each with up to max_attempts tries, sleeping
/// first_backoff, then twice that, between them. Never throws for I/O.
delivery deliver(std::string_view url, const message& m, sender& s, const sleeper& sleep);

/// A finished run as notifications report it.
struct run_summary {
  std::string kind;      // "Backup" or "Restore"
  std::string name;      // the run's name: the Backup's, the Restore's
  std::string schedule;  // a Restore's: its backupRef's schedule, or empty
  bool ok = false;
  std::string phase;    // the terminal phase ("Succeeded", "Failed", ...)
  std::string reached;  // the last phase entered before it; empty: unknown
  std::chrono::duration<double> duration{0};
  std::chrono::duration<double> held{0};
  double bytes = 0;
  std::string archive;
  /// Destination and its result ("ok" or the error).
  std::vector<std::pair<std::string, std::string>> destinations;
  std::string error;  // empty when ok
  // A Restore's own fields.
  std::string backup_ref;            // spec.backupRef, or empty
  std::string source;                // what it read: an archive path, "<kind> <name>"
  std::vector<std::string> targets;  // its volumes, "from -> to"
  std::string outcome;               // restore::outcome ("succeeded", "corrupt", ...)
};

/// The title and body for `s`: a title that says kind, name and outcome,
/// and a body with every field of the summary that is set.
message format_message(const run_summary& s);

/// The value of each template placeholder (api::template_placeholders) for
/// `s`, as the README documents them.
std::map<std::string, std::string, std::less<>> template_values(const run_summary& s);

/// The message for `s` worded by `t`: each part that `t` sets rendered with
/// template_values, the other as format_message has it. Pure.
message format_message(const run_summary& s, const api::notification_template& t);

/// A templateFile's text: its first line (without "\r\n" or "\n") is the
/// title, the rest the body; an empty title or body keeps the default.
/// Errors name the part and the placeholder, as decoding an inline template.
result<api::notification_template> parse_template_file(std::string_view text);

}  // namespace lifeboat::notify
