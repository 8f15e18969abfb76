#include "controller/notify/listener.hpp"

#include "controller/logging/log.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace lifeboat::notify {

run_summary summarize(const std::string& schedule, const std::string& run_name,
                      const backup::run_result& result) {
  run_summary s;
  s.kind = "Backup";
  s.name = run_name;
  s.schedule = schedule;
  s.ok = result.ok;
  s.phase = result.ok ? "Succeeded" : "Failed";
  s.duration = result.duration;
  s.held = result.downtime;
  s.bytes = result.size_bytes;
  s.archive = result.archive;
  for (const auto& d : result.destinations) {
    s.destinations.emplace_back(d.destination, d.ok ? std::string("ok") : std::string(d.failure));
  }
  if (!result.ok) {
    s.error = result.message;
  }
  return s;
}

run_summary summarize_restore(const api::restore& restore, const std::string& backup_ref,
                              const std::string& schedule, const std::string& reached,
                              const restore::run_result& result) {
  run_summary s;
  s.kind = "Restore";
  s.name = restore.metadata.name;
  s.schedule = schedule;
  s.ok = result.ok;
  s.phase = result.ok ? "Succeeded" : "Failed";
  s.reached = reached;
  s.duration = result.duration;
  s.held = result.downtime;
  s.bytes = result.bytes;
  s.archive = result.archive;
  s.backup_ref = backup_ref;
  if (restore.spec.source) {
    s.source = std::string(api::destination_kind(restore.spec.source->destination)) + " " +
               restore.spec.source->name;
  } else if (restore.spec.archive) {
    s.source = *restore.spec.archive;
  } else if (restore.spec.backup_ref) {
    s.source = "backup " + *restore.spec.backup_ref;
  }
  for (const auto& v : restore.spec.volumes) {
    s.targets.push_back(v.from + " -> " + v.to);
  }
  s.outcome = std::string(result.outcome);
  if (!result.ok) {
    s.error = result.message;
  }
  return s;
}

bool wanted(api::notification_level level, bool ok) {
  return level == api::notification_level::info || !ok;
}

run_notifier::run_notifier(sender& s, sleeper sleep, file_reader read, counter count)
    : sender_(s), sleep_(std::move(sleep)), read_(std::move(read)), count_(std::move(count)) {}

std::vector<delivery> run_notifier::notify(const api::notifications_spec& spec,
                                           const run_summary& summary) const {
  std::vector<delivery> out;
  if (!wanted(spec.level, summary.ok)) {
    return out;
  }
  std::vector<std::string> urls = spec.urls;
  if (spec.urls_file) {
    auto text = read_(*spec.urls_file);
    if (!text) {
      delivery d;
      d.target = *spec.urls_file;
      d.error = "cannot read urlsFile: " + text.error();
      out.push_back(std::move(d));
    } else {
      for (auto& url : parse_urls_file(*text)) {
        urls.push_back(std::move(url));
      }
    }
  }
  message m = format_message(summary);
  if (spec.message_template) {
    m = format_message(summary, *spec.message_template);
  } else if (spec.template_file) {
    auto text = read_(*spec.template_file);
    auto t = text ? parse_template_file(*text)
                  : result<api::notification_template>(boost::system::in_place_error,
                                                       "cannot read it: " + text.error());
    if (t) {
      m = format_message(summary, *t);
    } else {
      spdlog::warn("event=notification_template_failed run={} file={} msg={}",
                   logging::value(summary.name), logging::value(*spec.template_file),
                   logging::value(t.error()));
      m.body += "template error: " + *spec.template_file + ": " + t.error() + "\n";
    }
  }
  for (const auto& url : urls) {
    try {
      out.push_back(deliver(url, m, sender_, sleep_));
    } catch (const std::exception& e) {
      // A bug (or bad_alloc): the run's own outcome stands regardless.
      delivery d;
      d.target = describe(url);
      d.error = std::string("internal error: ") + e.what();
      out.push_back(std::move(d));
    }
  }
  for (const auto& d : out) {
    count_(d.ok);
    if (d.ok) {
      spdlog::info("event=notification_sent run={} target={} attempts={}",
                   logging::value(summary.name), logging::value(d.target), d.attempts);
    } else {
      spdlog::warn("event=notification_failed run={} target={} attempts={} msg={}",
                   logging::value(summary.name), logging::value(d.target), d.attempts,
                   logging::value(d.error));
    }
  }
  return out;
}

result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return {boost::system::in_place_error, std::string(std::strerror(errno)) + ": " + path};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return {boost::system::in_place_value, text.str()};
}

void sleep_for(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

}  // namespace lifeboat::notify
