#include "controller/runtime/lease.hpp"

#include <charconv>
#include <cstdio>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace lifeboat::runtime {
namespace {

// Swarm refuses a config without data; the lease lives in the labels alone.
constexpr std::string_view lease_data = "lifeboat leader lease: see the lifeboat.lease.* labels\n";

// Non-negative whole milliseconds, as the duration label is written.
std::optional<std::chrono::milliseconds> parse_millis(std::string_view text) {
  std::int64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value < 0) {
    return std::nullopt;
  }
  return std::chrono::milliseconds{value};
}

// "2024-05-01T03:00:00.123Z". GCC 12 has no std::format for chrono types.
std::string rfc3339_millis(clock::system_time t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss hms{ms - day};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

}  // namespace

lease_record lease_record_from_labels(const engine::labels& labels) {
  lease_record record;
  if (auto it = labels.find(std::string(lease_holder_label)); it != labels.end()) {
    record.holder = it->second;
  }
  if (auto it = labels.find(std::string(lease_renewed_label)); it != labels.end()) {
    record.renewed = it->second;
  }
  if (auto it = labels.find(std::string(lease_duration_label)); it != labels.end()) {
    record.duration = parse_millis(it->second);
  }
  return record;
}

engine::labels lease_labels(engine::labels current, const lease_record& record) {
  current[std::string(lease_holder_label)] = record.holder;
  current[std::string(lease_renewed_label)] = record.renewed;
  if (record.duration) {
    current[std::string(lease_duration_label)] = std::to_string(record.duration->count());
  } else {
    current.erase(std::string(lease_duration_label));
  }
  return current;
}

std::string_view to_string(lease_action action) {
  switch (action) {
    case lease_action::create:
      return "create";
    case lease_action::take:
      return "take";
    case lease_action::renew:
      return "renew";
    case lease_action::wait:
      return "wait";
  }
  return "unknown";
}

lease_decision decide(const lease_input& input) {
  lease_decision d;
  if (!input.record) {
    d.action = lease_action::create;
    d.observation = {{}, {}, input.now};
    return d;
  }
  const lease_record& record = *input.record;
  const bool unchanged =
      input.last && input.last->holder == record.holder && input.last->renewed == record.renewed;
  d.observation =
      unchanged ? *input.last : lease_observation{record.holder, record.renewed, input.now};

  if (record.holder.empty()) {
    d.action = lease_action::take;
  } else if (record.holder == input.identity) {
    d.action = lease_action::renew;
  } else {
    const auto duration = record.duration.value_or(input.default_duration);
    const bool expired = input.now - d.observation.observed_at > duration;
    d.action = expired ? lease_action::take : lease_action::wait;
  }
  return d;
}

bool still_leading(clock::steady_time renewed_at, clock::steady_time now,
                   std::chrono::milliseconds renew_deadline) {
  return now - renewed_at < renew_deadline;
}

leader_lease::leader_lease(const engine::client& engine, lease_options options, const clock& time)
    : engine_(engine), options_(std::move(options)), clock_(time) {
  if (options_.name.empty()) {
    throw std::invalid_argument("lease: the config name is empty");
  }
  if (options_.identity.empty()) {
    throw std::invalid_argument("lease: the identity is empty");
  }
  if (options_.duration <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("lease: the duration must be positive");
  }
  if (options_.renew_deadline <= std::chrono::milliseconds::zero() ||
      options_.renew_deadline >= options_.duration) {
    throw std::invalid_argument(
        "lease: the renew deadline must be positive and shorter than the duration, or a holder "
        "could still act after others have taken over");
  }
}

engine::result<std::optional<engine::config>> leader_lease::read() const {
  auto current = engine_.inspect_config(options_.name);
  if (current) {
    return std::optional<engine::config>(std::move(*current));
  }
  if (current.error().is(engine::errc::not_found)) {
    return std::optional<engine::config>();
  }
  return current.error();
}

lease_round leader_lease::try_acquire_or_renew() {
  // A renew deadline that passed since the last round is reported before this
  // round can renew: the lapse was real (is_leader() said false), and whoever
  // started work on on_change(true) must have stopped it.
  report_change();
  lease_round round;
  // Two passes at most: the second only after losing the race to create.
  for (int pass = 0; pass < 2; ++pass) {
    auto current = read();
    if (!current) {
      round.error = current.error();
      break;
    }
    const auto now = clock_.now();
    std::optional<lease_record> record;
    if (*current) {
      record = lease_record_from_labels((*current)->config_labels);
    }
    const auto decision = decide({record, options_.identity, last_, now, options_.duration});
    last_ = decision.observation;
    round.action = decision.action;
    // Whoever else the lease shows (or its absence: anyone may create it now),
    // we are not the holder any more; stop before deciding anything else.
    if (!record || record->holder != options_.identity) {
      stop_leading();
    }
    if (decision.action == lease_action::wait) {
      break;
    }

    const lease_record mine{options_.identity, rfc3339_millis(clock_.system_now()),
                            options_.duration};
    engine::result<void> written;
    if (decision.action == lease_action::create) {
      auto id = engine_.create_config(options_.name, lease_data, lease_labels({}, mine));
      if (!id && id.error().is(engine::errc::conflict) && pass == 0) {
        continue;  // someone else created it first: read what they wrote
      }
      written = id ? engine::result<void>() : engine::result<void>(id.error());
    } else {
      written =
          engine_.update_config_labels(**current, lease_labels((*current)->config_labels, mine));
    }
    if (!written) {
      round.error = written.error();
      break;
    }
    // Counted from before the write: others see it land no earlier, so by
    // their clocks our lease lasts at least as long as we act on it.
    renewed_at_.store(now.time_since_epoch().count());
    last_ = lease_observation{mine.holder, mine.renewed, now};
    break;
  }
  round.leading = is_leader();
  report_change();
  return round;
}

engine::result<void> leader_lease::release() {
  stop_leading();
  report_change();
  engine::result<void> outcome;
  // Retried on conflict: a write by someone else (a label edit, say) need not
  // mean the lease changed hands.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto current = read();
    if (!current) {
      return current.error();
    }
    if (!*current) {
      return {};
    }
    const auto record = lease_record_from_labels((*current)->config_labels);
    if (record.holder != options_.identity) {
      return {};
    }
    const lease_record released{{}, rfc3339_millis(clock_.system_now()), record.duration};
    outcome =
        engine_.update_config_labels(**current, lease_labels((*current)->config_labels, released));
    if (outcome) {
      last_ = lease_observation{released.holder, released.renewed, clock_.now()};
      return outcome;
    }
    if (!outcome.error().is(engine::errc::conflict)) {
      return outcome;
    }
  }
  return outcome;
}

bool leader_lease::is_leader() const {
  const auto renewed_at = renewed_at_.load();
  return renewed_at != not_leading && still_leading(clock::steady_time{clock::duration{renewed_at}},
                                                    clock_.now(), options_.renew_deadline);
}

void leader_lease::stop_leading() { renewed_at_.store(not_leading); }

void leader_lease::report_change() {
  const bool leading = is_leader();
  if (leading == reported_leading_) {
    return;
  }
  reported_leading_ = leading;
  if (options_.on_change) {
    options_.on_change(leading);
  }
}

}  // namespace lifeboat::runtime
