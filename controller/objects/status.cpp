#include "controller/objects/status.hpp"

#include "api/cron.hpp"
#include "api/text.hpp"

#include <date/tz.h>

namespace lifeboat::objects {

namespace {

constexpr std::size_t max_label_value = 1000;

// A label value for people to read: on one line, at most max_label_value bytes.
std::string cut(std::string_view raw) {
  std::string text = api::escape_controls(raw);
  if (text.size() <= max_label_value) {
    return text;
  }
  std::size_t end = max_label_value - 3;
  // Back off to the start of a UTF-8 character.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0U) == 0x80U) {
    --end;
  }
  text.resize(end);
  return text + "...";
}

void set_or_erase(label_map& labels, std::string_view key, const std::string& value) {
  if (value.empty()) {
    labels.erase(std::string(key));
  } else {
    labels[std::string(key)] = value;
  }
}

}  // namespace

std::chrono::sys_seconds next_run(const api::backup_schedule& schedule,
                                  std::chrono::sys_seconds now) {
  std::string error;
  const auto cron = api::cron_schedule::parse(schedule.spec.schedule, error);
  // A decoded schedule passed the same parse; failing here is a bug.
  if (!cron) {
    throw std::logic_error("validated schedule does not parse: " + error);
  }
  return cron->next_after(now, *date::locate_zone(schedule.spec.timezone));
}

std::optional<object_status> desired_status(const catalog_entry& entry,
                                            std::chrono::sys_seconds now) {
  switch (entry.state) {
    case standing::invalid:
      return object_status{"Invalid", entry.error_summary(), std::nullopt};
    case standing::superseded:
      return object_status{"Superseded", "superseded by " + entry.superseded_by, std::nullopt};
    case standing::active:
      break;
  }
  const auto* schedule = std::get_if<api::backup_schedule>(entry.object());
  if (schedule == nullptr) {
    return std::nullopt;
  }
  if (schedule->spec.suspend) {
    return object_status{"Suspended", entry.note, std::nullopt};
  }
  return object_status{"Ready", entry.note, next_run(*schedule, now)};
}

std::optional<label_map> status_labels(const label_map& current, const object_status& status,
                                       std::chrono::sys_seconds now) {
  label_map wanted = current;
  set_or_erase(wanted, label::phase, cut(status.phase));
  set_or_erase(wanted, label::message, cut(status.message));
  set_or_erase(wanted, label::next_run, status.next_run ? format_utc(*status.next_run) : "");
  // `observed` says when the status last changed; it alone is no change.
  label_map compare = wanted;
  compare.erase(std::string(label::observed));
  label_map before = current;
  before.erase(std::string(label::observed));
  if (compare == before) {
    return std::nullopt;
  }
  wanted[std::string(label::observed)] = format_utc(now);
  return wanted;
}

}  // namespace lifeboat::objects
